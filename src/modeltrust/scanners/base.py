"""The one interface every format scanner implements, and the context it reports into."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..config import Limits
from ..detect import Detection
from ..findings import DataFile, Finding, Location, Severity
from ..reader import ByteReader
from ..rules import RuleSet

# Scanning a nested reader (archive member, decompressed stream) goes back
# through detection; the engine supplies this so scanners never import it.
NestedScan = Callable[[ByteReader, Location, "ScanContext"], str]


class Scanner(Protocol):
    @property
    def name(self) -> str:
        """Shown in reports as what covered a file."""
        ...

    @property
    def formats(self) -> tuple[str, ...]:
        """Detected formats (see detect.py) this scanner handles."""
        ...

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None: ...


class Budget:
    """Bytes all decompressions of one scan may still produce (shared by nested contexts)."""

    def __init__(self, total: int) -> None:
        self.remaining = total

    def spend(self, amount: int) -> None:
        self.remaining = max(0, self.remaining - amount)


@dataclass
class ScanContext:
    rules: RuleSet
    limits: Limits
    findings: list[Finding]
    nested: NestedScan
    depth: int = 0
    deep: bool = False
    """Also ask fickling for a second opinion on each pickle."""
    covered_by: dict[str, str] = field(default_factory=dict)
    formats: dict[str, str] = field(default_factory=dict)
    """location text -> detected format."""
    budget: Budget | None = None
    data_files: list[DataFile] = field(default_factory=list)
    """Facts from data files' metadata (Parquet, Arrow), shared by nested contexts."""
    detections: dict[str, Detection] = field(default_factory=dict)
    """location text -> every format the file is scanned as (see detect.py)."""

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = Budget(self.limits.max_total_decompressed_bytes)

    def inflate_limit(self, compressed_size: int) -> int:
        """How much one decompression may produce: per-stream, ratio and total bounds."""
        assert self.budget is not None
        by_ratio = int(max(compressed_size, 1) * self.limits.max_compression_ratio)
        return min(self.limits.max_decompressed_bytes, by_ratio, self.budget.remaining)

    """location text -> scanner name, for every nested member scanned."""

    def report(
        self,
        rule_id: str,
        location: Location,
        message: str,
        scanner: str,
        subject: str = "",
        severity: Severity | None = None,
    ) -> None:
        rule = self.rules.rule(rule_id)
        self.findings.append(
            Finding(
                rule_id=rule.id,
                severity=rule.severity if severity is None else severity,
                location=location,
                message=message,
                subject=subject,
                scanner=scanner,
                references=rule.references,
            )
        )

    def claimed_by_name(self, location: Location, fmt: str) -> bool:
        """Was `fmt` chosen for this file because of its name (not its bytes)?
        A scanner reports a parse failure as a finding when the name claimed it."""
        detection = self.detections.get(str(location))
        return detection is not None and fmt in detection.by_name

    def deeper(self) -> ScanContext:
        return ScanContext(
            self.rules,
            self.limits,
            self.findings,
            self.nested,
            self.depth + 1,
            self.deep,
            self.covered_by,
            self.formats,
            self.budget,
            self.data_files,
            self.detections,
        )

    def scan_member(self, reader: ByteReader, location: Location, scanner: str) -> str | None:
        """Scan a nested reader through detection, within the depth limit."""
        if self.depth + 1 > self.limits.max_depth:
            self.report(
                "archive-limit",
                location,
                f"nested deeper than {self.limits.max_depth} levels; not scanned",
                scanner,
            )
            return None
        return self.nested(reader, location, self.deeper())
