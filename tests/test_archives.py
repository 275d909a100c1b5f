"""Zip and tar containers: torch's view of a zip, structural anomalies, bombs."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from modeltrust.config import Limits, ScanConfig
from modeltrust.engine import scan
from modeltrust.findings import Severity
from modeltrust.reader import BytesReader
from modeltrust.sources.ziparchive import read_zip

from .conftest import FIXTURES, rule_ids, scan_bytes


class Payload:
    def __reduce__(self) -> tuple[object, ...]:
        import os

        return (os.system, ("true",))


def make_zip(members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_tensor_payload_is_never_read(tmp_path: Path) -> None:
    """A torch zip whose tensor member is garbage still scans clean: the scan
    reads only the directory and pickle members."""
    data = (FIXTURES / "benign" / "state_dict.pt").read_bytes()
    reader = BytesReader(data)
    archive = read_zip(reader)
    tensor = next(m for m in archive.members if "/data/" in m.name)
    corrupted = bytearray(data)
    start = archive.data_offset(tensor)
    corrupted[start : start + tensor.compressed_size] = b"\xff" * tensor.compressed_size
    assert not scan_bytes(tmp_path, bytes(corrupted)).findings


def test_flag_bits_and_crc_are_reported_but_do_not_hide_members() -> None:
    report = scan(ScanConfig(targets=(str(FIXTURES / "malicious" / "torch_zip_encrypted_flag.pt"),)))
    assert {"archive-flags", "pickle-os-command"} <= rule_ids(report)
    report = scan(ScanConfig(targets=(str(FIXTURES / "malicious" / "torch_zip_bad_crc.pt"),)))
    assert {"archive-crc-mismatch", "pickle-os-command"} <= rule_ids(report)


def test_any_pkl_member_is_scanned(tmp_path: Path) -> None:
    torch_like = make_zip(
        {
            "model/data.pkl": pickle.dumps({"a": 1}),
            "model/version": b"3\n",
            "model/extra/hidden.pkl": pickle.dumps(Payload()),
        }
    )
    report = scan_bytes(tmp_path, torch_like)
    finding = next(f for f in report.findings if f.rule_id == "pickle-os-command")
    assert finding.location.members == ("model/extra/hidden.pkl",)
    assert report.artifacts[0].scanner == "pytorch"


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_names_and_traversal(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.txt", b"one")
        zf.writestr("a.txt", b"two")
        zf.writestr("../../etc/evil.txt", b"x")
    found = rule_ids(scan_bytes(tmp_path, buf.getvalue()))
    assert {"archive-duplicate-member", "archive-path-traversal"} <= found


def test_local_header_name_mismatch_is_malformed(tmp_path: Path) -> None:
    data = bytearray(make_zip({"model/data.pkl": pickle.dumps([1])}))
    local_name_at = 30
    data[local_name_at : local_name_at + 5] = b"xxxxx"
    assert "archive-malformed" in rule_ids(scan_bytes(tmp_path, bytes(data)))


def test_prefixed_archive_is_found_and_reported(tmp_path: Path) -> None:
    data = b"#!/bin/sh\nexit 0\n" + make_zip({"x/evil.pkl": pickle.dumps(Payload())})
    found = rule_ids(scan_bytes(tmp_path, data))
    assert {"archive-malformed", "pickle-os-command"} <= found


def test_zip64_archive(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", allowZip64=True) as zf,
        zf.open("big/evil.pkl", "w", force_zip64=True) as handle,
    ):
        handle.write(pickle.dumps(Payload()))
    assert "pickle-os-command" in rule_ids(scan_bytes(tmp_path, buf.getvalue()))


def test_deflate_bomb_is_stopped_by_the_ratio_limit(tmp_path: Path) -> None:
    bomb = make_zip({"zeros.bin": b"\0" * (50 << 20)}, zipfile.ZIP_DEFLATED)
    assert len(bomb) < 200_000
    path = tmp_path / "bomb.zip"
    path.write_bytes(bomb)
    limits = Limits(max_compression_ratio=100.0)
    report = scan(ScanConfig(targets=(str(path),), limits=limits))
    assert "archive-limit" in rule_ids(report)


def test_nesting_depth_limit(tmp_path: Path) -> None:
    data = pickle.dumps([1])
    for level in range(12):
        data = make_zip({f"level{level}.zip": data})
    report = scan_bytes(tmp_path, data)
    assert "archive-limit" in rule_ids(report)


def test_unreadable_zip_is_a_finding(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, b"PK\x03\x04" + b"\x00" * 100)
    assert {f.rule_id for f in report.findings} == {"archive-malformed"}
    assert report.findings[0].severity is Severity.MEDIUM


def test_tar_links_escaping_the_tree(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        link = tarfile.TarInfo("weights.bin")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
        body = pickle.dumps(Payload())
        member = tarfile.TarInfo("nested/model.pkl")
        member.size = len(body)
        tar.addfile(member, io.BytesIO(body))
    found = rule_ids(scan_bytes(tmp_path, buf.getvalue()))
    assert {"archive-path-traversal", "pickle-os-command"} <= found


def test_unknown_binary_is_unverified(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, bytes(range(256)) * 8)
    [finding] = report.findings
    assert finding.rule_id == "scan-unverified" and finding.severity is Severity.MEDIUM
    assert report.artifacts[0].scanner == "unverified"


def test_torch_tar_records_are_walked(tmp_path: Path) -> None:
    """The storages member interleaves pickles and raw data; a payload in a
    record after raw storage bytes is still found."""
    records = pickle.dumps(1, protocol=2)
    records += b"\x80\x02(X\x01\x00\x00\x00kX\x03\x00\x00\x00cpuctorch\nFloatStorage\ntq\x00."
    records += struct.pack("<q", 2) + b"\xff" * 8
    records += pickle.dumps(Payload(), protocol=2)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, body in {
            "sys_info": pickle.dumps({}),
            "pickle": pickle.dumps(1),
            "storages": records,
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    found = rule_ids(scan_bytes(tmp_path, buf.getvalue()))
    assert "pickle-os-command" in found


def test_lz4_frame_stream(tmp_path: Path) -> None:
    lz4_frame = pytest.importorskip("lz4.frame", reason="lz4 is an optional extra")
    data = lz4_frame.compress(pickle.dumps(Payload()))
    report = scan_bytes(tmp_path, data)
    assert report.artifacts[0].format == "lz4" and "pickle-os-command" in rule_ids(report)


def test_total_decompression_budget_spans_members(tmp_path: Path) -> None:
    members = {f"part{i}.bin": os.urandom(2 << 20) for i in range(5)}  # 10 MiB in all
    path = tmp_path / "many.zip"
    path.write_bytes(make_zip(members, zipfile.ZIP_DEFLATED))
    limits = Limits(max_total_decompressed_bytes=5 << 20)
    report = scan(ScanConfig(targets=(str(path),), limits=limits))
    limited = [f for f in report.findings if f.rule_id == "archive-limit"]
    assert limited and len(limited) < 5


def test_7z_members_are_scanned(tmp_path: Path) -> None:
    py7zr = pytest.importorskip("py7zr", reason="7z support is an optional extra")
    path = tmp_path / "model.7z"
    with py7zr.SevenZipFile(path, "w") as archive:
        archive.writestr(pickle.dumps(Payload()), "weights/model.pkl")
        archive.writestr(b"# card\n", "README.md")
    report = scan(ScanConfig(targets=(str(path),)))
    finding = next(f for f in report.findings if f.rule_id == "pickle-os-command")
    assert finding.location.members == ("weights/model.pkl",)


@pytest.mark.parametrize("method", [zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA])
def test_bzip2_and_lzma_members_are_scanned(tmp_path: Path, method: int) -> None:
    """np.load reads .npz members compressed with any zipfile method."""
    data = make_zip({"evil.npy": pickle.dumps(Payload())}, method)
    assert "pickle-os-command" in rule_ids(scan_bytes(tmp_path, data, "arrays.npz"))
