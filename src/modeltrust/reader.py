"""Random-access byte readers: the one interface every scanner reads through.

A scanner never opens a path. It gets a `ByteReader` (a size and `read_at`),
so the same scanner serves a local file, a member of an archive, a decompressed
stream or byte ranges of a file on a model hub (sources/http.py).
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from typing import Protocol, runtime_checkable


class TooLarge(Exception):
    """A bounded read or decompression went past its limit."""


@runtime_checkable
class ByteReader(Protocol):
    @property
    def size(self) -> int: ...

    def read_at(self, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset`; fewer only at the end."""
        ...


class BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data

    @property
    def size(self) -> int:
        return len(self._data)

    def read_at(self, offset: int, length: int) -> bytes:
        return self._data[offset : offset + max(length, 0)]


class FileReader:
    """A local file read with pread (no shared file position, so threads may share it)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._adopt(os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0)))

    def _adopt(self, fd: int) -> None:
        self._fd = fd
        self._size = os.fstat(fd).st_size

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if length <= 0 or offset >= self._size:
            return b""
        return os.pread(self._fd, min(length, self._size - offset), offset)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        # Archive members inflated to temp files are handed to scanners that
        # do not close them: the descriptor goes with the reader (a fuzz worker
        # ran out of descriptors after 78,000 zips).
        if getattr(self, "_fd", -1) >= 0:
            self.close()

    def __enter__(self) -> FileReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SliceReader:
    """A window [offset, offset+size) of another reader, e.g. a stored zip member."""

    def __init__(self, parent: ByteReader, offset: int, size: int) -> None:
        self._parent = parent
        self._offset = offset
        self._size = max(0, min(size, parent.size - offset))

    @property
    def size(self) -> int:
        return self._size

    def read_at(self, offset: int, length: int) -> bytes:
        if offset >= self._size:
            return b""
        length = min(length, self._size - offset)
        return self._parent.read_at(self._offset + offset, length)


class CountingReader:
    """Passes reads through and remembers how far into the source they went
    (how much compressed input a decompressor has consumed)."""

    def __init__(self, source: ByteReader) -> None:
        self._source = source
        self.consumed = 0

    @property
    def size(self) -> int:
        return self._source.size

    def read_at(self, offset: int, length: int) -> bytes:
        data = self._source.read_at(offset, length)
        self.consumed = max(self.consumed, offset + len(data))
        return data


def read_all(reader: ByteReader, limit: int) -> bytes:
    """The whole reader as bytes, refusing more than `limit`."""
    if reader.size > limit:
        raise TooLarge(f"{reader.size} bytes is over the limit of {limit}")
    return reader.read_at(0, reader.size)


def iter_chunks(reader: ByteReader, offset: int = 0, chunk: int = 1 << 20) -> Iterator[bytes]:
    while offset < reader.size:
        data = reader.read_at(offset, chunk)
        if not data:
            return
        offset += len(data)
        yield data


class SpooledReader(FileReader):
    """Bytes produced on the fly (decompression), kept in an unlinked temp file
    so that memory stays flat whatever the output size."""

    def __init__(self, chunks: Iterator[bytes], limit: int) -> None:
        import tempfile

        fd, path = tempfile.mkstemp(prefix="modeltrust-")
        os.unlink(path)
        try:
            total = 0
            with os.fdopen(fd, "wb", closefd=False) as out:
                for piece in chunks:
                    total += len(piece)
                    if total > limit:
                        raise TooLarge(f"decompressed output exceeds the limit of {limit} bytes")
                    out.write(piece)
        except BaseException:
            os.close(fd)
            raise
        self._adopt(fd)


class ReaderIO(io.RawIOBase):
    """A read-only, seekable file object over a ByteReader, for libraries that
    want one (h5py, py7zr). Wrap in io.BufferedReader for small reads."""

    def __init__(self, reader: ByteReader) -> None:
        super().__init__()
        self._reader = reader
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._reader.read_at(self._pos, len(buffer))
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._reader.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def tell(self) -> int:
        return self._pos
