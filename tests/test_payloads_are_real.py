"""The malicious fixtures are not strawmen: loading the runnable ones with plain
pickle really fires the (harmless) payload. Run in a subprocess in a temp dir."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import FIXTURES, MARKER, manifest

RUNNABLE = sorted(k for k, v in manifest().items() if v["runnable"])


@pytest.mark.parametrize("name", RUNNABLE)
def test_loading_fires_the_payload(name: str, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    shutil.copy(FIXTURES / name, sample)
    loader = "import pickle\ntry:\n    pickle.load(open('sample', 'rb'))\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", loader], cwd=tmp_path, timeout=60, check=False, capture_output=True)
    assert (tmp_path / MARKER).exists(), f"{name}: loading did not create the marker"


def test_there_are_runnable_samples() -> None:
    assert len(RUNNABLE) >= 20
