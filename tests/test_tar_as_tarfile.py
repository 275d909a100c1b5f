"""The tar reader lists exactly what Python's tarfile lists: same names, types,
sizes and data offsets, for archives tarfile writes in every format and for
the hostile layouts in fixtures/ (tarfile only parses headers here; nothing
is extracted)."""

from __future__ import annotations

import io
import sys
import tarfile
from pathlib import Path

import pytest

from modeltrust.reader import BytesReader
from modeltrust.sources.tararchive import TarFormatError, header_is_valid, read_tar

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
import loader_polyglots as lp  # fixtures/ is not a package

_KIND = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.CONTTYPE: "file", tarfile.DIRTYPE: "dir"}
_KIND |= {tarfile.SYMTYPE: "symlink", tarfile.LNKTYPE: "hardlink"}


def tarfile_listing(data: bytes) -> list[tuple[str, str, int, int, str]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
        return [
            (m.name, _KIND.get(m.type, "other"), m.size if m.isreg() else 0, m.offset_data, m.linkname)
            for m in archive.getmembers()
        ]


def our_listing(data: bytes) -> list[tuple[str, str, int, int, str]]:
    members, _problems = read_tar(BytesReader(data), 1000)
    return [(m.name, m.type, m.size, m.data_offset, m.link_target) for m in members]


def _written(fmt: int) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for name, data in (("a" * 150 + "/weights.bin", b"x" * 700), ("short.txt", b"hi"), ("é/ü.txt", b"u")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        folder = tarfile.TarInfo("dir/")
        folder.type = tarfile.DIRTYPE
        archive.addfile(folder)
        link = tarfile.TarInfo("link")
        link.type, link.linkname = tarfile.SYMTYPE, "b" * (20 if fmt == tarfile.USTAR_FORMAT else 120)
        archive.addfile(link)
    return buffer.getvalue()


WRITTEN = {
    f"tarfile-{n}": _written(f) for n, f in (("ustar", tarfile.USTAR_FORMAT), ("gnu", tarfile.GNU_FORMAT))
}
WRITTEN["tarfile-pax"] = _written(tarfile.PAX_FORMAT)
HOSTILE = {name: make() for name, make, loader, _t in lp.MALICIOUS if name.endswith(".tar")}


@pytest.mark.parametrize("name", sorted(WRITTEN) + sorted(HOSTILE))
def test_listing_matches_tarfile(name: str) -> None:
    data = WRITTEN.get(name) or HOSTILE[name]
    assert our_listing(data) == tarfile_listing(data)


def test_global_pax_size_changes_sizes_not_header_positions() -> None:
    pax = lp.pax_record("size", "3")
    data = (
        lp.tar_header(b"PaxHeaders/global", len(pax), b"g") + lp.tar_data(pax)
        + lp.tar_header(b"one", 600) + lp.tar_data(b"1" * 600)
        + lp.tar_header(b"two", 5) + lp.tar_data(b"2" * 5) + lp.TAR_END
    )  # fmt: skip
    assert our_listing(data) == tarfile_listing(data)


def test_number_fields_as_tarfile_reads_them() -> None:
    base256 = b"\x80" + (700).to_bytes(11, "big")  # ends in NUL bytes that must not be stripped
    nul_cut = b"0001274\x00junk"  # octal text ends at the first NUL
    for field in (base256, nul_cut[:12]):
        data = lp.tar_header(b"file", 0, size_field=field) + lp.tar_data(b"z" * 700) + lp.TAR_END
        assert our_listing(data) == tarfile_listing(data)


def test_invalid_header_after_the_first_ends_the_listing_quietly() -> None:
    data = lp.tar_header(b"ok", 2) + lp.tar_data(b"ok") + b"\x01" * 512 + lp.TAR_END
    assert [m[0] for m in our_listing(data)] == [m[0] for m in tarfile_listing(data)] == ["ok"]
    with pytest.raises(TarFormatError):
        read_tar(BytesReader(b"\x01" * 1024), 10)


def test_v7_header_without_magic_is_a_tar() -> None:
    from modeltrust import detect

    block = lp.tar_header(b"storages", 10, magic=b"")
    assert header_is_valid(block)
    assert detect.sniff(BytesReader(block + lp.tar_data(b"0123456789") + lp.TAR_END)) == detect.TAR


def test_hostile_layouts_are_flagged(tmp_path: Path) -> None:
    from modeltrust.findings import Severity

    from .conftest import scan_paths

    for name in HOSTILE:
        report = scan_paths(FIXTURES / "malicious" / name)
        assert report.max_severity is not None and report.max_severity >= Severity.HIGH, name
