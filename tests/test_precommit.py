"""The pre-commit hook: it picks model files (not ordinary ones) and its entry
fails a commit that stages a malicious file."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import yaml

from .conftest import FIXTURES, ROOT

[HOOK] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
FILES = re.compile(HOOK["files"])


def test_the_hook_selects_model_files_only() -> None:
    for name in (
        "pytorch_model.bin",
        "sub/model.safetensors",
        "w.PT",
        "clf.joblib",
        "config.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "modeling_custom.py",
        "data/train.parquet",
    ):
        assert FILES.search(name), name
    for name in ("README.md", "src/app.py", "package.json", "notes.txt", "configs/other.json"):
        assert not FILES.search(name), name


def test_the_entry_fails_on_a_staged_payload() -> None:
    entry = HOOK["entry"].split()
    assert entry[0] == "modeltrust"
    command = [sys.executable, "-m", "modeltrust", *entry[1:]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    clean = [str(ROOT / "examples" / "tiny-model" / "config.json")]
    evil = [*clean, str(FIXTURES / "malicious" / "os_system_p4.pkl")]
    assert subprocess.run([*command, *clean], env=env, capture_output=True, timeout=120).returncode == 0
    result = subprocess.run([*command, *evil], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1 and "pickle-os-command" in result.stdout
