"""HyperPyYAML (SpeechBrain's hyperparams.yaml): Python tags are judged as
load_hyperpyyaml runs them. Payloads are proven with hyperpyyaml in a child
process (skipped when it is not installed)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from .conftest import MARKER, scan_paths

TOUCH = f'["touch {MARKER}"]'
RECIPE = """# ECAPA speaker verification (as SpeechBrain publishes it)
sample_rate: 16000
n_mels: 80
compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>
embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [1024, 1024, 1024, 1024, 3072]
modules:
    compute_features: !ref <compute_features>
    embedding_model: !ref <embedding_model>
opt_class: !name:torch.optim.Adam
    lr: 0.001
seed: 1986
__set_seed: !apply:torch.manual_seed [!ref <seed>]
pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
"""
PAYLOADS = {
    "apply-os-system": (f"x: !apply:os.system {TOUCH}\n", Severity.CRITICAL),
    "tag-directive": (f"%TAG !x! !apply:\n---\nx: !x!os.system {TOUCH}\n", Severity.CRITICAL),
    "verbatim-tag": (f"x: !<!apply:os.system> {TOUCH}\n", Severity.CRITICAL),
    "new-subprocess": (f"x: !new:subprocess.Popen\n  args: {TOUCH}\n  shell: true\n", Severity.CRITICAL),
    "name-then-ref": (f"f: !name:os.system\ny: !apply:builtins.map [!ref <f>, {TOUCH}]\n", Severity.CRITICAL),
    "module-import": ("m: !module:mypkg.setup_hooks\n", Severity.HIGH),
    "apply-unknown-helper": ("x: !apply:mypkg.prepare [1]\n", Severity.HIGH),
    "speechbrain-shell-helper": (
        f"x: !apply:speechbrain.utils.superpowers.run_shell {TOUCH}\n",
        Severity.HIGH,
    ),
    "torch-outside-nn": ('x: !apply:torch.load ["other.ckpt"]\n', Severity.HIGH),
    "unparsable-with-tags": ("x: !apply:os.system [\n  - ]: {\n", Severity.HIGH),
}
RUNNABLE = ("apply-os-system", "tag-directive", "verbatim-tag", "new-subprocess")


def _repo(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "repo"
    folder.mkdir()
    (folder / "hyperparams.yaml").write_text(text)
    return folder


def test_speechbrain_recipe_is_recorded_not_flagged(tmp_path: Path) -> None:
    report = scan_paths(_repo(tmp_path, RECIPE))
    assert report.max_severity is Severity.INFO, report.findings
    built = {f.subject for f in report.findings if f.rule_id == "hyperpyyaml-library-object"}
    assert "speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN" in built and "torch.manual_seed" in built


def test_plain_yaml_has_no_tag_findings(tmp_path: Path) -> None:
    text = "name: ci\non:\n  push:\n    branches: [main]\njobs:\n  test:\n    runs-on: ubuntu-latest\n"
    report = scan_paths(_repo(tmp_path, text))
    assert not [f for f in report.findings if f.rule_id.startswith("hyperpyyaml")]


@pytest.mark.parametrize("technique", sorted(PAYLOADS))
def test_python_tags_are_judged_as_the_loader_runs_them(tmp_path: Path, technique: str) -> None:
    text, severity = PAYLOADS[technique]
    report = scan_paths(_repo(tmp_path, text))
    assert report.max_severity is not None and report.max_severity >= severity, report.findings


@pytest.mark.skipif(importlib.util.find_spec("hyperpyyaml") is None, reason="hyperpyyaml is not installed")
@pytest.mark.parametrize("technique", RUNNABLE)
def test_payload_runs_with_load_hyperpyyaml(tmp_path: Path, technique: str) -> None:
    folder = _repo(tmp_path, PAYLOADS[technique][0])
    code = "import sys\nfrom hyperpyyaml import load_hyperpyyaml\nload_hyperpyyaml(open(sys.argv[1]))\n"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    subprocess.run(
        [sys.executable, "-c", code, str(folder / "hyperparams.yaml")], cwd=cwd, timeout=60, check=False
    )
    assert (cwd / MARKER).exists()
