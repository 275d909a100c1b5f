"""TensorFlow checkpoints and SavedModel variables (tensor bundles) are verified,
not "unverified": the `.index` table walked to its end, its shards recorded as
tensor data when every tensor fits, `fingerprint.pb` read as a FingerprintDef.
The fixtures in fixtures/tf/ were written by TensorFlow 2.21 (fixtures/tf_fixtures.py)."""

from __future__ import annotations

import contextlib
import shutil
import struct
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.reader import BytesReader
from modeltrust.scanners.tfbundle import TABLE_MAGIC, BundleError, read_bundle

from .conftest import FIXTURES, scan_paths

TF = FIXTURES / "tf"
INDEXES = sorted(TF.rglob("*.index"))


def _severe(report: object) -> list[str]:
    return [
        f"{f.severity.label} {f.rule_id} {f.location}: {f.message}"
        for f in report.findings  # type: ignore[attr-defined]
        if f.severity >= Severity.MEDIUM or f.unverified
    ]


def test_tensorflow_writes_pass_with_their_shards_recorded_as_data() -> None:
    report = scan_paths(TF)
    assert _severe(report) == []
    scanners = {Path(a.path).name: a.scanner for a in report.artifacts}
    assert scanners["variables.index"] == scanners["model.ckpt.index"] == "tf-bundle"
    subjects = sorted(f.subject for f in report.findings if f.rule_id == "format-data")
    assert subjects == ["tf-bundle-data"] * 3 + ["tf-fingerprint"]


@pytest.mark.parametrize("index", INDEXES, ids=lambda p: p.parent.name)
def test_every_tensor_span_is_read(index: Path) -> None:
    bundle = read_bundle(BytesReader(index.read_bytes()))
    shard = index.with_name(index.name.replace(".index", ".data-00000-of-00001"))
    assert bundle.num_shards == 1
    assert bundle.spans and all(s == 0 and o + n <= shard.stat().st_size for s, o, n in bundle.spans)


def test_many_entries_span_several_blocks() -> None:
    data = (TF / "ckpt_many" / "model.ckpt.index").read_bytes()
    assert len(read_bundle(BytesReader(data)).spans) > 300
    assert len(data) > 3 * 4096  # TensorFlow's 4 KiB table blocks


def test_every_single_byte_change_walks_or_is_malformed() -> None:
    """Garbled tables end in BundleError (or a walk), never in another exception."""
    data = (TF / "saved" / "variables" / "variables.index").read_bytes()
    for at in range(len(data) - len(TABLE_MAGIC)):
        for value in (0x00, 0xFF, data[at] ^ 0x01):
            mutated = data[:at] + bytes([value]) + data[at + 1 :]
            with contextlib.suppress(BundleError):
                read_bundle(BytesReader(mutated))


def test_hostile_footer_handles_are_malformed() -> None:
    data = bytearray((TF / "ckpt" / "model.ckpt.index").read_bytes())
    footer = len(data) - 48
    data[footer : footer + 40] = b"\x00\x00" + b"\x80\x80\x80\x80\x10\xff\xff\xff\xff\x0f" + b"\x00" * 28
    with pytest.raises(BundleError, match="runs past"):
        read_bundle(BytesReader(bytes(data)))


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "ckpt"
    shutil.copytree(TF / "ckpt", target)
    return target


def test_a_shard_shorter_than_its_tensors_stays_unverified(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    shard = folder / "model.ckpt.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:40])
    report = scan_paths(folder)
    assert [f.rule_id for f in report.findings if f.unverified] == ["scan-unverified"]


def test_a_shard_without_a_walkable_index_stays_unverified(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    index = folder / "model.ckpt.index"
    raw = bytearray(index.read_bytes())
    struct.pack_into("<I", raw, 0x30, 0xFFFFFFFF)  # inside the data block: garbled entries
    index.write_bytes(bytes(raw))
    report = scan_paths(folder)
    unverified = sorted(f.rule_id for f in report.findings if f.unverified)
    assert "scan-unverified" in unverified and len(unverified) == 2, unverified


def test_a_shard_alone_is_unverified(tmp_path: Path) -> None:
    shard = tmp_path / "model.ckpt.data-00000-of-00001"
    shard.write_bytes((TF / "ckpt" / shard.name).read_bytes())
    assert [f.rule_id for f in scan_paths(shard).findings] == ["scan-unverified"]


def test_a_fingerprint_with_unknown_fields_is_unverified(tmp_path: Path) -> None:
    folder = tmp_path / "saved"
    shutil.copytree(TF / "saved", folder)
    fingerprint = folder / "fingerprint.pb"
    fingerprint.write_bytes(fingerprint.read_bytes() + b"\x42\x03abc")  # field 8, LEN
    report = scan_paths(folder)
    assert [f.location.path.endswith("fingerprint.pb") for f in report.findings if f.unverified] == [True]
