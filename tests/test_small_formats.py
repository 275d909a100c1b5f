"""SentencePiece, Flax msgpack and TFLite files are verified (not "unverified"):
the real libraries write the benign ones and agree on what is broken."""

from __future__ import annotations

import struct
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from modeltrust.findings import Severity

from .conftest import FIXTURES, ROOT, rule_ids, scan_bytes, scan_paths

sys.path.insert(0, str(ROOT / "fixtures"))
import datasets_fixtures as made


@pytest.mark.parametrize(
    "name, scanner",
    [("tokenizer.model", "sentencepiece"), ("flax_model.msgpack", "msgpack"), ("model.tflite", "tflite")],
)
def test_ordinary_files_are_verified(name: str, scanner: str) -> None:
    report = scan_paths(FIXTURES / "benign" / name)
    assert report.artifacts[0].scanner == scanner
    assert not report.at_or_above(Severity.LOW)


# --- SentencePiece ---------------------------------------------------------------------


def test_sentencepiece_with_the_nfkc_charsmap_is_clean(tmp_path: Path) -> None:
    pytest.importorskip("sentencepiece")
    report = scan_bytes(tmp_path, made.sentencepiece_model("nmt_nfkc"), "tokenizer.model")
    assert report.artifacts[0].scanner == "sentencepiece" and not report.findings


def _charsmap_overflow(model: bytes) -> bytes:
    """Raise the trie size prefix of the precompiled charsmap past its blob."""
    at = model.find(b"\x12", model.find(b"nmt_nfkc") + 8)
    length_pos = at + 1
    length, size = 0, 0
    for shift, byte in enumerate(model[length_pos : length_pos + 5]):
        length |= (byte & 0x7F) << (7 * shift)
        size += 1
        if not byte & 0x80:
            break
    start = length_pos + size
    return model[:start] + struct.pack("<I", length) + model[start + 4 :]


def test_sentencepiece_charsmap_that_does_not_fit_is_refused_by_both(tmp_path: Path) -> None:
    spm = pytest.importorskip("sentencepiece")
    broken = _charsmap_overflow(made.sentencepiece_model("nmt_nfkc"))
    with pytest.raises(Exception):  # noqa: B017 - the library's own error type varies
        spm.SentencePieceProcessor(model_proto=broken)
    assert "sentencepiece-malformed" in rule_ids(scan_bytes(tmp_path, broken, "tokenizer.model"))


def test_truncated_sentencepiece_is_malformed(tmp_path: Path) -> None:
    data = (FIXTURES / "benign" / "tokenizer.model").read_bytes()
    report = scan_bytes(tmp_path, data[: len(data) - 3], "tokenizer.model")
    assert report.artifacts[0].scanner == "sentencepiece"
    assert "sentencepiece-malformed" in rule_ids(report)


# --- msgpack -------------------------------------------------------------------------------


def _unpacks(data: bytes) -> bool:
    msgpack = pytest.importorskip("msgpack", reason="the verdicts are compared with msgpack (fixtures extra)")
    try:
        msgpack.unpackb(data, strict_map_key=False)
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
    return True


def _flax(suffix: bytes = b"", cut: int = 0) -> Callable[[], bytes]:
    def build() -> bytes:
        pytest.importorskip("msgpack", reason="the msgpack cases are written by msgpack (fixtures extra)")
        data = made.flax_msgpack() + suffix
        return data[: len(data) - cut]

    return build


def _raw(data: bytes) -> Callable[[], bytes]:
    return lambda: data


@pytest.mark.parametrize(
    "build, accepted",
    [
        (_flax(), True),
        (_flax(suffix=b"\x00"), False),  # trailing data
        (_flax(cut=5), False),  # truncated inside the last array
        (_raw(b"\x81\xa1a" + b"\x91" * 2000 + b"\x00"), False),  # nested past the bound
        (_raw(b"\x81\xa1a\xdd\xff\xff\xff\xff"), False),  # a 4-billion-item array in 8 bytes
        (_raw(b"\x82\xa1a\x01\xa1b\xc1"), False),  # 0xc1 is never used
    ],
    ids=["flax", "trailing", "truncated", "deep", "huge-count", "c1"],
)
def test_msgpack_verdict_matches_the_library(
    tmp_path: Path, build: Callable[[], bytes], accepted: bool
) -> None:
    data = build()
    report = scan_bytes(tmp_path, data, "flax_model.msgpack")
    assert report.artifacts[0].scanner == "msgpack"
    assert ("msgpack-malformed" in rule_ids(report)) != accepted
    assert _unpacks(data) == accepted


def test_unknown_msgpack_extension_codes_are_named(tmp_path: Path) -> None:
    pytest.importorskip("msgpack", reason="written by msgpack (fixtures extra)")
    report = scan_bytes(tmp_path, made.flax_msgpack(extra_ext=True), "flax_model.msgpack")
    found = {f.rule_id: f for f in report.findings}
    assert found["msgpack-extension"].severity == Severity.INFO
    assert "42 x1" in found["msgpack-extension"].subject


# --- TFLite ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ops, expected",
    [
        ([(made.ADD, "")], {}),
        ([(made.CUSTOM, "TFLite_Detection_PostProcess")], {}),
        ([(made.CUSTOM, "AcmeFastNMS")], {"tflite-custom-op": Severity.MEDIUM}),
        ([(made.CUSTOM, "FlexAddV2")], {"tflite-custom-op": Severity.MEDIUM}),
        ([(made.CUSTOM, "FlexReadFile")], {"tflite-file-op": Severity.HIGH}),
    ],
)
def test_tflite_operators(tmp_path: Path, ops: list[tuple[int, str]], expected: dict[str, Severity]) -> None:
    pytest.importorskip("flatbuffers")
    report = scan_bytes(tmp_path, made.tflite_model(ops), "model.tflite")
    assert {f.rule_id: f.severity for f in report.findings} == expected


def test_tflite_custom_ops_match_the_reference_parser(tmp_path: Path) -> None:
    tflite = pytest.importorskip("tflite")
    ops = [(made.ADD, ""), (made.CUSTOM, "AcmeOne"), (made.CUSTOM, "AcmeTwo")]
    data = made.tflite_model(ops)
    model = tflite.Model.GetRootAsModel(data, 0)
    theirs = {
        model.OperatorCodes(i).CustomCode().decode()
        for i in range(model.OperatorCodesLength())
        if model.OperatorCodes(i).CustomCode()
    }
    ours = {f.subject for f in scan_bytes(tmp_path, data, "model.tflite").findings}
    assert ours == theirs == {"AcmeOne", "AcmeTwo"}


def test_truncated_tflite_is_malformed(tmp_path: Path) -> None:
    pytest.importorskip("flatbuffers")
    data = made.tflite_model([(made.ADD, "")])
    # FlatBuffers are built back to front: the operator codes are at the end.
    report = scan_bytes(tmp_path, data[:-40], "model.tflite")
    assert "tflite-malformed" in rule_ids(report)
