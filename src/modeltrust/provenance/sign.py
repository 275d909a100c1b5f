"""Sign a model folder in the OpenSSF model signing format, from one parallel
hashing pass. The result verifies with the upstream `model_signing` tool."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .manifest import DEFAULT_SIGNATURE, GIT_PATHS, HF_CACHE_DIR, FileManifest, build_manifest
from .methods import SignWith


@dataclass(frozen=True, slots=True)
class SignResult:
    signature: Path
    manifest: FileManifest


def sign_model(
    root: Path,
    method: SignWith,
    output: Path | None = None,
    ignore: tuple[str, ...] = (),
    known: Mapping[str, str] | None = None,
) -> SignResult:
    """Hash every file under `root` (except git files, the signature itself,
    huggingface_hub's bookkeeping and `ignore`) and sign the manifest. The
    ignored paths are recorded in the signature, as upstream does."""
    from .backend import preload, sign_manifest

    loading = preload()

    signature = output if output is not None else root / DEFAULT_SIGNATURE
    recorded = list(ignore) + list(GIT_PATHS)
    with contextlib.suppress(ValueError):  # unless it is written outside the model folder
        recorded.append(signature.resolve().relative_to(root.resolve()).as_posix())
    if (root / HF_CACHE_DIR).is_dir():
        recorded.append(HF_CACHE_DIR)
    manifest = build_manifest(root, tuple(dict.fromkeys(recorded)), known)
    loading.join()
    sign_manifest(manifest, method, signature)
    return SignResult(signature, manifest)
