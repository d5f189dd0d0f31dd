"""The README stays true to the code: every variable the code reads, the version, the links, the commands."""

import re
import tomllib

import pytest
from pydantic import AliasChoices

from atlas import config
from atlas.cli.app import environment_variables
from stack import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
SETTINGS = (config.WorkerSettings, config.RetrievalSettings, config.CliSettings)


def variables() -> set[str]:
    """Every variable the settings read, and every variable an option of the atlas command falls back to."""
    names = environment_variables()
    for settings_class in SETTINGS:
        for field, info in settings_class.model_fields.items():
            alias = info.validation_alias
            names.add(str(alias.choices[0]) if isinstance(alias, AliasChoices) else f"ATLAS_{field.upper()}")
    return names


def test_every_variable_the_code_reads_is_in_the_readme_and_env_example():
    env_example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert sorted(n for n in variables() if f"`{n}`" not in README) == []
    assert sorted(n for n in variables() if n not in env_example) == []


def test_version_badge_is_the_package_version():
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert f"badge/version-{version}-" in README


@pytest.mark.parametrize("target", sorted(set(re.findall(r"\]\(((?:docs|shared|terraform|\.env)[^)#]*)\)", README))))
def test_readme_links_point_to_files_that_exist(target):
    assert (REPO / target).exists(), target


def test_every_make_command_the_readme_gives_is_a_target_of_the_makefile():
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))
    given = set(re.findall(r"\bmake ([a-z][a-z-]*)", README))
    assert {"demo", "test", "up", "down"} <= given
    assert sorted(given - targets) == []


def _written_by_the_examples() -> list[str]:
    """The paths the README's commands write: pages, backups, fine-tuning files."""
    blocks = "\n".join(re.findall(r"```bash\n(.*?)```", README, flags=re.S))
    paths = re.findall(r"--html (\S+)|--out (\S+)|atlas backup (\S+)", blocks)
    return sorted({next(p for p in found if p) for found in paths})


def test_what_the_readme_examples_write_lands_where_git_ignores_it():
    import subprocess

    written = _written_by_the_examples()
    assert {"out/design.html", "out/backup", "out/finetune.jsonl"} <= set(written)
    for path in written:
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{path}: git would offer to commit it; write it under out/ (git-ignored)"
