"""The fuzz loop shared by the smoke test and bench/fuzz.py: mutate, run,
classify. Inputs that reach a new set of findings join the corpus (cheap
feedback without coverage instrumentation); failures are grouped by a
signature (exception type and the innermost modeltrust frame)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

from .mutate import Mutator
from .targets import InternalError, Target

SLOW_SECONDS = 5.0
"""An input is slow past this much CPU time (wall time on a shared machine
running the campaign under `nice` measures the neighbours too)."""
MAX_CORPUS = 2000
MAX_KEPT = 64 << 10
"""Mutants join the corpus only when small (memory stays bounded)."""


@dataclass
class Failure:
    signature: str
    message: str
    data: bytes
    count: int = 1


@dataclass
class Stats:
    target: str
    executions: int = 0
    failures: dict[str, Failure] = field(default_factory=dict)
    slow: list[tuple[float, bytes]] = field(default_factory=list)
    max_seconds: float = 0.0
    max_cpu_seconds: float = 0.0
    corpus: int = 0

    @property
    def failure_count(self) -> int:
        return sum(f.count for f in self.failures.values())


def signature(exc: BaseException) -> str:
    """Exception type + where in modeltrust it was raised (file:function)."""
    if isinstance(exc, InternalError):
        return f"scan-error {str(exc).split(':', 2)[:2]}"
    where = "?"
    for frame in traceback.extract_tb(exc.__traceback__):
        if "modeltrust" in frame.filename and "/tests/" not in frame.filename:
            where = f"{frame.filename.rsplit('modeltrust/', 1)[-1]}:{frame.name}"
    return f"{type(exc).__name__} at {where}"


def outcome_key(findings: list[object]) -> frozenset[str]:
    return frozenset(getattr(f, "rule_id", "?") + "/" + getattr(f, "subject", "")[:20] for f in findings)


def run_input(target: Target, data: bytes, stats: Stats) -> frozenset[str] | None:
    """Run one input; record a failure or a slow input. Returns the outcome key."""
    started = time.perf_counter()
    started_cpu = time.process_time()
    key: frozenset[str] | None = None
    try:
        key = outcome_key(list(target.run(data)))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - every failure is what we are looking for
        sig = signature(exc)
        known = stats.failures.get(sig)
        if known is None:
            stats.failures[sig] = Failure(sig, f"{type(exc).__name__}: {str(exc)[:300]}", data)
        else:
            known.count += 1
            if len(data) < len(known.data):
                known.data = data  # keep the smallest reproducer
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - started_cpu
    stats.executions += 1
    stats.max_seconds = max(stats.max_seconds, elapsed)
    stats.max_cpu_seconds = max(stats.max_cpu_seconds, cpu)
    if cpu > SLOW_SECONDS:
        stats.slow.append((cpu, data))
    return key


def fuzz(
    target: Target,
    *,
    seconds: float | None = None,
    executions: int | None = None,
    seed: int = 0,
    before: Callable[[bytes], None] | None = None,
    after: Callable[[bytes, float], None] | None = None,
    stats: Stats | None = None,
) -> Stats:
    """Run seeds then mutants until the time or execution budget is spent
    (into `stats` if given, so a caller can read them while it runs)."""
    stats = stats if stats is not None else Stats(target.name)
    corpus = [s for s in target.seeds() if len(s) < (4 << 20)] or [b""]
    mutator = Mutator(seed, target.tokens)
    seen: set[frozenset[str]] = set()
    deadline = time.monotonic() + seconds if seconds is not None else None
    queue = list(corpus)
    while True:
        if deadline is not None and time.monotonic() >= deadline:
            break
        if executions is not None and stats.executions >= executions:
            break
        data = queue.pop() if queue else mutator.mutate(mutator.rng.choice(corpus), corpus)
        if before is not None:
            before(data)
        started = time.perf_counter()
        key = run_input(target, data, stats)
        if after is not None:
            after(data, time.perf_counter() - started)
        if key is not None and key not in seen and len(corpus) < MAX_CORPUS and len(data) <= MAX_KEPT:
            seen.add(key)
            corpus.append(data)
    stats.corpus = len(corpus)
    return stats
