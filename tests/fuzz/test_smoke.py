"""A few seconds of every fuzz target (the long runs are bench/fuzz.py):
seeds and a fixed set of mutants must end in findings, never in an internal
exception, a slow input or a text report that carries control characters."""

from __future__ import annotations

import pytest

from .campaign import fuzz
from .targets import targets


@pytest.mark.parametrize("name", sorted(targets()))
def test_fuzz_target_smoke(name: str) -> None:
    target = targets()[name]
    seeds = target.seeds()
    assert seeds, f"target {name} has no seeds"
    stats = fuzz(target, executions=len(seeds) + target.smoke, seed=7)
    assert stats.executions == len(seeds) + target.smoke
    failures = [f"{f.signature}: {f.message}" for f in stats.failures.values()]
    assert not failures, failures
    assert not stats.slow, [f"{seconds:.1f} s for {len(data)} bytes" for seconds, data in stats.slow]
