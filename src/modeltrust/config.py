"""Scan configuration: plain frozen values. Only the CLI reads the environment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .findings import Severity

if TYPE_CHECKING:  # the hub module loads only when a hub target is scanned
    from .provenance.methods import SignatureRequest
    from .sources.hub import HubSettings

MiB = 1 << 20
GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep a scan finite on hostile input.

    Every bound is per file unless it says otherwise. Going past one is never a
    crash, a hang or a silent pass: the scan reports a finding that names the
    limit (`scan-limit`, `archive-limit` or `pickle-opcode-limit`, all in the
    *unverified* class, so the default policy fails the file: what was not
    analysed could hold anything), keeps every finding made up to that point,
    and goes on with the next file.
    """

    max_pickle_bytes: int = 1 * GiB
    """Pickle bytes walked per stream (time: roughly 0.1-0.2 s per MB of opcodes)."""
    max_decompressed_bytes: int = 4 * GiB
    """Output of one decompression (spooled to an unlinked temp file, not memory)."""
    decompression_floor_bytes: int = 8 * MiB
    """Output any decompression may produce whatever its ratio: small streams
    (configs, pickles of a few MB) are never stopped by the ratio check."""
    max_compression_ratio: float = 200.0
    """Past the floor, a stream may produce at most this many bytes per
    compressed byte *consumed so far* (checked while inflating, so a bomb is
    stopped after about `decompression_floor_bytes` of output, not at its end).
    Real checkpoints compress 1.1-10x (weights) and up to ~100x (sparse data);
    deflate's maximum is 1032x."""
    max_total_decompressed_bytes: int = 16 * GiB
    """Temp-file bytes all decompressions of the whole scan may write. A single
    file gets `file_decompression_budget(size)` of it: archives in archives
    (42.zip) share one budget, and once it is spent the file's remaining
    members are reported, not inflated."""
    max_members: int = 200_000
    max_depth: int = 8
    """Archives in archives, pickles in pickles."""
    max_header_bytes: int = 1 * MiB
    """Text headers parsed in memory (NumPy headers)."""
    max_json_header_bytes: int = 16 * MiB
    """JSON headers parsed in memory (safetensors, GGUF metadata)."""
    max_config_bytes: int = 16 * MiB
    """JSON configs and templates parsed in memory (Keras config.json and HDF5
    model_config, tokenizer configs). Real ones are a few MB at most."""
    max_sniff_member_bytes: int = 1 * MiB
    """Torch archive members other than pickles are sniffed only up to this size."""
    seconds_per_file: float = 3.0
    """Time budget of one file: this many seconds plus one second per
    `bytes_per_second` of its size (a 10 MB file gets 3.6 s, so a whole scan of
    it stays under 5 s; a 2 GB checkpoint 2 minutes, which a real one never
    needs: only its pickles are walked)."""
    bytes_per_second: int = 16 * MiB
    max_findings_per_rule: int = 100
    """Findings of one rule in one file; the rest are counted in one summary
    finding (a crafted file can otherwise produce millions)."""

    def ratio_bound(self, compressed_bytes: int) -> int:
        """Most output a stream may produce after consuming `compressed_bytes`."""
        return self.decompression_floor_bytes + int(compressed_bytes * self.max_compression_ratio)

    def file_decompression_budget(self, size: int) -> int:
        """Temp-file bytes the decompressions of a file of `size` bytes may write."""
        return min(self.max_total_decompressed_bytes, 4 * self.ratio_bound(size))

    def file_seconds(self, size: int) -> float:
        return self.seconds_per_file + size / self.bytes_per_second


@dataclass(frozen=True, slots=True)
class ScanConfig:
    targets: tuple[str, ...]
    rules_files: tuple[str, ...] = ()
    fail_on: Severity = Severity.MEDIUM
    limits: Limits = field(default_factory=Limits)
    hash_files: bool = False
    deep: bool = False
    """Cross-check pickles with fickling (slower; adds its verdict as findings)."""
    include: tuple[str, ...] = ()
    """Globs over paths relative to each target; only matching files are scanned."""
    exclude: tuple[str, ...] = ()
    """Globs over paths relative to each target; matching files are skipped."""
    hub: HubSettings | None = None
    """How to reach the Hugging Face Hub; None: targets are local paths only."""
    signature: SignatureRequest | None = None
    """Check each target folder's model signature; None: signatures are not checked."""
