"""XGBoost binary models (UBJSON) are verified, not "unverified": a structural
walk that accepts every model XGBoost writes and refuses what its parser could
read differently (truncated, trailing bytes, counts that cannot fit, nesting bombs)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from modeltrust import ScanConfig, scan
from modeltrust.findings import Severity
from modeltrust.reader import BytesReader
from modeltrust.scanners.ubjson import MAX_DEPTH, UbjsonError, walk


def length(n: int) -> bytes:
    return b"L" + struct.pack(">q", n)


def key(name: str) -> bytes:
    raw = name.encode()
    return b"U" + bytes([len(raw)]) + raw


def string(text: str) -> bytes:
    raw = text.encode()
    return b"S" + length(len(raw)) + raw


# Every marker draft 12 defines, in the shapes XGBoost and other writers use.
KITCHEN_SINK = (
    b"{"
    + key("null") + b"Z"
    + key("flags") + b"[TF]"
    + key("ints") + b"[i\xffU\x01I\x00\x02l\x00\x00\x00\x03" + length(4) + b"]"
    + key("floats") + b"[d\x3f\x80\x00\x00D" + struct.pack(">d", 2.5) + b"]"
    + key("char") + b"Cx"
    + key("big") + b"H" + b"U\x0512345"
    + key("text") + string("ümlaut")
    + key("noop") + b"NNZ"
    + key("typed") + b"[$d#U\x03" + struct.pack(">fff", 1, 2, 3)
    + key("counted") + b"[#U\x02" + string("a") + b"i\x01"
    + key("typed_obj") + b"{$i#U\x02" + key("a") + b"\x01" + key("b") + b"\x02"
    + key("counted_obj") + b"{#U\x01" + key("x") + b"T"
    + key("nested_typed") + b"[$[#U\x02" + b"$U#U\x01\x07" + b"]"  # items omit their marker
    + key("empty_typed") + b"[$Z#L\x00\x00\x00\x00\x00\x00\x00\x05"
    + key("empty") + b"{}"
    + b"}"
)  # fmt: skip


def test_kitchen_sink_walks_to_its_end() -> None:
    assert walk(BytesReader(KITCHEN_SINK)) == len(KITCHEN_SINK)


@pytest.mark.parametrize("cut", range(1, len(KITCHEN_SINK)))
def test_every_truncation_is_malformed(cut: int) -> None:
    data = KITCHEN_SINK[:cut]
    try:
        end = walk(BytesReader(data))
    except UbjsonError:
        return
    pytest.fail(f"a {cut}-byte prefix walked to {end} without an error")


@pytest.mark.parametrize(
    ("technique", "data"),
    [
        ("count-past-end", b"[$d#L" + struct.pack(">q", 2**61) + b"\x00" * 8),
        ("negative-count", b"[#i\xff]"),
        ("negative-string-length", b"[Si\xfe]"),
        ("object-count-past-end", b"{#L" + struct.pack(">q", 2**40) + key("a") + b"Z}"),
        ("string-past-end", b"[" + b"S" + length(2**40) + b"ab]"),
        ("depth-bomb", b"[" * (MAX_DEPTH + 10) + b"]" * (MAX_DEPTH + 10)),
        ("unknown-marker", b"[Q]"),
        ("typed-without-count", b"[$d\x00\x00\x00\x00]"),
        ("key-not-integer-length", b"{S" + length(1) + b"a" + b"Z}"),
        ("no-op-typed", b"[$N#U\x01]"),
    ],
)
def test_hostile_structures_are_malformed(technique: str, data: bytes) -> None:
    with pytest.raises(UbjsonError):
        walk(BytesReader(data))


def _scan(tmp_path: Path, data: bytes, name: str = "model.ubj") -> object:
    path = tmp_path / name
    path.write_bytes(data)
    return scan(ScanConfig(targets=(str(path),)))


def test_a_valid_file_is_scanned_as_ubjson_and_passes(tmp_path: Path) -> None:
    report = _scan(tmp_path, KITCHEN_SINK)
    assert report.artifacts[0].scanner == "ubjson"  # type: ignore[attr-defined]
    assert not report.findings  # type: ignore[attr-defined]


def test_trailing_bytes_are_unverified(tmp_path: Path) -> None:
    report = _scan(tmp_path, KITCHEN_SINK + b"\x80\x04K\x01.")
    (finding,) = report.findings  # type: ignore[attr-defined]
    assert finding.rule_id == "ubjson-malformed"
    assert finding.unverified and finding.severity >= Severity.MEDIUM
    assert "bytes follow the value" in finding.message


def test_xgboost_models_pass(tmp_path: Path) -> None:
    xgb = pytest.importorskip("xgboost", reason="models written by xgboost (fixtures extra)")
    np = pytest.importorskip("numpy")
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 3)), np.arange(40) % 3
    booster = xgb.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 2, "nthread": 1},
        xgb.DMatrix(x, label=y, feature_names=["a", "b", "c"]),
        num_boost_round=2,
    )
    booster.save_model(tmp_path / "model.ubj")
    (tmp_path / "raw.bin").write_bytes(bytes(booster.save_raw("ubj")))
    for name in ("model.ubj", "raw.bin"):
        data = (tmp_path / name).read_bytes()
        assert walk(BytesReader(data)) == len(data)
    report = scan(ScanConfig(targets=(str(tmp_path),)))
    assert {a.scanner for a in report.artifacts} == {"ubjson"}
    assert not report.findings
    # The truncated file is refused by xgboost too: both call it broken.
    cut = tmp_path / "cut.ubj"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(xgb.core.XGBoostError):
        xgb.Booster(model_file=str(cut))
    report = scan(ScanConfig(targets=(str(cut),)))
    assert [f.rule_id for f in report.findings] == ["ubjson-malformed"]
