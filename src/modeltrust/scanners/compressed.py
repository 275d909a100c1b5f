"""Compressed streams (joblib's zlib/gzip/bz2/xz/lzma/lz4 files, gzip'd
checkpoints): inflate into a bounded temp file, then detect and scan again.

Bombs are stopped while they stream (see `ScanContext.bound_stream`): input
is fed in small chunks, so the ratio bound tracks the compressed bytes really
consumed; LZMA decoders get a memory cap, since a header can ask for a 4 GB
dictionary."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

from ..detect import COMPRESSED
from ..findings import Location
from ..reader import ByteReader, CountingReader, SpooledReader, TooLarge, iter_chunks
from .base import LimitReached, ScanContext

SCANNER = "compressed"
INPUT_CHUNK = 16 << 10
"""Compressed bytes fed per call: the ratio check is as fine as this."""
OUTPUT_CHUNK = 1 << 20
LZMA_MEMLIMIT = 128 << 20
"""Decoder memory an xz/lzma header may ask for (xz -9e needs 65 MiB)."""


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...

    @property
    def eof(self) -> bool: ...


def _inflate(raw: ByteReader, make: Callable[[], _Decompressor], skip: int = 0) -> Iterator[bytes]:
    """Decompress concatenated members (gzip and bz2 allow several)."""
    engine = make()
    pending = b""
    for chunk in iter_chunks(raw, offset=skip, chunk=INPUT_CHUNK):
        data = pending + chunk
        pending = b""
        while data:
            out = engine.decompress(data, OUTPUT_CHUNK)
            if out:
                yield out
            yield from _drain(engine)
            data = _unconsumed(engine)
            if engine.eof:
                if not data.strip(b"\x00"):
                    data = b""
                    break
                engine = make()
            elif not out:
                pending = data
                break
    # Drain what is buffered inside the decompressor.
    while not engine.eof:
        out = engine.decompress(b"", OUTPUT_CHUNK)
        if not out:
            break
        yield out


def _drain(engine: _Decompressor) -> Iterator[bytes]:
    """Output bz2/lzma/lz4 hold back when the output cap was hit: taken before
    more input is read, so the input counted is the input really used (the
    ratio check depends on it)."""
    while not engine.eof and getattr(engine, "needs_input", True) is False:
        out = engine.decompress(b"", OUTPUT_CHUNK)
        if not out:
            return
        yield out


def _unconsumed(engine: _Decompressor) -> bytes:
    tail = getattr(engine, "unconsumed_tail", b"")
    if tail:
        return bytes(tail)
    return bytes(getattr(engine, "unused_data", None) or b"")  # lz4 reports None


def _lz4() -> _Decompressor:
    import lz4.frame  # type: ignore[import-not-found, unused-ignore]

    decompressor: _Decompressor = lz4.frame.LZ4FrameDecompressor()
    return decompressor


def _bz2() -> _Decompressor:
    import bz2

    return bz2.BZ2Decompressor()


def _xz() -> _Decompressor:
    import lzma

    return lzma.LZMADecompressor(memlimit=LZMA_MEMLIMIT)


def _lzma_alone() -> _Decompressor:
    import lzma

    return lzma.LZMADecompressor(format=lzma.FORMAT_ALONE, memlimit=LZMA_MEMLIMIT)


_ENGINES: dict[str, Callable[[], _Decompressor]] = {
    "gzip": lambda: zlib.decompressobj(16 + zlib.MAX_WBITS),
    "zlib": zlib.decompressobj,
    "bzip2": _bz2,
    "xz": _xz,
    "lzma": _lzma_alone,
    "lz4": _lz4,
}


# joblib < 0.10 ('ZF' files): 'ZF', the length as '0x...' left-justified to
# len(hex(2**64)) characters, one optional space (older writers), then zlib.
_ZF_HEADER = 2 + len(hex(2**64))


def _joblib_zf_offset(reader: ByteReader) -> int:
    """Where joblib's read_zfile starts inflating."""
    return _ZF_HEADER + (reader.read_at(_ZF_HEADER, 1) == b" ")


class CompressedScanner:
    name = SCANNER
    formats = tuple(sorted(COMPRESSED))

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        fmt = ctx.formats[str(location)]  # detected once, by the engine
        make = _ENGINES["zlib" if fmt == "joblib-zlib" else fmt]
        skip = _joblib_zf_offset(reader) if fmt == "joblib-zlib" else 0
        where = location.within(f"<{fmt} stream>")
        source = CountingReader(reader)
        stopped: list[TooLarge] = []
        try:
            chunks = _until_limit(ctx.bound_stream(_inflate(source, make, skip), source), stopped)
            inner = SpooledReader(chunks, reader.size + ctx.limits.max_decompressed_bytes)
        except ImportError:
            ctx.report(
                "scan-unverified", location, f"{fmt} support is not installed (pip install lz4)", SCANNER
            )
            return
        except Exception as exc:  # each codec has its own error type
            if isinstance(exc, (MemoryError, RecursionError, LimitReached)):
                raise
            if "memory usage limit" in str(exc).lower():
                message = (
                    f"{fmt} stream needs more than {LZMA_MEMLIMIT >> 20} MiB of decoder memory; not scanned"
                )
                ctx.report("archive-limit", location, message, SCANNER)
                return
            ctx.report("archive-malformed", location, f"{fmt} stream is corrupt: {exc}", SCANNER)
            return
        if stopped:
            message = f"{fmt} stream: {stopped[0]}; only its first {inner.size} bytes were scanned"
            ctx.report("archive-limit", location, message, SCANNER)
        with inner:
            ctx.scan_member(inner, where, SCANNER)


def _until_limit(chunks: Iterator[bytes], stopped: list[TooLarge]) -> Iterator[bytes]:
    """The chunks up to a bound; the bound is kept, so the part inflated so far
    (where a payload put before a bomb would be) is still scanned."""
    try:
        yield from chunks
    except TooLarge as exc:
        stopped.append(exc)
