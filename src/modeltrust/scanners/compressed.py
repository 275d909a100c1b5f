"""Compressed streams (joblib's zlib/gzip/bz2/xz/lzma/lz4 files, gzip'd
checkpoints): inflate into a bounded temp file, then detect and scan again."""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

from ..findings import Location
from ..reader import ByteReader, SpooledReader, TooLarge, iter_chunks
from .base import ScanContext

SCANNER = "compressed"


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = ...) -> bytes: ...

    @property
    def eof(self) -> bool: ...


def _inflate(raw: ByteReader, make: Callable[[], _Decompressor], skip: int = 0) -> Iterator[bytes]:
    """Decompress concatenated members (gzip and bz2 allow several)."""
    engine = make()
    pending = b""
    for chunk in iter_chunks(raw, offset=skip):
        data = pending + chunk
        pending = b""
        while data:
            out = engine.decompress(data, 1 << 20)
            if out:
                yield out
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
        out = engine.decompress(b"", 1 << 20)
        if not out:
            break
        yield out


def _unconsumed(engine: _Decompressor) -> bytes:
    tail = getattr(engine, "unconsumed_tail", b"")
    if tail:
        return bytes(tail)
    return bytes(getattr(engine, "unused_data", b""))


def _lz4() -> _Decompressor:
    import lz4.frame  # type: ignore[import-not-found, unused-ignore]

    decompressor: _Decompressor = lz4.frame.LZ4FrameDecompressor()
    return decompressor


_ENGINES: dict[str, tuple[Callable[[], _Decompressor], int]] = {
    "gzip": (lambda: zlib.decompressobj(16 + zlib.MAX_WBITS), 0),
    "zlib": (zlib.decompressobj, 0),
    "bzip2": (bz2.BZ2Decompressor, 0),
    "xz": (lzma.LZMADecompressor, 0),
    "lzma": (lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE), 0),
    "lz4": (_lz4, 0),
}


def _joblib_zf_offset(reader: ByteReader) -> int:
    """joblib < 0.10 wrote 'ZF' + a 0x-prefixed hex length + a space, then zlib."""
    head = reader.read_at(0, 32)
    end = head.find(b" ", 2)
    return end + 1 if end > 0 else 2


class CompressedScanner:
    name = SCANNER
    formats = ("gzip", "zlib", "bzip2", "xz", "lzma", "lz4", "joblib-zlib")

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext, fmt: str = "") -> None:
        from ..detect import sniff

        fmt = fmt or sniff(reader)
        if fmt == "joblib-zlib":
            make, skip = _ENGINES["zlib"][0], _joblib_zf_offset(reader)
        else:
            make, skip = _ENGINES[fmt]
        limits = ctx.limits
        limit = min(limits.max_decompressed_bytes, int(max(reader.size, 1) * limits.max_compression_ratio))
        where = location.within(f"<{fmt} stream>")
        try:
            inner = SpooledReader(_inflate(reader, make, skip), limit)
        except TooLarge as exc:
            ctx.report("archive-limit", location, f"{fmt} stream not scanned: {exc}", SCANNER)
            return
        except ImportError:
            ctx.report(
                "scan-unverified", location, f"{fmt} support is not installed (pip install lz4)", SCANNER
            )
            return
        except (OSError, EOFError, ValueError, zlib.error, lzma.LZMAError) as exc:
            ctx.report("archive-malformed", location, f"{fmt} stream is corrupt: {exc}", SCANNER)
            return
        with inner:
            ctx.scan_member(inner, where, SCANNER)
