"""Issue #11 benchmark: `modeltrust sign --key` of a folder with two 1 GB files
against the upstream `model_signing sign key` on the same folder, timed in the
same run (interleaved, page cache warmed), plus `modeltrust verify --key`
against `model_signing verify key`.

Both produce the same OpenSSF model signature (per-file sha256 manifest, DSSE,
sigstore bundle); the bench checks that each side's signature verifies with the
other side's verifier. Whole commands are timed, start-up included.

    python bench/bench_sign.py [--gigabytes 1] [--runs 5]
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from timing import (
    OUT,
    ROOT,
    best_median,
    machine_line,
    modeltrust_env,
    ratios,
    size_and_runs,
    timed,
    warm,
    write_random,
)

sys.path.insert(0, str(ROOT))
from tests.provenance_keys import ec_key_pair


def make_folder(folder: Path, size: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"model-0000{i}-of-00002.safetensors" for i in (1, 2)]
    for path in files:
        if path.exists() and path.stat().st_size == size:
            continue
        with path.open("wb") as handle:
            write_random(handle, size)
    (folder / "config.json").write_text('{"architectures": ["BenchModel"]}')
    return files


def main() -> None:
    size, gigabytes, runs = size_and_runs(__doc__)
    folder = OUT / f"sign_2x{gigabytes:g}GB"
    files = make_folder(folder, size)
    warm(files)
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        env = modeltrust_env({**os.environ, "HOME": str(home)})
        private, public = ec_key_pair(home, "key")
        ours_sig, theirs_sig = home / "modeltrust.sig", home / "model_signing.sig"
        ours = [py, "-m", "modeltrust", "sign", str(folder), "--key", str(private), "--output", str(ours_sig)]
        theirs = [py, "-m", "model_signing", "sign", "key", str(folder), "--private_key", str(private),
                  "--signature", str(theirs_sig)]  # fmt: skip
        ours_verify = [py, "-m", "modeltrust", "verify", str(folder), "--key", str(public)]
        theirs_verify = [py, "-m", "model_signing", "verify", "key", str(folder), "--public_key", str(public)]
        times: dict[str, list[float]] = {"ours": [], "theirs": [], "ours_verify": [], "theirs_verify": []}
        cpu: dict[str, list[float]] = {name: [] for name in times}
        commands = {
            "theirs": theirs,
            "ours": ours,
            # Cross-check: each verifier accepts the other's signature.
            "theirs_verify": [*theirs_verify, "--signature", str(ours_sig)],
            "ours_verify": [*ours_verify, "--signature", str(theirs_sig)],
        }
        for _ in range(runs):  # interleaved, so both see the same machine load
            for name, command in commands.items():
                wall, used = timed(command, env)
                times[name].append(wall)
                cpu[name].append(used)
    print(machine_line(sum(p.stat().st_size for p in files), len(files)))
    print(f"{'command':56} {'best':>7} {'median':>7} {'CPU best':>9} {'CPU median':>10}")
    labels = {
        "theirs": "model_signing sign key (upstream CLI)",
        "ours": "modeltrust sign --key",
        "theirs_verify": "model_signing verify key (of modeltrust's signature)",
        "ours_verify": "modeltrust verify --key (of model_signing's signature)",
    }
    for name, label in labels.items():
        (wall_best, wall_median), (cpu_best, cpu_median) = best_median(times[name]), best_median(cpu[name])
        print(f"{label:56} {wall_best:6.2f}s {wall_median:6.2f}s {cpu_best:8.2f}s {cpu_median:9.2f}s")
    for what, a, b in (("sign", "ours", "theirs"), ("verify", "ours_verify", "theirs_verify")):
        for kind, values in (("wall", times), ("CPU", cpu)):
            print(
                f"{what} {kind}: modeltrust / model_signing {ratios(values[a], values[b])} (target <= 1.00x)"
            )


if __name__ == "__main__":
    main()
