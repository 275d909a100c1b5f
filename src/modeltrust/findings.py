"""The results of a scan: severities, locations, findings and the report.

Everything here is a frozen value so that reporters, the policy gate and the
BOM can read one report without being able to change it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Severity(enum.IntEnum):
    """Ordered so that `>=` compares against a fail threshold."""

    INFO = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3
    CRITICAL = 4

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"unknown severity {text!r} (expected one of: {names})") from None

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Location:
    """Where a finding is: the file, the chain of archive members inside it,
    and the byte offset in the innermost stream (an opcode, a header field)."""

    path: str
    members: tuple[str, ...] = ()
    offset: int | None = None

    def within(self, member: str) -> Location:
        return Location(self.path, (*self.members, member), None)

    def at(self, offset: int | None) -> Location:
        return Location(self.path, self.members, offset)

    def __str__(self) -> str:
        text = self.path
        for member in self.members:
            text += f"!{member}"
        if self.offset is not None:
            text += f" @{self.offset}"
        return text


@dataclass(frozen=True, slots=True)
class Finding:
    rule_id: str
    severity: Severity
    location: Location
    message: str
    """One line: what was found and why it matters."""
    subject: str = ""
    """The import, opcode or construct the finding is about, e.g. `os.system`."""
    scanner: str = ""
    references: tuple[str, ...] = ()
    waiver: str = ""
    """Set by a policy exception: why this finding does not fail the gate."""
    category: str = ""
    """The rule's class (rules.CLASS_FLOOR): unverified findings have their own gate."""

    @property
    def unverified(self) -> bool:
        return self.category == "unverified"

    def sort_key(self) -> tuple[int, str, tuple[str, ...], int, str]:
        loc = self.location
        offset = -1 if loc.offset is None else loc.offset
        return (-int(self.severity), loc.path, loc.members, offset, self.rule_id)


@dataclass(frozen=True, slots=True)
class Artifact:
    """One input file and what covered it."""

    path: str
    size: int
    format: str
    scanner: str
    sha256: str | None = None
    local_path: str | None = None
    """Where the bytes are on this machine (a Hub file's cache path), for the BOM
    to read card and header facts; None for remote reads. Not in the reports."""


@dataclass(frozen=True, slots=True)
class TargetError:
    """A target that could not be scanned at all (missing path, unreachable repo).
    The other targets are still scanned; the CLI exits 2."""

    target: str
    message: str
    retryable: bool = False
    """The source did not answer (timeouts, 5xx, rate limits): a later try may work."""


@dataclass(frozen=True, slots=True)
class DataColumn:
    """One top-level column as a data file's own schema declares it."""

    name: str
    type: str
    """pyarrow's spelling (`int64`, `string`, `list<double>`) or the Parquet physical type."""
    extension: str = ""
    """The Arrow extension type name, if any (`pandas.period`, `arrow.uuid`)."""


@dataclass(frozen=True, slots=True)
class DataFile:
    """What a Parquet or Arrow file's metadata says (read from the footer or
    schema message, never from the data)."""

    path: str
    """The location text, as in findings (`dir/train.parquet`, `x.tar!a.parquet`)."""
    format: str
    rows: int | None
    """Row count from metadata; None where the format keeps none in its header."""
    columns: tuple[DataColumn, ...] = ()
    created_by: str = ""


@dataclass(frozen=True, slots=True)
class DataSplit:
    name: str
    rows: int | None = None
    bytes: int | None = None
    files: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """A dataset found among the targets: a `datasets.save_to_disk` folder, a
    Hub dataset repo, or a folder of data files. Built by datasets_summary.py
    for the BOM (features, splits, row counts, licence)."""

    root: str
    """The folder or `hf://datasets/org/name@commit` the dataset is in."""
    kind: str
    """`save_to_disk`, `dataset_dict`, `hub` or `files`."""
    name: str = ""
    license: str = ""
    description: str = ""
    features: tuple[DataColumn, ...] = ()
    splits: tuple[DataSplit, ...] = ()
    files: tuple[DataFile, ...] = ()
    card: tuple[tuple[str, str], ...] = ()
    """Selected dataset-card facts (pretty_name, task_categories, language, size_categories...)."""

    @property
    def rows(self) -> int | None:
        counts = [s.rows for s in self.splits if s.rows is not None]
        if counts:
            return sum(counts)
        file_rows = [f.rows for f in self.files if f.rows is not None]
        return sum(file_rows) if file_rows else None


@dataclass(frozen=True, slots=True)
class SignatureOutcome:
    """A model signature checked during the scan (OpenSSF model signing)."""

    target: str
    signature: str
    """Display path of the signature file."""
    outcome: str
    """valid, unsigned, invalid, wrong-signer or modified."""
    sha256: str = ""
    signer: str = ""
    method: str = ""


@dataclass(frozen=True, slots=True)
class ScanReport:
    artifacts: tuple[Artifact, ...]
    findings: tuple[Finding, ...]
    rules_version: str = ""
    duration_seconds: float = 0.0
    tool_version: str = ""
    targets: tuple[str, ...] = field(default=())
    sources: tuple[dict[str, object], ...] = field(default=())
    """Where remote targets came from: repo, requested revision, commit, metadata."""
    errors: tuple[TargetError, ...] = field(default=())
    """Targets that could not be scanned; a report with errors never passes."""
    fail_on_unverified: bool = True
    """Whether unverified findings fail the gate whatever their severity (set by the policy)."""
    datasets: tuple[DatasetSummary, ...] = field(default=())
    """Datasets among the targets, summarised from their metadata (for the BOM)."""
    signatures: tuple[SignatureOutcome, ...] = field(default=())
    """Model signatures checked (scan with --identity/--key or a policy requiring one)."""

    @property
    def max_severity(self) -> Severity | None:
        return max((f.severity for f in self.findings), default=None)

    def at_or_above(self, threshold: Severity) -> tuple[Finding, ...]:
        """Findings that fail a gate at `threshold` (waived ones never do)."""
        return tuple(f for f in self.findings if f.severity >= threshold and not f.waiver)

    def failing(self, threshold: Severity) -> tuple[Finding, ...]:
        """What fails the gate (never waived findings): unverified findings of any
        severity exactly when the policy fails on them, other findings at or
        above `threshold`."""
        return tuple(
            f
            for f in self.findings
            if not f.waiver and (self.fail_on_unverified if f.unverified else f.severity >= threshold)
        )
