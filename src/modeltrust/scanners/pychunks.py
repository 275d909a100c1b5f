"""Python source parsed in pieces of whole statements, so the syntax tree in
memory at any time stays bounded (a 1 MB file of 65,537 functions is 800 MB
of `ast` nodes at once).

A piece ends only before a line that starts a statement at the piece's
indentation. Candidate boundaries come from the text (a line at that
indentation that is not `else`/`elif`/`except`/`finally` or a closing
bracket); a candidate inside a string, a bracket or after a backslash makes
the piece before it fail to parse (the tokenizer reads the same prefix the
whole file's would), and the piece grows until it parses. A single statement
too large to parse alone (a class of 65,000 methods) is split at its body's
indentation the same way, its pieces parsed inside `if 1:` blocks (`try:`
for a split try statement, closed by `finally`), after blank lines that keep
the file's line numbers. What still does not fit is reported by the caller
as an incomplete analysis, and pieces that stop parsing in a file this
reader split are reported the same way (the cut may be ours, not the file's
error)."""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Iterator

PIECE = 64 << 10
"""Characters a piece aims for (whole statements are added until it is this long)."""
MAX_PIECE = 512 << 10
"""Characters parsed at once at most (about 100 MB of syntax tree)."""
MAX_DEPTH = 8
"""Nested bodies split at most this deep."""


class Incomplete(Exception):
    """A statement larger than MAX_PIECE that cannot be split further."""

    def __init__(self, line: int) -> None:
        super().__init__(f"a statement at line {line} is over {MAX_PIECE} characters and cannot be split")
        self.line = line


def parse_pieces(source: str) -> Iterator[ast.Module]:
    """Syntax trees of consecutive runs of statements, with the line numbers
    of the whole file. Raises SyntaxError (line numbers of the whole file)
    where `ast.parse(source)` would, Incomplete where a piece cannot be
    bounded."""
    if len(source) <= MAX_PIECE:
        yield _parse(source)
        return
    yield from _pieces(source, (("", False),), 0)


def _parse(text: str) -> ast.Module:
    with warnings.catch_warnings():  # the file's invalid escapes are not ours to print
        warnings.simplefilter("ignore")
        return ast.parse(text)


_CLAUSE = re.compile(r"(?:else|elif|except|finally)\b")
_STATEMENT_LINE = re.compile(r"^([ \t]*+)(?![\s#)\]}])", re.MULTILINE)


Chain = tuple[tuple[str, bool], ...]
"""The blocks a piece sits in: (indentation, whether the statement split there is a `try`)."""


class _Cuts:
    """Where pieces of `text` may end: before a line that starts a statement
    at exactly one of the chain's indentations. Found lazily, by regular
    expressions (the engine skips other lines), so a file of a million
    statements costs no list of a million lines.

    A line is no cut when the next line indented less than it continues a
    compound statement (`else`, `except`...): the cut would fall inside it,
    unless that statement is the `try` split at that level (its wrapper
    takes `except` and `finally`) and no other statement began at that level
    before the cut."""

    def __init__(self, text: str, chain: Chain) -> None:
        self.text = text
        self.chain = chain
        self.levels = {indent: level for level, (indent, _) in enumerate(chain)}
        indents = "|".join(re.escape(indent) for indent in sorted(self.levels, key=len, reverse=True))
        self.candidate = re.compile(rf"^({indents})(?![ \t])(?![\s#)\]}}])", re.MULTILINE)
        self.shallower: dict[int, re.Pattern[str]] = {}

    def after(self, pos: int) -> tuple[int, int]:
        """(offset, level) of the first cut at a line start at or after `pos`;
        (len(text), 0) when there is none."""
        for match in self.candidate.finditer(self.text, pos):
            if match.start() == 0 or _CLAUSE.match(self.text, match.end()):
                continue
            if self._allowed(match.start(), match.group(1)):
                return match.start(), self.levels[match.group(1)]
        return len(self.text), 0

    def _allowed(self, offset: int, indent: str) -> bool:
        if not indent:
            return True
        pattern = self.shallower.get(len(indent))
        if pattern is None:
            pattern = re.compile(rf"^(?![ \t]{{{len(indent)}}})[ \t]*+(?=[^\s#])", re.MULTILINE)
            self.shallower[len(indent)] = pattern
        following = pattern.search(self.text, offset + 1)
        keyword = _CLAUSE.match(self.text, following.end()) if following is not None else None
        if following is None or keyword is None:
            return True
        level = self.levels.get(following.group())
        if level is None or not self.chain[level][1] or keyword.group() not in ("except", "finally"):
            return False
        statement = (
            rf"^{re.escape(following.group())}(?![ \t])(?![\s#)\]}}])(?!(?:else|elif|except|finally)\b)"
        )
        return re.compile(statement, re.MULTILINE).search(self.text, 0, offset) is None


def _pieces(text: str, chain: Chain, first_line: int) -> Iterator[ast.Module]:
    """Pieces of `text` (starting at line `first_line` + 1 of the file at
    indentation chain[-1], inside blocks at the indentations of `chain`),
    split before statements at any indentation of `chain`."""
    cuts = _Cuts(text, chain)
    start = 0
    level = len(chain) - 1
    line = first_line
    while start < len(text):
        target = PIECE
        while True:
            end, next_level = cuts.after(min(start + target, len(text)))
            piece = text[start:end]
            if end - start > MAX_PIECE:
                # One construct too large to parse alone starts in this piece:
                # the rest is split at the next indentation down.
                yield from _split_deeper(text[start:], chain[: level + 1], line)
                return
            try:
                yield _parse_at(piece, chain[: level + 1], line)
                break
            except SyntaxError:
                if end == len(text):
                    raise
                target *= 2
        line += piece.count("\n")
        start, level = end, next_level


def _parse_at(piece: str, chain: Chain, line: int) -> ast.Module:
    """`piece` parsed inside blocks at the indentations of `chain` (`if 1:`,
    or `try:` where a try statement was split, closed by `finally` if the
    piece does not close it), after blank lines that give its nodes (and
    errors) the file's line numbers (a piece inside n blocks starts at line
    n + 1 or later)."""
    wrap = "".join(f"{indent}{'try' if is_try else 'if 1'}:\n" for indent, is_try in chain[:-1])
    text = "\n" * (line - len(chain) + 1) + wrap + piece
    try:
        return _parse(text)
    except SyntaxError:
        tries = [level for level, (_, is_try) in enumerate(chain[:-1]) if is_try]
        if not tries:
            raise
    closing = "".join(f"{chain[level][0]}finally:\n{chain[level + 1][0]}pass\n" for level in reversed(tries))
    return _parse(text + ("" if text.endswith("\n") else "\n") + closing)


def _split_deeper(text: str, chain: Chain, line: int) -> Iterator[ast.Module]:
    """`text` starts with a statement too large to parse alone: its header
    (parsed with an empty body) then the rest split before statements at the
    body's indentation (later, shallower statements parse in those pieces too)."""
    if len(chain) > MAX_DEPTH:
        raise Incomplete(line + 1)
    indent = chain[-1][0]
    is_try = re.match(r"[ \t]*try[ \t]*:", text) is not None
    outer = (*chain[:-1], (indent, is_try))
    for offset, inner in _deeper_lines(text, indent):
        head = text[:offset]
        closing = f"{indent}finally:\n{inner}pass\n" if is_try else ""
        try:
            header = _parse_at(head + inner + "pass\n" + closing, chain, line)
        except SyntaxError:
            continue  # a continuation line of the header, not its body
        yield header
        yield from _pieces(text[offset:], (*outer, (inner, False)), line + head.count("\n"))
        return
    raise Incomplete(line + 1)


def _deeper_lines(text: str, indent: str) -> list[tuple[int, str]]:
    """The first lines indented deeper than `indent`, in order: the body's
    first statement is the first of them after which the header parses."""
    found = []
    for match in _STATEMENT_LINE.finditer(text, 1, MAX_PIECE):
        ind = match.group(1)
        if len(ind) > len(indent) and ind.startswith(indent):
            found.append((match.start(), ind))
            if len(found) == 8:
                break
    return found
