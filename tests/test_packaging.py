"""The wheel users install carries the rules (they live outside src/)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import ROOT


def test_wheel_ships_the_rules(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    env = {**os.environ, "MODELTRUST_PURE_PYTHON": "1"}  # no compile: a quick build
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        env=env,
        timeout=300,
        capture_output=True,
    )
    [wheel] = tmp_path.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = {
        "modeltrust/rules/" + p.relative_to(ROOT / "rules").as_posix()
        for p in (ROOT / "rules").rglob("*.yaml")
    }
    assert expected and expected <= names
    src = ROOT / "src"
    shipped = {
        p.relative_to(src).as_posix()
        for p in (src / "modeltrust").rglob("*")
        if p.is_file() and p.suffix in (".py", ".json", ".yaml") and "__pycache__" not in p.parts
    }
    assert "modeltrust/cli/main.py" in shipped
    assert shipped <= names, f"missing from the wheel: {sorted(shipped - names)}"
