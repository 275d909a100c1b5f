"""Deserializable means analysed: any bytes a pickle loader reads from offset 0
are walked, whatever else they look like, and names select scanners too.

Each malicious sample is proven with its real loader in a subprocess (cwd in a
temp dir; the payload only creates `modeltrust-pwned`)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from modeltrust import detect
from modeltrust.findings import Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet

from .conftest import FIXTURES, MARKER, scan_bytes, scan_paths

sys.path.insert(0, str(FIXTURES))
import loader_polyglots  # fixtures/ is not a package

_LOAD = {
    "pickle": "import pickle\npickle.load(open('sample', 'rb'))",
    "joblib": "import joblib\njoblib.load('sample')",
    "numpy": "import numpy\nnumpy.load('sample', allow_pickle=True)",
    "torch": "import torch\ntorch.load('sample', weights_only=False)",
    "tarfile": "import os, tarfile\nos.mkdir('out')\ntarfile.open('sample').extractall('out')",
}


def fires(path: Path, loader: str, tmp_path: Path) -> bool:
    """Does loading `path` with the real `loader` run the payload?"""
    if importlib.util.find_spec(loader) is None:
        pytest.skip(f"{loader} is not installed (pip install '.[fixtures]')")
    shutil.copy(path, tmp_path / "sample")
    key = path.relative_to(FIXTURES).as_posix() if path.is_relative_to(FIXTURES) else ""
    for companion in loader_polyglots.COMPANIONS.get(key, ()):
        shutil.copy(FIXTURES / companion, tmp_path / Path(companion).name)
    body = "\n".join("    " + line for line in _LOAD[loader].splitlines())
    code = f"try:\n{body}\nexcept Exception:\n    pass\n"
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, timeout=120, check=False, capture_output=True)
    return (tmp_path / MARKER).exists()


CASES = sorted(loader_polyglots.loaders().items())


@pytest.mark.parametrize("name, loader", CASES)
def test_payload_fires_with_its_loader(name: str, loader: str, tmp_path: Path) -> None:
    assert fires(FIXTURES / name, loader, tmp_path), f"{name}: {loader} did not run the payload"


@pytest.mark.parametrize("name, loader", CASES)
def test_payload_is_flagged(name: str, loader: str, rules: RuleSet) -> None:
    report = scan_paths(FIXTURES / name, rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, [
        f.message for f in report.findings
    ]
    if loader != "tarfile" and name not in loader_polyglots.COMPANIONS:  # else: a path, or another file
        assert any(f.subject == "os.system" and f.severity is Severity.CRITICAL for f in report.findings)


# --- regression tests, one per technique -------------------------------------------------


def _sniffed(name: str) -> str:
    return detect.sniff(BytesReader((FIXTURES / "malicious" / name).read_bytes()))


def test_printable_pickle_whose_first_opcodes_read_as_text() -> None:
    assert _sniffed("loadable_text_prefixed.txt") == detect.TEXT  # what the bytes look like
    det = detect.detect(BytesReader((FIXTURES / "malicious/loadable_text_prefixed.txt").read_bytes()))
    assert det.pickle_loadable and detect.PICKLE_LOADABLE in det.formats


def test_head_filled_by_one_long_string() -> None:
    assert _sniffed("loadable_long_string_head.txt") == detect.TEXT


def test_trailing_import_line_classed_as_python() -> None:
    assert _sniffed("loadable_trailing_import.txt") == detect.PYTHON


def test_gif_whose_header_bytes_are_opcodes() -> None:
    assert _sniffed("loadable_gif_header.gif") == detect.GIF


def test_pickle_in_a_tar_header_name_field(tmp_path: Path) -> None:
    path = FIXTURES / "malicious/loadable_tar_name_field.tar"
    assert _sniffed("loadable_tar_name_field.tar") == detect.TAR
    with tarfile.open(path) as tar:  # tarfile itself accepts the archive
        assert [m.size for m in tar.getmembers()] == [8]
    report = scan_paths(path)
    assert {f.location.members for f in report.findings if f.severity >= Severity.HIGH} == {()}


def test_lzma_stream_with_a_small_dictionary() -> None:
    assert _sniffed("lzma_small_dictionary.joblib") == detect.LZMA


# --- benign files are judged by what the walk finds -------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        b"In this repository we keep the weights.\n",
        b"Kx0 is the model's name.\n",
        b"N.",  # a complete pickle of None
        b"Version 2 of the model card\nThe weights are fp16.\n",
        b"(see the paper)\n",
        b"]]]",
        b"S'quoted'\n",
        b"Gated access: request it on the Hub.\n",
    ],
)
def test_benign_loadable_text_passes_the_default_gate(tmp_path: Path, text: bytes, rules: RuleSet) -> None:
    report = scan_bytes(tmp_path, text, name="notes.txt", rules=rules)
    assert [f for f in report.findings if f.severity >= Severity.MEDIUM] == []


def test_text_that_is_a_harmless_pickle_is_covered_by_the_walk(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, b"N.", name="notes.txt")
    assert "pickle" in report.artifacts[0].scanner.split("+")


def test_rejected_first_opcode_is_not_walked() -> None:
    for head in (b"Hello", b"# card", b"PK\x03\x04", b".", b"0", b"\x80\x06", b"P0\n", b"g0\n"):
        assert not detect.pickle_loadable(head), head


def test_an_unknown_import_in_a_text_file_is_reported(tmp_path: Path, rules: RuleSet) -> None:
    data = b"Kx0" + b"cacme.models\nBuilder\n(tR." + b"\nnotes\n"
    report = scan_bytes(tmp_path, data, name="notes.txt", rules=rules)
    assert any(f.subject == "acme.models.Builder" and f.severity >= Severity.HIGH for f in report.findings)


# --- names select scanners too ------------------------------------------------------------


@pytest.mark.parametrize(
    "name, sniffed, implied",
    [
        ("modeling_custom.py", detect.TEXT, (detect.PYTHON,)),  # a head that is one long docstring
        ("sub/helpers.py", detect.JSON, (detect.PYTHON,)),  # a module that starts with `[`
        ("chat_template.jinja", detect.JSON, ("chat-template",)),
        ("tokenizer_config.json", detect.TEXT, (detect.JSON,)),
        ("model.keras", detect.PNG, (detect.ZIP,)),
        ("model.onnx", detect.PNG, (detect.ONNX,)),
        ("tf_model.h5", detect.UNKNOWN, (detect.HDF5,)),
        ("model.weights.h5", detect.UNKNOWN, (detect.HDF5,)),
        ("model.safetensors", detect.UNKNOWN, (detect.SAFETENSORS,)),
        ("model.pkl", detect.TEXT, (detect.PICKLE,)),
        ("model.pt", detect.PNG, (detect.PICKLE,)),
        ("MODEL.PTH", detect.UNKNOWN, (detect.PICKLE,)),
        ("model.pt", detect.ZIP, ()),  # torch.load reads zips: nothing more to claim
        ("model.joblib", detect.XZ, ()),
        ("weights.bin", detect.UNKNOWN, ()),  # raw tensor bytes as often as a pickle
        ("model.onnx", detect.ONNX, ()),
        ("empty.py", detect.EMPTY, ()),
        ("README.md", detect.TEXT, ()),
    ],
)
def test_names_imply_formats(name: str, sniffed: str, implied: tuple[str, ...]) -> None:
    assert detect.formats_by_name(name, sniffed) == implied


def test_keras_zip_behind_a_png_signature_is_scanned_as_keras(tmp_path: Path, rules: RuleSet) -> None:
    data = b"\x89PNG\r\n\x1a\n" + bytes(64) + (FIXTURES / "malicious/lambda.keras").read_bytes()
    assert detect.sniff(BytesReader(data)) == detect.PNG
    report = scan_bytes(tmp_path, data, name="model.keras", rules=rules)
    assert "keras-lambda" in {f.rule_id for f in report.findings}
    # The same bytes under a neutral name are only an image.
    neutral = scan_bytes(tmp_path, data, name="picture.png", rules=rules)
    assert "keras-lambda" not in {f.rule_id for f in neutral.findings}


def test_hdf5_with_a_user_block_is_scanned_by_name(tmp_path: Path, rules: RuleSet) -> None:
    h5py = pytest.importorskip("h5py")
    config = h5py.File(FIXTURES / "malicious/legacy_lambda.h5", "r").attrs["model_config"]
    path = tmp_path / "tf_model.h5"
    with h5py.File(path, "w", userblock_size=512) as handle:
        handle.attrs["model_config"] = config
    assert detect.sniff(BytesReader(path.read_bytes())) != detect.HDF5
    report = scan_paths(path, rules=rules)
    assert "keras-lambda" in {f.rule_id for f in report.findings}


def test_a_file_that_fails_its_names_parser_is_a_finding(tmp_path: Path, rules: RuleSet) -> None:
    report = scan_bytes(tmp_path, b"\x89PNG\r\n\x1a\n" + bytes(200), name="model.keras", rules=rules)
    assert any(f.rule_id == "archive-malformed" and f.severity >= Severity.MEDIUM for f in report.findings)
    pickled = scan_bytes(tmp_path, b"this is not a pickle\n", name="model.pkl", rules=rules)
    assert any(f.rule_id == "pickle-malformed" for f in pickled.findings)


def test_name_of_a_decompressed_stream_drops_the_suffix() -> None:
    from modeltrust.engine import name_of
    from modeltrust.findings import Location

    assert name_of(Location("x/model.pkl.gz", ("<gzip stream>",))) == "x/model.pkl"
    assert name_of(Location("a.zip", ("sub/chat_template.jinja",))) == "sub/chat_template.jinja"
    assert name_of(Location("a.pkl", ("<nested pickle passed to pickle.loads @3>",))) == ""


def test_size_limit_counts_only_when_the_walk_reaches_it(tmp_path: Path) -> None:
    from modeltrust.config import Limits, ScanConfig
    from modeltrust.engine import scan

    path = tmp_path / "notes.txt"
    path.write_bytes(b"Kx0 is the name.\n" * 100)  # loadable, rejected at byte 3
    report = scan(ScanConfig(targets=(str(path),), limits=Limits(max_pickle_bytes=200)))
    assert "pickle-opcode-limit" not in {f.rule_id for f in report.findings}
    path.write_bytes(b"(" + b"K\x01" * 400 + b"t.")  # a real pickle longer than the limit
    report = scan(ScanConfig(targets=(str(path),), limits=Limits(max_pickle_bytes=200)))
    assert "pickle-opcode-limit" in {f.rule_id for f in report.findings}


def test_npy_header_over_the_limit_is_still_followed(tmp_path: Path) -> None:
    """numpy.load(allow_pickle=True) lifts numpy's own header limit (10000
    bytes); a header over ours must not hide the pickle behind it."""
    from modeltrust.config import Limits, ScanConfig
    from modeltrust.engine import scan

    data = loader_polyglots.npy("'|O'", version=2, pad_to=20480)
    path = tmp_path / "big_header.npy"
    path.write_bytes(data)
    assert fires(path, "numpy", tmp_path)
    report = scan(ScanConfig(targets=(str(path),), limits=Limits(max_header_bytes=8192)))
    assert any(f.subject == "os.system" and f.severity is Severity.CRITICAL for f in report.findings)


def test_zip_directories_zipfile_and_miniz_disagree_on_are_all_scanned(
    tmp_path: Path, rules: RuleSet
) -> None:
    """zipfile reads the zip64 record right before the locator, miniz the one
    the locator points to: with two different records, both are scanned."""
    import io
    import zipfile

    data = loader_polyglots.zip_with_directories(
        [loader_polyglots.BENIGN_TORCH, loader_polyglots.EVIL_TORCH],
        eocd32=0,
        zip64_pointed=0,
        zip64_adjacent=1,
    )
    with zipfile.ZipFile(io.BytesIO(data)) as archive:  # the oracle: which copy zipfile reads
        assert b"system" in archive.read("archive/data.pkl")
    report = scan_bytes(tmp_path, data, name="arrays.npz", rules=rules)
    assert any(f.subject == "os.system" for f in report.findings)
    assert any("central directories" in f.message for f in report.findings)


# One sample per loader and container (each run imports the library in a fresh process).
ORACLE_CASES = [
    ("malicious/loadable_tar_name_field.tar", "pickle"),
    ("malicious/joblib_wrapper_reconstructor.joblib", "joblib"),
    ("malicious/npy_descr_comma.npy", "numpy"),
    ("malicious/torch_zip64_locator.pt", "torch"),
    ("malicious/torch_tar_pax_size.tar", "torch"),
]


@pytest.mark.parametrize("name, loader", ORACLE_CASES)
def test_the_name_the_real_loader_stops_at_is_reported(name: str, loader: str, rules: RuleSet) -> None:
    """Differential: the loader resolves names under an audit hook and stops
    at the first one modeltrust's rules do not allow; that name is a finding."""
    from . import oracle

    result = oracle.run_loader(FIXTURES / name, loader)
    assert result.stopped is not None, (name, result.error)
    subjects = {f.subject for f in scan_paths(FIXTURES / name, rules=rules).findings}
    assert ".".join(result.stopped) in subjects, (result.stopped, subjects)


@pytest.mark.parametrize(
    "name, rule",
    [
        ("model.safetensors", "safetensors-"),
        ("model.onnx", "onnx-malformed"),
        ("model.gguf", "scan-malformed"),  # no GGUF magic and version: the readers refuse it at once
        ("tf_model.h5", "keras-malformed"),
        ("model.keras", "archive-malformed"),
        ("model.pt", "pickle-malformed"),
        ("tokenizer_config.json", "scan-malformed"),
    ],
)
def test_every_claimed_format_reports_its_parse_failure(tmp_path: Path, name: str, rule: str) -> None:
    """A file named for a loader but not in its format is a finding of that
    format's scanner, at medium or above (here: a line of text)."""
    report = scan_bytes(tmp_path, b"hello there\n", name=name)
    assert any(f.rule_id.startswith(rule) and f.severity >= Severity.MEDIUM for f in report.findings), [
        (f.rule_id, f.severity.label) for f in report.findings
    ]
