"""TorchScript archives are programs (runs-code, high); torch.save checkpoints
are data; torch.export archives are judged as torch.export.load reads them:
strings it evaluates (sympy.sympify) or compiles (guards_code) and members it
unpickles. The malicious ones are proven with torch in
tests/test_loader_differential_repo.py (fixtures/repos.py, group `torch`)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from modeltrust.findings import ScanReport, Severity

from .conftest import FIXTURES, scan_bytes, scan_paths

REPOS = FIXTURES / "repos"
DYNAMIC = REPOS / "benign" / "torch-export-dynamic" / "model.pt2"


def rules_of(report: ScanReport, at_least: Severity = Severity.MEDIUM) -> list[str]:
    return sorted(f.rule_id for f in report.findings if f.severity >= at_least)


@pytest.mark.parametrize("name", ["torchscript-scripted", "torchscript-traced"])
def test_torchscript_archive_is_a_program_at_high(name: str) -> None:
    report = scan_paths(REPOS / "benign" / name)
    assert rules_of(report) == ["torchscript-program"]
    assert report.max_severity is Severity.HIGH


@pytest.mark.parametrize("name", ["torch-state-dict", "torch-optimizer-state"])
def test_torch_save_checkpoint_is_not_torchscript(name: str) -> None:
    report = scan_paths(REPOS / "benign" / name)
    assert not rules_of(report, Severity.LOW), report.findings
    assert "torchscript-program" not in {f.rule_id for f in report.findings}


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_torchscript_code_without_constants_pkl_is_still_a_program(tmp_path: Path) -> None:
    data = _zip(
        {"m/data.pkl": b"\x80\x02}q\x00.", "m/code/__torch__.py": b"def forward(self):\n  return 1\n"}
    )
    report = scan_bytes(tmp_path, data, "model.pt")
    assert "torchscript-program" in rules_of(report, Severity.HIGH)


def test_lite_interpreter_bytecode_is_a_program(tmp_path: Path) -> None:
    data = _zip({"m/data.pkl": b"\x80\x02}q\x00.", "m/bytecode.pkl": b"\x80\x02)."})
    report = scan_bytes(tmp_path, data, "model.ptl")
    assert "torchscript-program" in rules_of(report, Severity.HIGH)


@pytest.mark.parametrize("folder", ["code", "CODE"])  # miniz finds records in any case
def test_dangerous_operator_in_torchscript_code_stays_critical(tmp_path: Path, folder: str) -> None:
    data = _zip({
        "m/data.pkl": b"\x80\x02}q\x00.",
        "m/constants.pkl": b"\x80\x02).",
        f"m/{folder}/__torch__.py": b"def forward(self):\n  return torch.from_file('/etc/passwd')\n",
    })  # fmt: skip
    report = scan_bytes(tmp_path, data, "model.pt")
    assert {"torchscript-code", "torchscript-program"} <= set(rules_of(report, Severity.HIGH))
    assert report.max_severity is Severity.CRITICAL


def test_exported_program_with_symbolic_shapes_is_clean() -> None:
    """Real torch.export.save output (srepr expressions, a guard, raw weights)."""
    program = json.loads(_member(DYNAMIC, "/models/model.json"))
    assert program["guards_code"] and "Symbol(" in json.dumps(program)  # the fixture exercises both
    report = scan_paths(DYNAMIC)
    assert not rules_of(report), report.findings


def _member(path: Path, suffix: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(next(n for n in archive.namelist() if n.endswith(suffix)))


def _edited(path: Path, edit_program: object = None, extra: dict[str, bytes] | None = None) -> bytes:
    with zipfile.ZipFile(path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    if callable(edit_program):
        name = next(n for n in members if n.endswith("/models/model.json"))
        program = json.loads(members[name])
        edit_program(program)
        members[name] = json.dumps(program).encode()
    members.update(extra or {})
    return _zip(members)


@pytest.mark.parametrize(
    ("technique", "text", "severity"),
    [
        ("expr-import", "__import__('os').system('touch modeltrust-pwned')", Severity.CRITICAL),
        ("expr-attribute", "s0.func.__globals__", Severity.CRITICAL),
        ("expr-lambda", "(lambda: 1)()", Severity.HIGH),
        ("expr-unknown-function", "Function('f')(s0)", Severity.HIGH),
        ("expr-string-escape", "Symbol('s0\\'), print(1), (\\'')", Severity.HIGH),
    ],
)
def test_expression_that_sympify_would_run(
    tmp_path: Path, technique: str, text: str, severity: Severity
) -> None:
    def edit(program: dict[str, object]) -> None:
        program["range_constraints"] = {text: {"min_val": 2, "max_val": 8}}

    report = scan_bytes(tmp_path, _edited(DYNAMIC, edit), "model.pt2")
    found = [f for f in report.findings if f.rule_id == "pt2-python-code"]
    assert found and max(f.severity for f in found) is severity, (technique, report.findings)


@pytest.mark.parametrize(
    "guard",
    [
        "__import__('os').system('touch modeltrust-pwned') == 0",
        "L['x'].size()[0] == len(open('/etc/passwd').read())",
        "L['x'].__class__ is not None",
        "L['x'].size(*[0]) == 3 if print(1) else True",
        "max.__self__ is None",
        "math.__loader__ is None",
        "min(open('/etc/passwd'), 1) == 1",
    ],
)
def test_guard_that_is_not_a_shape_comparison(tmp_path: Path, guard: str) -> None:
    report = scan_bytes(tmp_path, _edited(DYNAMIC, lambda p: p.update(guards_code=[guard])), "model.pt2")
    assert "pt2-python-code" in rules_of(report, Severity.HIGH), report.findings


def test_pickled_member_is_walked_as_torch_load_reads_it(tmp_path: Path) -> None:
    payload = b"cos\nsystem\n(Vtouch modeltrust-pwned\ntR."
    report = scan_bytes(tmp_path, _edited(DYNAMIC, extra={"model/data/constants/opaque_obj_0": payload}),
                        "model.pt2")  # fmt: skip
    assert report.max_severity is Severity.CRITICAL, report.findings


def test_raw_weight_named_as_pickled_in_its_config_is_walked(tmp_path: Path) -> None:
    """The config decides what is raw: a weight it marks use_pickle is unpickled."""
    config_name = next(
        n for n in zipfile.ZipFile(DYNAMIC).namelist() if n.endswith("model_constants_config.json")
    )
    root = config_name.split("/", 1)[0]
    config = {
        "config": {"c": {"path_name": "tensor_0", "is_param": False, "use_pickle": True, "tensor_meta": None}}
    }
    extra = {
        config_name: json.dumps(config).encode(),
        f"{root}/data/constants/tensor_0": b"cos\nsystem\n(Vx\ntR.",
    }
    report = scan_bytes(tmp_path, _edited(DYNAMIC, extra=extra), "model.pt2")
    assert report.max_severity is Severity.CRITICAL, report.findings


def test_program_under_models_with_another_extension_is_checked(tmp_path: Path) -> None:
    """torch.export.load parses every member under models/ (it strips `.json` unchecked)."""
    program = json.loads(_member(DYNAMIC, "/models/model.json"))
    program["guards_code"] = ["__import__('os').system('touch modeltrust-pwned') == 0"]
    root = zipfile.ZipFile(DYNAMIC).namelist()[0].split("/", 1)[0]
    data = _edited(DYNAMIC, extra={f"{root}/models/extra.bin": json.dumps(program).encode()})
    report = scan_bytes(tmp_path, data, "model.pt2")
    assert any(f.rule_id == "pt2-python-code" and "extra.bin" in str(f.location) for f in report.findings)


def test_weight_raw_in_one_config_and_pickled_in_another_is_walked(tmp_path: Path) -> None:
    names = zipfile.ZipFile(DYNAMIC).namelist()
    root = names[0].split("/", 1)[0]
    entry = {"path_name": "tensor_0", "is_param": False, "tensor_meta": None}
    configs = {
        f"{root}/data/constants/a_model_constants_config.json": {
            "config": {"c": {**entry, "use_pickle": False}}
        },
        f"{root}/data/constants/b_model_constants_config.json": {
            "config": {"c": {**entry, "use_pickle": True}}
        },
    }
    extra = {name: json.dumps(config).encode() for name, config in configs.items()}
    extra[f"{root}/data/constants/tensor_0"] = b"cos\nsystem\n(Vx\ntR."
    report = scan_bytes(tmp_path, _edited(DYNAMIC, extra=extra), "model.pt2")
    assert report.max_severity is Severity.CRITICAL, report.findings


@pytest.mark.parametrize(
    "name", ["whole_module.pt", "state_dict.pt", "optimizer.pt", "legacy_state_dict.pt", "many_tensors.pt"]
)
def test_committed_torch_save_checkpoints_are_not_programs(name: str) -> None:
    report = scan_paths(FIXTURES / "benign" / name)
    assert "torchscript-program" not in {f.rule_id for f in report.findings}
    assert report.artifacts[0].scanner != "unverified"


def test_guards_torch_prints_for_a_transformer_are_clean(tmp_path: Path) -> None:
    """guards_code torch.export wrote for a TransformerEncoderLayer with a dynamic sequence."""
    guards = [
        "L['x'].size()[1] <= 64",
        "(L['x'].size()[1] // 2) <= L['x'].size()[1]",
        "(16*L['x'].size()[1]) != (16*max(1, L['x'].size()[1] // 2))",
        "math.floor(L['x'].size()[0] / 2) >= 1",
    ]
    report = scan_bytes(tmp_path, _edited(DYNAMIC, lambda p: p.update(guards_code=guards)), "model.pt2")
    assert not rules_of(report), report.findings


def test_pre_2_8_export_layout_is_read_the_same_way(tmp_path: Path) -> None:
    """torch.export.load's fallback: a top-level `version` and the program in
    serialized_exported_program.json beside serialized_*.pt members."""
    program = json.loads(_member(DYNAMIC, "/models/model.json"))
    program["range_constraints"] = {"__import__('os').system('touch modeltrust-pwned')": {"min_val": 2}}
    data = _zip({
        "version": b"8.0",
        "serialized_exported_program.json": json.dumps(program).encode(),
        "serialized_state_dict.pt": b"cos\nsystem\n(Vx\ntR.",
    })  # fmt: skip
    report = scan_bytes(tmp_path, data, "model.pt2")
    found = {(f.rule_id, f.location.members[-1] if f.location.members else "") for f in report.findings}
    assert ("pt2-python-code", "serialized_exported_program.json") in found, report.findings
    assert report.max_severity is Severity.CRITICAL
