"""Huge but ordinary inputs analysed in bounded memory without losing what
the whole-document analysis found: a 33 MB tokenizer.json (Gemma's size),
Python files of 65,537 functions or one class of thousands of methods, and a
statement too large to parse alone (issue #9, item 4)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

from modeltrust.config import ScanConfig
from modeltrust.engine import scan
from modeltrust.findings import ScanReport
from modeltrust.scanners import jsontop, pychunks

from ..conftest import rule_ids

SRC = Path(__file__).resolve().parents[2] / "src"
_PROBE = (  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the forked parent across exec
    "import atexit, runpy, sys\n"
    "def peak():\n"
    "    status = open('/proc/self/status').read()\n"
    "    print('PEAK', status.split('VmHWM:')[1].split()[0], file=sys.stderr)\n"
    "atexit.register(peak)\n"
    "sys.argv = ['modeltrust'] + sys.argv[1:]\n"
    "runpy.run_module('modeltrust', run_name='__main__')\n"
)


def _scan(path: Path) -> ScanReport:
    report = scan(ScanConfig(targets=(str(path),)))
    assert not [f for f in report.findings if f.rule_id == "scan-error"]
    return report


def _peak_mb(path: Path) -> int:
    """Peak RSS of a whole `modeltrust scan` process on `path`."""
    env = dict(os.environ, PYTHONPATH=str(SRC))
    command = [sys.executable, "-c", _PROBE, "scan", "--no-progress", "--format", "json", str(path)]
    proc = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert proc.returncode in (0, 1), proc.stderr.decode()[-2000:]
    return int(proc.stderr.split(b"PEAK ")[-1].split()[0]) // 1024


def gemma_sized_tokenizer(extra: dict[str, object] | None = None) -> bytes:
    """A BPE tokenizer.json of Gemma's shape and size: 262,144 tokens, 514,906 merges (pairs)."""
    letters = "abcdefghijklmnopqrstuvwxyzäöüéñαβγжзおかき中文▁"
    vocab = {}
    for i in range(262_144):
        token, n = "", i
        while True:
            token += letters[n % len(letters)]
            n //= len(letters)
            if n == 0:
                break
        vocab[token + "▁" * (i % 7)] = i
    tokens = list(vocab)
    merges = [[tokens[i % 262_144], tokens[(i * 7) % 262_144]] for i in range(514_906)]
    added = [{"id": i, "content": f"<unused{i}>", "special": True} for i in range(100)]
    model = {"type": "BPE", "unk_token": "<unk>", "vocab": vocab, "merges": merges}
    doc = {"version": "1.0", "added_tokens": added, "model": model, **(extra or {})}
    return json.dumps(doc, ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def big_tokenizer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("gemma")
    path = folder / "tokenizer.json"
    path.write_bytes(gemma_sized_tokenizer())
    return path


def test_gemma_sized_tokenizer_json_scans_in_bounded_memory(big_tokenizer: Path) -> None:
    assert big_tokenizer.stat().st_size > 25 << 20
    assert _peak_mb(big_tokenizer) < 160  # json.loads of it alone peaks at 270 MB


def test_python_file_of_65537_functions_scans_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "modeling_many.py"
    body = "".join(f"def f{i}(): pass\n" for i in range(65_537))
    path.write_text("import os as o\n" + body + "def last():\n    o.system('id')\n")
    assert _peak_mb(path) < 160  # a whole syntax tree of it is 800 MB
    report = _scan(path)
    assert "code-runs-commands" in rule_ids(report)  # the alias from the first piece resolves in the last
    assert "scan-limit" not in rule_ids(report)


# --- large JSON: the checks see the keys they read ------------------------------------


def test_large_json_still_reports_remote_code_and_templates(tmp_path: Path) -> None:
    padding = {"model": {"vocab": {f"t{i}": i for i in range(400_000)}}}
    config = {
        **padding,
        "auto_map": {"AutoTokenizer": "evil/repo--tok.Tok"},
        "chat_template": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    }
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(config))
    assert path.stat().st_size > jsontop.WHOLE
    ids = rule_ids(_scan(path))
    assert "code-remote-code-elsewhere" in ids
    assert any(i.startswith("template") for i in ids), ids


def test_large_truncated_json_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.json"
    path.write_bytes(json.dumps({"model": {"vocab": {f"t{i}": i for i in range(400_000)}}}).encode()[:-2])
    assert "scan-malformed" in rule_ids(_scan(path))


@pytest.mark.parametrize(
    "document",
    [
        b'{"a": [1, {"b": "]}"}], "keep": {"x": [1, 2]}, "z": "\\"}"}',
        b'{"keep": 1, "keep": 2}',
        b'[{"keep": 1}]',
        b'{"a": [1, 2}',
        b'{"a": "unterminated}',
        b'{"keep": 1} x',
        b'{"keep": 1,}',
        b"\xef\xbb\xbf{}",
        b'{"a": "\xff"}',
        b'{"keep": NaN, "b": [true, false, null, -1.5e3]}',
    ],
)
def test_top_level_reader_agrees_with_json_loads(document: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        expected: object = json.loads(document.decode("utf-8"))
        expected = {k: v for k, v in expected.items() if k == "keep"} if isinstance(expected, dict) else None
    except ValueError:
        expected = ValueError
    monkeypatch.setattr(jsontop, "WHOLE", 0)
    try:
        got: object = jsontop.loads(document, {"keep"})
    except ValueError:
        got = ValueError
    assert got == expected


def test_deep_nesting_is_walked_without_recursion(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontop, "WHOLE", 0)
    depth = jsontop.MAX_DEPTH - 10
    assert jsontop.loads(b'{"a": ' + b"[" * depth + b"]" * depth + b"}", {"b"}) == {}
    with pytest.raises(ValueError, match="deeper"):  # json.loads gives up far earlier
        jsontop.loads(b'{"a": ' + b"[" * 1_000_000 + b"]" * 1_000_000 + b"}", {"b"})


@pytest.mark.parametrize(
    "shape",
    [
        b"[" + b"{}," * 3_000_000 + b"{}]",  # millions of leaf containers: one regex match
        b'{"model": {"merges": [' + b'["a", "b"],' * 800_000 + b'["a", "b"]]}, "auto_map": "x.Y"}',
        b"{" + b"".join(b'"k%d": %d,' % (i, i) for i in range(700_000)) + b'"auto_map": "x.Y"}',
    ],
    ids=["wide", "pairs", "many-keys"],
)
def test_wide_documents_are_walked_quickly(shape: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontop, "WHOLE", 0)
    started = time.perf_counter()
    found = jsontop.loads(shape, {"auto_map"})
    assert found in (None, {"auto_map": "x.Y"})
    assert time.perf_counter() - started < 2


def test_a_wanted_value_of_millions_of_containers_is_not_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontop, "WHOLE", 0)
    with pytest.raises(jsontop.TooComplex):
        jsontop.loads(b'{"class_name": "Sequential", "config": [' + b"[]," * 1_600_000 + b"[]]}", {"config"})


def test_containers_past_the_step_budget_are_too_complex(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsontop, "WHOLE", 0)
    monkeypatch.setattr(jsontop, "MAX_STEPS", 1000)
    with pytest.raises(jsontop.TooComplex):
        jsontop.loads(b"[" + b"[[[[]]]]," * 1000 + b"[]]", {"a"})


# --- Python in pieces: the same tree as one parse --------------------------------------


def _names(trees: object) -> list[tuple[str, str, int, int]]:
    found = []
    for tree in trees:  # type: ignore[attr-defined]
        for node in ast.walk(tree):
            if isinstance(node, ast.Name | ast.Attribute | ast.FunctionDef | ast.ClassDef | ast.Call):
                label = getattr(node, "id", getattr(node, "attr", getattr(node, "name", "call")))
                found.append((type(node).__name__, label, node.lineno, node.col_offset))
    return sorted(found)


_SHAPES = {
    "functions": "".join(f"def f{i}(x):\n    return x + {i}\n" for i in range(400)),
    "class with strings at column 0": "import os\nclass A:\n"
    + "".join(
        f"    def m{i}(self):\n        s = '''\nimport x\n'''\n        return os.system('{i}')\n"
        f"    @staticmethod\n    def n{i}(): pass\n"
        for i in range(150)
    )
    + "x = os.popen('a')\n",
    "one long method": "class A:\n  def big(self):\n"
    + "".join(f"    if x{i}:\n      y = [\n1,\n2]\n    else:\n      pass\n" for i in range(300))
    + "  def other(self):\n    import subprocess\n",
    "try clauses after deeper lines": "def f():\n    try:\n"
    + "".join(f"        a{i} = {i}\n" for i in range(400))
    + "    except OSError as err:\n"
    + "".join(f"        b{i} = {i}\n" for i in range(400))
    + "    finally:\n        c = 1\n",
}


@pytest.mark.parametrize("shape", sorted(_SHAPES))
def test_pieces_give_the_tree_of_one_parse(shape: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pychunks, "PIECE", 200)
    monkeypatch.setattr(pychunks, "MAX_PIECE", 2000)
    source = _SHAPES[shape]
    assert _names(pychunks.parse_pieces(source)) == _names([ast.parse(source)])


@pytest.mark.parametrize("module", ["argparse.py", "inspect.py", "typing.py", "pickle.py", "ast.py"])
def test_pieces_of_stdlib_modules_give_the_tree_of_one_parse(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pychunks, "PIECE", 2000)
    monkeypatch.setattr(pychunks, "MAX_PIECE", 60_000)
    source = (Path(sysconfig.get_paths()["stdlib"]) / module).read_text(encoding="utf-8")
    assert len(source) > pychunks.MAX_PIECE
    assert _names(pychunks.parse_pieces(source)) == _names([ast.parse(source)])


def test_syntax_errors_keep_the_line_of_the_whole_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pychunks, "PIECE", 200)
    monkeypatch.setattr(pychunks, "MAX_PIECE", 2000)
    source = _SHAPES["functions"] + "def bad(:\n    pass\n"
    with pytest.raises(SyntaxError) as caught:
        list(pychunks.parse_pieces(source))
    assert caught.value.lineno == 801


def test_class_of_thousands_of_methods_is_analysed_to_the_end(tmp_path: Path) -> None:
    methods = "".join(f"    def m{i}(self, x):\n        return x * {i}\n" for i in range(20_000))
    path = tmp_path / "modeling_big.py"
    path.write_text(
        "import subprocess as sp\nclass Big:\n" + methods + "    def last(self):\n        sp.run('id')\n"
    )
    assert path.stat().st_size > pychunks.MAX_PIECE
    ids = rule_ids(_scan(path))
    assert "code-runs-commands" in ids
    assert "scan-limit" not in ids


def test_statement_too_large_to_parse_is_a_limit_and_still_read_for_names(tmp_path: Path) -> None:
    path = tmp_path / "modeling_table.py"
    table = "TABLE = [\n" + "    1,\n" * 120_000 + "    __import__('os').system('id'),\n]\n"
    path.write_text("import os\n" + table + "os.popen('id')\n")
    report = _scan(path)
    ids = rule_ids(report)
    assert {"scan-limit", "code-python-file"} <= ids
    assert ids & {"code-runs-commands", "code-dynamic-import", "code-namespace-access"}, ids
    assert max(f.severity for f in report.findings) >= max(
        f.severity for f in report.findings if f.rule_id == "code-python-file"
    )
