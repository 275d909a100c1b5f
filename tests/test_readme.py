"""The README shows what modeltrust really prints (see tests/readme_examples.py)."""

from __future__ import annotations

from .readme_examples import GENERATORS, README, block_names, render


def test_every_generated_block_is_known_and_present() -> None:
    names = block_names(README.read_text(encoding="utf-8"))
    assert sorted(names) == sorted(GENERATORS)


def test_examples_match_a_real_run() -> None:
    current = README.read_text(encoding="utf-8")
    assert render(current) == current, (
        "README examples are stale: run `PYTHONPATH=src python tests/readme_examples.py --update`"
    )
