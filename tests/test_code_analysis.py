"""Python shipped with a model, judged without depending on spotting one literal
call: references through dicts and aliases, dynamic dispatch, deserialisation,
network endpoints, file writes, the interpreter's own source encoding, and
benign patterns that must not read as code evaluation. One test per technique."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from .conftest import MARKER, scan_bytes

TOUCH = f"touch {MARKER}"
# A protocol-0 pickle calling os.system, as a blob embedded in the source.
BLOB = base64.b64encode(f"cos\nsystem\n(V{TOUCH}\ntR.".encode())


def findings_by_rule(tmp_path: Path, source: bytes, name: str = "modeling_x.py") -> dict[str, Severity]:
    report = scan_bytes(tmp_path, source, name)
    return {f.rule_id: f.severity for f in report.findings}


# Each payload creates the marker when the file is run (or imported) by Python.
TECHNIQUES = {
    "dict-dispatch": f"import os\nRUN = {{'go': os.system}}\nRUN['go']({TOUCH!r})\n",
    "alias-then-call": f"from os import system as s\nrunner = s\nrunner({TOUCH!r})\n",
    "getattr-computed-on-os": f"import os\ngetattr(os, 'sys' + 'tem')({TOUCH!r})\n",
    "computed-import": f"m = __import__('o' + 's')\nm.system({TOUCH!r})\n",
    "import-module-constant-then-call": (
        f"import importlib\nm = importlib.import_module('subprocess')\nm.run({TOUCH!r}, shell=True)\n"
    ),
    "globals-lookup": f"import os\nf = vars(os)['sys' + 'tem']\nf({TOUCH!r})\n",
    "builtins-namespace": f"__builtins__.__dict__['exec'](\"import os; os.system({TOUCH!r})\")\n",
    "pickle-of-embedded-blob": f"import base64, pickle\npickle.loads(base64.b64decode({BLOB!r}))\n",
    "pathlib-write": f"from pathlib import Path\nPath({MARKER!r}).touch()\n",
    "pathlib-write-text": f"import pathlib\np = pathlib.Path({MARKER!r})\np.write_text('x')\n",
    "open-for-writing": f"open({MARKER!r}, 'w').close()\n",
}
EXPECTED = {
    "dict-dispatch": ("code-runs-commands", Severity.CRITICAL),
    "alias-then-call": ("code-runs-commands", Severity.CRITICAL),
    "getattr-computed-on-os": ("code-namespace-access", Severity.CRITICAL),
    "computed-import": ("code-namespace-access", Severity.CRITICAL),
    "import-module-constant-then-call": ("code-runs-commands", Severity.CRITICAL),
    "globals-lookup": ("code-namespace-access", Severity.CRITICAL),
    "builtins-namespace": ("code-namespace-access", Severity.CRITICAL),
    "pickle-of-embedded-blob": ("code-deserialises", Severity.CRITICAL),
    "pathlib-write": ("code-writes-files", Severity.HIGH),
    "pathlib-write-text": ("code-writes-files", Severity.HIGH),
    "open-for-writing": ("code-writes-files", Severity.HIGH),
}


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_technique_is_caught(tmp_path: Path, technique: str) -> None:
    rule, severity = EXPECTED[technique]
    found = findings_by_rule(tmp_path, TECHNIQUES[technique].encode())
    assert found.get(rule) == severity, found


@pytest.mark.parametrize("technique", sorted(TECHNIQUES))
def test_technique_really_runs(tmp_path: Path, technique: str) -> None:
    script = tmp_path / "payload.py"
    script.write_text(TECHNIQUES[technique])
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=60, check=False, capture_output=True)
    assert (tmp_path / MARKER).exists(), technique


# utf-7 turns "+AAo-" into a newline: to a UTF-8 reader the payload is a comment.
UTF7_HIDDEN = (
    b"# coding: utf-7\n# configuration notes +AAo-import os+AAo-os.system('touch modeltrust-pwned')\n"
)


def test_pep263_cookie_is_honoured(tmp_path: Path) -> None:
    found = findings_by_rule(tmp_path, UTF7_HIDDEN)
    assert found["code-runs-commands"] is Severity.CRITICAL
    assert found["code-unusual-encoding"] is Severity.HIGH
    script = tmp_path / "hidden.py"
    script.write_bytes(UTF7_HIDDEN)
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, timeout=60, check=False, capture_output=True)
    assert (tmp_path / MARKER).exists()


def test_hub_download_from_another_endpoint(tmp_path: Path) -> None:
    source = (
        b"from huggingface_hub import hf_hub_download\n"
        b"path = hf_hub_download('org/x', 'w.bin', endpoint='http://127.0.0.1:9')\n"
    )
    assert findings_by_rule(tmp_path, source)["code-network"] is Severity.CRITICAL


def test_hf_endpoint_redirected_through_the_environment(tmp_path: Path) -> None:
    source = b"import os\nos.environ['HF_ENDPOINT'] = 'http://127.0.0.1:9'\n"
    assert findings_by_rule(tmp_path, source)["code-network"] is Severity.CRITICAL


def test_torch_load_with_weights_only_is_not_deserialisation(tmp_path: Path) -> None:
    source = b"import torch\nstate = torch.load('extra.bin', weights_only=True)\n"
    assert "code-deserialises" not in findings_by_rule(tmp_path, source)
    source = b"import torch\nstate = torch.load('extra.bin')\n"
    assert findings_by_rule(tmp_path, source)["code-deserialises"] is Severity.CRITICAL


def test_syntax_error_in_a_python_file_is_a_finding(tmp_path: Path) -> None:
    found = findings_by_rule(tmp_path, b"def broken(:\n    pass\n")
    assert found == {"code-unparsable": Severity.MEDIUM}


def test_unknown_encoding_cookie_is_a_finding(tmp_path: Path) -> None:
    found = findings_by_rule(tmp_path, b"# -*- coding: no-such-codec -*-\nimport os\n")
    assert found == {"code-unparsable": Severity.MEDIUM}


def test_text_that_only_looks_like_python_is_not_reported(tmp_path: Path) -> None:
    notes = b"Usage notes\n\nimport the model, then def( call it\n"
    assert not any(f.severity >= Severity.MEDIUM for f in scan_bytes(tmp_path, notes, "NOTES.txt").findings)


# Real modeling code patterns (Phi-3, Qwen, Llama remote code): optional kernels,
# feature checks, config reads, vocab reads. Reported for what they are, never as
# code evaluation or anything critical.
BENIGN_MODELING = b"""
import importlib
import importlib.util
import inspect
import math
import os
import warnings
from typing import Optional

import torch
from torch import nn
from transformers.modeling_utils import PreTrainedModel
from transformers.utils import is_flash_attn_2_available, logging

from .configuration_phi3 import Phi3Config

logger = logging.get_logger(__name__)

if is_flash_attn_2_available():
    from flash_attn import flash_attn_func
    _flash_supports_window_size = "window_size" in list(inspect.signature(flash_attn_func).parameters)

try:
    rotary = importlib.import_module("flash_attn.layers.rotary")
except ImportError:
    rotary = None
HAS_XFORMERS = importlib.util.find_spec("xformers") is not None


class Phi3MLP(nn.Module):
    def __init__(self, config: Phi3Config):
        super().__init__()
        self.act = getattr(nn.functional, config.hidden_act)
        self.scale = math.sqrt(config.hidden_size)
        self.layers = nn.ModuleList([nn.Linear(4, 4) for _ in range(getattr(config, "num_layers", 2))])
        self.dtype = getattr(torch, config.torch_dtype) if isinstance(config.torch_dtype, str) else None

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if os.environ.get("PHI3_DEBUG"):
            warnings.warn("debug mode")
        return self.act(x) * self.scale


def load_vocab(path):
    with open(path, encoding="utf-8") as handle:
        return handle.read().splitlines()
"""


def test_benign_modeling_code_is_not_dangerous(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, BENIGN_MODELING, "modeling_phi3.py")
    severities = {f.rule_id: f.severity for f in report.findings}
    assert severities["code-optional-import"] is Severity.INFO
    assert not [f for f in report.findings if f.severity is Severity.CRITICAL], report.findings
    assert "code-evaluates-code" not in severities
