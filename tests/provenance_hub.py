"""A loopback Hub with signed repositories, for provenance tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .conftest import FIXTURES

sys.path.insert(0, str(FIXTURES))
from hubserver import HubServer

CARD = b"---\nlicense: apache-2.0\nlibrary_name: transformers\n---\n# tiny\n"
CONFIG = b'{"architectures": ["TinyModel"], "hidden_size": 8}'
SAFETENSORS = (FIXTURES / "benign" / "model.safetensors").read_bytes()
STATE_DICT = (FIXTURES / "benign" / "state_dict.pt").read_bytes()


def folder_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@contextmanager
def hub_server() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


def hub_env(server: HubServer, home: Path) -> dict[str, str]:
    return {
        "HF_ENDPOINT": server.url,
        "HF_HOME": str(home / "hf"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HOME": str(home),
    }
