"""Which formats a file is scanned as: what its bytes are, what its name makes a
loader read it as, and whether a pickle loader would read it at all.

`detect(reader, name)` returns a `Detection`; the engine runs the scanner of
every format in `Detection.formats`, in order:

1. **sniffed** (`sniff`): the format the bytes show (magic numbers, structure).
   A pickle named `.txt`, a zip named `.bin` and a legacy torch file named
   `.ckpt` are found by their bytes.
2. **by name** (`formats_by_name`, table `NAME_RULES`): loaders open files by
   name whatever their head says - `from_pretrained` reads `*.py`,
   `chat_template.jinja`, `tokenizer*.json`, `model.onnx`, `*.keras`, `*.h5`;
   `keras.load_model` a `.keras` zip; `torch.load`/`joblib.load` a `.pt`/
   `.joblib`. A file is also scanned as the format its name implies, so an
   ONNX model behind a PNG signature, an HDF5 file with a user block or a
   `.py` whose head is a docstring is analysed by that format's scanner, and a
   file that fails its name's parser becomes that scanner's finding
   (`ScanContext.claimed_by_name` tells a scanner the name claimed it).
3. **pickle-loadable** (`PICKLE_LOADABLE`): `pickle.load`, `joblib.load`,
   `numpy.load` (anything not npy or zip) and torch's legacy path unpickle any
   bytes from offset 0. Every file whose first opcode those unpicklers accept
   (`pickle_loadable`) is walked as a pickle from offset 0 as well, whatever
   else it is (text, GIF, tar, LZMA...). Only structure complaints of that walk
   are dropped (the loader stops where the walk does); every import and call
   it finds is reported, so a text file is judged by what a load would run.

To hook in a new format: add its constant here, a byte test to `sniff` if it
has one, a line to `NAME_RULES` if loaders find it by name, and a line to
`scanners.SCANNERS`.
"""

from __future__ import annotations

import fnmatch
import re
import struct
from dataclasses import dataclass

from .reader import ByteReader

HEAD_SIZE = 4096

# Formats the engine knows by name.
PICKLE = "pickle"
TORCH_LEGACY = "pytorch-legacy"
ZIP = "zip"
TAR = "tar"
NUMPY = "numpy"
GZIP = "gzip"
BZIP2 = "bzip2"
XZ = "xz"
LZMA = "lzma"
ZLIB = "zlib"
LZ4 = "lz4"
JOBLIB_ZF = "joblib-zlib"
SAFETENSORS = "safetensors"
GGUF = "gguf"
HDF5 = "hdf5"
SEVENZIP = "7z"
ELF = "elf"
PE = "pe"
MACHO = "mach-o"
JSON = "json"
PYTHON = "python"
SCRIPT = "script"
TEXT = "text"
EMPTY = "empty"
UNKNOWN = "unknown"
PNG = "png"
JPEG = "jpeg"
GIF = "gif"
PDF = "pdf"
PARQUET = "parquet"
SQLITE = "sqlite"
ONNX = "onnx"
SAVEDMODEL = "tf-savedmodel"
ARROW = "arrow"
ARROW_STREAM = "arrow-stream"
FEATHER_V1 = "feather-v1"
ORC = "orc"
AVRO = "avro"
PICKLE_LOADABLE = "loadable-pickle"
TFLITE = "tflite"
SENTENCEPIECE = "sentencepiece"
MSGPACK = "msgpack"
UBJSON = "ubjson"
TF_BUNDLE_INDEX = "tf-bundle-index"

COMPRESSED = {GZIP, BZIP2, XZ, LZMA, ZLIB, LZ4, JOBLIB_ZF}
EXECUTABLE = {ELF, PE, MACHO}
# Data formats that loaders read without running code.
PLAIN_DATA = {TEXT, PNG, JPEG, GIF, PDF, SQLITE, FEATHER_V1, ORC, AVRO, EMPTY}

_TORCH_LEGACY_MAGIC = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
_IDENT = re.compile(rb"^[A-Za-z_][\w.]*$")
# Lines that start Python statements (the scanner confirms with ast.parse).
_PYTHON_LINE = re.compile(
    r"^(?:from\s+[\w.]+\s+import\s|import\s+[\w.]+|def\s+\w+\s*\(|class\s+\w+\s*[(:])", re.M
)

# A JSON document: an object, or an array whose first item is a JSON value
# (`[PAD]`, the head of a BERT vocab.txt, is not).
_JSON_START = re.compile(r'\s*(?:\{|\[\s*(?:["{\[\]]|-?\d|(?:true|false|null)\s*[,\]]))')
# YAML front matter (Hub model cards): `---` is a syntax error in Python.
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n")
# Documents no loader imports: their code blocks are examples (a model card's
# `from transformers import ...`), so Python-looking lines do not make them code.
_DOCUMENTS = ("*.md", "*.markdown", "*.rst", "*.txt", "*.adoc")

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x93NUMPY", NUMPY),
    (b"\x1f\x8b", GZIP),
    (b"BZh", BZIP2),
    (b"\xfd7zXZ\x00", XZ),
    (b"\x04\x22\x4d\x18", LZ4),
    (b"\x89HDF\r\n\x1a\n", HDF5),
    (b"7z\xbc\xaf\x27\x1c", SEVENZIP),
    (b"\x7fELF", ELF),
    (b"\xcf\xfa\xed\xfe", MACHO),
    (b"\xce\xfa\xed\xfe", MACHO),
    (b"\xfe\xed\xfa\xcf", MACHO),
    (b"\xfe\xed\xfa\xce", MACHO),
    (b"\xca\xfe\xba\xbe", MACHO),
    (b"\x89PNG\r\n\x1a\n", PNG),
    (b"\xff\xd8\xff", JPEG),
    (b"GIF8", GIF),
    (b"%PDF-", PDF),
    (b"PAR1", PARQUET),
    (b"SQLite format 3\x00", SQLITE),
    (b"ARROW1", ARROW),
    (b"FEA1", FEATHER_V1),
    (b"ORC", ORC),  # readers map ORC and Avro types themselves; no extension types
    (b"Obj\x01", AVRO),
)


def sniff(reader: ByteReader) -> str:
    """The format of the reader's bytes."""
    if reader.size == 0:
        return EMPTY
    head = reader.read_at(0, HEAD_SIZE)
    fmt = sniff_head(head, reader.size)
    # A legacy Arrow stream starts with its schema's length; a pickle whose
    # third byte is NUL stops at an invalid opcode, so it cannot be both.
    maybe_arrow = fmt == UNKNOWN or (fmt == PICKLE and head[2:3] == b"\x00")
    if maybe_arrow and head[3:4] == b"\x00" and _is_legacy_arrow_stream(reader):
        return ARROW_STREAM
    if fmt == UNKNOWN and head[:1] == b"\x08" and _is_onnx(reader):
        return ONNX
    if fmt == UNKNOWN and head[:3] == b"\x08\x01\x12":
        return SAVEDMODEL  # schema_version 1, then meta_graphs
    if fmt == UNKNOWN and _has_zip_directory(reader):
        return ZIP  # an archive behind a prefix (self-extractor, script header)
    if fmt == UNKNOWN and head[:1] == b"\x0a" and _is_sentencepiece(reader):
        return SENTENCEPIECE
    if fmt == UNKNOWN and _looks_like_msgpack_map(head):
        return MSGPACK
    if fmt == UNKNOWN and _looks_like_ubjson(head):
        return UBJSON
    if fmt == UNKNOWN and _is_tf_bundle_index(reader):
        return TF_BUNDLE_INDEX  # variables.index, *.ckpt.index: a table ending in its magic
    return fmt


def _is_onnx(reader: ByteReader) -> bool:
    """ONNX has no magic: a ModelProto starts with ir_version (field 1) and
    carries opset_import or graph among its first fields."""
    from .scanners.protowire import Message, WireError

    version = reader.read_at(1, 1)
    if not version or not 1 <= version[0] <= 15:
        return False
    seen: set[int] = set()
    try:
        for index, field in enumerate(Message(reader).fields()):
            seen.add(field.number)
            if field.number in (7, 8) or index > 12:
                break
    except WireError:
        return False
    return bool(seen & {7, 8}) and seen <= set(range(1, 26))


def _has_zip_directory(reader: ByteReader) -> bool:
    tail_start = max(0, reader.size - (0xFFFF + 22))
    return b"PK\x05\x06" in reader.read_at(tail_start, reader.size - tail_start)


def _is_sentencepiece(reader: ByteReader) -> bool:
    from .scanners.sentencepiece import is_sentencepiece

    return is_sentencepiece(reader)


def _looks_like_msgpack_map(head: bytes) -> bool:
    """Flax state dicts: a msgpack map (fixmap, map16, map32) whose first key is a string."""
    first = head[0] if head else 0
    key_at = 1 if 0x81 <= first <= 0x8F else 3 if first == 0xDE else 5 if first == 0xDF else 0
    if not key_at or len(head) <= key_at:
        return False
    return 0xA0 <= head[key_at] <= 0xBF or head[key_at] in (0xD9, 0xDA, 0xDB)


def _is_tf_bundle_index(reader: ByteReader) -> bool:
    from .scanners.tfbundle import is_bundle_index

    return is_bundle_index(reader)


def _looks_like_ubjson(head: bytes) -> bool:
    """XGBoost binary models (`*.ubj`, `save_raw()`): a UBJSON object whose first
    key length is an integer marker (or an optimised container header). Text JSON
    starts with `{"` and is sniffed as JSON before this."""
    return head[:1] in (b"{", b"[") and head[1:2] in (b"i", b"U", b"I", b"l", b"L", b"}", b"]", b"$", b"#")


def _is_legacy_arrow_stream(reader: ByteReader) -> bool:
    from .scanners.arrow import is_legacy_stream

    return is_legacy_stream(reader)


def sniff_head(head: bytes, size: int) -> str:
    for magic, name in _MAGIC:
        if head.startswith(magic):
            return name
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08"):
        return ZIP
    if _is_gguf(head):
        return GGUF  # magic and a version: text that starts with "GGUF" is not one
    if head[4:8] == b"TFL3":
        return TFLITE  # the FlatBuffers file identifier, after the root offset
    if head[:4] == b"\xff\xff\xff\xff" and len(head) >= 8:
        return ARROW_STREAM  # the IPC continuation marker before the schema message
    if head[:2] == b"MZ":
        return PE
    if (len(head) >= 262 and head[257:262] == b"ustar") or _is_tar(head):
        return TAR
    if head[:2] == b"ZF":
        return JOBLIB_ZF
    if _is_safetensors(head, size):
        return SAFETENSORS
    if head[:1] == b"\x80" and len(head) > 1 and 0 <= head[1] <= 5:
        if head[2:3] == b"\x8a" and head[4 : 4 + 10] == _TORCH_LEGACY_MAGIC:
            return TORCH_LEGACY
        return PICKLE
    if _is_zlib(head):
        return ZLIB
    if head[:2] == b"\x5d\x00":  # joblib's LZMA test: properties byte and a small dictionary
        return LZMA
    if _is_lzma_auto(head):
        return LZMA  # what lzma.open / pandas (`.xz`) decode as LZMA-alone or lzip
    if looks_like_protocol0_pickle(head):
        return PICKLE
    if _is_pyc(head):
        return "pyc"  # compiled Python (code.CompiledPythonScanner)
    return _sniff_text(head)


def _is_gguf(head: bytes) -> bool:
    from .scanners.gguf import has_gguf_header

    return has_gguf_header(head)


def _is_lzma_auto(head: bytes) -> bool:
    """A head liblzma's auto decoder (Python's `lzma.open`, pandas' `.xz`)
    decodes besides xz: lzip (versions 0 and 1), or an LZMA-alone header as
    its picky check accepts it (lc + lp <= 4, a dictionary of 2^n or
    2^n + 2^(n-1) bytes, a size under 2^38 or unknown) followed by the range
    coder's zero byte. A stream that declares 0 bytes holds no payload."""
    if head[:4] == b"LZIP":
        return len(head) > 5 and head[4] in (0, 1)
    if len(head) < 14 or head[0] >= 225 or head[13] != 0:
        return False
    props = head[0]
    if props % 9 + props // 9 % 5 > 4:
        return False
    dictionary = int.from_bytes(head[1:5], "little")
    if dictionary != 0xFFFFFFFF:
        d = (dictionary - 1) & 0xFFFFFFFF
        for shift in (2, 3, 4, 8, 16):
            d |= d >> shift
        if (d + 1) & 0xFFFFFFFF != dictionary:
            return False
    size = int.from_bytes(head[5:13], "little")
    return size == (1 << 64) - 1 or 0 < size < 1 << 38


def _is_pyc(head: bytes) -> bool:
    """CPython bytecode: a 3.x magic number, CR LF, then the flags word (0-3)."""
    if len(head) < 16 or head[2:4] != b"\r\n":
        return False
    return 3000 <= int.from_bytes(head[:2], "little") < 4000 and head[4:8] in (
        b"\0\0\0\0",
        b"\1\0\0\0",
        b"\3\0\0\0",
    )


def _is_tar(head: bytes) -> bool:
    """tarfile needs no magic: a first block whose checksum matches is a tar
    (V7 archives; torch's oldest checkpoints are opened this way)."""
    if len(head) < 512 or not (head[148:156].strip(b"\x00 ").isdigit() or head[148] in (0x80, 0xFF)):
        return False
    from .sources.tararchive import header_is_valid

    return header_is_valid(head[:512])


def _is_safetensors(head: bytes, size: int) -> bool:
    """A little-endian header length, then a JSON object. The length is not
    checked against the size here: an impossible length is the scanner's
    finding (a header bomb), not a reason to call the file unknown."""
    if len(head) < 10:
        return False
    (length,) = struct.unpack_from("<Q", head)
    return length >= 2 and head[8:9] == b"{" and head[9:10] in (b'"', b"}", b" ", b"\n")


def _is_zlib(head: bytes) -> bool:
    """A zlib header joblib (and zlib without a preset dictionary) can inflate. FDICT
    streams ask for a dictionary no loader passes, so they fail at their first byte:
    text such as "x = 1" (0x78 0x20) or "x}" has a valid header check but FDICT set."""
    if len(head) < 2:
        return False
    cmf, flg = head[0], head[1]
    return cmf == 0x78 and ((cmf << 8) | flg) % 31 == 0 and not flg & 0x20


def looks_like_protocol0_pickle(head: bytes) -> bool:
    """Protocol 0/1 pickles are ASCII-ish text; decide by parsing the head.

    The head must parse as opcodes up to a STOP or to its end, every GLOBAL/INST
    argument must look like a dotted name, and it must contain more than one
    opcode. Prose and config files fail within a few bytes.
    """
    if not head or chr(head[0]) not in "(cNI]}S)VLFi":
        return False
    import pickletools  # only text-like heads get here

    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(head):
            count += 1
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                if not (_IDENT.match(module.encode()) and _IDENT.match(name.encode())):
                    return False
            if opcode.name == "STOP":
                return count > 1
    except (ValueError, UnicodeDecodeError, struct.error):
        # The head may simply end mid-opcode; decide on what parsed.
        return count >= 8
    return count >= 8


def _sniff_text(head: bytes) -> str:
    stripped = head.lstrip()
    if not stripped:
        return TEXT if head else EMPTY
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the end of the head is still text.
        if exc.start < len(head) - 4:
            return UNKNOWN
        text = head[: exc.start].decode("utf-8")
    if any(ord(c) < 9 or 13 < ord(c) < 32 for c in text):
        return UNKNOWN
    if _JSON_START.match(text):
        return JSON
    if text.startswith("#!"):
        return PYTHON if "python" in text.split("\n", 1)[0] else SCRIPT
    if _FRONT_MATTER.match(text):
        return TEXT  # a model card
    if _PYTHON_LINE.search(text):
        return PYTHON
    return TEXT


# --- several formats per file -----------------------------------------------------------

# Loaders that open a file by one of these names read it as these formats.
# Globs match the lower-cased base name.
NAME_RULES: tuple[tuple[str, str], ...] = (
    ("*.py", PYTHON),  # trust_remote_code modules, custom_pipelines, custom_generate/
    ("*.pyc", "pyc"),
    ("*.jinja", "chat-template"),  # chat_template.jinja, additional_chat_templates/*.jinja
    ("*.j2", "chat-template"),
    ("*.json", JSON),  # config.json, tokenizer*.json, *_config.json
    ("*.yaml", "hyperpyyaml"),  # SpeechBrain's hyperparams.yaml (load_hyperpyyaml runs its Python tags)
    ("*.yml", "hyperpyyaml"),
    ("*.keras", ZIP),  # keras.load_model: a zip found through its end record
    ("*.npz", ZIP),
    ("*.h5", HDF5),  # tf_model.h5, *.weights.h5: h5py also finds a superblock after a user block
    ("*.hdf5", HDF5),
    ("*.onnx", ONNX),
    ("*.gguf", GGUF),
    ("*.safetensors", SAFETENSORS),
    ("saved_model.pb", SAVEDMODEL),
    ("state.json", "datasets-state"),  # datasets.load_from_disk: the Arrow files to open
    ("dataset_dict.json", "datasets-dict"),  # ...and the split folders
)
# Names that torch.load, joblib.load, pickle.load and numpy.load are given...
PICKLE_FAMILY = ("*.pkl", "*.pickle", "*.joblib", "*.pt", "*.pth", "*.ckpt", "*.npy", "*.dill", "*.bin")
# ...and the formats those loaders read without unpickling from offset 0.
_PICKLE_LOADER_FORMATS = {PICKLE, TORCH_LEGACY, ZIP, TAR, NUMPY} | COMPRESSED
# A `.bin` is as often raw tensor bytes (ONNX external data, GGML) as a torch
# pickle: it is walked when its bytes are loadable, never claimed.
_UNCLAIMED = ("*.bin",)

# Opcodes `_pickle` and `pickle._Unpickler` (joblib's) accept as the first
# one: those that need nothing on the stack, in the memo or from the caller.
# PERSID/BINPERSID need a persistent_load (none of the loaders sets one for
# the first pickle), GET needs a memo entry, NEXT_BUFFER a buffers argument;
# everything else pops from the empty stack or needs a MARK.
_FIRST_OPCODES = frozenset(b"IJKML\x8a\x8bSTUBC\x8e\x96N\x88\x89V\x8cX\x8dFG])}\x8f(c\x82\x83\x84\x80\x95")


@dataclass(frozen=True, slots=True)
class Detection:
    """How one file is scanned; `formats` lists every format, sniffed first."""

    sniffed: str
    by_name: tuple[str, ...] = ()
    """Formats the file name makes a loader read it as (besides `sniffed`)."""
    pickle_loadable: bool = False
    """A pickle loader would unpickle it from offset 0 (and it is not a pickle by its bytes)."""

    @property
    def formats(self) -> tuple[str, ...]:
        extra = (PICKLE_LOADABLE,) if self.pickle_loadable else ()
        return (self.sniffed, *self.by_name, *extra)


def pickle_loadable(head: bytes) -> bool:
    """Would an unpickler get past the first opcode of these bytes?"""
    if not head or head[0] not in _FIRST_OPCODES:
        return False
    return head[0] != 0x80 or (len(head) > 1 and head[1] <= 5)


def _base_name(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1].lower()


def formats_by_name(name: str, sniffed: str) -> tuple[str, ...]:
    """Formats the loaders that open a file by this name read it as, besides `sniffed`."""
    base = _base_name(name)
    if not base or sniffed == EMPTY:
        return ()  # no bytes: every loader fails on them, nothing runs
    found: list[str] = []
    for pattern, fmt in NAME_RULES:
        if fmt != sniffed and fmt not in found and fnmatch.fnmatchcase(base, pattern):
            found.append(fmt)
    claimed = any(fnmatch.fnmatchcase(base, p) for p in PICKLE_FAMILY if p not in _UNCLAIMED)
    if claimed and sniffed not in _PICKLE_LOADER_FORMATS and PICKLE not in found:
        found.append(PICKLE)
    return tuple(found)


def detect(reader: ByteReader, name: str = "") -> Detection:
    """Every format `reader` is scanned as; `name` is its file or member name."""
    sniffed = sniff(reader)
    if sniffed == PYTHON and any(fnmatch.fnmatchcase(_base_name(name), p) for p in _DOCUMENTS):
        sniffed = TEXT
    by_name = formats_by_name(name, sniffed) if name else ()
    by_name += tuple(f for f in _tail_formats(reader, sniffed) if f not in by_name)
    walked = sniffed in (PICKLE, TORCH_LEGACY) or PICKLE in by_name
    head = reader.read_at(0, 2)
    loadable = not walked and pickle_loadable(head) and not _msgpack_ext_start(sniffed, head)
    return Detection(sniffed, by_name, loadable)


def _tail_formats(reader: ByteReader, sniffed: str) -> tuple[str, ...]:
    """Parquet readers and `pyarrow.ipc.open_file` find their metadata from the
    end and never check the head: a file that only ends like one is read as one."""
    tail = reader.read_at(reader.size - 6, 6) if reader.size >= 12 else b""
    if tail[2:] == b"PAR1" and sniffed != PARQUET:
        return (PARQUET,)
    if tail == b"ARROW1" and sniffed != ARROW:
        return (ARROW,)
    return ()


def _msgpack_ext_start(sniffed: str, head: bytes) -> bool:
    """A msgpack map of 2-4 entries (Flax checkpoints) starts with 0x82-0x84,
    pickle's EXT1/EXT2/EXT4: its extension code (the first key's tag) must be
    registered with copyreg by the loading process, which no standard one
    does, so pickle.load stops at the first byte."""
    return sniffed == MSGPACK and head[:1] in (b"\x82", b"\x83", b"\x84")
