"""--include/--exclude: globs over a file's path inside its target (a repo path
for Hub targets, the path below the folder for local ones)."""

from __future__ import annotations

import fnmatch


def matches_selection(path: str, include: tuple[str, ...], exclude: tuple[str, ...]) -> bool:
    """True when `path` matches an include glob (or there are none) and no exclude glob."""
    if include and not any(fnmatch.fnmatchcase(path, pattern) for pattern in include):
        return False
    return not any(fnmatch.fnmatchcase(path, pattern) for pattern in exclude)
