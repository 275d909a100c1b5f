"""A small, deterministic byte mutator for the fuzz harness.

Structure-blind operations (bit flips, interesting integers, deletions,
splices) plus a few that target what hostile inputs exploit: repeating a
chunk many times (nesting and count bombs), inserting per-format tokens
(pickle opcodes, JSON brackets, Jinja blocks) and hostile text (lone
surrogates, control characters, ANSI escapes)."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

MAX_SIZE = 4 << 20
"""Mutants stay under this size (the harness times files under 10 MB)."""

_INTERESTING = (
    0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
    0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF,
)  # fmt: skip
HOSTILE_TEXT = (
    b"\\ud800",
    b"\\udfff",
    b"\xed\xa0\x80",  # a UTF-8-encoded lone surrogate (invalid UTF-8)
    b"\x1b[31m",
    b"\x1b]0;title\x07",
    b"\r",
    b"\x00",
    b"\x7f",
    b"\xe2\x80\xae",  # right-to-left override
    b"\xff\xfe",
)


def _interesting_int(rng: random.Random, data: bytes) -> bytes:
    value = rng.choice((*_INTERESTING, len(data), len(data) + 1, rng.getrandbits(32)))
    width = rng.choice((1, 2, 4, 8))
    value &= (1 << (8 * width)) - 1
    return value.to_bytes(width, rng.choice(("little", "big")))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


class Mutator:
    def __init__(self, seed: int, tokens: Sequence[bytes] = ()) -> None:
        self.rng = random.Random(seed)
        self.tokens = tuple(tokens) + HOSTILE_TEXT
        self._ops: tuple[Callable[[bytearray, Sequence[bytes]], None], ...] = (
            self._flip,
            self._flip,
            self._set_byte,
            self._integer,
            self._integer,
            self._varint,
            self._delete,
            self._duplicate,
            self._repeat,
            self._token,
            self._token,
            self._truncate,
            self._splice,
        )

    def mutate(self, data: bytes, corpus: Sequence[bytes]) -> bytes:
        out = bytearray(data)
        for _ in range(self.rng.choice((1, 1, 2, 3, 4, 8))):
            self.rng.choice(self._ops)(out, corpus)
        return bytes(out[:MAX_SIZE])

    def _pos(self, out: bytearray, inclusive: bool = False) -> int:
        return self.rng.randrange(len(out) + (1 if inclusive else 0)) if out or inclusive else 0

    def _flip(self, out: bytearray, _: Sequence[bytes]) -> None:
        if out:
            out[self._pos(out)] ^= 1 << self.rng.randrange(8)

    def _set_byte(self, out: bytearray, _: Sequence[bytes]) -> None:
        if out:
            out[self._pos(out)] = self.rng.choice((0, 0xFF, 0x7F, 0x80, self.rng.randrange(256)))

    def _integer(self, out: bytearray, _: Sequence[bytes]) -> None:
        value = _interesting_int(self.rng, bytes(out))
        pos = self._pos(out, inclusive=True)
        out[pos : pos + len(value)] = value

    def _varint(self, out: bytearray, _: Sequence[bytes]) -> None:
        value = _varint(self.rng.choice((*_INTERESTING, len(out))))
        pos = self._pos(out, inclusive=True)
        out[pos : pos + self.rng.choice((0, 1, len(value)))] = value

    def _delete(self, out: bytearray, _: Sequence[bytes]) -> None:
        if out:
            pos = self._pos(out)
            del out[pos : pos + self.rng.randint(1, max(1, min(len(out) - pos, 256)))]

    def _duplicate(self, out: bytearray, _: Sequence[bytes]) -> None:
        if out:
            pos = self._pos(out)
            chunk = out[pos : pos + self.rng.randint(1, 64)]
            at = self._pos(out, inclusive=True)
            out[at:at] = chunk

    def _repeat(self, out: bytearray, _: Sequence[bytes]) -> None:
        """A chunk repeated many times: deep nesting, huge counts, long lines."""
        if not out:
            return
        pos = self._pos(out)
        chunk = bytes(out[pos : pos + self.rng.randint(1, 16)])
        times = self.rng.choice((16, 256, 4096, 65536))
        times = min(times, max(1, (MAX_SIZE - len(out)) // len(chunk)))
        out[pos:pos] = chunk * times

    def _token(self, out: bytearray, _: Sequence[bytes]) -> None:
        token = self.rng.choice(self.tokens)
        pos = self._pos(out, inclusive=True)
        if self.rng.random() < 0.5:
            out[pos:pos] = token
        else:
            out[pos : pos + len(token)] = token

    def _truncate(self, out: bytearray, _: Sequence[bytes]) -> None:
        if out:
            del out[self._pos(out) :]

    def _splice(self, out: bytearray, corpus: Sequence[bytes]) -> None:
        if not corpus:
            return
        other = self.rng.choice(corpus)
        if not other:
            return
        start = self.rng.randrange(len(other))
        chunk = other[start : start + self.rng.randint(1, 4096)]
        pos = self._pos(out, inclusive=True)
        out[pos : pos + self.rng.choice((0, len(chunk)))] = chunk
