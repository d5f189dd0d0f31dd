"""A compact schema of Terraform providers, derived from their prebuilt CDK bindings (PyPI wheels).

`terraform validate` needs the provider binary, which these machines cannot download; the provider's
schema, though, ships in the CDK bindings on PyPI (cdktn-provider-google, -google-beta, -random...,
generated from `terraform providers schema -json`). Each wheel holds a jsii assembly
(``<module>/_jsii/*.jsii.tgz``, ``package/.jsii``, about 130 MB of JSON for google), in which:

- every resource, data source and ephemeral resource is a class whose docs link names it
  (``.../docs/resources/NAME google_NAME``), and the provider itself is a ``TerraformProvider`` class;
- the class's ``config`` parameter is an interface of its arguments; each nested block is an interface
  of its own (a "datatype"); each property's docs end with a registry link ``#argument_name``, which is
  the Terraform spelling (the property name is camelCase and sometimes renamed: ``build`` is
  ``buildAttribute``, ``detect_md5hash`` is ``detectMd5Hash``);
- a property without ``optional`` is required (for a block: at least one);
- a block whose summary is ``NAME block.`` is typed as one struct when the schema allows at most one
  (``max_items = 1`` or a single nested block) and as a list of structs otherwise;
- an enumerated argument of the google providers says ``Possible values: ["A", "B"]`` in its docs
  (magic-modules' wording; free-text lists in other words are not taken as a set).

This script keeps exactly that (no descriptions) in one JSON file that tests/infra/test_provider_schema.py
loads in a fraction of a second. ``make provider-schema`` downloads the pinned wheels
(requirements-provider-schema.txt) into .atlas/provider-schema/wheels and runs it.

    python scripts/provider_schema.py --requirements requirements-provider-schema.txt \
        --wheels .atlas/provider-schema/wheels --out .atlas/provider-schema/schema.json
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

FORMAT = 1
_NAMED = re.compile(
    r"registry\.terraform\.io/providers/(?P<source>[\w.-]+/[\w.-]+)/(?P<version>[\w.+-]+)/docs"
    r"(?:/(?P<kind>resources|data-sources|ephemeral-resources)/[\w-]+)? (?P<name>[\w-]+)\}"
)
_ANCHOR = re.compile(r"Docs at Terraform Registry: \{@link https://registry\.terraform\.io/providers/\S+?#(\w+) ")
_POSSIBLE = re.compile(r"Possible values: \[((?:\"[^\"]*\"(?:, )?)*)\]")
_KINDS = {
    "cdktn.TerraformResource": "resources",
    "cdktf.TerraformResource": "resources",
    "cdktn.TerraformDataSource": "data_sources",
    "cdktf.TerraformDataSource": "data_sources",
    "cdktn.TerraformEphemeralResource": "ephemeral_resources",
    "cdktf.TerraformEphemeralResource": "ephemeral_resources",
    "cdktn.TerraformProvider": "provider",
    "cdktf.TerraformProvider": "provider",
}


def _snake(name: str) -> str:
    return re.sub(r"[A-Z]", lambda match: "_" + match.group(0).lower(), name)


class Assembly:
    """One jsii assembly: its types, and the schema of each block interface."""

    def __init__(self, assembly: dict[str, Any]) -> None:
        self.types: dict[str, dict[str, Any]] = assembly["types"]
        self.unnamed = 0  # properties without a registry anchor (their name is derived from camelCase)

    def _is_struct(self, fqn: str | None) -> bool:
        return fqn is not None and bool(self.types.get(fqn, {}).get("datatype"))

    def _struct(self, type_: dict[str, Any]) -> tuple[str, bool] | None:
        """(interface, single) when the type is one struct (single) or a list of structs."""
        if self._is_struct(type_.get("fqn")):
            return type_["fqn"], True
        for option in type_.get("union", {}).get("types", [type_]):
            element = option.get("collection", {}).get("elementtype", {})
            if self._is_struct(element.get("fqn")):
                return element["fqn"], False
        return None

    @staticmethod
    def _type(type_: dict[str, Any]) -> str:
        """string, number, bool, list(string), map(string)... or any (an opaque or object type)."""
        options = [
            option
            for option in type_.get("union", {}).get("types", [type_])
            if option.get("fqn") != "cdktn.IResolvable"
        ]
        if len(options) != 1:
            return "any"
        option = options[0]
        if "primitive" in option:
            return {"boolean": "bool"}.get(option["primitive"], option["primitive"])
        if "collection" in option:
            kind = {"array": "list", "map": "map"}[option["collection"]["kind"]]
            return f"{kind}({Assembly._type(option['collection']['elementtype'])})"
        if option.get("fqn") == "cdktn.StringMap":
            return "map(string)"
        return "any"

    @staticmethod
    def _values(text: str) -> list[str] | None:
        """The documented set of an enumerated argument, when its docs give one (and only one)."""
        found = {tuple(json.loads(f"[{match}]")) for match in _POSSIBLE.findall(text)}
        return list(found.pop()) if len(found) == 1 else None

    def block(self, fqn: str, seen: tuple[str, ...] = ()) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        blocks: dict[str, Any] = {}
        for prop in self.types[fqn].get("properties", []):
            docs = prop.get("docs", {})
            summary = docs.get("summary", "")
            text = f"{summary} {docs.get('remarks', '')}"
            anchor = _ANCHOR.search(text)
            if anchor is None:
                self.unnamed += 1
            name = anchor.group(1) if anchor else _snake(prop["name"])
            required = not prop.get("optional", False)
            struct = self._struct(prop["type"])
            if struct is not None and summary.endswith(" block.") and struct[0] not in seen:
                nested: dict[str, Any] = {}
                if required:
                    nested["required"] = True
                if struct[1]:
                    nested["max_items"] = 1
                nested.update(self.block(struct[0], (*seen, struct[0])))
                blocks[name] = nested
                continue
            attribute: dict[str, Any] = {"type": self._type(prop["type"]) if struct is None else "any"}
            if required:
                attribute["required"] = True
            values = self._values(text) if attribute["type"] in ("string", "list(string)") else None
            if values:
                attribute["values"] = values
            attributes[name] = attribute
        result: dict[str, Any] = {}
        if attributes:
            result["attributes"] = dict(sorted(attributes.items()))
        if blocks:
            result["blocks"] = dict(sorted(blocks.items()))
        return result


def derive(assembly: dict[str, Any]) -> dict[str, Any]:
    """{"source", "version", "provider", "resources", "data_sources", "ephemeral_resources"} of one assembly."""
    jsii = Assembly(assembly)
    provider: dict[str, Any] = {"resources": {}, "data_sources": {}, "ephemeral_resources": {}}
    for type_ in jsii.types.values():
        kind = _KINDS.get(type_.get("base", ""))
        if kind is None:
            continue
        named = _NAMED.search(type_.get("docs", {}).get("summary", ""))
        if named is None:
            raise SystemExit(f"{type_['fqn']}: no registry link in its docs summary")
        config = next(param for param in type_["initializer"]["parameters"] if param["name"] == "config")
        schema = jsii.block(config["type"]["fqn"])
        for key in ("source", "version"):
            if provider.setdefault(key, named.group(key)) != named.group(key):
                raise SystemExit(f"{type_['fqn']}: {named.group(key)}, not {provider[key]} like the rest")
        if kind == "provider":
            provider["provider"] = schema
        else:
            provider[kind][named.group("name")] = schema
    if "provider" not in provider or not provider["resources"]:
        raise SystemExit("the assembly has no provider class or no resources: not a provider's bindings?")
    for kind in ("resources", "data_sources", "ephemeral_resources"):
        provider[kind] = dict(sorted(provider[kind].items()))
    provider["unnamed_arguments"] = jsii.unnamed
    return provider


def read_wheel(path: Path) -> tuple[str, dict[str, Any]]:
    """(bindings "name==version", the jsii assembly) of one bindings wheel."""
    with zipfile.ZipFile(path) as wheel:
        members = [name for name in wheel.namelist() if re.search(r"/_jsii/[^/]+\.jsii\.tgz$", name)]
        if len(members) != 1:
            raise SystemExit(f"{path.name}: expected one _jsii/*.jsii.tgz, found {members}")
        metadata = next(name for name in wheel.namelist() if name.endswith(".dist-info/METADATA"))
        fields = dict(
            line.split(": ", 1) for line in wheel.read(metadata).decode().splitlines() if line[:5] in ("Name:", "Versi")
        )
        bindings = f"{fields['Name'].replace('_', '-')}=={fields['Version']}"
        with tarfile.open(fileobj=io.BytesIO(wheel.read(members[0])), mode="r:gz") as archive:
            handle = archive.extractfile("package/.jsii")
            if handle is None:
                raise SystemExit(f"{path.name}: no package/.jsii in {members[0]}")
            return bindings, json.load(handle)


def pinned_wheels(requirements: Path, folder: Path) -> list[Path]:
    """The wheel of each ``name==version`` pin in ``requirements``, in ``folder`` (older downloads are ignored)."""
    pins = re.findall(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)", requirements.read_text(), re.MULTILINE)
    if not pins:
        raise SystemExit(f"{requirements} pins nothing (name==version)")
    wheels = []
    for name, version in pins:
        found = sorted(folder.glob(f"{re.sub(r'[-_.]+', '_', name).lower()}-{version}-*.whl"))
        if not found:
            raise SystemExit(f"no wheel of {name}=={version} in {folder}: run make provider-schema")
        wheels.append(found[0])
    return wheels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requirements", type=Path, required=True, help="the pins (requirements-provider-schema.txt)")
    parser.add_argument("--wheels", type=Path, required=True, help="the folder pip downloaded them to")
    parser.add_argument("--out", type=Path, required=True, help="the compact schema (JSON)")
    args = parser.parse_args(argv)
    wheels = pinned_wheels(args.requirements, args.wheels)
    providers: dict[str, Any] = {}
    for path in wheels:
        bindings, assembly = read_wheel(path)
        provider = derive(assembly)
        del assembly
        source = provider.pop("source")
        if source in providers:
            raise SystemExit(f"two bindings of {source}: {providers[source]['bindings']} and {bindings}")
        providers[source] = {"bindings": bindings, **provider}
        print(
            f"{source} {provider['version']} ({bindings}): {len(provider['resources'])} resources, "
            f"{len(provider['data_sources'])} data sources, {provider['unnamed_arguments']} arguments named "
            "from camelCase (no registry anchor)",
            file=sys.stderr,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    partial = args.out.with_suffix(".partial")
    partial.write_text(json.dumps({"format": FORMAT, "providers": providers}, separators=(",", ":"), sort_keys=True))
    partial.replace(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
