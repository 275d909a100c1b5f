"""File digests computed once and shared by the scan, the BOM, signing,
verifying and attesting.

- `hash_files` hashes many files in parallel threads (hashlib releases the GIL
  while it digests a large buffer, so threads use every core), reading each
  file sequentially in 1 MiB pieces into one reused buffer per thread: memory
  stays flat whatever the file sizes. Digests a caller already holds (a Hub
  download verified against the Hub's sha256) are passed as `known` and reused.
- `PrefixHasher` wraps the reader a scanner reads through and hashes the bytes
  it reads as long as they extend the part already hashed from offset 0. A
  scanner that reads a whole file in order (pickles, code, configs) thereby
  hashes it in the same read; whatever it did not read is hashed afterwards
  from where it stopped (`HashPool` does that in parallel while the scan moves
  on). Header-only scanners (safetensors, GGUF, ONNX, torch zips) read a few
  KiB, so for them nearly all bytes are read once, by the hasher.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from .reader import ByteReader

CHUNK = 1 << 20
"""Bytes per read, one reused buffer per thread: a buffer that stays in the CPU
cache between the read and the digest costs ~4 % less CPU than 8 MiB ones."""
MAX_WORKERS = 8

PathLike = str | os.PathLike[str]
K = TypeVar("K", bound=PathLike)


@dataclass(frozen=True, slots=True)
class FileDigest:
    sha256: str
    """Lower-case hex."""
    size: int
    """Bytes hashed."""


def default_workers(jobs: int) -> int:
    """One thread per usable core (hashing is CPU-bound once the file is cached),
    never more than there are files."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(jobs, cores, MAX_WORKERS))


def hash_file(path: PathLike, hasher: Any = None, start: int = 0) -> FileDigest:
    """sha256 of a file; with `hasher` (holding bytes [0, start) already) only
    the rest is read."""
    digest = hasher if hasher is not None else hashlib.sha256()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    size = start
    with open(path, "rb", buffering=0) as handle:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        handle.seek(start)
        while n := handle.readinto(view):
            digest.update(view[:n])
            size += n
    return FileDigest(digest.hexdigest(), size)


def hash_files(
    paths: Iterable[K],
    *,
    workers: int | None = None,
    known: Mapping[K, FileDigest] | None = None,
) -> dict[K, FileDigest]:
    """sha256 and size of every file, keyed as the caller named it.

    A `known` digest is reused without reading the file when its size still
    matches the file on disk (a cheap guard against a file replaced since it
    was verified); otherwise the file is hashed again.
    """
    wanted = list(dict.fromkeys(paths))
    known = known or {}
    results: dict[K, FileDigest] = {}
    todo: list[tuple[int, K]] = []
    for path in wanted:
        size = os.stat(path).st_size
        prior = known.get(path)
        if prior is not None and prior.size == size:
            results[path] = prior
        else:
            todo.append((size, path))
    # Largest first, so that one big file does not start last and run alone.
    todo.sort(key=lambda item: -item[0])
    count = workers if workers is not None else default_workers(len(todo))
    if count <= 1 or len(todo) <= 1:
        for _, path in todo:
            results[path] = hash_file(path)
    else:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="modeltrust-hash") as pool:
            futures = [(path, pool.submit(hash_file, path)) for _, path in todo]
            for path, future in futures:
                results[path] = future.result()
    return {path: results[path] for path in wanted}


class PrefixHasher:
    """A ByteReader that hashes what a scanner reads, while the reads extend
    the hashed prefix [0, covered). Reads elsewhere pass through unhashed;
    `finish` hashes the rest. Not thread-safe (the engine scans one file on
    one thread)."""

    def __init__(self, reader: ByteReader) -> None:
        self._reader = reader
        self._hasher = hashlib.sha256()
        self._covered = 0

    @property
    def size(self) -> int:
        return self._reader.size

    @property
    def covered(self) -> int:
        """Bytes from offset 0 already hashed."""
        return self._covered

    def read_at(self, offset: int, length: int) -> bytes:
        data = self._reader.read_at(offset, length)
        end = offset + len(data)
        if offset <= self._covered < end:
            self._hasher.update(memoryview(data)[self._covered - offset :])
            self._covered = end
        return data

    def state(self) -> tuple[Any, int]:
        """A copy of the hash state and the offset it reached, to continue elsewhere."""
        return self._hasher.copy(), self._covered

    def finish(self) -> FileDigest:
        """Hash the unread rest through the wrapped reader (for non-file readers)."""
        hasher, offset = self.state()
        while offset < self._reader.size:
            data = self._reader.read_at(offset, CHUNK)
            if not data:
                break
            hasher.update(data)
            offset += len(data)
        return FileDigest(hasher.hexdigest(), offset)


def _finish(path: PathLike, hasher: Any, offset: int, scanned_size: int) -> FileDigest:
    digest = hash_file(path, hasher, offset)
    # The file changed size since the scan read its start: the prefix no longer
    # belongs to these bytes, so hash them all again.
    return digest if digest.size == scanned_size else hash_file(path)


class HashPool:
    """Finishes digests on worker threads while the caller goes on scanning.

    with HashPool() as pool:
        pool.finish_file(key, path, prefix_hasher)   # or pool.add(key, digest)
    pool.results   # key -> FileDigest
    """

    def __init__(self, workers: int | None = None) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=workers or default_workers(MAX_WORKERS), thread_name_prefix="modeltrust-hash"
        )
        self._pending: dict[object, Future[FileDigest]] = {}
        self.results: dict[object, FileDigest] = {}
        self.errors: dict[object, str] = {}
        """key -> why its file could not be hashed (removed or unreadable since the scan)."""

    def add(self, key: object, digest: FileDigest) -> None:
        self.results[key] = digest

    def submit(self, key: object, call: Callable[[], FileDigest]) -> None:
        self._pending[key] = self._pool.submit(call)

    def finish_file(self, key: object, path: PathLike, prefix: PrefixHasher) -> None:
        """The rest of `path` after what the scan already hashed; done at once
        when the scan read the whole file."""
        hasher, offset = prefix.state()
        if offset >= prefix.size:
            self.add(key, FileDigest(hasher.hexdigest(), offset))
        else:
            self.submit(key, lambda: _finish(path, hasher, offset, prefix.size))

    def __enter__(self) -> HashPool:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                for key, future in self._pending.items():
                    try:
                        self.results[key] = future.result()
                    except OSError as error:  # one file's problem, not the whole run's
                        self.errors[key] = error.strerror or str(error)
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
