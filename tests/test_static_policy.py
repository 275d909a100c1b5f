"""The scanner's own code never deserializes or evaluates what it scans, and never needs torch."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from .conftest import FIXTURES, ROOT

FORBIDDEN = [
    r"\bpickle\.loads?\(",
    r"\bUnpickler\(",
    r"\btorch\.load\(",
    r"\bjoblib\.load\(",
    r"\bnp\.load\(|\bnumpy\.load\(",
    r"(?<![\w.])eval\(",
    r"(?<![\w.])exec\(",
    r"\bmarshal\.loads\(",
    r"\byaml\.(?:unsafe_)?load\((?!.*Loader=loader)",
    r"\bimport torch\b",
]


def test_no_deserialization_in_src() -> None:
    offenders = []
    for path in (ROOT / "src").rglob("*.py"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern in FORBIDDEN:
                if re.search(pattern, code):
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


def test_yaml_loader_is_a_safe_one() -> None:
    text = (ROOT / "src" / "modeltrust" / "yamlcache.py").read_text()
    assert 'getattr(yaml, "CSafeLoader", yaml.SafeLoader)' in text


def test_scanning_a_checkpoint_does_not_import_torch() -> None:
    code = (
        "import sys; from modeltrust.engine import scan; from modeltrust.config import ScanConfig; "
        f"scan(ScanConfig(targets=({str(FIXTURES / 'benign')!r},))); "
        "banned = ('torch', 'joblib', 'sklearn', 'tensorflow', 'keras', 'onnx', 'onnxruntime', 'dill'); "
        "assert not [m for m in sys.modules if m.split('.')[0] in banned], "
        "sorted(m for m in sys.modules if m.split('.')[0] in banned)"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_compiled_modules_are_not_stale() -> None:
    """mypyc builds (pip install -e .) put .so files beside the sources; an
    edit to a source without a rebuild would silently test the old code."""
    import importlib

    for name in ("modeltrust.scanners.pickle", "modeltrust.sources.ziparchive"):
        module = importlib.import_module(name)
        compiled = module.__file__ or ""
        if not compiled.endswith(".so"):
            continue
        source = ROOT / "src" / (name.replace(".", "/") + ".py")
        assert Path(compiled).stat().st_mtime >= source.stat().st_mtime, (
            f"{compiled} is older than {source}: run `pip install -e .` to rebuild it"
        )
