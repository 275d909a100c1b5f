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
from ..findings import Location, Severity
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


ALONE_DICT_CLAMP = 64 << 20
"""A header's dictionary size above this is lowered to it: the dictionary
only has to reach back over the data produced so far, so the first 64 MiB
decode exactly as the loader decodes them (past that, a match further back
is a decode error, reported as a limit). The loaders set no memory limit."""
_XZ_CLAMP_CODE = 28  # LZMA2's dictionary byte for 64 MiB: (2 | d & 1) << (d // 2 + 11)


def _clamp_alone(head: bytes) -> bytes | None:
    """An LZMA-alone head (properties, 4-byte dictionary size) with the size clamped."""
    if len(head) >= 5 and int.from_bytes(head[1:5], "little") > ALONE_DICT_CLAMP:
        return head[:1] + ALONE_DICT_CLAMP.to_bytes(4, "little") + head[5:]
    return None


def _clamp_xz(head: bytes) -> bytes | None:
    """An xz head whose first block is LZMA2 alone, with its dictionary byte
    clamped and the block header's CRC32 recomputed. (Later blocks, written by
    multi-threaded xz, keep theirs: over the limit, they are reported.)"""
    start = 12  # stream header
    if len(head) < start + 1 or head[start] == 0:
        return None
    end = start + (head[start] + 1) * 4
    if len(head) < end:
        return None
    flags = head[start + 1]
    pos = start + 2
    if flags & 0x03:  # more than one filter (BCJ, delta): left alone
        return None
    for present in (flags & 0x40, flags & 0x80):  # compressed, uncompressed size (VLIs)
        if present:
            while pos < end and head[pos] & 0x80:
                pos += 1
            pos += 1
    if head[pos : pos + 2] != b"\x21\x01" or pos + 2 >= end - 4 or head[pos + 2] <= _XZ_CLAMP_CODE:
        return None
    header = bytearray(head[start:end])
    header[pos + 2 - start] = _XZ_CLAMP_CODE
    header[-4:] = zlib.crc32(bytes(header[:-4])).to_bytes(4, "little")
    return head[:start] + bytes(header) + head[end:]


class _Clamped:
    """An LZMA decoder (xz or LZMA-alone) whose header's dictionary is clamped
    (lzip streams, sniffed as LZMA too, are decoded as the auto decoder does)."""

    def __init__(self, alone: bool) -> None:
        import lzma

        fmt = lzma.FORMAT_ALONE if alone else lzma.FORMAT_XZ
        self._engine = lzma.LZMADecompressor(format=fmt, memlimit=LZMA_MEMLIMIT)
        self._clamp = _clamp_alone if alone else _clamp_xz
        self._header = True
        self.clamped = False

    def decompress(self, data: bytes, max_length: int = -1) -> bytes:
        if self._header and data:
            self._header = False
            if data.startswith(b"LZIP"):  # lzip, which only the auto decoder reads
                import lzma

                self._engine = lzma.LZMADecompressor(format=lzma.FORMAT_AUTO, memlimit=LZMA_MEMLIMIT)
                return self._engine.decompress(data, max_length)
            patched = self._clamp(data)
            if patched is not None:
                data, self.clamped = patched, True
        return self._engine.decompress(data, max_length)

    @property
    def eof(self) -> bool:
        return self._engine.eof

    @property
    def needs_input(self) -> bool:
        return self._engine.needs_input

    @property
    def unused_data(self) -> bytes:
        return self._engine.unused_data


def _xz() -> _Decompressor:
    return _Clamped(alone=False)


def _lzma_alone() -> _Decompressor:
    return _Clamped(alone=True)


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
        engines: list[_Decompressor] = []

        def make() -> _Decompressor:
            engines.append(_ENGINES["zlib" if fmt == "joblib-zlib" else fmt]())
            return engines[-1]

        skip = _joblib_zf_offset(reader) if fmt == "joblib-zlib" else 0
        where = location.within(f"<{fmt} stream>")
        source = CountingReader(reader)
        stopped: list[TooLarge] = []
        failed: list[Exception] = []
        try:
            chunks = _until_limit(
                ctx.bound_stream(_until_error(_inflate(source, make, skip), failed), source), stopped
            )
            inner = SpooledReader(chunks, reader.size + ctx.limits.max_decompressed_bytes)
        except ImportError:
            ctx.report(
                "scan-unverified", location, f"{fmt} support is not installed (pip install lz4)", SCANNER
            )
            return
        except TooLarge as exc:
            message = f"{fmt} stream: {exc}; not scanned, while the loader reads it"
            ctx.report("archive-limit", location, message, SCANNER, severity=Severity.HIGH)
            return
        clamped = any(getattr(engine, "clamped", False) for engine in engines)
        _report_decoding(ctx, fmt, location, failed[0] if failed else None, clamped, inner.size)
        if stopped:
            message = (
                f"{fmt} stream: {stopped[0]}; only its first {inner.size} bytes were scanned, "
                "while the loader reads on"
            )
            ctx.report("archive-limit", location, message, SCANNER, severity=Severity.HIGH)
        with inner:
            if inner.size or not failed:
                ctx.scan_member(inner, where, SCANNER)


def _report_decoding(
    ctx: ScanContext, fmt: str, location: Location, error: Exception | None, clamped: bool, size: int
) -> None:
    """How decoding went, as the loader sees it: loaders set no decoder memory
    limit, and decompress only as far as the pickle reads."""
    if error is not None and "memory usage limit" in str(error).lower():
        message = (
            f"{fmt} stream needs more than {LZMA_MEMLIMIT >> 20} MiB of decoder memory; "
            "its contents were not analysed, while the loader decodes and reads them"
        )
        ctx.report("archive-limit", location, message, SCANNER, severity=Severity.HIGH)
    elif clamped and error is not None:
        message = (
            f"{fmt} stream declares a dictionary over {ALONE_DICT_CLAMP >> 20} MiB and reaches back "
            f"further after {size} bytes: the rest was not analysed, while the loader reads it"
        )
        ctx.report("archive-limit", location, message, SCANNER, severity=Severity.HIGH)
    elif clamped:
        message = (
            f"{fmt} header asks for a dictionary (decoder memory) over {ALONE_DICT_CLAMP >> 20} MiB, "
            "more than any preset writes; decoded with a clamped one, which reads this stream exactly"
        )
        ctx.report("archive-limit", location, message, SCANNER)
    elif error is not None:
        # A pickle that ends before the corruption (or a gzip CRC never reached) loads and runs.
        message = f"{fmt} stream is corrupt after {size} bytes: {error}; what precedes it was scanned"
        ctx.report("archive-malformed", location, message, SCANNER)


def _until_error(chunks: Iterator[bytes], failed: list[Exception]) -> Iterator[bytes]:
    """The chunks a decoder produced before its first error (each codec has its
    own error type); the error is kept. Resource errors still end the scan."""
    try:
        yield from chunks
    except (MemoryError, RecursionError, LimitReached, TooLarge, ImportError):
        raise
    except Exception as exc:  # noqa: BLE001 (each codec has its own error type)
        failed.append(exc)


def _until_limit(chunks: Iterator[bytes], stopped: list[TooLarge]) -> Iterator[bytes]:
    """The chunks up to a bound; the bound is kept, so the part inflated so far
    (where a payload put before a bomb would be) is still scanned."""
    try:
        yield from chunks
    except TooLarge as exc:
        stopped.append(exc)
