"""Red-team payloads by technique (fixtures/redteam.py): each is proven to run
with its real loader in a subprocess (cwd in a temp dir; the payload only
creates `modeltrust-pwned`), and each is flagged at high or above."""

from __future__ import annotations

import importlib.util
import lzma
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeltrust import detect
from modeltrust.findings import ScanReport, Severity
from modeltrust.reader import BytesReader
from modeltrust.rules import RuleSet

from .conftest import FIXTURES, MARKER, scan_bytes, scan_paths

sys.path.insert(0, str(FIXTURES))
import redteam  # fixtures/ is not a package

# loader -> (module that must be installed, code that loads 'sample')
LOADERS = {
    "pickle": ("pickle", "import pickle\npickle.load(open('sample', 'rb'))"),
    "pickle-python": ("pickle", "import pickle\npickle._Unpickler(open('sample', 'rb')).load()"),
    "joblib": ("joblib", "import joblib\njoblib.load('sample')"),
    "numpy": ("numpy", "import numpy\nnumpy.load('sample', allow_pickle=True)"),
    "torch": ("torch", "import torch\ntorch.load('sample', weights_only=False)"),
    "dill": ("dill", "import dill\ndill.load(open('sample', 'rb'))"),
    "cloudpickle": ("cloudpickle", "import cloudpickle\ncloudpickle.load(open('sample', 'rb'))"),
    "pandas": ("pandas", "import pandas\npandas.read_pickle('sample', compression=None)"),
    "pandas-gz": ("pandas", "import pandas\npandas.read_pickle('sample', compression='gzip')"),
    "pandas-xz": ("pandas", "import pandas\npandas.read_pickle('sample', compression='xz')"),
}


def fires(path: Path, loader: str, tmp_path: Path) -> bool:
    """Does loading `path` with the real `loader` run the payload?"""
    module, code = LOADERS[loader]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install '.[fixtures]')")
    shutil.copy(path, tmp_path / "sample")
    body = "\n".join("    " + line for line in code.splitlines())
    wrapped = f"try:\n{body}\nexcept Exception:\n    pass\n"
    subprocess.run(
        [sys.executable, "-c", wrapped], cwd=tmp_path, timeout=120, check=False, capture_output=True
    )
    return (tmp_path / MARKER).exists()


def _explain(report: ScanReport) -> str:
    return "; ".join(f"{f.severity.label} {f.rule_id} {f.message}" for f in report.findings)


CASES = sorted(redteam.loaders().items())


@pytest.mark.parametrize("name, loader", CASES)
def test_payload_fires_with_its_loader(name: str, loader: str, tmp_path: Path) -> None:
    assert fires(FIXTURES / name, loader, tmp_path), f"{name}: {loader} did not run the payload"


@pytest.mark.parametrize("name, loader", CASES)
def test_payload_is_flagged_high(name: str, loader: str, rules: RuleSet) -> None:
    report = scan_paths(FIXTURES / name, rules=rules)
    assert report.max_severity is not None and report.max_severity >= Severity.HIGH, _explain(report)


# --- regression tests, one per technique -------------------------------------------------


def _scan(name: str, rules: RuleSet) -> ScanReport:
    return scan_paths(FIXTURES / "malicious" / redteam.FOLDER / name, rules=rules)


def _payload_seen(report: ScanReport) -> bool:
    return any(
        f.subject in ("os.system", "posix.system") and f.severity is Severity.CRITICAL
        for f in report.findings
    )


def test_joblib_wrapper_state_of_64_keys_in_a_text_file(rules: RuleSet) -> None:
    # The walk keeps the keys joblib reads whatever the size of the state dict,
    # so it skips the array bytes exactly as joblib does and reaches the payload.
    assert _payload_seen(_scan("joblib_state_64_keys_text.bin", rules))


def test_joblib_wrapper_slot_state_after_64_filler_keys(rules: RuleSet) -> None:
    assert _payload_seen(_scan("joblib_slot_state_late_keys.joblib", rules))


@pytest.mark.parametrize("codec", ["zlib", "gzip_bad_crc", "xz", "lzma"])
def test_compressed_stream_corrupt_after_the_payload(codec: str, rules: RuleSet) -> None:
    name = f"joblib_{codec}.joblib" if codec == "gzip_bad_crc" else f"joblib_{codec}_corrupt_tail.joblib"
    report = _scan(name, rules)
    assert _payload_seen(report), _explain(report)  # what precedes the corruption is scanned
    assert "archive-malformed" in {f.rule_id for f in report.findings}


def test_lzma_alone_with_a_huge_dictionary_is_decoded(rules: RuleSet) -> None:
    # The declared dictionary is clamped: the stream decodes as the loader decodes it.
    assert _payload_seen(_scan("joblib_lzma_huge_dictionary.joblib", rules))


def test_xz_with_a_huge_dictionary_is_decoded(rules: RuleSet) -> None:
    report = _scan("joblib_xz_huge_dictionary.joblib", rules)
    assert _payload_seen(report), _explain(report)


def test_xz_over_the_decoder_memory_limit_is_high(tmp_path: Path, rules: RuleSet) -> None:
    # A filter chain the clamp leaves alone (BCJ before LZMA2): not decoded, so high.
    filters = [{"id": lzma.FILTER_X86}, {"id": lzma.FILTER_LZMA2, "dict_size": 1 << 30}]
    data = lzma.compress(redteam.PAYLOAD_P0, format=lzma.FORMAT_XZ, filters=filters)
    report = scan_bytes(tmp_path, data, "model.joblib", rules=rules)
    limit = [f for f in report.findings if f.rule_id == "archive-limit"]
    assert limit and limit[0].severity is Severity.HIGH, _explain(report)


@pytest.mark.parametrize("name", ["pandas_lzip.pkl.xz", "pandas_lzma_alone_props0.pkl.xz"])
def test_lzma_auto_decoder_formats_are_sniffed(name: str, rules: RuleSet) -> None:
    path = FIXTURES / "malicious" / redteam.FOLDER / name
    assert detect.sniff(BytesReader(path.read_bytes())) == detect.LZMA
    assert _payload_seen(_scan(name, rules))


def _alone_variants() -> list[bytes]:
    """LZMA-alone streams over every properties byte the encoder takes and
    dictionary/size fields around what the auto decoder's picky check accepts."""
    streams = []
    for lc, lp, pb in [(0, 0, 0), (3, 0, 2), (4, 0, 4), (1, 3, 1), (0, 4, 0)]:
        filters = [{"id": lzma.FILTER_LZMA1, "lc": lc, "lp": lp, "pb": pb, "dict_size": 1 << 16}]
        base = lzma.compress(redteam.PAYLOAD_P0, format=lzma.FORMAT_ALONE, filters=filters)
        for dictionary in (0, 1, 3, 4095, 4096, 4097, 6144, 7168, 1 << 20, 0xFFFFFFFF, 0xFFFF0000):
            for size in (-1, len(redteam.PAYLOAD_P0), 1 << 38, 0):
                head = base[:1] + dictionary.to_bytes(4, "little") + size.to_bytes(8, "little", signed=True)
                streams.append(head + base[13:])
    return streams


def test_lzma_alone_sniffed_wherever_the_auto_decoder_reads_it() -> None:
    # Differential: every variant lzma.LZMADecompressor(FORMAT_AUTO) decodes to
    # the payload is sniffed as LZMA; the others are not claimed.
    decoded = claimed = 0
    for stream in _alone_variants():
        try:
            ok = lzma.LZMADecompressor(format=lzma.FORMAT_AUTO).decompress(stream) == redteam.PAYLOAD_P0
        except lzma.LZMAError:
            ok = False
        sniffed = detect.sniff_head(stream[: detect.HEAD_SIZE], len(stream)) == detect.LZMA
        joblib_prefix = stream[:2] == b"\x5d\x00"  # joblib's own test, accepted as is
        assert sniffed == ok or (joblib_prefix and sniffed), stream[:14].hex()
        decoded += ok
        claimed += sniffed
    assert decoded > 50 and claimed >= decoded


@pytest.mark.parametrize("name", ["torch_legacy_second_pickle.bin", "torch_legacy_text_fifth_pickle.txt"])
def test_torch_legacy_pickles_after_the_magic_number_are_walked(name: str, rules: RuleSet) -> None:
    # After a first pickle that is (or may be) torch's magic number, the four
    # pickles torch reads next are walked whatever their first byte.
    assert _payload_seen(_scan(name, rules))


def test_trailing_bytes_after_a_plain_value_stay_trailing(tmp_path: Path, rules: RuleSet) -> None:
    data = b"\x80\x02K\x01." + b"I1\n0" + redteam.PAYLOAD_P0  # first result 1: not torch's magic
    report = scan_bytes(tmp_path, data, "model.pkl", rules=rules)
    assert not _payload_seen(report) and "pickle-trailing-data" in {f.rule_id for f in report.findings}


def test_helper_handed_to_a_helper_is_judged_as_the_call_it_becomes(rules: RuleSet) -> None:
    # _rebuild_from_type_v2(copyreg.__newobj__, T, (memmap, ...)): __newobj__(memmap, ...) creates memmap.
    report = _scan("rebuild_from_type_newobj_memmap.pt", rules)
    assert any(f.subject == "numpy.memmap" and f.severity >= Severity.HIGH for f in report.findings), (
        _explain(report)
    )


def test_loader_handed_to_a_helper_has_its_bytes_walked(rules: RuleSet) -> None:
    assert _payload_seen(_scan("rebuild_from_type_load_from_bytes.pt", rules))


def test_helper_handed_where_its_arguments_are_unknown_is_high(tmp_path: Path, rules: RuleSet) -> None:
    # functools.partial(copyreg.__newobj__, ...): what the partial is later called with is not known.
    data = b"\x80\x04" + redteam.sg("functools", "partial") + redteam.sg("copyreg", "__newobj__")
    data += redteam.sg("builtins", "object") + b"\x86R."
    report = scan_bytes(tmp_path, data, "model.pkl", rules=rules)
    assert "pickle-dynamic-callable" in {f.rule_id for f in report.findings if f.severity >= Severity.HIGH}, (
        _explain(report)
    )


# --- classes, not single files: semantics-preserving mutations of one payload --------------

import payload_mutations  # noqa: E402  (fixtures/ on sys.path above)

_PROVE = """
import os, pickle, sys, tempfile
fired = []
for i, path in enumerate(sys.argv[1:]):
    folder = tempfile.mkdtemp()
    os.chdir(folder)
    try:
        pickle.load(open(path, 'rb'))
    except Exception:
        pass
    fired.append(os.path.exists('modeltrust-pwned'))
print(''.join('1' if f else '0' for f in fired))
"""


def test_mutated_payloads_really_run(tmp_path: Path) -> None:
    samples = payload_mutations.variants(seed=2026, count=24)
    paths = []
    for i, data in enumerate(samples):
        path = tmp_path / f"variant{i}.pkl"
        path.write_bytes(data)
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "-c", _PROVE, *paths],
        cwd=tmp_path,
        timeout=120,
        check=True,
        capture_output=True,
        text=True,
    )
    assert done.stdout.strip() == "1" * len(samples), [
        s for s, f in zip(samples, done.stdout, strict=False) if f != "1"
    ]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_mutated_payloads_are_flagged(seed: int, tmp_path: Path, rules: RuleSet) -> None:
    (data,) = payload_mutations.variants(seed, 1)
    for name in ("model.pkl", "notes.txt", "model.bin"):
        report = scan_bytes(tmp_path, data, name, rules=rules)
        assert _payload_seen(report), (data, name, _explain(report))


def test_plain_view_budget_is_high_not_noise(rules: RuleSet) -> None:
    report = _scan("plain_view_value_budget.pkl.gz", rules)
    limits = [f for f in report.findings if f.rule_id == "pickle-opcode-limit"]
    assert limits and limits[0].severity >= Severity.HIGH, _explain(report)


def test_wrapper_built_by_an_argument_calling_helper_is_followed(rules: RuleSet) -> None:
    # _rebuild_from_type_v2(copyreg.__newobj__, W, (W,), None) is a wrapper made without __init__.
    assert _payload_seen(_scan("joblib_wrapper_from_rebuild_helper.joblib", rules))


def test_wrapper_maybe_built_by_a_helper_is_high(tmp_path: Path, rules: RuleSet) -> None:
    # _rebuild_from_type_v2(W, W, (...), None) runs W.__init__ with arguments: not followed, high.
    from loader_polyglots import WRAPPER, _dtype, _swallowed_payload, _wrapper

    make = redteam.sg("torch._tensor", "_rebuild_from_type_v2") + b"(" + WRAPPER + WRAPPER + b")NtR"
    data = _wrapper(make, _dtype("f8"), False) + _swallowed_payload()
    report = scan_bytes(tmp_path, data, "model.joblib", rules=rules)
    assert "pickle-not-modelled" in {f.rule_id for f in report.findings if f.severity >= Severity.HIGH}, (
        _explain(report)
    )
