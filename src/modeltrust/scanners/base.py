"""The one interface every format scanner implements, and the context it reports into."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..config import Limits
from ..detect import Detection
from ..findings import DataFile, Finding, Location, Severity
from ..reader import ByteReader, CountingReader, TooLarge
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


MAX_MESSAGE = 2000
"""Characters of a finding's message or subject (names come from the file)."""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 20]}... ({len(text)} chars)"


class LimitReached(Exception):
    """A budget of the file being scanned (time, decompressed bytes) is spent.

    Raised from deep inside a scan to end the whole file's analysis at once;
    the engine turns it into one `scan-limit` finding for the file."""


class Budget:
    """Bytes the decompressions of one file may still write to temp files
    (shared by the nested contexts of that file)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.remaining = total

    def spend(self, amount: int) -> None:
        self.remaining = max(0, self.remaining - amount)

    @property
    def spent(self) -> int:
        return self.total - self.remaining

    @property
    def exhausted(self) -> bool:
        return self.remaining <= 0


class Deadline:
    """When the analysis of one file must end (time.monotonic seconds)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    def check(self) -> None:
        if time.monotonic() > self.at:
            raise LimitReached(
                f"analysis took longer than the time budget of {self.seconds:.1f} s for this file"
            )


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
    deadline: Deadline | None = None

    def __post_init__(self) -> None:
        if self.budget is None:
            self.budget = Budget(self.limits.file_decompression_budget(0))
        if self.deadline is None:
            self.deadline = Deadline(self.limits.file_seconds(0))

    def inflate_limit(self, compressed_size: int) -> int:
        """How much one decompression may produce in all: the per-stream cap,
        the ratio bound for its compressed size, and what the file has left.
        (The ratio is also checked while streaming; see `StreamBound`.)"""
        assert self.budget is not None
        return min(
            self.limits.max_decompressed_bytes,
            self.limits.ratio_bound(compressed_size),
            self.budget.remaining,
        )

    def bound_stream(self, chunks: Iterator[bytes], source: CountingReader) -> Iterator[bytes]:
        """Decompressed chunks, checked while they stream (TooLarge past a bound).

        Past the floor, the output may not outgrow the compressed input read so
        far by more than the ratio, so a bomb stops after a few MB instead of at
        the end of its budget; the total is held to `inflate_limit`. What
        streams is charged to the file's budget as it is written."""
        assert self.budget is not None
        limit = self.inflate_limit(source.size)
        produced = 0
        for piece in chunks:
            produced += len(piece)
            if produced > limit:
                raise TooLarge(f"decompressed output exceeds the limit of {limit} bytes")
            if produced > self.limits.ratio_bound(source.consumed):
                raise TooLarge(
                    f"{produced} bytes inflated from the first {source.consumed} compressed bytes, past the "
                    f"{self.limits.max_compression_ratio:g}x ratio bound (a decompression bomb)"
                )
            self.budget.spend(len(piece))
            self.check_time()
            yield piece

    def check_time(self) -> None:
        """Raise LimitReached when the file's time budget is spent."""
        assert self.deadline is not None
        self.deadline.check()

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
                message=_clip(message, MAX_MESSAGE),
                subject=_clip(subject, MAX_MESSAGE),
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
            self.deadline,
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
        self.check_time()
        return self.nested(reader, location, self.deeper())
