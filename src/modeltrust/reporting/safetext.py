"""Strings from scanned files reach every report (import names, member
names, JSON keys). They may hold terminal escapes, other control characters,
bidirectional overrides or lone surrogates, which would rewrite a terminal,
hide text from a reviewer or make a UTF-8 encoder raise. Reporters pass such
strings through these functions."""

from __future__ import annotations

import re

# C0/C1 controls, DEL, bidi embeddings/overrides/isolates, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """One line safe for a terminal and any encoder: unsafe characters become
    backslash escapes (`\\x1b`, `\\ud800`)."""
    return _UNSAFE.sub(_escape, text)


def encodable(text: str) -> str:
    """Valid Unicode for machine-readable reports: only lone surrogates (which
    UTF-8 cannot encode) are escaped; JSON escapes control characters itself."""
    return _SURROGATE.sub(_escape, text)


def encodable_tree(value: object) -> object:
    """`encodable` applied to every string (keys included) of a JSON tree."""
    if isinstance(value, str):
        return encodable(value)
    if isinstance(value, dict):
        return {encodable(str(k)): encodable_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encodable_tree(v) for v in value]
    return value
