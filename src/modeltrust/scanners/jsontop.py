"""Large JSON documents read for their top-level keys only.

`json.loads` of Gemma's 33 MB tokenizer.json builds 260,000 vocabulary
entries and 500,000 merges: 270 MB of objects, none of which a check reads.
Past WHOLE bytes a document is walked instead: each top-level value's extent
is found by a bracket walk over the bytes (strings skipped whole, nothing
built), and only the values of the keys asked for are decoded. The walk
rejects what `json.loads` rejects structurally (unbalanced or mismatched
brackets, unterminated strings, bytes after the document, invalid UTF-8);
scalars between brackets inside skipped values are not validated."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Collection

WHOLE = 4 << 20
"""Documents up to this size are parsed whole, as json.loads reads them."""

MAX_DEPTH = 5_000
"""Deeper documents are rejected (json.loads stops near the recursion limit, 1,000)."""
MAX_STEPS = 2_000_000
"""Brackets the walk visits one by one (leaf containers and runs of plain
members are skipped whole by the regex engine); past it, TooComplex."""

_WS = rb"[ \t\n\r]*+"
_STR = rb'"(?:[^"\\]++|\\.)*+"'
_ATOM = rb"(?:[^\"\[\]{}]++|" + _STR + rb")"
_LEAF = rb"(?:\[" + _ATOM + rb"*+\]|\{" + _ATOM + rb"*+\})"
_NEST = rb"(?:\[(?:" + _ATOM + rb"|" + _LEAF + rb")*+\]|\{(?:" + _ATOM + rb"|" + _LEAF + rb")*+\})"
_SPACE = re.compile(_WS)
_STRING = re.compile(_STR, re.DOTALL)
_TO_BRACKET = re.compile(rb"(?:" + _ATOM + rb"|" + _NEST + rb"|" + _LEAF + rb")*+([\[\]{}]|\")", re.DOTALL)
_SCALAR = re.compile(rb"[^,\]}\s]++")
_CLOSER = {ord("["): ord("]"), ord("{"): ord("}")}


MAX_CONTAINERS = 1_500_000
"""Objects and arrays a document parsed whole may hold (json.loads builds
each: 16 MB of `[],` would be 5 million lists, 300 MB)."""


def too_many_containers(raw: bytes | str) -> int | None:
    """The (over-)count of objects and arrays in `raw` when past MAX_CONTAINERS
    (brackets inside strings count too: a bound, found at C speed)."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    count = data.count(b"{") + data.count(b"[")
    return count if count > MAX_CONTAINERS else None


class TooComplex(ValueError):
    """The document has more containers than the walk visits one by one."""


def _plain_members(keys: Collection[str]) -> re.Pattern[bytes]:
    """A run of `"key": value,` members whose keys need no decoding and are
    not asked for, and whose values are strings, scalars or shallow containers."""
    wanted = b"|".join(re.escape(json.dumps(k).encode()) for k in sorted(keys)) or b"(?!)"
    value = rb"(?:" + _STR + rb"|[^\"\[\]{},\s]++|" + _NEST + rb"|" + _LEAF + rb")"
    member = rb"(?!(?:" + wanted + rb")" + _WS + rb':)"[^"\\]*+"' + _WS + rb":" + _WS + value
    return re.compile(rb"(?:" + member + _WS + rb"," + _WS + rb")*+", re.DOTALL)


def loads(raw: bytes, keys: Collection[str]) -> object:
    """`json.loads(raw.decode("utf-8"))`, except that a document over WHOLE
    bytes whose top level is an object comes back as a dict of only `keys`
    (a large document of another kind comes back as None: nothing in it is
    read). Raises ValueError (UnicodeDecodeError included) where json.loads
    would reject the document's structure."""
    if len(raw) <= WHOLE:
        return json.loads(raw.decode("utf-8"))  # at most 2 million containers: ~130 MB
    _check_utf8(raw)
    if raw.startswith(codecs.BOM_UTF8):
        raise ValueError("Unexpected UTF-8 BOM")
    start = _SPACE.match(raw, 0).end()  # type: ignore[union-attr]
    if raw[start : start + 1] != b"{":
        end = skip_value(raw, start)
        _expect_end(raw, end)
        return None
    found, end = _top_object(raw, start, frozenset(keys), _plain_members(keys))
    _expect_end(raw, end)
    return found


def _check_utf8(raw: bytes) -> None:
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    for offset in range(0, len(raw), step):
        decoder.decode(raw[offset : offset + step], final=offset + step >= len(raw))


def _expect_end(raw: bytes, end: int) -> None:
    if _SPACE.match(raw, end).end() != len(raw):  # type: ignore[union-attr]
        raise ValueError(f"Extra data at byte {end}")


def _top_object(
    raw: bytes, start: int, keys: frozenset[str], plain: re.Pattern[bytes]
) -> tuple[dict[str, object], int]:
    found: dict[str, object] = {}
    pos = _SPACE.match(raw, start + 1).end()  # type: ignore[union-attr]
    if raw[pos : pos + 1] == b"}":
        return found, pos + 1
    while True:
        pos = plain.match(raw, pos).end()  # type: ignore[union-attr]
        key_match = _STRING.match(raw, pos)
        if key_match is None:
            raise ValueError(f"Expecting property name at byte {pos}")
        key = json.loads(key_match.group().decode("utf-8"))
        pos = _SPACE.match(raw, key_match.end()).end()  # type: ignore[union-attr]
        if raw[pos : pos + 1] != b":":
            raise ValueError(f"Expecting ':' at byte {pos}")
        value_start = _SPACE.match(raw, pos + 1).end()  # type: ignore[union-attr]
        value_end = skip_value(raw, value_start)
        if key in keys:
            containers = raw.count(b"{", value_start, value_end) + raw.count(b"[", value_start, value_end)
            if containers > MAX_CONTAINERS:
                raise TooComplex(f"the value of {key!r} holds over {MAX_CONTAINERS} objects and arrays")
            found[key] = json.loads(raw[value_start:value_end].decode("utf-8"))
        else:
            found.pop(key, None)  # a later duplicate wins, as in json.loads
        pos = _SPACE.match(raw, value_end).end()  # type: ignore[union-attr]
        if raw[pos : pos + 1] == b"}":
            return found, pos + 1
        if raw[pos : pos + 1] != b",":
            raise ValueError(f"Expecting ',' delimiter at byte {pos}")
        pos = _SPACE.match(raw, pos + 1).end()  # type: ignore[union-attr]


def skip_value(raw: bytes, pos: int) -> int:
    """Where the JSON value starting at `pos` ends (iteratively: no depth limit)."""
    first = raw[pos : pos + 1]
    if first == b'"':
        match = _STRING.match(raw, pos)
        if match is None:
            raise ValueError(f"Unterminated string starting at byte {pos}")
        return match.end()
    if first not in (b"[", b"{"):
        match = _SCALAR.match(raw, pos)
        if match is None:
            raise ValueError(f"Expecting value at byte {pos}")
        json.loads(match.group())  # a number, true, false, null (NaN, Infinity)
        return match.end()
    closers = [_CLOSER[raw[pos]]]
    pos += 1
    steps = 0
    while closers:
        match = _TO_BRACKET.match(raw, pos)
        if match is None or match.group(1) == b'"':
            raise ValueError(f"Unterminated value at byte {pos}")
        bracket = raw[match.start(1)]
        pos = match.end()
        if bracket in _CLOSER:
            closers.append(_CLOSER[bracket])
            if len(closers) > MAX_DEPTH:
                raise ValueError(f"nests deeper than {MAX_DEPTH} levels at byte {pos}")
        elif bracket != closers.pop():
            raise ValueError(f"Mismatched bracket at byte {pos - 1}")
        steps += 1
        if steps > MAX_STEPS:
            raise TooComplex(f"more than {MAX_STEPS} nested containers before byte {pos}")
    return pos
