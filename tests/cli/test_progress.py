"""The progress a long scan shows: files done of all, bytes, time left."""

from __future__ import annotations

import shutil
from pathlib import Path

from modeltrust.config import ScanConfig
from modeltrust.engine import Progress, scan

from ..conftest import FIXTURES


def test_progress_counts_files_and_bytes(tmp_path: Path) -> None:
    for name in ("array.npy", "arrays.npz", "config.json"):
        shutil.copy(FIXTURES / "benign" / name, tmp_path / name)
    steps: list[Progress] = []
    scan(ScanConfig(targets=(str(tmp_path),)), progress=steps.append)
    sizes = sorted(p.stat().st_size for p in tmp_path.iterdir())
    assert [s.files_done for s in steps] == [0, 1, 2, 3]
    assert {s.total_files for s in steps} == {3} and {s.total_bytes for s in steps} == {sum(sizes)}
    assert [s.bytes_done for s in steps] == [0, steps[0].size, steps[0].size + steps[1].size, sum(sizes)]
    assert steps[-1].path == "" and all(s.path for s in steps[:-1])
