"""Files a pickle loader would unpickle, whatever else they are.

`pickle.load`, `joblib.load`, `numpy.load` (anything not npy or zip) and
torch's legacy path read any bytes from offset 0 as a pickle. detect.py marks
every file whose first opcode those unpicklers accept as `pickle-loadable`;
this scanner walks it from offset 0 like any pickle. A text file, a GIF or a
tar header can be both its own format and a pickle, so the walk is judged by
what it finds: every import and call is reported, but the walk stopping at
bytes that are not opcodes is not (the loader stops there too, after running
only what the walk already reported).
"""

from __future__ import annotations

from dataclasses import replace

from .. import detect
from ..findings import Finding, Location
from ..reader import ByteReader
from .base import ScanContext
from .pickle_file import scan_pickle_reader

# Where the loader gives up too; nothing after it runs. (No loader that reads
# a file from offset 0 as a pickle sets a persistent_load, so PERSID stops it.)
_STOPS = {"pickle-malformed", "pickle-trailing-data", "pickle-persistent-id"}
# Bounds the walker reports (the byte bound before the walk starts): a walk
# that stopped earlier never reached them. (Add any new limit rule here.)
_LIMITS = {"pickle-opcode-limit"}
# Most such walks end within a few bytes: read as little as the walker can
# (its minimum window, about 74 KB), so header-only formats stay cheap.
_CHUNK = 0


class LoadablePickleScanner:
    name = "pickle"
    formats = (detect.PICKLE_LOADABLE,)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        if not walk_as_loaded(reader, location, ctx):
            # Rejected before a STOP with nothing run: no loader gets a pickle
            # out of it, so the walk covered nothing worth naming.
            ctx.covered_by[str(location)] = ""


def walk_as_loaded(reader: ByteReader, location: Location, ctx: ScanContext, start: int = 0) -> bool:
    """Walk from `start` as a loader that may or may not get a pickle there
    would; report what it runs, not where it gives up. True if the walk found
    a complete pickle or anything to report."""
    own = replace(ctx, findings=[], deep=False)
    pctx = scan_pickle_reader(
        reader, location, own, chunk_size=_CHUNK, start=start, importable_names_only=True
    )
    here = [
        f for f in own.findings if f.location.path == location.path and f.location.members == location.members
    ]
    stops = [f.location.offset or 0 for f in here if f.rule_id in _STOPS]
    stopped_at = min(stops) if stops else None
    dropped = 0
    for finding in own.findings:
        if finding in here and (_unreached(finding, stopped_at) or _impossible_import(finding, ctx)):
            dropped += 1
        else:
            ctx.findings.append(finding)
    return pctx.stats.pickles > 0 or dropped < len(own.findings)


def _impossible_import(finding: Finding, ctx: ScanContext) -> bool:
    """An import nothing calls, of a module no loading machine can have (not
    in the standard library, not named by the rules, not installed here): the
    loader raises ModuleNotFoundError there. A text file's first line spells
    such names (`cat\ndog` in labels.txt reads as GLOBAL at.dog); a call of
    one is still reported (pickle-unknown-call)."""
    return finding.rule_id == "pickle-unknown-import" and not ctx.rules.module_may_exist(finding.subject)


def _unreached(finding: Finding, stopped_at: int | None) -> bool:
    """A stop, or a size limit the walk never got to because it stopped first."""
    if finding.rule_id in _STOPS:
        return True
    offset = finding.location.offset
    return finding.rule_id in _LIMITS and stopped_at is not None and (offset is None or stopped_at < offset)
