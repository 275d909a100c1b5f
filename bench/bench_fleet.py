"""Issue #13 benchmark: `modeltrust fleet` over many generated repos on the local
Hub server (fixtures/hubserver.py), all timed in the same run.

Repos share files the way a real registry does: a few base-model weight files
and one tokenizer across many repos, each with its own config and card, some with
a pickle checkpoint. Prints:
1. repos per second with 1 and 2 local workers (fresh store and cache each) and
   their ratio;
2. bytes the server sent per repo (remote and download modes);
3. a second run over the same commits: time as a share of the first, bytes sent;
4. one repo changed: the share of its files served from the store;
5. with Ray installed: the Ray executor's verdicts against the local executor's.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from hubserver import HubServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _safetensors(seed: int, floats: int) -> bytes:
    tensor = {"dtype": "F32", "shape": [floats], "data_offsets": [0, 4 * floats]}
    header = json.dumps({"w": tensor}).encode()
    header += b" " * (-len(header) % 8)
    return struct.pack("<Q", len(header)) + header + random.Random(seed).randbytes(4 * floats)


def populate(hub: HubServer, repos: int) -> list[str]:
    weights = [_safetensors(i, 64 << 10) for i in range(20)]  # 20 base models, 256 KiB each
    tokenizer = json.dumps({"model": {"vocab": {f"t{i}": i for i in range(2000)}}}).encode()
    pickle_ckpt = (FIXTURES / "benign" / "state_dict.pt").read_bytes()
    evil = (FIXTURES / "malicious" / "torch_zip_payload.pt").read_bytes()
    targets = []
    for i in range(repos):
        files = {
            "config.json": json.dumps({"architectures": ["Tiny"], "id": i}).encode(),
            "README.md": b"---\nlicense: apache-2.0\n---\n# model %d\n" % i,
            "tokenizer.json": tokenizer,
            "model.safetensors": weights[i % len(weights)],
        }
        if i % 10 == 0:
            files["pytorch_model.bin"] = evil if i % 100 == 0 else pickle_ckpt
        hub.add_repo(f"org{i % 10}/model-{i}", files)
        targets.append(f"hf://org{i % 10}/model-{i}")
    return targets


def fleet(
    hub: HubServer, targets: Path, out: Path, workers: int, mode: str, executor: str = "local"
) -> tuple[float, int, list[dict[str, object]]]:
    env = {
        **os.environ,
        "HF_ENDPOINT": hub.url,
        "HF_HOME": str(out / "hf"),
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    hub.reset_counters()
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "modeltrust", "fleet", str(targets), "--workers", str(workers), f"--{mode}",
         "--executor", executor, "--out", str(out), "--no-progress"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    lines = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    return seconds, hub.state.bytes_sent, lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repos", type=int, default=1000)
    parser.add_argument("--ray-repos", type=int, default=0, help="repos for the Ray comparison (0: all)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-fleet-"))
    try:
        with HubServer() as hub:
            targets = populate(hub, args.repos)
            listing = work / "targets.txt"
            listing.write_text("\n".join(targets) + "\n")
            print(f"{args.repos} repos, {len(hub.state.repos)} on the server")

            t1, sent1, lines1 = fleet(hub, listing, work / "w1", 1, "remote")
            t2, _, lines2 = fleet(hub, listing, work / "w2", 2, "remote")
            assert len(lines1) == len(lines2) == args.repos, (len(lines1), len(lines2))
            rate1, per_repo = args.repos / t1, sent1 / args.repos
            print(f"remote, 1 worker : {rate1:7.1f} repos/s ({t1:.1f} s), {per_repo:,.0f} B/repo")
            print(f"remote, 2 workers: {args.repos / t2:7.1f} repos/s ({t2:.1f} s), ratio {t1 / t2:.2f}x")
            same = {(x["target"], x["verdict"]) for x in lines1} == {
                (x["target"], x["verdict"]) for x in lines2
            }
            print(f"verdicts equal across worker counts: {same}")

            t3, sent3, lines3 = fleet(hub, listing, work / "w2", 2, "remote")
            skipped = sum(1 for x in lines3[-args.repos :] if x["status"] == "skipped")
            share = 100 * t3 / t2
            print(f"second run: {t3:.1f} s = {share:.1f} % of the first, {sent3:,} B sent, {skipped} skipped")

            td, sentd, linesd = fleet(hub, listing, work / "dl", 2, "download")
            reused = sum(int(x.get("files_from_store", 0)) for x in linesd)
            files = sum(int(x.get("files", 0)) for x in linesd)
            rate, sent = args.repos / td, sentd / args.repos
            print(f"download, 2 workers: {rate:.1f} repos/s, {sent:,.0f} B/repo sent")
            print(f"  files served from the store: {reused}/{files}")

            repo = "org0/model-0"
            old = hub.state.repos[("model", repo)].commits[hub.state.repos[("model", repo)].refs["main"]]
            hub.add_repo(repo, {**{p: f.data for p, f in old.items()}, "config.json": b'{"changed": true}'})
            _, sent4, lines4 = fleet(hub, listing, work / "dl", 2, "download")
            changed = next(x for x in lines4[-args.repos :] if x["target"] == f"hf://{repo}")
            stored, files = changed["files_from_store"], changed["files"]
            print(
                f"one repo changed: {stored}/{files} of its files from the store, {sent4:,} B sent in total"
            )

            try:
                import ray  # noqa: F401
            except ImportError:
                print("ray: not installed, executor comparison skipped")
                return
            subset = work / "subset.txt"
            count = args.ray_repos or args.repos
            subset.write_text("\n".join(targets[:count]) + "\n")
            tl, _, local = fleet(hub, subset, work / "cmp-local", 2, "remote")
            tr, _, remote = fleet(hub, subset, work / "cmp-ray", 2, "remote", executor="ray")
            key = lambda lines: {(x["target"], x["verdict"], x.get("commit")) for x in lines}  # noqa: E731
            print(f"ray vs local on {count} repos: equal={key(local) == key(remote)} "
                  f"(local {tl:.1f} s, ray {tr:.1f} s incl. cluster start)")  # fmt: skip
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
