"""Run a fleet: targets -> executor -> one JSON line per target, as each ends,
appended to DIR/results.jsonl, and a summary. Lines are written as results
arrive, so a killed run loses nothing it finished; the store makes a rerun skip
what was vetted."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .executors import run_local, run_ray
from .work import FleetJob, FleetSettings

if TYPE_CHECKING:
    from ..sources.hub import HubTarget, Revision

LineCallback = Callable[[dict[str, Any], int, int], None]
"""Called with each result line, how many are done and how many there are."""


@dataclass
class FleetSummary:
    targets: int = 0
    vetted: int = 0
    skipped: int = 0
    errors: int = 0
    passed: int = 0
    failed: int = 0
    files: int = 0
    files_from_store: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    failing_targets: list[str] = field(default_factory=list)
    error_targets: list[tuple[str, str]] = field(default_factory=list)

    def add(self, line: dict[str, Any]) -> None:
        status = line.get("status")
        if status == "error":
            self.errors += 1
            self.error_targets.append((str(line["target"]), str(line.get("error", ""))))
            return
        self.skipped += status == "skipped"
        self.vetted += status == "vetted"
        if line.get("verdict") == "fail":
            self.failed += 1
            self.failing_targets.append(str(line["target"]))
        else:
            self.passed += 1
        if status == "vetted":
            self.files += int(line.get("files", 0))
            self.files_from_store += int(line.get("files_from_store", 0))
            self.bytes_read += int(line.get("bytes_read", 0))


def run_fleet(
    targets: list[str],
    settings: FleetSettings,
    out_dir: Path,
    *,
    executor: str = "local",
    workers: int = 1,
    address: str | None = None,
    on_line: LineCallback | None = None,
) -> FleetSummary:
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = FleetSummary(targets=len(targets))
    started = time.perf_counter()
    vetted, remaining = already_vetted(targets, settings)
    results = itertools.chain(vetted, _results(remaining, settings, executor, workers, address))
    with open(out_dir / "results.jsonl", "a", encoding="utf-8") as sink:
        for done, line in enumerate(results, start=1):
            sink.write(json.dumps(line, sort_keys=True) + "\n")
            sink.flush()
            summary.add(line)
            if on_line is not None:
                on_line(line, done, len(targets))
    summary.seconds = time.perf_counter() - started
    return summary


def already_vetted(
    targets: list[str], settings: FleetSettings
) -> tuple[list[dict[str, Any]], list[FleetJob]]:
    """Targets whose commit was vetted under the same rules and policy, found
    before any work is dispatched: one Hub call each for an unpinned revision (to
    learn its commit), made concurrently, and a store lookup. The rest go to the
    executor as jobs that carry the Hub's answer, so no target is resolved twice."""
    from concurrent.futures import ThreadPoolExecutor

    from ..sources.hub import HubSource, parse_target
    from .store import ResultStore
    from .work import hub_settings, skipped_line

    parsed = {t: parse_target(t, assume_hub=not Path(t).exists()) for t in targets}
    unpinned = [t for t, p in parsed.items() if p is not None and not p.pinned]
    source = HubSource(hub_settings(settings))

    def revision_of(target: str) -> Revision | None:
        found = parsed[target]
        assert found is not None
        try:
            return source.revision(found)
        except Exception:  # noqa: BLE001 - the worker meets and records the same error
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        revisions = dict(zip(unpinned, pool.map(revision_of, unpinned), strict=True))
    store = ResultStore(settings.store, settings.key)
    vetted, remaining = [], []
    for target in targets:
        revision = revisions.get(target)
        uri = _at_commit(parsed[target], revision)
        done = store.target_line(uri) if uri is not None else None
        if done is not None:
            vetted.append(skipped_line(done))
        else:
            remaining.append(FleetJob(target, revision))
    return vetted, remaining


def _at_commit(found: HubTarget | None, revision: Revision | None) -> str | None:
    """The target named at its commit, where that is known before dispatch."""
    if found is None:
        return None
    if found.pinned:
        return found.uri()
    return found.uri(revision.commit) if revision is not None else None


def _results(
    jobs: list[FleetJob], settings: FleetSettings, executor: str, workers: int, address: str | None
) -> Iterator[dict[str, Any]]:
    if executor == "ray":
        return run_ray(jobs, settings, workers, address)
    return run_local(jobs, settings, workers)
