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
from ..findings import Location
from ..reader import ByteReader
from .base import ScanContext
from .pickle_file import scan_pickle_reader

# Where the loader gives up too; nothing after it runs.
_STOPS = {"pickle-malformed", "pickle-trailing-data"}
# Most such walks end within a few bytes: read as little as the walker can
# (its minimum window, about 74 KB), so header-only formats stay cheap.
_CHUNK = 0


class LoadablePickleScanner:
    name = "pickle"
    formats = (detect.PICKLE_LOADABLE,)

    def scan(self, reader: ByteReader, location: Location, ctx: ScanContext) -> None:
        own = replace(ctx, findings=[], deep=False)
        pctx = scan_pickle_reader(reader, location, own, chunk_size=_CHUNK)
        kept = 0
        for finding in own.findings:
            here = finding.location.path == location.path and finding.location.members == location.members
            if not (here and finding.rule_id in _STOPS):
                ctx.findings.append(finding)
                kept += 1
        if pctx.stats.pickles == 0 and not kept:
            # Rejected before a STOP with nothing run: no loader gets a pickle
            # out of it, so the walk covered nothing worth naming.
            ctx.covered_by[str(location)] = ""
