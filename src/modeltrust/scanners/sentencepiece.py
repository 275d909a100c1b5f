"""SentencePiece `tokenizer.model` files: a protobuf ModelProto, walked with
the protobuf walker. Nothing in it runs; a model is verified when every field
is one the schema knows (or the extension range), the pieces are well formed,
and the normalizer's precompiled character map fits its own length prefix
(the native parser trusts it)."""

from __future__ import annotations

import struct

from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .protowire import I32, LEN, VARINT, Message, WireError

SCANNER = "sentencepiece"
# ModelProto: pieces, trainer_spec, normalizer_spec, self_test_data, denormalizer_spec;
# fields from 200 on are the declared extension range.
MODEL_FIELDS = {1, 2, 3, 4, 5}
EXTENSIONS_FROM = 200
PIECE_FIELDS = {1: LEN, 2: I32, 3: VARINT}
NORMALIZER_CHARSMAP = 2
MAX_PIECES = 5_000_000


def is_sentencepiece(reader: ByteReader) -> bool:
    """ModelProto starts with its pieces: field 1 messages whose own field 1 is the piece text."""
    try:
        model = Message(reader)
        for index, field in enumerate(model.fields()):
            if field.number != 1 or field.wire_type != LEN:
                return False
            first = next(iter(model.sub(field).fields()), None)
            if first is None or first.number != 1 or first.wire_type != LEN:
                return False
            if index >= 2:
                return True
    except WireError:
        return False
    return False


class SentencePieceScanner:
    name = SCANNER
    formats = ("sentencepiece",)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        try:
            problem = _verify(Message(reader))
        except WireError as exc:
            problem = f"{exc} (at byte {exc.offset})"
        if problem:
            ctx.report("sentencepiece-malformed", location, f"SentencePiece model: {problem}", self.name)


def _verify(model: Message) -> str:
    pieces = 0
    for field in model.fields():
        if field.number not in MODEL_FIELDS and field.number < EXTENSIONS_FROM:
            return f"unknown field {field.number} in ModelProto"
        if field.number in MODEL_FIELDS and field.wire_type != LEN:
            return f"field {field.number} has wire type {field.wire_type}, not a message"
        if field.number == 1:
            pieces += 1
            if pieces > MAX_PIECES:
                return f"more than {MAX_PIECES} pieces"
            problem = _verify_piece(model.sub(field))
        elif field.number in (3, 5):
            problem = _verify_normalizer(model.sub(field))
        elif field.number in (2, 4):
            problem = _walk(model.sub(field))
        else:
            problem = ""
        if problem:
            return problem
    return "" if pieces else "no pieces"


def _verify_piece(piece: Message) -> str:
    for field in piece.fields():
        expected = PIECE_FIELDS.get(field.number)
        if expected is not None and field.wire_type != expected:
            return f"piece field {field.number} has wire type {field.wire_type}"
    return ""


def _verify_normalizer(spec: Message) -> str:
    for field in spec.fields():
        if field.number == NORMALIZER_CHARSMAP and field.wire_type == LEN and field.value:
            head = spec.window.read(field.offset, 4)
            if len(head) < 4:
                return "precompiled_charsmap is shorter than its length prefix"
            (trie_size,) = struct.unpack("<I", head)
            if trie_size > field.value - 4:
                return f"precompiled_charsmap trie of {trie_size} bytes exceeds its {field.value}-byte blob"
    return ""


def _walk(message: Message) -> str:
    for _ in message.fields():
        pass
    return ""
