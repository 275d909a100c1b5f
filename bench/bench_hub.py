"""Issue #5 benchmarks against the local Hub server (fixtures/hubserver.py).

1. Remote scan: a repo holding a 2 GB torch zip checkpoint and a 2 GB
   safetensors file, scanned with `--remote`; prints the bytes the server sent
   as a share of the repo's bytes.
2. Fetch + scan: a 1 GB repo (four 256 MB safetensors shards and a config),
   `modeltrust scan hf://...` (download, verify every hash, scan) against
   `hf download` of the same repo, each into a fresh cache, in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_formats import make_safetensors
from bench_pickle import BIN, OUT, make_big_checkpoint

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from hubserver import HubServer


def _run(cmd: list[str], env: dict[str, str]) -> tuple[float, int]:
    start = time.perf_counter()
    code = subprocess.run(
        cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False
    ).returncode
    return time.perf_counter() - start, code


def _shard(megabytes: int, name: str) -> bytes:
    size = megabytes << 20
    header = json.dumps({name: {"dtype": "F32", "shape": [size // 4], "data_offsets": [0, size]}}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + os.urandom(1 << 20) * megabytes


def remote_scan(hub: HubServer, modeltrust: str, env: dict[str, str]) -> None:
    ckpt, st = OUT / "big_2GB.pt", OUT / "big_2GB.safetensors"
    if not ckpt.exists():
        make_big_checkpoint(ckpt, 2.0)
    if not st.exists():
        make_safetensors(st, 2 << 30)
    files = {
        "pytorch_model.bin": ckpt.read_bytes(),
        "model.safetensors": st.read_bytes(),
        "config.json": b"{}",
    }
    total = sum(len(v) for v in files.values())
    hub.add_repo("bench/big", files)
    del files
    hub.reset_counters()
    seconds, code = _run([modeltrust, "scan", "--remote", "--no-progress", "hf://bench/big"], env)
    sent = hub.state.bytes_sent
    print(
        f"remote scan of {total / 1e9:.2f} GB: {sent / 1e6:.2f} MB sent ({sent / total:.3%}), "
        f"{len(hub.state.requests)} requests, {seconds:.2f} s, exit {code}"
    )


def fetch_and_scan(hub: HubServer, modeltrust: str, env: dict[str, str], runs: int) -> None:
    files = {f"model-{i:05d}-of-00004.safetensors": _shard(256, f"w{i}") for i in range(4)}
    files["config.json"] = b'{"architectures": ["Bench"]}'
    hub.add_repo("bench/gigabyte", files)
    total = sum(len(v) for v in files.values())
    hf = shutil.which("hf", path=str(BIN)) or "hf"
    best = {"hf download": float("inf"), "modeltrust scan": float("inf")}
    for _ in range(runs):
        for label, cmd in (
            ("hf download", [hf, "download", "bench/gigabyte"]),
            ("modeltrust scan", [modeltrust, "scan", "--no-progress", "hf://bench/gigabyte"]),
        ):
            with tempfile.TemporaryDirectory() as home:
                seconds, code = _run(cmd, {**env, "HF_HOME": home})
                if code not in (0, 1):
                    print(f"{label} failed with exit {code}")
                best[label] = min(best[label], seconds)
    ratio = best["modeltrust scan"] / best["hf download"]
    print(
        f"fetch {total / 1e9:.2f} GB: hf download {best['hf download']:.2f} s, "
        f"modeltrust scan (download + verify + scan) {best['modeltrust scan']:.2f} s, ratio {ratio:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--modeltrust", default=str(BIN / "modeltrust"))
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    with HubServer() as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        with tempfile.TemporaryDirectory() as home:
            remote_scan(hub, args.modeltrust, {**env, "HF_HOME": home})
        fetch_and_scan(hub, args.modeltrust, env, args.runs)


if __name__ == "__main__":
    main()
