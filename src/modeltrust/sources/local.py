"""Local files and folders as scan inputs."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SourceError

_SKIP_DIRS = {".git", ".hg", ".svn", "__pycache__"}


class LocalFile(NamedTuple):
    display: str
    path: Path
    size: int
    sha256: str | None = None
    """Known already (verified against the Hub while fetching)."""
    opener: Callable[[], Any] | None = None
    """Opens a non-local reader (HTTP ranges); None: open `path`."""


def expand_targets(targets: tuple[str, ...]) -> list[LocalFile]:
    """Files under each local target, sorted; directories recurse, symlinked
    files are followed (the Hugging Face cache links snapshots to blobs)."""
    files: list[LocalFile] = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            raise SourceError(f"{target}: no such file or directory")
        if path.is_file():
            files.append(LocalFile(target, path, path.stat().st_size))
            continue
        for child in _walk_dir(path):
            display = os.path.join(target, str(child.relative_to(path)))
            files.append(LocalFile(display, child, child.stat().st_size))
    return files


def _walk_dir(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        # huggingface_hub keeps download metadata in <local_dir>/.cache/huggingface.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS and not (d == ".cache" and (here / d / "huggingface").is_dir())
        )
        for name in sorted(filenames):
            child = Path(dirpath) / name
            if child.is_file():
                yield child
