"""Datasets among the targets, summarised for the BOM.

The facts come from metadata only: each Parquet/Arrow file's footer or schema
(columns, row counts, collected by the scanners as `DataFile`s), a
`datasets.save_to_disk` folder's `dataset_dict.json`, `state.json` and
`dataset_info.json`, and a dataset card's YAML front matter (licence,
pretty_name, `dataset_info` splits). Every file is read bounded and parsed as
JSON or with `yaml.safe_load`; nothing is executed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from .findings import DataColumn, DataFile, DatasetSummary, DataSplit

if TYPE_CHECKING:
    from .sources.hub import Snapshot

MAX_METADATA_BYTES = 4 << 20
CARD_KEYS = ("pretty_name", "task_categories", "task_ids", "language", "size_categories", "tags")


HubInfo = tuple[str, dict[str, object]]
"""A fetched hub repo: its URI at the scanned commit, and its card's front matter."""


def summarise(
    targets: tuple[str, ...], files: list[DataFile], hubs: dict[str, HubInfo] | None = None
) -> tuple[DatasetSummary, ...]:
    """One summary per target that holds data files; `hubs` maps a hub repo
    (`hf://datasets/org/name`) to what `hub_info` found (local targets read README.md).
    A hub summary's root is the repo URI at its commit, as in the report's sources."""
    summaries = []
    for target in targets:
        base = _display_base(target)
        mine = tuple(f for f in files if f.path == target or f.path.startswith((base + "/", base + "@")))
        if not mine:
            continue
        hub = (hubs or {}).get(base)
        root = Path(target)
        folder = hub is None and root.is_dir()
        hub_uri, hub_card = hub if hub is not None else (target, {})
        card = hub_card or (_front_matter(root / "README.md") if folder else {})
        info = (_json(root / "dataset_info.json") or _first_info(root)) if folder else {}
        splits = _saved_splits(root, mine) if folder else ()
        if not splits:
            splits = _card_splits(card)
        saved = folder and ((root / "dataset_dict.json").is_file() or (root / "state.json").is_file())
        summaries.append(
            DatasetSummary(
                root=hub_uri,
                kind="hub" if hub is not None else "save_to_disk" if saved else "files",
                name=_text(card.get("pretty_name") or info.get("dataset_name") or info.get("config_name")),
                license=_license(card.get("license") or info.get("license")),
                description=_text(info.get("description"))[:500],
                features=_features(mine),
                splits=splits,
                files=mine,
                card=tuple((k, _text(card[k])) for k in CARD_KEYS if k in card),
            )
        )
    return tuple(summaries)


def hub_info(snapshots: list[Snapshot]) -> dict[str, HubInfo]:
    """Each fetched hub repo's URI at its commit and card front matter, by repo URI."""
    found: dict[str, HubInfo] = {}
    for snapshot in snapshots:
        card = _front_matter(snapshot.local_dir / "README.md") if snapshot.local_dir is not None else {}
        if not card and snapshot.metadata.get("license"):
            card = {"license": snapshot.metadata["license"]}
        found[snapshot.target.uri().split("@", 1)[0]] = (snapshot.target.uri(snapshot.commit), card)
    return found


def _display_base(target: str) -> str:
    """`hf://datasets/org/name@rev` (or the same repo as a Hub URL or a bare
    `org/name`) -> `hf://datasets/org/name`, the repo as display paths name it;
    a local path as it is."""
    if not os.path.exists(target):
        from .sources.hub import parse_target

        hub = parse_target(target, assume_hub=True)
        if hub is not None:
            return hub.uri().split("@", 1)[0]
    return target.rstrip("/")


def _features(files: tuple[DataFile, ...]) -> tuple[DataColumn, ...]:
    return next((f.columns for f in files if f.columns), ())


def _saved_splits(root: Path, files: tuple[DataFile, ...]) -> tuple[DataSplit, ...]:
    """A DatasetDict folder lists its splits; each split folder holds its Arrow files."""
    names = _json(root / "dataset_dict.json").get("splits")
    if not isinstance(names, list):
        return ()
    splits = []
    for name in names[:256]:
        prefix = f"{str(root).rstrip('/')}/{name}/"
        in_split = [f for f in files if f.path.startswith(prefix)]
        counts = [f.rows for f in in_split if f.rows is not None]
        rows = sum(counts) if counts and len(counts) == len(in_split) else None
        splits.append(DataSplit(str(name), rows, None, tuple(f.path for f in in_split)))
    return tuple(splits)


def _card_splits(card: dict[str, object]) -> tuple[DataSplit, ...]:
    """`dataset_info: {splits: [{name, num_examples, num_bytes}]}` (one config or a list)."""
    infos = card.get("dataset_info")
    result = []
    for info in infos if isinstance(infos, list) else [infos]:
        splits = info.get("splits") if isinstance(info, dict) else None
        for split in splits if isinstance(splits, list) else []:
            if isinstance(split, dict) and "name" in split:
                rows, size = split.get("num_examples"), split.get("num_bytes")
                result.append(
                    DataSplit(
                        _text(split["name"]),
                        rows if isinstance(rows, int) else None,
                        size if isinstance(size, int) else None,
                    )
                )
    return tuple(result)


def _first_info(root: Path) -> dict[str, object]:
    if not root.is_dir():
        return {}
    for path in sorted(root.glob("*/dataset_info.json"))[:1]:
        return _json(path)
    return {}


def _json(path: Path) -> dict[str, object]:
    try:
        if not path.is_file() or path.stat().st_size > MAX_METADATA_BYTES:
            return {}
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _front_matter(path: Path) -> dict[str, object]:
    import yaml

    try:
        if not path.is_file() or path.stat().st_size > MAX_METADATA_BYTES:
            return {}
        text = path.read_text("utf-8", "replace")
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    try:
        data = yaml.safe_load(text[3:end] if end > 0 else "")
    except (yaml.YAMLError, RecursionError):
        return {}
    return data if isinstance(data, dict) else {}


def _license(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(_text(v) for v in value[:8])
    return _text(value)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value[:32])
    return str(value)
