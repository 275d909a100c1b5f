"""Every crash, hang and balloon the fuzz harness found, as a named test, and
the bombs: each must end in findings that name the limit, quickly, within
the memory and disk budgets, and never in an internal exception."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from modeltrust.config import Limits, ScanConfig
from modeltrust.engine import scan
from modeltrust.findings import Finding, Location, ScanReport, Severity
from modeltrust.reader import SpooledReader

from ..conftest import FIXTURES, rule_ids
from .targets import render_all

HOSTILE = FIXTURES / "hostile"
MANIFEST: dict[str, dict[str, object]] = json.loads((HOSTILE / "manifest.json").read_text())
MiB = 1 << 20


def _load_builders():  # type: ignore[no-untyped-def]
    import importlib.util

    spec = importlib.util.spec_from_file_location("hostile", FIXTURES / "hostile.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hostile = _load_builders()


def _scan(path: Path, limits: Limits | None = None) -> tuple[ScanReport, float]:
    started = time.perf_counter()
    report = scan(ScanConfig(targets=(str(path),), limits=limits or Limits()))
    elapsed = time.perf_counter() - started
    errors = [f.message for f in report.findings if f.rule_id == "scan-error"]
    assert not errors, errors  # a caught exception is an internal exception too
    render_all(list(report.findings), 0)
    return report, elapsed


@pytest.fixture
def spooled(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Bytes each decompression wrote to its temp file."""
    sizes: list[int] = []
    original = SpooledReader.__init__

    def recording(self: SpooledReader, chunks, limit):  # type: ignore[no-untyped-def]
        original(self, chunks, limit)
        sizes.append(self.size)

    monkeypatch.setattr(SpooledReader, "__init__", recording)
    return sizes


def test_manifest_lists_every_hostile_fixture() -> None:
    on_disk = {p.name for p in HOSTILE.iterdir() if p.name != "manifest.json"}
    assert on_disk == set(MANIFEST) == set(hostile.REPRODUCERS)


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_reproducer_ends_in_findings(name: str) -> None:
    report, elapsed = _scan(HOSTILE / name, Limits(seconds_per_file=2.0))
    expected = set(MANIFEST[name]["expect"])  # type: ignore[arg-type]
    assert expected <= rule_ids(report), (MANIFEST[name]["broke"], rule_ids(report))
    assert elapsed < 5


# --- crash classes, by technique ------------------------------------------------------


def test_safetensors_dtype_of_the_wrong_type_is_a_layout_finding() -> None:
    report, _ = _scan(HOSTILE / "safetensors_dtype_list.safetensors")
    [finding] = [f for f in report.findings if f.rule_id == "safetensors-layout"]
    assert "unknown dtype ['F32']" in finding.message


def test_safetensors_shape_with_a_huge_product_is_a_layout_finding() -> None:
    report, _ = _scan(HOSTILE / "safetensors_huge_shape.safetensors")
    [finding] = [f for f in report.findings if f.rule_id == "safetensors-layout"]
    assert "more elements than any file can hold" in finding.message and len(finding.message) < 300


def test_lone_surrogates_and_terminal_escapes_reach_every_report_safely() -> None:
    report, _ = _scan(HOSTILE / "safetensors_lone_surrogate_key.safetensors")
    finding = next(f for f in report.findings if f.rule_id == "safetensors-layout")
    assert "\ud800" in finding.subject  # kept in the finding, escaped by the renderers
    from modeltrust.reporting.sarif import render_sarif
    from modeltrust.reporting.text import render_text

    sarif = render_sarif(report).encode("utf-8")
    assert b"\\\\ud800" in sarif  # the text escape, JSON-escaped
    import io

    stream = io.StringIO()
    render_text(report, Severity.MEDIUM, None, stream, color=False)
    assert "\x1b" not in stream.getvalue() and "\\x1b[2J" in stream.getvalue()


def test_hostile_strings_in_every_finding_field_render() -> None:
    nasty = "\ud800\udfff\x1b]0;pwn\x07\r\x00\u202e"
    finding = Finding(
        "pickle-unknown-import", Severity.MEDIUM, Location(nasty, (nasty,), 1), nasty, nasty, waiver=nasty
    )
    render_all([finding], 1)


def test_keras_hdf5_config_decoded_with_surrogates_is_analysed() -> None:
    report, _ = _scan(HOSTILE / "keras_config_lone_surrogate.h5")
    assert "keras-custom-object" in rule_ids(report)


def test_template_call_chain_deeper_than_the_python_stack() -> None:
    report, elapsed = _scan(HOSTILE / "template_call_chain.json")
    assert elapsed < 5 and "scan-error" not in rule_ids(report)


def test_keras_config_nesting_is_a_limit_finding() -> None:
    report, _ = _scan(HOSTILE / "keras_config_deep.keras")
    [finding] = [f for f in report.findings if f.rule_id == "scan-limit"]
    assert finding.severity >= Severity.MEDIUM and "nests deeper" in finding.message


def test_hdf5_model_config_with_a_flipped_byte_is_still_analysed() -> None:
    report, _ = _scan(HOSTILE / "hdf5_lambda_byte_flip.h5")
    assert "keras-lambda" in rule_ids(report)


def test_hdf5_reader_that_loops_forever_is_stopped() -> None:
    report, elapsed = _scan(HOSTILE / "hdf5_heap_loop.h5", Limits(seconds_per_file=1.0))
    [finding] = [f for f in report.findings if f.rule_id == "scan-limit"]
    assert "did not finish" in finding.message and elapsed < 3


def test_lzma_header_asking_for_a_4gb_dictionary() -> None:
    report, _ = _scan(HOSTILE / "lzma_huge_dictionary.lzma")
    assert any("decoder memory" in f.message for f in report.findings if f.rule_id == "archive-limit")


def test_pickle_name_with_thousands_of_dots_is_classified_quickly() -> None:
    report, elapsed = _scan(HOSTILE / "pickle_dotted_name.pkl")
    assert elapsed < 2 and "pickle-unknown-call" in rule_ids(report)


# --- bombs ----------------------------------------------------------------------------


def test_gzip_bomb_stops_after_a_few_mb(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "bomb.gz"
    path.write_bytes(hostile.gzip_bomb(256 * MiB))
    report, elapsed = _scan(path)
    [finding] = [f for f in report.findings if f.rule_id == "archive-limit"]
    assert "ratio bound" in finding.message
    assert max(spooled) < 16 * MiB and elapsed < 5


def test_xz_bomb_is_recognised_as_xz_and_stopped(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "bomb.xz"
    path.write_bytes(hostile.xz_bomb(64 * MiB))
    report, _ = _scan(path)
    assert report.artifacts[0].format == "xz"
    assert "archive-limit" in rule_ids(report) and max(spooled) < 16 * MiB


def test_single_member_zip_bomb_stops_after_a_few_mb(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "bomb.zip"
    path.write_bytes(hostile.zip_bomb(256 * MiB))
    report, elapsed = _scan(path)
    assert "archive-limit" in rule_ids(report)
    assert sum(spooled) < 16 * MiB and elapsed < 5


def test_overlapping_entries_are_found_before_inflating(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "overlap.zip"
    path.write_bytes(hostile.overlapping_zip_bomb(1000, 8 * MiB))  # 8 GB from 8 KB
    report, elapsed = _scan(path)
    assert "archive-overlapping-members" in rule_ids(report)
    assert spooled == [] and elapsed < 5


def test_nested_zip_bomb_shares_one_budget(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "42.zip"
    path.write_bytes(hostile.nested_zip_bomb(layers=3, fanout=16, leaf_size=64 * MiB))  # 256 GB
    report, elapsed = _scan(path)
    budget = Limits().file_decompression_budget(path.stat().st_size)
    assert sum(spooled) <= budget and elapsed < 10
    assert "archive-limit" in rule_ids(report)
    assert len(report.findings) < 200


def test_big_keras_config_is_refused_by_size(tmp_path: Path) -> None:
    path = tmp_path / "big.keras"
    path.write_bytes(hostile.keras_zip(hostile.big_keras_config(64 * MiB), zipfile.ZIP_STORED))
    report, elapsed = _scan(path)
    assert any("over the" in f.message for f in report.findings if f.rule_id == "scan-limit")
    assert elapsed < 5


def test_big_compressed_keras_config_is_stopped_while_inflating(tmp_path: Path, spooled: list[int]) -> None:
    path = tmp_path / "big.keras"
    path.write_bytes(hostile.keras_zip(hostile.big_keras_config(64 * MiB)))
    report, elapsed = _scan(path)
    assert "archive-limit" in rule_ids(report) and sum(spooled) < 16 * MiB and elapsed < 5


# --- budgets --------------------------------------------------------------------------


def test_time_budget_ends_the_file_with_one_limit_finding(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    path.write_bytes(hostile.nested_zip_bomb(layers=1, fanout=16, leaf_size=1 * MiB))
    report, _ = _scan(path, Limits(seconds_per_file=0.0, bytes_per_second=1 << 60))
    [finding] = [f for f in report.findings if f.rule_id == "scan-limit"]
    assert "time budget" in finding.message and finding.location.members == ()
    assert finding.severity >= Severity.MEDIUM


def test_time_budget_is_checked_inside_a_header_walk(tmp_path: Path) -> None:
    path = tmp_path / "many.gguf"
    path.write_bytes(hostile.gguf_many_entries(70_000))
    report, _ = _scan(path, Limits(seconds_per_file=0.0, bytes_per_second=1 << 60))
    assert [f.rule_id for f in report.findings] == ["scan-limit"]


def test_findings_are_capped_per_rule(tmp_path: Path) -> None:
    names = [{"class_name": "Dense", "module": f"evil{i}", "config": {}} for i in range(500)]
    path = tmp_path / "many.keras"
    path.write_bytes(hostile.keras_zip(json.dumps({"config": {"layers": names}}).encode()))
    report, _ = _scan(path, Limits(max_findings_per_rule=10))
    custom = [f for f in report.findings if f.rule_id == "keras-custom-object"]
    assert len(custom) == 11 and "490 more keras-custom-object findings" in custom[-1].message


def test_archive_members_inflated_to_temp_files_do_not_leak_descriptors() -> None:
    """A fuzz worker died with EMFILE after 78,000 zips: member readers spooled
    to unlinked temp files were never closed."""
    import os

    from .targets import targets

    target = targets()["zip"]
    seeds = target.seeds()
    for data in seeds:  # warm up (caches that open files once)
        target.run(data)
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(3):
        for data in seeds:
            target.run(data)
    assert len(os.listdir("/proc/self/fd")) <= before + 1
