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
    """Bounds that keep a scan finite on hostile input. Going past one is a finding."""

    max_pickle_bytes: int = 1 * GiB
    """Pickle bytes walked per stream (time: roughly 0.1-0.2 s per MB of opcodes)."""
    max_decompressed_bytes: int = 4 * GiB
    """Output of one decompression (spooled to a temp file, not memory)."""
    max_total_decompressed_bytes: int = 16 * GiB
    """Output of all decompressions in one scan (nested archives add up)."""
    max_compression_ratio: float = 1000.0
    max_members: int = 200_000
    max_depth: int = 8
    """Archives in archives, pickles in pickles."""
    max_header_bytes: int = 1 * MiB
    """Text headers parsed in memory (NumPy headers)."""
    max_json_header_bytes: int = 16 * MiB
    """JSON headers parsed in memory (safetensors, GGUF metadata)."""
    max_sniff_member_bytes: int = 1 * MiB
    """Torch archive members other than pickles are sniffed only up to this size."""


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
