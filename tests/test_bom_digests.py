"""digests.py: one pass of hashing shared by the scan, the BOM and provenance."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltrust.config import ScanConfig
from modeltrust.digests import CHUNK, FileDigest, HashPool, PrefixHasher, hash_file, hash_files
from modeltrust.engine import scan
from modeltrust.reader import BytesReader, FileReader

from .conftest import FIXTURES


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_files(root: Path) -> dict[Path, bytes]:
    blobs = {
        "empty": b"",
        "small.txt": b"hello\n",
        "exact-chunk.bin": os.urandom(CHUNK),
        "over-chunk.bin": os.urandom(CHUNK + 12345),
    }
    paths = {}
    for name, data in blobs.items():
        (root / name).write_bytes(data)
        paths[root / name] = data
    return paths


def test_hash_files_matches_hashlib_in_parallel_and_serially(tmp_path: Path) -> None:
    files = write_files(tmp_path)
    expected = {p: FileDigest(sha(d), len(d)) for p, d in files.items()}
    assert hash_files(files, workers=4) == expected
    assert hash_files(files, workers=1) == expected
    # keys come back as the caller named them, in the caller's order
    as_text = [str(p) for p in files]
    assert list(hash_files(as_text)) == as_text


def test_known_digest_is_reused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x" * 100)
    # Deliberately not the real digest: proves the file was not hashed again.
    verified = FileDigest("ab" * 32, 100)
    assert hash_files([path], known={path: verified}) == {path: verified}


def test_known_digest_of_a_file_that_changed_size_is_recomputed(tmp_path: Path) -> None:
    path = tmp_path / "weights.bin"
    path.write_bytes(b"x" * 101)
    stale = FileDigest("ab" * 32, 100)
    assert hash_files([path], known={path: stale}) == {path: FileDigest(sha(b"x" * 101), 101)}


def test_hash_file_continues_a_prefix(tmp_path: Path) -> None:
    data = os.urandom(1000)
    path = tmp_path / "f"
    path.write_bytes(data)
    started = hashlib.sha256(data[:300])
    assert hash_file(path, started, 300) == FileDigest(sha(data), 1000)


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(min_size=0, max_size=3000),
    reads=st.lists(st.tuples(st.integers(0, 3100), st.integers(0, 1200)), max_size=12),
)
def test_prefix_hasher_is_right_whatever_the_scanner_reads(data: bytes, reads: list[tuple[int, int]]) -> None:
    prefix = PrefixHasher(BytesReader(data))
    for offset, length in reads:
        assert prefix.read_at(offset, length) == data[offset : offset + length]
    assert prefix.finish() == FileDigest(sha(data), len(data))


def test_a_whole_read_hashes_in_the_same_pass(tmp_path: Path) -> None:
    data = os.urandom(5000)
    path = tmp_path / "f"
    path.write_bytes(data)
    with FileReader(path) as reader:
        prefix = PrefixHasher(reader)
        for start in range(0, len(data), 1024):
            prefix.read_at(start, 1024)
        assert prefix.covered == len(data)
        # nothing left to read: the pool records it at once, without a thread
        pool = HashPool(workers=1)
        with pool:
            pool.finish_file("k", Path("/nonexistent"), prefix)
    assert pool.results == {"k": FileDigest(sha(data), len(data))}


def test_pool_rehashes_a_file_that_changed_size_after_the_scan(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 4000)
    with FileReader(path) as reader:
        prefix = PrefixHasher(reader)
        prefix.read_at(0, 100)
    path.write_bytes(b"b" * 5000)
    with HashPool(workers=1) as pool:
        pool.finish_file("k", path, prefix)
    assert pool.results["k"] == FileDigest(sha(b"b" * 5000), 5000)


def test_scan_records_every_files_sha256_whatever_its_scanner_reads() -> None:
    # pickles are read whole, safetensors and torch zips only in part
    names = ["model.safetensors", "state_dict.pt", "builtins_p4.pkl", "config.json", "array.npy"]
    paths = [FIXTURES / "benign" / n for n in names]
    report = scan(ScanConfig(targets=tuple(str(p) for p in paths), hash_files=True))
    assert {a.path: a.sha256 for a in report.artifacts} == {str(p): sha(p.read_bytes()) for p in paths}


def test_scan_without_hash_records_none() -> None:
    report = scan(ScanConfig(targets=(str(FIXTURES / "benign" / "config.json"),)))
    assert [a.sha256 for a in report.artifacts] == [None]


def test_a_pickle_is_hashed_in_the_scans_own_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import modeltrust.digests as digests

    def no_second_read(*args: object) -> FileDigest:
        raise AssertionError("the file was read a second time")

    monkeypatch.setattr(digests, "hash_file", no_second_read)
    path = FIXTURES / "malicious" / "os_system_p4.pkl"
    report = scan(ScanConfig(targets=(str(path),), hash_files=True))
    assert report.artifacts[0].sha256 == sha(path.read_bytes())


def test_a_file_that_vanishes_before_it_is_hashed_is_one_files_problem(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 4000)
    with FileReader(path) as reader:
        prefix = PrefixHasher(reader)
        prefix.read_at(0, 100)
    path.unlink()
    with HashPool(workers=1) as pool:
        pool.finish_file("gone", path, prefix)
        pool.add("kept", FileDigest("00" * 32, 1))
    assert "gone" in pool.errors and "gone" not in pool.results
    assert pool.results == {"kept": FileDigest("00" * 32, 1)}
