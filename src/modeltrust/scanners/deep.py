"""An opt-in second opinion (`--deep`): fickling's static analysis of the
same pickle, reported beside ours. fickling is thorough but slow (seconds per
MB), so it never runs by default and only on pickles up to a size bound."""

from __future__ import annotations

from ..findings import Location, Severity
from ..reader import ByteReader
from .base import ScanContext

SCANNER = "fickling"
MAX_BYTES = 16 << 20
# fickling's severities, in its own order, mapped to what they mean for us.
_ESCALATE = {"LIKELY_OVERTLY_MALICIOUS", "OVERTLY_MALICIOUS"}


def second_opinion(
    reader: ByteReader, start: int, location: Location, ctx: ScanContext, own_worst: Severity | None
) -> None:
    size = reader.size - start
    if size > MAX_BYTES:
        ctx.report(
            "pickle-second-opinion", location, f"fickling not run: {size} bytes is over {MAX_BYTES}", SCANNER
        )
        return
    try:
        from fickling.analysis import check_safety
        from fickling.fickle import Pickled

        analysis = check_safety(Pickled.load(reader.read_at(start, size)))
    except Exception as exc:  # noqa: BLE001 - a second opinion must never break the scan
        ctx.report(
            "pickle-second-opinion", location, f"fickling could not analyse it: {type(exc).__name__}", SCANNER
        )
        return
    verdict = analysis.severity.name
    details = "; ".join(
        str(getattr(r, "message", r)) for r in analysis.results[:3] if getattr(r, "message", "")
    )
    message = f"fickling says {verdict}" + (f": {details}" if details else "")
    disagrees = verdict in _ESCALATE and (own_worst is None or own_worst < Severity.HIGH)
    ctx.report(
        "pickle-second-opinion",
        location,
        message[:500],
        SCANNER,
        subject=verdict,
        severity=Severity.MEDIUM if disagrees else Severity.INFO,
    )
