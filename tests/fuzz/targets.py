"""One fuzz target per parser, shared by the smoke test (tests/fuzz) and the
long campaigns (bench/fuzz.py).

A target takes bytes and runs one parser on them the way a scan would, then
renders the findings as text, JSON and SARIF. It *fails* (raises) when the
input ends in an internal exception: an exception escaping a scanner or a
reporter, or a `scan-error` finding (an exception the engine caught). Limits
being hit are not failures: they are findings, which is the point.

Format-specific targets call their scanner directly, so a mutation that
breaks the magic bytes still reaches the parser it was aimed at.
"""

from __future__ import annotations

import io
import json
import re
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from modeltrust import detect
from modeltrust.config import Limits
from modeltrust.engine import cap_findings, scan_reader
from modeltrust.findings import Artifact, Finding, Location, ScanReport, Severity
from modeltrust.reader import BytesReader, FileReader
from modeltrust.rules import RuleSet, load_rules
from modeltrust.scanners import Registry, ScanContext
from modeltrust.scanners.base import Budget, Deadline, LimitReached

from . import seeds

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
INPUT = "fuzz-input"
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")


class InternalError(Exception):
    """The scan turned an exception into a `scan-error` finding."""


@cache
def rules() -> RuleSet:
    return load_rules()


@cache
def registry() -> Registry:
    return Registry()


def new_context(findings: list[Finding], limits: Limits | None = None, size: int = 0) -> ScanContext:
    """A context for one top-level file of `size` bytes, with the engine's budgets."""
    reg = registry()
    limits = limits or Limits()

    def nested(reader: object, location: Location, ctx: ScanContext) -> str:
        return scan_reader(reader, location, ctx, reg)  # type: ignore[arg-type]

    budget = Budget(limits.file_decompression_budget(size))
    deadline = Deadline(limits.file_seconds(size))
    return ScanContext(rules(), limits, findings, nested, budget=budget, deadline=deadline)


def scan_as(fmt: str | None, data: bytes) -> list[Finding]:
    """Scan `data` with the scanner for `fmt` (None: detect it, as the engine does)."""
    findings: list[Finding] = []
    ctx = new_context(findings, size=len(data))
    location = Location(INPUT)
    reader = BytesReader(data)
    if fmt is None:
        scan_reader(reader, location, ctx, registry())
    else:
        ctx.formats[str(location)] = fmt
        scanner = registry().for_format(fmt)
        assert scanner is not None, fmt
        try:
            scanner.scan(reader, location, ctx)
        except LimitReached as exc:  # as the engine reports it
            ctx.report("scan-limit", location, str(exc), scanner.name)
    cap_findings(findings, 0, ctx.limits.max_findings_per_rule)
    check_findings(findings)
    return findings


def check_findings(findings: Iterable[Finding]) -> None:
    for finding in findings:
        if finding.rule_id == "scan-error":
            raise InternalError(f"{finding.scanner}: {finding.message}")


def render_all(findings: list[Finding], size: int = 0) -> None:
    """Text, JSON and SARIF of these findings, encoded as a UTF-8 file would be."""
    from modeltrust.reporting.json import render_json
    from modeltrust.reporting.sarif import render_sarif
    from modeltrust.reporting.text import render_text

    report = ScanReport(
        artifacts=(Artifact(INPUT, size, "fuzz", "fuzz"),),
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        targets=(INPUT,),
    )
    stream = io.StringIO()
    render_text(report, Severity.MEDIUM, rules(), stream, color=False, verbose=True)
    text = stream.getvalue()
    text.encode("utf-8")
    control = _CONTROL.findall(text)
    if control:
        raise AssertionError(f"text report carries control characters {control[:4]!r}")
    json.loads(render_json(report, Severity.MEDIUM, rules()).encode("utf-8"))
    json.loads(render_sarif(report, rules()).encode("utf-8"))


# --- seeds ------------------------------------------------------------------------------


def fixture_seeds(*formats: str) -> list[bytes]:
    """Every committed fixture whose bytes are detected as one of `formats`."""
    seeds = []
    for path in sorted(FIXTURES.glob("*/**/*")):
        if path.is_file() and path.suffix not in (".py", ".md") and path.name != "manifest.json":
            with FileReader(path) as reader:
                if detect.sniff(reader) in formats:
                    seeds.append(path.read_bytes())
    return seeds


def _tar_seeds() -> list[bytes]:
    seeds = fixture_seeds("tar")
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for name, body in ((("d/" * 40) + "long.pkl", b"\x80\x04K\x01."), ("a.txt", b"hello\n")):
                info = tarfile.TarInfo(name)
                info.size = len(body)
                tar.addfile(info, io.BytesIO(body))
            link = tarfile.TarInfo("link")
            link.type = tarfile.SYMTYPE
            link.linkname = "../x"
            tar.addfile(link)
        seeds.append(buf.getvalue())
    return seeds


def _templates() -> list[bytes]:
    seeds = []
    for path in FIXTURES.glob("*/*tokenizer_config.json"):
        template = json.loads(path.read_text()).get("chat_template")
        if isinstance(template, str):
            seeds.append(template.encode())
    seeds.append(
        b"{% for m in messages %}{{ '<|' + m['role'] + '|>' }}{% if m.content %}{{ m.content | trim }}"
        b"{% endif %}{% endfor %}{{ cycler.__init__.__globals__.os.popen('id').read() }}"
    )
    return seeds


def _python_seeds() -> list[bytes]:
    return [
        b"import os\nimport subprocess as sp\n\ndef f(x):\n    return sp.run(['ls'], check=True)\n"
        b"class A(object):\n    def __init__(self):\n        os.system('true')\n"
        b"x = [lambda y: (y, {k: v for k, v in zip(a, b)})]\neval(compile('1', 'f', 'eval'))\n",
    ]


def _keras_configs() -> list[bytes]:
    import zipfile

    seeds = []
    for data in fixture_seeds("zip"):
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            continue  # zips only miniz reads (fixtures for torch's reader)
        with archive:
            if "config.json" in archive.namelist():
                seeds.append(archive.read("config.json"))
    return seeds


def _render_seeds() -> list[bytes]:
    texts = ["plain", "\ud800 lone", "\x1b[31mred\x1b[0m", "a\rb\x00c", "\u202eevil", "x" * 300]
    return ["\0".join(texts[i:] + texts[:i]).encode("utf-16-le", "surrogatepass") for i in range(3)]


# --- targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], list[Finding]]
    seeds: Callable[[], list[bytes]]
    tokens: tuple[bytes, ...] = field(default=())
    smoke: int = 150
    """Mutants in the test suite's smoke run (HDF5 runs a child process per input)."""


def _scanner_target(fmt: str) -> Callable[[bytes], list[Finding]]:
    def run(data: bytes) -> list[Finding]:
        findings = scan_as(fmt, data)
        render_all(findings, len(data))
        return findings

    return run


def _compressed(data: bytes) -> list[Finding]:
    """The first byte picks the codec, so every codec sees every mutant."""
    codecs = sorted(detect.COMPRESSED - {detect.LZ4})
    fmt = codecs[data[0] % len(codecs)] if data else detect.GZIP
    findings = scan_as(fmt, data[1:])
    render_all(findings, len(data))
    return findings


def _compressed_seeds() -> list[bytes]:
    codecs = sorted(detect.COMPRESSED - {detect.LZ4})
    seeds = []
    for fmt in codecs:
        for data in fixture_seeds(fmt):
            seeds.append(bytes([codecs.index(fmt)]) + data)
    return seeds


def _template(data: bytes) -> list[Finding]:
    from modeltrust.scanners.template import check_template

    findings: list[Finding] = []
    ctx = new_context(findings, size=len(data))
    check_template(data.decode("utf-8", "surrogateescape"), Location(INPUT), ctx, "fuzz")
    check_findings(findings)
    render_all(findings, len(data))
    return findings


def _keras_config(data: bytes) -> list[Finding]:
    from modeltrust.scanners import keras

    findings: list[Finding] = []
    ctx = new_context(findings, size=len(data))
    config = keras.parse_config(data, Location(INPUT), ctx)
    if config is not None:
        keras.check_config(config, Location(INPUT), ctx)
    check_findings(findings)
    render_all(findings, len(data))
    return findings


def _render(data: bytes) -> list[Finding]:
    """Findings whose every string comes from the input (lone surrogates,
    control characters, terminal escapes), through every reporter."""
    text = data[: len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")
    parts = [*text.split("\0"), "", "", "", ""]
    path, member, message, subject = parts[:4]
    finding = Finding(
        rule_id="pickle-unknown-import",
        severity=Severity.MEDIUM,
        location=Location(path or INPUT, (member,) if member else (), len(data)),
        message=message,
        subject=subject,
        scanner="fuzz",
        waiver=parts[4],
    )
    render_all([finding], len(data))
    return [finding]


_PICKLE_TOKENS = (b"\x80\x05", b"c", b"\x93", b"R", b"b", b"(", b"t", b".", b"\x94", b"h\x00", b"q\x00",
                  b"cos\nsystem\n", b"\x8c\x05posix\x8c\x06system\x93", b"]", b"}", b"e", b"u", b"0", b"2",
                  b"I0x1\n", b"L99999999999999999999999L\n", b"S'a'\n", b"V\\ud800\n", b"\x95" + b"\xff" * 8,
                  b"B\xff\xff\xff\x7f", b"\x8e" + b"\xff" * 8, b"\x82\xff", b"\x85", b"\x86",
                  b"\x87")  # fmt: skip
_JSON_TOKENS = (b"[", b"]", b"{", b"}", b'"', b'\\u0000', b"\\ud800", b"1e999", b"-0", b"9" * 20,
                b'"dtype":', b'"shape":[', b'"data_offsets":[', b"null", b"true", b'{"a":' * 8)  # fmt: skip
_JINJA_TOKENS = (b"{{", b"}}", b"{%", b"%}", b"(", b")", b"[", b"]", b"|", b".__class__", b"{% if x %}",
                 b"{% endif %}", b"{% for a in b %}", b"{% endfor %}", b"{% macro m() %}", b"{% raw %}",
                 b"-", b"~", b"'\\x00'")  # fmt: skip
_PYTHON_TOKENS = (b"(", b")", b"[", b"]", b"lambda:", b"\n    ", b"\n", b"import os\n", b"os.system(",
                  b"getattr(", b"f'{", b"}'", b"def f():\n", b'"""', b"\\")  # fmt: skip
_ZIP_TOKENS = (b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07", b"data.pkl",
               b"\xff\xff\xff\xff", b"\x01\x00\x10\x00")  # fmt: skip
_THRIFT_TOKENS = (b"PAR1", b"\x15", b"\x19", b"\x1c", b"\x29", b"\xff\xff\xff\x7f", b"\x00")
_FLATBUF_TOKENS = (b"ARROW1", b"\xff\xff\xff\xff", b"TFL3", b"\x00\x00\x00\x00", b"\xff\xff\xff\x7f")
_MSGPACK_TOKENS = (
    b"\xde\xff\xff",
    b"\xdf\xff\xff\xff\xff",
    b"\xdd\xff\xff\xff\xff",
    b"\x91",
    b"\x81",
    b"\xc7\xff\x01",
    b"\xd9\xff",
    b"\xc4\x10",
)
_PROTO_TOKENS = (b"\x08\x07", b"\x3a", b"\x42", b"\x0a", b"\x12", b"\x22", b"\x2a", b"\xff\xff\xff\xff\x0f",
                 b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01")  # fmt: skip


@cache
def targets() -> dict[str, Target]:
    all_targets = [
        Target("pickle", _scanner_target("pickle"), lambda: fixture_seeds("pickle"), _PICKLE_TOKENS),
        Target("torch-legacy", _scanner_target("pytorch-legacy"), lambda: fixture_seeds("pytorch-legacy"),
               _PICKLE_TOKENS),
        Target("joblib", _scanner_target("pickle"),
               lambda: [s for s in fixture_seeds("pickle") if b"joblib" in s], _PICKLE_TOKENS),
        Target("numpy", _scanner_target("numpy"), lambda: fixture_seeds("numpy"),
               (b"'descr': ", b"'O'", b"'<f4'", b"(", b")", b"{", b"}", b"[", b"]", b"\\x00")),
        Target("zip", _scanner_target("zip"), lambda: fixture_seeds("zip"), _ZIP_TOKENS),
        Target("tar", _scanner_target("tar"), _tar_seeds,
               (b"ustar\x00", b"././@LongLink", b"path=", b"size=", b"\x80\xff\xff\xff")),
        Target("compressed", _compressed, _compressed_seeds, (b"\x1f\x8b\x08", b"BZh9", b"\xfd7zXZ\x00")),
        Target("safetensors", _scanner_target("safetensors"), lambda: fixture_seeds("safetensors"),
               _JSON_TOKENS),
        Target("gguf", _scanner_target("gguf"), lambda: fixture_seeds("gguf"),
               (b"\x08\x00\x00\x00", b"\x09\x00\x00\x00", b"\xff\xff\xff\xff\xff\xff\xff\x7f", b"{{", b"{%")),
        Target("onnx", _scanner_target("onnx"), lambda: fixture_seeds("onnx"), _PROTO_TOKENS),
        Target("savedmodel", _scanner_target("tf-savedmodel"), lambda: fixture_seeds("tf-savedmodel"),
               _PROTO_TOKENS),
        Target("keras", _scanner_target("zip"),
               lambda: [s for s in fixture_seeds("zip") if b"metadata.json" in s], _JSON_TOKENS),
        Target("keras-config", _keras_config, _keras_configs, _JSON_TOKENS),
        Target("hdf5", _scanner_target("hdf5"), lambda: fixture_seeds("hdf5"), _JSON_TOKENS, smoke=3),
        Target("template", _template, _templates, _JINJA_TOKENS),
        Target("json-config", _scanner_target("json"), lambda: fixture_seeds("json"), _JSON_TOKENS),
        Target("code", _scanner_target("python"), _python_seeds, _PYTHON_TOKENS),
        Target("render", _render, _render_seeds, (_SURROGATE_UTF16, b"\x1b\x00")),
        Target("any", _scanner_target_detected(), lambda: fixture_seeds(*_ALL_FORMATS), _PICKLE_TOKENS),
        *_more_targets(),
    ]  # fmt: skip
    return {t.name: t for t in all_targets}


def _more_targets() -> list[Target]:
    """Formats added with issue #9's full campaign (seeds built in tests/fuzz/seeds.py where
    no fixture exists)."""
    return [
        Target(
            "loadable-pickle",
            _scanner_target("loadable-pickle"),
            lambda: fixture_seeds("text", "python", "gif", "json", "pickle")[:120],
            _PICKLE_TOKENS,
        ),
        Target("parquet", _scanner_target("parquet"), lambda: fixture_seeds("parquet"), _THRIFT_TOKENS),
        Target("arrow", _scanner_target("arrow"), lambda: fixture_seeds("arrow"), _FLATBUF_TOKENS),
        Target(
            "arrow-stream",
            _scanner_target("arrow-stream"),
            lambda: fixture_seeds("arrow-stream"),
            _FLATBUF_TOKENS,
        ),
        Target("tflite", _scanner_target("tflite"), lambda: fixture_seeds("tflite"), _FLATBUF_TOKENS),
        Target(
            "msgpack",
            _scanner_target("msgpack"),
            lambda: fixture_seeds("msgpack") + seeds.msgpack_seeds(),
            _MSGPACK_TOKENS,
        ),
        Target(
            "tf-bundle-index",
            _scanner_target("tf-bundle-index"),
            lambda: fixture_seeds("tf-bundle-index"),
            (b"\xff\xff\xff\xff\x0f", b"\x00\x00\x00\x00", b"\x01", b"\x57\xfb\x80\x8b\x24\x75\x47\xdb"),
        ),
        Target(
            "ubjson",
            _scanner_target("ubjson"),
            seeds.ubjson_seeds,
            (b"[$d#L", b"L\x7f\xff\xff\xff\xff\xff\xff\xff", b"{#U\xff", b"N", b"H", b"[$[#U\x02"),
        ),
        Target(
            "sentencepiece",
            _scanner_target("sentencepiece"),
            lambda: fixture_seeds("sentencepiece"),
            _PROTO_TOKENS,
        ),
        Target(
            "7z", _scanner_target("7z"), seeds.sevenzip_seeds, (b"7z\xbc\xaf\x27\x1c", b"\x17", b"\x01\x04")
        ),
        Target("lz4", _scanner_target("lz4"), seeds.lz4_seeds, (b"\x04\x22\x4d\x18", b"\xff" * 4)),
        Target("pyc", _scanner_target("pyc"), seeds.pyc_seeds, (b"\xe3", b"\x00" * 4, b"\xff\xff\xff\x7f")),
        Target(
            "script", _scanner_target("script"), seeds.script_seeds, (b"#!", b"\ncurl ", b" | sh\n", b"$(")
        ),
        Target(
            "executable",
            _scanner_target_detected(),
            seeds.executable_seeds,
            (b"\x7fELF", b"MZ", b"PE\x00\x00"),
        ),
        Target(
            "plain-data",
            _scanner_target_detected(),
            lambda: fixture_seeds("gif", "orc", "unknown", "text"),
            _PICKLE_TOKENS,
        ),
        Target("saved-dataset", _scanner_target("datasets-state"), seeds.saved_dataset_seeds, _JSON_TOKENS),
    ]


_SURROGATE_UTF16 = "\ud800".encode("utf-16-le", "surrogatepass")
_ALL_FORMATS = ("pickle", "zip", "tar", "numpy", "json", "text", "gzip", "safetensors", "gguf", "onnx")


def _scanner_target_detected() -> Callable[[bytes], list[Finding]]:
    def run(data: bytes) -> list[Finding]:
        findings = scan_as(None, data)
        render_all(findings, len(data))
        return findings

    return run
