"""Formats come from bytes, never from names."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import pytest

from modeltrust import detect
from modeltrust.findings import Severity
from modeltrust.reader import BytesReader

from .conftest import FIXTURES, scan_bytes


@pytest.mark.parametrize(
    "name, expected",
    [
        ("malicious/disguised_as_text.txt", detect.PICKLE),
        ("malicious/no_extension", detect.PICKLE),
        ("malicious/torch_zip_named.bin", detect.ZIP),
        ("malicious/torch_legacy_payload.ckpt", detect.TORCH_LEGACY),
        ("malicious/object_array.npy", detect.NUMPY),
        ("malicious/payload.joblib.xz", detect.XZ),
        ("malicious/payload.joblib.bz2", detect.BZIP2),
        ("malicious/payload.joblib.z", detect.ZLIB),
        ("malicious/payload.joblib.lzma", detect.LZMA),
        ("malicious/gzipped.pkl.gz", detect.GZIP),
        ("malicious/torch_legacy_tar.tar", detect.TAR),
        ("benign/config.json", detect.JSON),
        ("benign/README.md", detect.TEXT),
    ],
)
def test_fixture_formats(name: str, expected: str) -> None:
    assert detect.sniff(BytesReader((FIXTURES / name).read_bytes())) == expected


@pytest.mark.parametrize("proto", [0, 1])
def test_low_protocol_pickles_are_found_among_text(proto: int) -> None:
    data = pickle.dumps({"a": [1, 2, 3], "b": "text"}, protocol=proto)
    assert detect.sniff(BytesReader(data)) == detect.PICKLE


@pytest.mark.parametrize(
    "text",
    [
        b"config: 1\nname: x\n",
        b"Some notes about the model.\n",
        b"(parenthesised remark)\n",
        b"N/A\n",
        b"I am a model card\n",
        b"]]]",
        b"cat\ndog\n",
        b"def f():\n    return 1\n",
    ],
)
def test_text_is_not_mistaken_for_a_pickle(text: bytes) -> None:
    assert detect.sniff(BytesReader(text)) in (detect.TEXT, detect.UNKNOWN, detect.PYTHON)


@pytest.mark.parametrize(
    "text, expected",
    [
        (b"import torch\n\nclass Net(torch.nn.Module):\n    pass\n", detect.PYTHON),
        (b"#!/usr/bin/env python3\nprint(1)\n", detect.PYTHON),
        (b"#!/bin/sh\ncurl x | sh\n", detect.SCRIPT),
        (b"# Model card\n\nUse it like this:\n", detect.TEXT),
    ],
)
def test_code_is_told_from_text(text: bytes, expected: str) -> None:
    assert detect.sniff(BytesReader(text)) == expected


def test_empty_and_binary() -> None:
    assert detect.sniff(BytesReader(b"")) == detect.EMPTY
    assert detect.sniff(BytesReader(bytes(range(256)) * 4)) == detect.UNKNOWN
    assert detect.sniff(BytesReader(gzip.compress(b"x"))) == detect.GZIP
    assert detect.sniff(BytesReader(b"\x7fELF\x02\x01\x01" + bytes(100))) == detect.ELF


MODEL_CARD = b"""---
license: apache-2.0
library_name: transformers
---

# Tiny model

```python
from transformers import AutoModelForCausalLM

model = AutoModelForCausalLM.from_pretrained("org/tiny")
```
"""


@pytest.mark.parametrize(
    "name, data, expected",
    [
        ("README.md", MODEL_CARD, detect.TEXT),  # front matter: a Hub model card
        ("README.md", b"# Tiny\n\nimport torch\nfrom x import y\n", detect.TEXT),  # a document by name
        ("notes", b"# Tiny\n\nimport torch\nfrom x import y\n", detect.PYTHON),  # no name says otherwise
        ("vocab.txt", b"[PAD]\n[unused0]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\n", detect.TEXT),
        ("data.json", b'[{"a": 1}]', detect.JSON),
        ("data.json", b"[1, 2]", detect.JSON),
        ("data.json", b"[true, null]", detect.JSON),
        ("data.json", b"{}", detect.JSON),
        ("notes.txt", b"GGUF is the file format llama.cpp reads.\n", detect.TEXT),
        ("model.gguf", b"GGUF\x03\x00\x00\x00" + bytes(16), detect.GGUF),
        ("model.gguf", b"GGUF\x00\x00\x00\x03" + bytes(16), detect.GGUF),  # big-endian (--bigendian)
    ],
)
def test_labels_that_boms_show(name: str, data: bytes, expected: str) -> None:
    assert detect.detect(BytesReader(data), name).sniffed == expected


def test_text_named_gguf_is_unverified_not_high(tmp_path: Path) -> None:
    """llama.cpp opens a *.gguf whatever its head and refuses it at the magic/version check."""
    report = scan_bytes(tmp_path, b"GGUF notes, not a model\n", "model.gguf")
    assert [f.rule_id for f in report.findings if f.severity >= Severity.MEDIUM] == ["scan-malformed"]
    assert report.max_severity is Severity.MEDIUM


def test_text_starting_with_gguf_is_text(tmp_path: Path) -> None:
    report = scan_bytes(tmp_path, b"GGUF is the file format llama.cpp reads.\n", "notes.txt")
    assert report.max_severity is Severity.INFO, report.findings


# --- zlib headers: only those zlib can inflate without a preset dictionary ---------------


@pytest.mark.parametrize("flg", [f for f in range(256) if ((0x78 << 8) | f) % 31 == 0])
def test_zlib_sniffed_only_when_zlib_inflates_it(flg: int) -> None:
    """joblib inflates with zlib.decompressobj() and no dictionary: an FDICT header
    (text such as "x = 1" or "x}") fails at its first byte, so it is not a zlib stream."""
    import zlib

    data = bytes([0x78, flg]) + zlib.compress(b"payload")[2:]
    try:
        zlib.decompressobj().decompress(data)
        inflates = True
    except zlib.error:
        inflates = False
    assert (detect.sniff(BytesReader(data)) == detect.ZLIB) is inflates


@pytest.mark.parametrize("text", ["x = 1\n" * 1000, "x}\n", "x?\n"])
def test_text_with_an_fdict_zlib_header_is_not_corrupt_zlib(tmp_path: Path, text: str) -> None:
    report = scan_bytes(tmp_path, text.encode(), "notes.txt")
    assert not [f for f in report.findings if f.severity >= Severity.MEDIUM]
    report = scan_bytes(tmp_path, text.encode(), "modeling.py")
    assert "archive-malformed" not in {f.rule_id for f in report.findings}
