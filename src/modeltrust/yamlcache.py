"""Our YAML data files (rules, policies), parsed with a safe loader and cached
as JSON keyed by content: importing and running PyYAML costs more than a
typical scan, and the files rarely change."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class YamlFileError(Exception):
    """The file is not UTF-8, not YAML, or not a mapping."""


def load_mapping(path: Path, raw: bytes, cache_dir: Path | None) -> Mapping[str, Any]:
    """The file's parsed YAML, from a JSON cache keyed by the file's content
    when one is given (importing and running PyYAML costs more than a scan)."""
    cached = _read_cache(cache_dir, raw)
    if cached is not None:
        return cached
    data = _parse_yaml(path, raw)
    _write_cache(cache_dir, raw, data)
    return data


def _cache_file(cache_dir: Path, raw: bytes) -> Path:
    return cache_dir / f"rules-{hashlib.sha256(raw).hexdigest()[:32]}.json"


def _read_cache(cache_dir: Path | None, raw: bytes) -> Mapping[str, Any] | None:
    if cache_dir is None:
        return None
    import json

    try:
        data = json.loads(_cache_file(cache_dir, raw).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_cache(cache_dir: Path | None, raw: bytes, data: Mapping[str, Any]) -> None:
    if cache_dir is None:
        return
    import json
    import os

    target = _cache_file(cache_dir, raw)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        temp = target.with_suffix(f".{os.getpid()}.tmp")
        temp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(temp, target)
    except (OSError, TypeError, ValueError):
        pass  # a cache is an optimisation only


def _parse_yaml(path: Path, raw: bytes) -> Mapping[str, Any]:
    import yaml

    # The C build of the *safe* loader when present: same semantics, 10x faster.
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(raw.decode("utf-8"), Loader=loader)  # a safe loader (see above)
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path} is not UTF-8 text") from exc
    except yaml.YAMLError as exc:
        raise YamlFileError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise YamlFileError(f"{path} must be a mapping with a 'kind' key")
    return data
