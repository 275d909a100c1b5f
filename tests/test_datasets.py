"""Parquet, Arrow and Feather schemas, and webdataset shards: payloads proven
with the real readers, caught by the scan; benign files written by pandas,
pyarrow and datasets stay below medium."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.reader import BytesReader
from modeltrust.scanners import parquet
from modeltrust.scanners.thrift import CompactReader, ThriftError

from .conftest import FIXTURES, MARKER, ROOT, manifest, rule_ids, scan_bytes, scan_paths

sys.path.insert(0, str(ROOT / "fixtures"))
import datasets_fixtures

MALICIOUS_DATA = FIXTURES / "malicious" / "datasets"
BENIGN_DATA = FIXTURES / "benign" / "datasets"
OLD_PYARROW = datasets_fixtures.old_pyarrow_python()
OPENERS = {
    ".parquet": "import pyarrow.parquet as pq; pq.read_table('sample')",
    ".feather": "import pyarrow.feather as f; f.read_table('sample')",
    ".arrow": "import pyarrow as pa; pa.ipc.open_stream(pa.memory_map('sample')).read_all()",
}
POLYGLOTS = ["gif_head.parquet", "gif_head.arrow"]
RAW_METADATA = ["py_extension_in_struct.feather", "py_extension_gif.parquet"]
PY_EXTENSION_FILES = sorted([*datasets_fixtures.OLD_PYARROW_FILES, *RAW_METADATA, *POLYGLOTS])
# A file with a foreign head is only opened through the API that reads the tail.
OPEN_FILE = "import pyarrow as pa; pa.ipc.open_file('sample').read_all()"


def _opened_fires(python: str, code: str, sample: Path, tmp_path: Path) -> bool:
    shutil.copy(sample, tmp_path / "sample")
    script = f"try:\n    {code}\nexcept Exception:\n    pass\n"
    subprocess.run([python, "-c", script], cwd=tmp_path, timeout=120, check=False, capture_output=True)
    return (tmp_path / MARKER).exists()


@pytest.mark.skipif(
    OLD_PYARROW is None, reason="needs a pyarrow < 14 venv (MODELTRUST_OLD_PYARROW or /tmp/pa13)"
)
@pytest.mark.parametrize("name", PY_EXTENSION_FILES)
def test_old_pyarrow_runs_the_payload_when_opening(name: str, tmp_path: Path) -> None:
    assert OLD_PYARROW is not None
    opener = OPEN_FILE if name == "gif_head.arrow" else OPENERS[Path(name).suffix]
    assert _opened_fires(OLD_PYARROW, opener, MALICIOUS_DATA / name, tmp_path), name


@pytest.mark.parametrize("name", PY_EXTENSION_FILES)
def test_pickled_extension_type_is_critical(name: str) -> None:
    report = scan_paths(MALICIOUS_DATA / name)
    found = {f.rule_id: f for f in report.findings}
    assert found["arrow-python-extension"].severity == Severity.CRITICAL
    assert "pickle-os-command" in found
    assert {"parquet", "arrow"} & set(report.artifacts[0].scanner.split("+"))


def test_current_pyarrow_reads_the_same_extension_names_we_report(tmp_path: Path) -> None:
    """Differential: pyarrow 26 keeps an unregistered extension's metadata on
    the field (it never unpickles); every field that names an extension type,
    children included, must be one the scan reported."""
    pytest.importorskip("pyarrow")
    script = (
        "import json, sys, pyarrow as pa, pyarrow.parquet as pq, pyarrow.feather as f\n"
        "p = sys.argv[1]\n"
        "s = pq.read_schema(p) if p.endswith('.parquet') else (f.read_table(p).schema if p.endswith("
        "'.feather') else pa.ipc.open_stream(pa.memory_map(p)).schema)\n"
        "out = []\n"
        "def walk(field, path):\n"
        "    t = field.type\n"
        "    name = (field.metadata or {}).get(b'ARROW:extension:name')\n"
        "    if name: out.append([path, name.decode()])\n"
        "    if isinstance(t, pa.ExtensionType): out.append([path, t.extension_name])\n"
        "    for i in range(t.num_fields if hasattr(t, 'num_fields') else 0):\n"
        "        walk(t.field(i), path + '.' + t.field(i).name)\n"
        "for fl in s: walk(fl, fl.name)\n"
        "print(json.dumps(out))\n"
    )
    for name in [*PY_EXTENSION_FILES, "../../benign/datasets/pyarrow_extensions.parquet"]:
        if "legacy" in name or name == "gif_head.arrow":  # opened by other APIs than the script's
            continue
        path = MALICIOUS_DATA / name
        result = subprocess.run(
            [sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        # Parquet renames list items ("element"), so compare top-level columns.
        expected = {(p.split(".")[0], n) for p, n in json.loads(result.stdout)}
        report = scan_paths(path)
        seen = {
            (f.message.split("'")[1].split(".")[0], f.subject)
            for f in report.findings
            if f.rule_id in ("arrow-python-extension", "arrow-extension-type")
        }
        assert expected <= seen, (name, expected - seen)
        assert not (tmp_path / MARKER).exists()


def test_webdataset_decodes_the_disguised_members(tmp_path: Path) -> None:
    """One subprocess (webdataset imports torch when present), one folder per shard."""
    pytest.importorskip("webdataset")
    names = ["shard_pyd_gif.tar", "shard_pkl_gz.tar", "shard_pyd_gif.zip"]
    names += ["shard_pth_gif.tar"] if _has("torch") else []
    for name in names:
        (tmp_path / name).mkdir()
        shutil.copy(MALICIOUS_DATA / name, tmp_path / name / "sample")
    script = (
        "import os, sys, zipfile, webdataset as wds\n"
        "for folder in sys.argv[1:]:\n"
        "    os.chdir(folder)\n"
        "    try:\n"
        "        if folder.endswith('.zip'):\n"
        "            z = zipfile.ZipFile('sample')\n"
        "            wds.autodecode.default_decoder({n.split('.', 1)[1]: z.read(n) for n in z.namelist()})\n"
        "        else:\n"
        "            for sample in wds.WebDataset('sample', shardshuffle=False).decode(): pass\n"
        "    except Exception:\n"
        "        pass\n"
    )
    folders = [str(tmp_path / n) for n in names]
    subprocess.run([sys.executable, "-c", script, *folders], timeout=300, check=False, capture_output=True)
    for name in names:
        assert (tmp_path / name / MARKER).exists(), name


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", sorted(n for n in manifest() if n.startswith("benign/datasets/")))
def test_benign_dataset_files_are_covered_and_quiet(name: str) -> None:
    report = scan_paths(FIXTURES / name)
    assert not report.at_or_above(Severity.MEDIUM)
    plain = name.endswith(".orc")  # ORC is named as data: no schema metadata runs
    assert (
        report.artifacts[0].scanner == "data"
        if plain
        else report.artifacts[0].scanner not in ("unverified", "data")
    )


# --- the footer reader on crafted input ---------------------------------------------------


def _varint(n: int) -> bytes:
    out = b""
    while True:
        if n < 0x80:
            return out + bytes([n])
        out += bytes([n & 0x7F | 0x80])
        n >>= 7


def _binary(data: bytes) -> bytes:
    return _varint(len(data)) + data


def _footer(pairs: list[tuple[bytes, bytes]], rows: int = 3, extra: bytes = b"") -> bytes:
    """FileMetaData{1: version, 3: num_rows, 5: key_value_metadata} in compact protocol."""
    body = b"\x15" + _varint(2)  # field 1, i32, zigzag(1)
    body += b"\x26" + _varint(rows * 2)  # field 3 (delta 2), i64
    body += b"\x29" + bytes([len(pairs) << 4 | 12])  # field 5 (delta 2), list of structs
    for key, value in pairs:
        body += b"\x18" + _binary(key) + b"\x18" + _binary(value) + b"\x00"
    return body + extra + b"\x00"


def _parquet(footer: bytes) -> bytes:
    return b"PAR1" + footer + struct.pack("<I", len(footer)) + b"PAR1"


def _schema_b64(name: str) -> bytes:
    """The ARROW:schema of a committed malicious file, re-encoded."""
    data = (MALICIOUS_DATA / name).read_bytes()
    footer = parquet.read_footer(BytesReader(data))
    for key, value in parquet._key_values(footer):
        if key == "ARROW:schema":
            return value
    raise AssertionError("no ARROW:schema")


def test_thrift_reader_bounds() -> None:
    with pytest.raises(ThriftError):
        CompactReader(b"\x19\xfc\xff\xff\xff\xff\x07" + b"\x00" * 4).struct(
            {1: None}
        )  # a list of 2**31 elements
    with pytest.raises(ThriftError):
        CompactReader(b"\x1c" * 200).struct({})  # structs nested 200 deep
    with pytest.raises(ThriftError):
        CompactReader(b"\x18\x7f").struct({1: None})  # string past the end
    assert CompactReader(b"\x15\x04\x00").struct({1: None}) == {1: 2}


def test_crafted_footer_with_a_pickled_extension_is_critical(tmp_path: Path) -> None:
    schema = _schema_b64("py_extension_type.parquet")
    report = scan_bytes(tmp_path, _parquet(_footer([(b"ARROW:schema", schema)])), "x.parquet")
    assert report.max_severity == Severity.CRITICAL


def test_repeated_arrow_schema_keys_are_all_checked(tmp_path: Path) -> None:
    clean = base64.b64encode(parquet.arrow_decode_base64(_schema_b64("py_extension_type.parquet"))[:0])
    evil = _schema_b64("py_extension_type.parquet")
    data = _parquet(_footer([(b"ARROW:schema", clean), (b"ARROW:schema", evil)]))
    assert "arrow-python-extension" in rule_ids(scan_bytes(tmp_path, data, "dup.parquet"))


def test_base64_read_as_arrow_reads_it(tmp_path: Path) -> None:
    """Arrow's decoder stops at the first '=' or non-alphabet byte; Python's skips
    junk. Both readings are checked."""
    evil = _schema_b64("py_extension_type.parquet")
    for mangled in (evil + b"\n!!junk", b"\n" + evil):
        data = _parquet(_footer([(b"ARROW:schema", mangled)]))
        assert "arrow-python-extension" in rule_ids(scan_bytes(tmp_path, data, "b64.parquet"))


@pytest.mark.parametrize(
    "data, message",
    [
        (b"PAR1" + b"\x00" * 4, "too short"),
        (b"PAR1" + b"\x00" * 20 + b"PARE", "encrypted"),
        (b"PAR1" + b"\x00" * 20 + struct.pack("<I", 10**6) + b"PAR1", "does not fit"),
        (_parquet(b"\x1c" * 100), "corrupt"),
        (_parquet(_footer([]))[:-1], "PAR1 magic"),
    ],
)
def test_unreadable_footer_is_reported(tmp_path: Path, data: bytes, message: str) -> None:
    report = scan_bytes(tmp_path, data, "bad.parquet")
    found = [f for f in report.findings if f.rule_id == "parquet-malformed"]
    assert found and message in found[0].message and found[0].severity == Severity.MEDIUM


def test_column_chunks_in_other_files(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    pq.write_table(pa.table({"a": [1, 2]}), tmp_path / "part.parquet")
    for path, rule, severity in (
        ("../../outside/part.parquet", "parquet-external-column", Severity.HIGH),
        ("year=2024/part.parquet", "parquet-column-file", Severity.INFO),
    ):
        metadata = pq.read_metadata(tmp_path / "part.parquet")
        metadata.set_file_path(path)
        metadata.write_metadata_file(str(tmp_path / "_metadata"))
        found = {f.rule_id: f for f in scan_paths(tmp_path / "_metadata").findings}
        assert found[rule].severity == severity and found[rule].subject == path


def test_extension_pickle_of_another_type_is_walked(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    payload = datasets_fixtures.PROTO0_PAYLOAD
    meta = {b"ARROW:extension:name": b"acme.tensor", b"ARROW:extension:metadata": payload}
    schema = pa.schema([pa.field("x", pa.int64(), metadata=meta)])
    feather.write_feather(pa.Table.from_arrays([pa.array([1])], schema=schema), tmp_path / "x.feather")
    found = {f.rule_id: f.severity for f in scan_paths(tmp_path / "x.feather").findings}
    assert (
        found["arrow-extension-pickle"] == Severity.CRITICAL
        and found["pickle-os-command"] == Severity.CRITICAL
    )


def test_truncated_arrow_schema_is_reported(tmp_path: Path) -> None:
    data = (BENIGN_DATA / "pyarrow_stream.arrow").read_bytes()
    report = scan_bytes(tmp_path, data[:200], "cut.arrow")
    assert "arrow-malformed" in rule_ids(report)


def test_saved_dataset_is_summarised_for_the_bom() -> None:
    report = scan_paths(BENIGN_DATA / "saved")
    (summary,) = report.datasets
    assert summary.kind == "save_to_disk"
    assert {s.name: s.rows for s in summary.splits} == {"train": 3, "test": 1}
    assert [(c.name, c.type) for c in summary.features] == [
        ("text", "string"),
        ("label", "int64"),
        ("scores", "list<float>"),
    ]
    assert len(summary.files) == 2 and summary.rows == 4


def test_card_and_parquet_files_are_summarised(tmp_path: Path) -> None:
    card = (
        "---\nlicense: cc-by-4.0\npretty_name: Tiny\nlanguage: [en]\n"
        "dataset_info:\n  splits:\n  - name: train\n    num_examples: 4\n    num_bytes: 99\n---\n# Tiny\n"
    )
    (tmp_path / "README.md").write_text(card)
    (tmp_path / "data").mkdir()
    shutil.copy(BENIGN_DATA / "pandas.parquet", tmp_path / "data" / "train-00000-of-00001.parquet")
    (summary,) = scan_paths(tmp_path).datasets
    assert (summary.kind, summary.name, summary.license) == ("files", "Tiny", "cc-by-4.0")
    assert summary.splits[0].name == "train" and summary.splits[0].rows == 4 and summary.splits[0].bytes == 99
    assert summary.files[0].rows == 4 and summary.files[0].created_by.startswith("parquet-cpp-arrow")
    assert ("language", "en") in summary.card
    assert ("per", "int64", "pandas.period") in [(c.name, c.type, c.extension) for c in summary.features]


def test_no_data_files_no_dataset(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("---\nlicense: mit\n---\n")
    assert scan_paths(tmp_path).datasets == ()


def test_load_from_disk_opens_the_names_state_json_gives(tmp_path: Path) -> None:
    """The real loader follows `_data_files` out of the folder; the scan says so."""
    datasets = pytest.importorskip("datasets")
    saved = BENIGN_DATA / "saved" / "train"
    folder, outside = tmp_path / "ds", tmp_path / "outside"
    folder.mkdir()
    outside.mkdir()
    shutil.copy(saved / "dataset_info.json", folder)
    shutil.copy(saved / "data-00000-of-00001.arrow", outside)
    shutil.copy(MALICIOUS_DATA / "escaping_state" / "state.json", folder)
    assert len(datasets.load_from_disk(str(folder))) == 3
    found = {f.rule_id: f for f in scan_paths(folder).findings}
    assert found["dataset-path-escape"].severity == Severity.HIGH


def test_footer_past_the_bounds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Too large to walk: high when it carries an Arrow schema (a reader may
    rebuild a pickled type from it), unverified otherwise."""
    with_schema = (MALICIOUS_DATA / "py_extension_type.parquet").read_bytes()
    without = _parquet(_footer([(b"pandas", b"{}")]))
    monkeypatch.setattr(parquet, "MAX_FOOTER_BYTES", 16)
    found = {f.rule_id: f.severity for f in scan_bytes(tmp_path, with_schema, "a.parquet").findings}
    assert found == {"dataset-limit": Severity.HIGH}
    found = {f.rule_id: f.severity for f in scan_bytes(tmp_path, without, "b.parquet").findings}
    assert found == {"parquet-malformed": Severity.MEDIUM}


def test_struct_nesting_arrow_reads_is_walked(tmp_path: Path) -> None:
    """pyarrow reads structs nested up to 124 deep: a pickled type at the bottom is found."""
    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    meta = {b"ARROW:extension:name": b"arrow.py_extension_type", b"ARROW:extension:metadata": b"\x80\x04N."}
    kind = pa.struct([pa.field("leaf", pa.int64(), metadata=meta)])
    for _ in range(110):
        kind = pa.struct([pa.field("a", kind)])
    schema = pa.schema([pa.field("x", kind)])
    feather.write_feather(pa.Table.from_pylist([], schema=schema), tmp_path / "deep.feather")
    assert "arrow-python-extension" in rule_ids(scan_paths(tmp_path / "deep.feather"))


def _every_arrow_type() -> list[tuple[str, object, list[object]]]:
    pa = pytest.importorskip("pyarrow")
    import datetime
    import decimal

    return [
        ("f16", pa.float16(), [None]),
        ("d256", pa.decimal256(40, 2), [decimal.Decimal("1.25")]),
        ("t32", pa.time32("s"), [datetime.time(1, 2, 3)]),
        ("t64", pa.time64("ns"), [datetime.time(1, 2, 3)]),
        ("d64", pa.date64(), [datetime.date(2024, 1, 2)]),
        ("dur", pa.duration("ms"), [datetime.timedelta(seconds=3)]),
        ("mdn", pa.month_day_nano_interval(), [None]),
        ("ll", pa.large_list(pa.int8()), [[1, 2]]),
        ("fsl", pa.list_(pa.float32(), 2), [[1.0, 2.0]]),
        ("lv", pa.list_view(pa.int16()), [[1]]),
        ("sv", pa.string_view(), ["x"]),
        ("bv", pa.binary_view(), [b"x"]),
        ("ls", pa.large_string(), ["x"]),
        ("lb", pa.large_binary(), [b"x"]),
        ("fsb", pa.binary(3), [b"abc"]),
        ("ree", pa.run_end_encoded(pa.int32(), pa.string()), ["a"]),
        ("tz", pa.timestamp("ns", tz="Europe/Paris"), [None]),
        ("b8", pa.bool8(), [1]),
        ("op", pa.opaque(pa.binary(), "geometry", "postgis"), [b"x"]),
        ("null", pa.null(), [None]),
    ]


def test_every_arrow_type_pyarrow_writes_is_read_and_quiet(tmp_path: Path) -> None:
    """Differential: each column pyarrow writes (Feather v2 and stream) comes
    back with its name and extension; none raises a finding at low or above."""
    pa = pytest.importorskip("pyarrow")
    feather = pytest.importorskip("pyarrow.feather")
    columns = _every_arrow_type()
    arrays = [pa.array(values, kind) for _, kind, values in columns]
    table = pa.table(arrays, names=[n for n, _, _ in columns])
    feather.write_feather(table, tmp_path / "all.feather")
    with pa.OSFile(str(tmp_path / "all.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    extension = lambda kind: kind.extension_name if isinstance(kind, pa.BaseExtensionType) else ""  # noqa: E731
    expected = [(f.name, extension(f.type)) for f in table.schema]
    for name in ("all.feather", "all.arrow"):
        report = scan_paths(tmp_path / name)
        assert not report.at_or_above(Severity.LOW), [f.message for f in report.findings]
        (summary,) = report.datasets
        assert [(c.name, c.extension) for c in summary.features] == expected
        assert summary.files[0].rows == 1


def test_saved_dataset_reaches_the_bom(tmp_path: Path) -> None:
    """End to end: the summary the scan builds becomes the BOM's data component."""
    from click.testing import CliRunner

    from modeltrust.cli.main import cli
    from modeltrust.cli.scan_cmd import scan

    cli.add_command(scan)
    args = ["scan", str(BENIGN_DATA / "saved"), "--bom", str(tmp_path / "bom.json")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    bom = json.loads((tmp_path / "bom.json").read_text())
    (data,) = [c for c in bom["components"] if c["type"] == "data"]
    props = {(p["name"], p["value"]) for p in data["properties"]}
    assert {("modeltrust:dataset:split", "train: 3 rows"), ("modeltrust:dataset:rows", "4")} <= props
    assert ("modeltrust:dataset:feature", "scores: list<float>") in props
