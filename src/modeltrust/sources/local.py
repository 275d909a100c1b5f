"""Local files and folders as scan inputs.

Folders are walked as loaders see them: symlinked files are followed (the
Hugging Face cache links snapshots to blobs) and so are symlinked folders
(a `checkpoint-500/` linked into a model folder is read by whoever loads it),
each real folder once, so link cycles end. `__pycache__` is walked because
Python imports compiled modules from it. Entries that cannot be read as files
(FIFOs, sockets, devices, dangling links) are listed with an opener that fails,
so the engine reports them instead of passing over them in silence.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import SourceError

_SKIP_DIRS = {".git", ".hg", ".svn"}
MAX_ENTRIES = 500_000
"""Files per folder target: a link to / must not turn a scan into a disk walk."""


class LocalFile(NamedTuple):
    display: str
    path: Path
    size: int
    sha256: str | None = None
    """Known already (verified against the Hub while fetching)."""
    opener: Callable[[], Any] | None = None
    """Opens a non-local reader (HTTP ranges); None: open `path`."""


def expand_targets(targets: tuple[str, ...]) -> list[LocalFile]:
    """Files under each local target, sorted; directories recurse. A target
    that does not exist, is not a regular file or folder, or holds nothing to
    scan is an error (exit 2), never a clean result."""
    files: list[LocalFile] = []
    for target in targets:
        path = Path(target)
        if not path.exists():
            raise SourceError(f"{target}: no such file or directory")
        if path.is_file():
            files.append(LocalFile(target, path, path.stat().st_size))
            continue
        if not path.is_dir():
            kind = _kind(path)
            raise SourceError(f"{target}: {kind}, not a file or folder; nothing to scan")
        found: list[LocalFile] = []
        for child in _walk_dir(path):
            if len(found) >= MAX_ENTRIES:
                raise SourceError(
                    f"{target}: more than {MAX_ENTRIES} files (a symlinked folder may lead far outside it)"
                )
            found.append(_entry(target, path, child))
        if not found:
            raise SourceError(f"{target}: empty folder; nothing to scan")
        files.extend(found)
    return files


def _entry(target: str, root: Path, child: Path) -> LocalFile:
    display = os.path.join(target, str(child.relative_to(root)))
    if child.is_file():
        return LocalFile(display, child, child.stat().st_size)
    return LocalFile(display, child, 0, opener=_refuse(child))


def _refuse(path: Path) -> Callable[[], Any]:
    kind = _kind(path)

    def opener() -> Any:
        raise OSError(errno.EINVAL, f"{kind}, not a regular file; it was not read")

    return opener


def _kind(path: Path) -> str:
    try:
        mode = path.stat().st_mode
    except OSError:
        return "a dangling symlink" if path.is_symlink() else "unreadable"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def _walk_dir(root: Path) -> Iterator[Path]:
    """Every non-folder entry below root, symlinked folders included, each
    real folder visited once (a link back to an ancestor ends there)."""
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        real = os.path.realpath(here)
        if real in seen:
            dirnames[:] = []
            continue
        seen.add(real)
        # huggingface_hub keeps download metadata in <local_dir>/.cache/huggingface.
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in _SKIP_DIRS
            and not (d == ".cache" and (here / d / "huggingface").is_dir())
            and os.path.realpath(here / d) not in seen
        )
        for name in sorted(filenames):
            yield here / name
