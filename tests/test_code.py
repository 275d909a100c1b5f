"""Code that would run: Python files, trust_remote_code configs, scripts, binaries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from .conftest import rule_ids, scan_bytes

BENIGN_MODELING = b"""
import math
import os

import torch
from torch import nn


class TinyConfig:
    model_type = "tiny"


class TinyModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.scale = math.sqrt(8)
        self.cache = os.path.join(os.path.expanduser("~"), ".cache")

    def forward(self, x):
        return x * self.scale
"""

MALICIOUS_MODELING = b"""
import subprocess as sp
from os import system as run_it
import urllib.request

class TinyModel:
    def __init__(self):
        run_it("touch modeltrust-pwned")
        sp.Popen(["id"])
        urllib.request.urlopen("http://127.0.0.1:9/x")
        eval("1 + 1")
"""


def test_python_file_is_reported_medium(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, BENIGN_MODELING, "modeling_tiny.py")
    assert [(f.rule_id, f.severity) for f in report.findings] == [("code-python-file", Severity.MEDIUM)]
    assert report.artifacts[0].scanner == "code"


def test_dangerous_calls_resolved_through_aliases(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, MALICIOUS_MODELING, "modeling_evil.py")
    subjects = {f.subject: f.rule_id for f in report.findings if f.severity >= Severity.HIGH}
    assert subjects == {
        "os.system": "code-runs-commands",
        "subprocess.Popen": "code-runs-commands",
        "urllib.request.urlopen": "code-network",
        "builtins.eval": "code-evaluates-code",
    }
    line = next(f for f in report.findings if f.subject == "os.system").message
    assert line.startswith("line 8:")


def test_markdown_with_code_lines_is_not_python(tmp_path: Path) -> None:
    card = b"# Usage\n\nimport torch\nmodel = load(\n```\nthis is prose\n"
    report = scan_bytes(tmp_path, card, "README.md")
    assert report.artifacts[0].format == "text"  # a document, labelled as such in the BOM
    assert [f.rule_id for f in report.findings] == ["format-data"]


@pytest.mark.parametrize(
    "config, rule",
    [
        ({"auto_map": {"AutoModel": "modeling_tiny.TinyModel"}}, "code-trust-remote-code"),
        ({"auto_map": {"AutoTokenizer": ["tok.Fast", None]}}, "code-trust-remote-code"),
        ({"auto_map": {"AutoModel": "evil-org/payloads--modeling.Net"}}, "code-remote-code-elsewhere"),
        ({"weight_map": {"w": "../../outside.safetensors"}}, "archive-path-traversal"),
    ],
)
def test_configs_that_pull_in_code(tmp_path: Path, config: dict[str, object], rule: str) -> None:
    assert rule in rule_ids(scan_bytes(tmp_path, json.dumps(config).encode(), "config.json"))


def test_plain_config_is_clean(tmp_path: Path) -> None:
    config = {"architectures": ["LlamaForCausalLM"], "hidden_size": 4096, "tokenizer_class": "LlamaTokenizer"}
    assert not scan_bytes(tmp_path, json.dumps(config).encode(), "config.json").findings


@pytest.mark.parametrize(
    "data, rule, severity",
    [
        (b"\x7fELF\x02\x01\x01" + bytes(200), "code-executable", Severity.HIGH),
        (b"MZ" + bytes(200), "code-executable", Severity.HIGH),
        (b"\xcf\xfa\xed\xfe" + bytes(200), "code-executable", Severity.HIGH),
        (b"#!/bin/bash\nrm -rf ~\n", "code-script", Severity.MEDIUM),
    ],
)
def test_executables_and_scripts(tmp_path: Path, data: bytes, rule: str, severity: Severity) -> None:
    [finding] = scan_bytes(tmp_path, data, "weights.bin").findings
    assert (finding.rule_id, finding.severity) == (rule, severity)
