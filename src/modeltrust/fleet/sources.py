"""Where a fleet's targets come from: a file (one per line) or a Hub query."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError, SourceError

SORT_KEYS = ("created_at", "downloads", "last_modified", "likes", "trending_score")


@dataclass(frozen=True, slots=True)
class HubQuery:
    """HfApi.list_models / list_datasets arguments."""

    datasets: bool = False
    author: str | None = None
    search: str | None = None
    filter: tuple[str, ...] = ()
    sort: str | None = None
    limit: int | None = None


def targets_from_file(path: str) -> list[str]:
    """One target per line; blank lines and lines starting with `#` are skipped;
    a target named twice is vetted once."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    lines = (line.strip() for line in text.splitlines())
    return list(dict.fromkeys(line for line in lines if line and not line.startswith("#")))


def targets_from_query(query: HubQuery, endpoint: str | None, token: str | None) -> list[str]:
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    lister: Any = api.list_datasets if query.datasets else api.list_models
    try:
        found = lister(
            author=query.author,
            search=query.search,
            filter=list(query.filter) or None,
            sort=query.sort,
            limit=query.limit,
        )
        names = [item.id for item in found]
    except Exception as exc:  # noqa: BLE001 - the client raises many types; one line for the user
        raise SourceError(f"the Hub listing failed: {type(exc).__name__}", hint="check HF_ENDPOINT") from None
    prefix = "hf://datasets/" if query.datasets else "hf://"
    return [prefix + name for name in names]
