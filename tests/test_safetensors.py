"""safetensors: header-only checks, cross-checked against the real library."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modeltrust.findings import Severity
from modeltrust.scanners.safetensors import MAX_METADATA_VALUE

from .conftest import FIXTURES, manifest, rule_ids, scan_bytes

safetensors = pytest.importorskip("safetensors")
np = pytest.importorskip("numpy")

SAMPLES = sorted(k for k in manifest() if k.endswith(".safetensors"))


def library_accepts(path: Path) -> bool:
    """Does the real safetensors library open the file and read every tensor?"""
    try:
        with safetensors.safe_open(str(path), framework="numpy") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                handle.get_tensor(key)
    except Exception:  # noqa: BLE001 - any refusal counts
        return False
    return True


@pytest.mark.parametrize("name", SAMPLES)
def test_fixture_verdicts_match_the_library(name: str) -> None:
    path = FIXTURES / name
    accepted = library_accepts(path)
    malicious = manifest()[name]["malicious"]
    assert accepted is not malicious or name == "malicious/polyglot_pickle.safetensors", (
        "fixtures should be rejected by the library exactly when malicious (the polyglot loads, by design)"
    )


def test_header_is_read_not_the_data(tmp_path: Path) -> None:
    header = {"w": {"dtype": "F32", "shape": [256, 1024], "data_offsets": [0, 1 << 20]}}
    raw = json.dumps(header).encode()
    path = tmp_path / "big.safetensors"
    with path.open("wb") as handle:
        handle.write(struct.pack("<Q", len(raw)) + raw)
        handle.truncate(8 + len(raw) + (1 << 20))  # a sparse file: data is never read
    from modeltrust.config import ScanConfig
    from modeltrust.engine import scan

    report = scan(ScanConfig(targets=(str(path),)))
    assert not report.findings and report.artifacts[0].scanner == "safetensors"


def _with_header(header: dict[str, object], data: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


@pytest.mark.parametrize(
    "header, data, rule",
    [
        ({"__metadata__": {"n": 1}}, b"", "safetensors-metadata"),
        ({"__metadata__": {"big": "x" * (MAX_METADATA_VALUE + 1)}}, b"", "safetensors-metadata"),
        ({"a": {"dtype": "Q9", "shape": [1], "data_offsets": [0, 1]}}, b"\0", "safetensors-layout"),
        ({"a": {"dtype": "U8", "shape": [-1], "data_offsets": [0, 1]}}, b"\0", "safetensors-layout"),
        ({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 0]}}, b"\0", "safetensors-layout"),
        ({"a": {"dtype": "U8", "shape": [1], "data_offsets": [1, 2]}}, b"\0\0", "safetensors-layout"),
        ({"a": [1, 2]}, b"", "safetensors-layout"),
    ],
)
def test_header_problems(tmp_path: Path, header: dict[str, object], data: bytes, rule: str) -> None:
    report = scan_bytes(tmp_path, _with_header(header, data))
    assert rule in rule_ids(report)
    assert not library_accepts(tmp_path / "sample.bin") or rule == "safetensors-metadata"


def test_invalid_json_header(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, struct.pack("<Q", 6) + b'{"a":]')
    assert rule_ids(report) == {"safetensors-malformed"}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_whatever_the_library_rejects_is_flagged(
    tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    """Differential fuzz: mutate a valid file's header bytes; when the real
    library refuses the result, our scan must not call it clean."""
    name = data.draw(st.sampled_from(["benign/model.safetensors", "benign/empty_tensors.safetensors"]))
    blob = bytearray((FIXTURES / name).read_bytes())
    (length,) = struct.unpack_from("<Q", blob)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, 7 + length))
        blob[at] = data.draw(st.integers(0, 255))
    tmp = tmp_path_factory.mktemp("fuzz")
    report = scan_bytes(tmp, bytes(blob))
    if not library_accepts(tmp / "sample.bin"):
        assert report.max_severity is not None and report.max_severity >= Severity.MEDIUM, bytes(blob[:120])


def test_kohya_lora_training_metadata_is_not_flagged(tmp_path: Path) -> None:
    """kohya-ss writes tag frequencies and dataset folders as JSON strings of
    hundreds of KiB into a LoRA's __metadata__."""
    import json
    import struct

    tags = {f"tag_{i}": i for i in range(20_000)}
    metadata = {
        "ss_network_module": "networks.lora",
        "ss_tag_frequency": json.dumps({"10_dataset": tags}),
        "ss_dataset_dirs": json.dumps({"10_dataset": {"n_repeats": 10, "img_count": 400}}),
    }
    header = json.dumps(
        {"__metadata__": metadata, "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}
    )
    raw = header.encode()
    raw += b" " * (-len(raw) % 8)
    data = struct.pack("<Q", len(raw)) + raw + bytes(4)
    assert len(metadata["ss_tag_frequency"]) > 64 * 1024
    assert not scan_bytes(tmp_path, data, "lora.safetensors").findings
