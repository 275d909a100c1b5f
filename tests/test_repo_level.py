"""Repository-level checks: what transformers' trust_remote_code imports across
files, files judged by the names loaders open them by, symlinked folders,
compiled modules, and targets with nothing to scan."""

from __future__ import annotations

import json
import os
import py_compile
from pathlib import Path

import pytest
from click.testing import CliRunner

from modeltrust.cli.main import cli
from modeltrust.cli.scan_cmd import scan as scan_cmd
from modeltrust.findings import Severity

from .conftest import FIXTURES, MARKER, scan_paths

cli.add_command(scan_cmd)
TOUCH = f"touch {MARKER}"


def write_repo(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return root


def loader_imports(root: Path) -> dict[str, Severity]:
    report = scan_paths(root)
    return {
        str(Path(f.location.path).relative_to(root)): f.severity
        for f in report.findings
        if f.rule_id == "code-loader-imports"
    }


CONFIG = json.dumps({"model_type": "x", "auto_map": {"AutoConfig": "configuration_x.XConfig"}})


def test_import_graph_of_remote_code(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "config.json": CONFIG,
            "configuration_x.py": "from .helpers import prepare\nfrom . import layers\nclass XConfig: pass\n",
            "helpers.py": "import os\ndef prepare():\n    return os.getcwd()\n",
            "layers/__init__.py": "from .attention import Attention\n",
            "layers/attention.py": "class Attention: pass\n",
            "train.py": "import subprocess\n",  # no loader imports it
        },
    )
    assert loader_imports(root) == {
        "configuration_x.py": Severity.HIGH,
        "helpers.py": Severity.HIGH,
        "layers/__init__.py": Severity.HIGH,
        "layers/attention.py": Severity.HIGH,
    }


def test_payload_in_an_imported_helper_is_critical(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "config.json": CONFIG,
            "configuration_x.py": "from .utils import setup\nsetup()\nclass XConfig: pass\n",
            "utils.py": (
                "import os\nACTIONS = {'s': getattr(os, 'sys' + 'tem')}\n"
                f"def setup():\n    ACTIONS['s']({TOUCH!r})\n"
            ),
        },
    )
    report = scan_paths(root)
    utils = [f for f in report.findings if f.location.path.endswith("utils.py")]
    assert {f.rule_id for f in utils} >= {"code-loader-imports", "code-namespace-access"}
    assert report.max_severity is Severity.CRITICAL


def test_custom_pipelines_and_custom_generate(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo",
        {
            "config.json": json.dumps(
                {"custom_pipelines": {"my-task": {"impl": "pipeline_x.MyPipeline", "pt": ["AutoModel"]}}}
            ),
            "pipeline_x.py": "from .post import clean\n",
            "post.py": "def clean(x):\n    return x\n",
            "custom_generate/generate.py": "from .decoding import step\n",
            "custom_generate/decoding.py": "def step(): pass\n",
        },
    )
    assert set(loader_imports(root)) == {
        "pipeline_x.py",
        "post.py",
        "custom_generate/generate.py",
        "custom_generate/decoding.py",
    }


def test_python_file_whose_head_is_not_code_is_still_analysed(tmp_path: Path) -> None:
    """A long docstring (or a head starting with `[`) made detection call it text or JSON."""
    body = '"""' + "Model notes. " * 600 + f'"""\nimport os\nos.system({TOUCH!r})\n'
    root = write_repo(tmp_path / "repo", {"config.json": CONFIG, "configuration_x.py": body})
    report = scan_paths(root)
    assert report.max_severity is Severity.CRITICAL
    root = write_repo(tmp_path / "repo2", {"modeling_y.py": f"[1]\nimport os\nos.system({TOUCH!r})\n"})
    assert scan_paths(root).max_severity is Severity.CRITICAL


def test_compiled_modules_under_pycache_are_reported(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo", {"config.json": CONFIG, "configuration_x.py": "class XConfig: pass\n"}
    )
    source = tmp_path / "evil.py"
    source.write_text(f"import os\nos.system({TOUCH!r})\n")
    cached = root / "__pycache__" / "configuration_x.cpython-311.pyc"
    cached.parent.mkdir()
    py_compile.compile(
        str(source), cfile=str(cached), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    report = scan_paths(root)
    compiled = [f for f in report.findings if f.rule_id == "code-compiled-python"]
    assert compiled and compiled[0].severity is Severity.HIGH and "__pycache__" in compiled[0].location.path


def test_unchecked_pyc_runs_instead_of_the_clean_source(tmp_path: Path) -> None:
    """Why __pycache__ matters: Python runs an unchecked-hash .pyc whatever the source says."""
    import subprocess
    import sys

    root = write_repo(tmp_path / "repo", {"configuration_x.py": "class XConfig: pass\n"})
    source = tmp_path / "evil.py"
    source.write_text(f"import os\nos.system({TOUCH!r})\n")
    cached = root / "__pycache__" / f"configuration_x.{sys.implementation.cache_tag}.pyc"
    cached.parent.mkdir()
    py_compile.compile(
        str(source), cfile=str(cached), invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    subprocess.run([sys.executable, "-c", "import configuration_x"], cwd=root, timeout=60, check=False)
    assert (root / MARKER).exists()


def test_symlinked_checkpoint_folder_is_scanned(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere" / "ckpt"
    outside.mkdir(parents=True)
    (outside / "optimizer.pt").write_bytes((FIXTURES / "malicious" / "os_system_p2.pkl").read_bytes())
    model = write_repo(tmp_path / "model", {"config.json": "{}"})
    os.symlink(outside, model / "checkpoint-500")
    os.symlink(model, model / "loop")  # a cycle ends instead of recursing
    report = scan_paths(model)
    assert report.max_severity is Severity.CRITICAL
    assert any("checkpoint-500/optimizer.pt" in f.location.path for f in report.findings)


def test_fifo_and_dangling_links_inside_a_folder_are_reported(tmp_path: Path) -> None:
    model = write_repo(tmp_path / "model", {"config.json": "{}"})
    os.mkfifo(model / "pipe")
    os.symlink(tmp_path / "nowhere", model / "weights.bin")
    report = scan_paths(model)
    unreadable = {Path(f.location.path).name for f in report.findings if f.rule_id == "scan-unverified"}
    assert unreadable == {"pipe", "weights.bin"}


@pytest.mark.parametrize("kind", ["empty", "fifo"])
def test_target_with_nothing_to_scan_is_exit_2(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "target"
    if kind == "empty":
        target.mkdir()
    else:
        os.mkfifo(target)
    result = CliRunner().invoke(cli, ["scan", str(target)])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "nothing to scan" in result.stderr


def test_json_named_file_that_is_not_json(tmp_path: Path) -> None:
    root = write_repo(tmp_path / "repo", {"config.json": "{not json"})
    assert {f.rule_id for f in scan_paths(root).findings} == {"scan-malformed"}


KERAS_CONFIG = {
    "module": "keras",
    "class_name": "Sequential",
    "config": {
        "name": "seq",
        "layers": [
            {
                "module": "keras.layers",
                "class_name": "Dense",
                "config": {
                    "units": 1,
                    "activation": {"module": "os", "class_name": "function", "config": "system"},
                },
            }
        ],
    },
    "registered_name": None,
}


def test_keras_folder_format_config_is_checked(tmp_path: Path) -> None:
    """keras.saving.save_model to a folder / the Hub writes config.json + model.weights.h5."""
    root = write_repo(
        tmp_path / "keras-model",
        {"config.json": json.dumps(KERAS_CONFIG), "metadata.json": json.dumps({"keras_version": "3.6.0"})},
    )
    report = scan_paths(root)
    assert "keras-dangerous-import" in {f.rule_id for f in report.findings}
    assert report.max_severity is Severity.CRITICAL


def test_large_tokenizer_json_is_parsed(tmp_path: Path) -> None:
    """Gemma's tokenizer.json is 33 MB: past the old 16 MiB limit it is still
    parsed, and clean. (Written in pieces: the test itself stays small.)"""
    path = tmp_path / "tokenizer.json"
    with path.open("w", encoding="utf-8") as out:
        out.write('{"version": "1.0", "model": {"type": "BPE", "vocab": {')
        out.write(", ".join(f'"\u2581token{i}": {i}' for i in range(400_000)))
        out.write('}, "merges": [')
        out.write(", ".join(f'"\u2581tok en{i}"' for i in range(400_000)))
        out.write("]}}")
    assert path.stat().st_size > 16 << 20
    report = scan_paths(path)
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM], report.findings


def test_sentence_transformers_and_diffusers_configs_name_repository_modules(tmp_path: Path) -> None:
    """modules.json types outside sentence_transformers, and diffusers
    components whose `<component>/<name>.py` exists, are repository files their
    loaders import (diffusers' pipeline_loading_utils checks the file first)."""
    root = write_repo(
        tmp_path / "repo",
        {
            "modules.json": json.dumps(
                [
                    {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                    {"idx": 1, "name": "1", "path": "1_Pooling", "type": "custom_pooling.Pooling"},
                ]
            ),
            "custom_pooling.py": "class Pooling: pass\n",
            "model_index.json": json.dumps(
                {
                    "_class_name": ["pipeline_x", "XPipeline"],
                    "unet": ["my_unet", "MyUNet"],
                    "vae": ["diffusers", "AutoencoderKL"],
                    "text_encoder": ["transformers", "CLIPTextModel"],
                }
            ),
            "pipeline_x.py": "class XPipeline: pass\n",
            "unet/my_unet.py": "class MyUNet: pass\n",
            "vae/diffusers.py": "raise SystemExit\n",  # imported: <component>/<name>.py whatever the name
            "text_encoder/config.json": "{}",  # no text_encoder/transformers.py: the library's class
            "sentence_transformers/models.py": "raise SystemExit\n",
        },
    )
    imported = {"custom_pooling.py", "pipeline_x.py", "unet/my_unet.py", "vae/diffusers.py"}
    assert set(loader_imports(root)) == imported
