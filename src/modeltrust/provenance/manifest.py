"""The manifest a model signature covers: every file under the model folder
(relative POSIX path -> sha256), minus the ignored paths, as the OpenSSF
model signing format ("files" serialization, sha256) defines it.

Digests come from one parallel pass that the caller can seed with digests it
already trusts (a verified Hub download), so signing, verifying, attesting
and the BOM never hash the same bytes twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..digests import FileDigest, hash_files
from ..errors import SourceError

DEFAULT_SIGNATURE = "model.sig"
"""Where the upstream tool writes and looks for the signature inside the model folder."""
GIT_PATHS = (".git", ".gitattributes", ".github", ".gitignore")
"""Ignored by default, as the upstream tool does."""
HF_CACHE_DIR = ".cache/huggingface"
"""huggingface_hub's download bookkeeping inside a --local-dir folder."""


def is_ignored(relative: str, ignore: Iterable[str]) -> bool:
    """`relative` is an ignored path or lies under one (model_signing's rule)."""
    path = PurePosixPath(relative)
    return any(path == PurePosixPath(i) or PurePosixPath(i) in path.parents for i in ignore)


def _walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        here = Path(dirpath)
        for name in sorted(filenames):
            path = here / name
            if path.is_file():  # follows file symlinks (the Hub cache links snapshots to blobs)
                yield path.relative_to(root).as_posix()


@dataclass(frozen=True, slots=True)
class FileManifest:
    """What a signature covers: relative path -> sha256, and what it ignores."""

    name: str
    files: Mapping[str, str]
    ignored: tuple[str, ...]
    sizes: Mapping[str, int]


def model_files(root: Path, ignore: Iterable[str]) -> list[str]:
    """Relative paths of the files a signature over `root` covers."""
    if not root.is_dir():
        raise SourceError(f"{root}: not a folder", hint="signatures cover a model folder")
    ignore = tuple(ignore)
    return [rel for rel in _walk(root) if not is_ignored(rel, ignore)]


def build_manifest(
    root: Path,
    ignore: Iterable[str],
    known: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> FileManifest:
    """Hash every covered file under `root` once; `known` maps relative paths
    to sha256 digests verified elsewhere (reused when the size agrees)."""
    ignore = tuple(ignore)
    relatives = model_files(root, ignore)
    seeded = {}
    for rel in relatives:
        if known and rel in known:  # verified earlier in this run (a Hub download)
            seeded[root / rel] = FileDigest(known[rel], (root / rel).stat().st_size)
    digests = hash_files([root / rel for rel in relatives], workers=workers, known=seeded)
    return FileManifest(
        name=root.resolve().name,
        files={rel: digests[root / rel].sha256 for rel in relatives},
        ignored=ignore,
        sizes={rel: digests[root / rel].size for rel in relatives},
    )


@dataclass(frozen=True, slots=True)
class ManifestDiff:
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]

    @property
    def clean(self) -> bool:
        return not (self.added or self.removed or self.changed)


def diff(signed: Mapping[str, str], actual: Mapping[str, str]) -> ManifestDiff:
    """Files present now but not signed, signed but gone, and with other bytes."""
    return ManifestDiff(
        added=tuple(sorted(set(actual) - set(signed))),
        removed=tuple(sorted(set(signed) - set(actual))),
        changed=tuple(sorted(p for p in set(signed) & set(actual) if signed[p] != actual[p])),
    )
