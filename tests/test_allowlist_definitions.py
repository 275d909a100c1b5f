"""Every allow entry names a class or function where it is DEFINED.

Pickle writes `obj.__module__` and `obj.__qualname__`, so a real file names a
class by its defining module. An entry for a module that merely imports the
name (`sklearn.utils:Bunch`, or the GzipFile a sklearn module imports) would
admit whatever that module happens to import; this test refuses it. Each
installed library is imported in a subprocess and every entry is resolved and
compared; libraries that are not installed are reported as skipped.

One exception, spelled out per entry: a name that older library versions
wrote (numpy 1.x `numpy.core.multiarray`, pandas 2.x `pandas.core.frame`...)
may stay when it resolves to the very object of another entry."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from .conftest import ROOT

ALLOW_FILE = ROOT / "rules" / "pickle" / "allow.yaml"
OLDER_NAME = "Name written by older versions"

CHECKER = textwrap.dedent(
    """
    import importlib, inspect, json, sys

    def check(module, qualname, kind):
        try:
            obj = importlib.import_module(module)
        except ImportError as exc:
            return f"module does not import: {exc}"
        owner = None
        for part in qualname.split("."):
            owner = obj
            try:
                obj = getattr(obj, part)
            except AttributeError:
                return f"{module} has no attribute {qualname}"
        if "." in qualname:  # Class.method: the class must be defined here
            first = getattr(importlib.import_module(module), qualname.split(".")[0])
            if getattr(first, "__module__", None) != module:
                return f"{qualname.split('.')[0]} is defined in {first.__module__}, not {module}"
            return ""
        if inspect.isclass(obj) or inspect.isroutine(obj):
            defined = getattr(obj, "__module__", None)
            name = getattr(obj, "__qualname__", getattr(obj, "__name__", None))
            if defined != module or name != qualname:
                return f"{module}.{qualname} is {defined}:{name} (imported, not defined here)"
            return ""
        # A value (a dtype, a singleton): it can only be referenced.
        if kind != "import-only":
            return f"{module}.{qualname} is a {type(obj).__name__} value: it must be import-only"
        return ""

    entries = json.load(sys.stdin)
    print(json.dumps([check(m, q, k) for m, q, k in entries]))
    """
)


def _entries(older: bool = False) -> list[tuple[str, str, str]]:
    """(module, qualname, kind) of every entry; with `older`, only the older names."""
    data = yaml.safe_load(ALLOW_FILE.read_text())
    out = []
    for group in data["groups"]:
        for raw in group["allow"]:
            item = raw if isinstance(raw, dict) else {"name": raw}
            if older and not str(item.get("reason", "")).startswith(OLDER_NAME):
                continue
            module, _, qualname = item["name"].partition(":")
            out.append((module, qualname, item.get("kind", group.get("kind", "constructor"))))
    return out


def _accepted(entry: tuple[str, str, str], why: str, kinds: dict[str, str], older: set[str]) -> bool:
    """An older name is fine when it resolves to another entry of the same kind."""
    name = f"{entry[0]}:{entry[1]}"
    if not why or name not in older or "not defined here" not in why:
        return not why
    target = why.split(" is ", 1)[1].split(" ", 1)[0]
    return kinds.get(target) == entry[2]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module.split(".")[0]) is not None


def _check(entries: list[tuple[str, str, str]]) -> list[str]:
    """Why each entry is wrong ("" when it is right), in order."""
    result = subprocess.run(
        [sys.executable, "-c", CHECKER],
        input=json.dumps(entries),
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
        env={"PYTHONPATH": "", "PATH": "/usr/bin:/bin", "HOME": str(Path.home())},
    )
    verdicts: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return verdicts


def test_allow_file_is_version_2_without_globs() -> None:
    data = yaml.safe_load(ALLOW_FILE.read_text())
    assert data["version"] == 2
    for group in data["groups"]:
        assert group["reason"].strip()
    names = [m + ":" + q for m, q, _ in _entries()]
    assert not [n for n in names if any(c in n for c in "*?[")]
    assert len(names) == len(set(names))


def test_every_entry_is_defined_where_it_says() -> None:
    entries = _entries()
    present = [e for e in entries if _installed(e[0])]  # e.g. accelerate may be absent
    verdicts = _check(present)
    kinds = {f"{m}:{q}": k for m, q, k in entries}
    older = {f"{m}:{q}" for m, q, _ in _entries(older=True)}
    wrong = {
        f"{e[0]}:{e[1]}": why
        for e, why in zip(present, verdicts, strict=True)
        if not _accepted(e, why, kinds, older)
    }
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))
    if len(present) <= len(entries) // 2:  # the installed ones were checked above
        pytest.skip("most libraries the allowlist names are not installed: pip install '.[fixtures]'")


def test_checker_refuses_a_name_a_module_only_imports() -> None:
    pytest.importorskip("sklearn")
    bunch, defined, gzip_file, float32, ellipsis, ellipsis_ref = _check(
        [
            ("sklearn.utils", "Bunch", "constructor"),
            ("sklearn.utils._bunch", "Bunch", "constructor"),
            ("gzip", "GzipFile", "constructor"),
            ("numpy", "float32", "constructor"),
            ("builtins", "Ellipsis", "constructor"),
            ("builtins", "Ellipsis", "import-only"),
        ]
    )
    assert "not defined here" in bunch
    assert defined == ""
    assert gzip_file == ""  # defined there: the allowlist review refuses it, not this check
    assert float32 == ""
    assert "must be import-only" in ellipsis
    assert ellipsis_ref == ""


def test_calls_arguments_entries_say_which() -> None:
    data = yaml.safe_load(ALLOW_FILE.read_text())
    for group in data["groups"]:
        for raw in group["allow"]:
            kind = raw.get("kind", group.get("kind")) if isinstance(raw, dict) else group.get("kind")
            if kind == "calls-arguments":
                assert isinstance(raw, dict) and raw.get("calls"), raw
