"""modeltrust: vet third-party models and datasets before anything is loaded.

The public API is this module's names only; everything else may change.
"""

from __future__ import annotations

__version__ = "0.1.0"

from .config import Limits, ScanConfig
from .errors import ModelTrustError
from .findings import Artifact, Finding, Location, ScanReport, Severity


def scan(config: ScanConfig) -> ScanReport:
    """Scan the targets named in `config` and return the report."""
    from .engine import scan as _scan

    return _scan(config)


__all__ = [
    "Artifact",
    "Finding",
    "Limits",
    "Location",
    "ModelTrustError",
    "ScanConfig",
    "ScanReport",
    "Severity",
    "__version__",
    "scan",
]
