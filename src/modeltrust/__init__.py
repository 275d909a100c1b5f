"""modeltrust: vet third-party models and datasets before anything is loaded.

The public API is this module's names only; everything else may change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from .config import Limits, ScanConfig
    from .errors import ModelTrustError
    from .findings import Artifact, Finding, Location, ScanReport, Severity

_HOMES = {
    "Limits": "config",
    "ScanConfig": "config",
    "ModelTrustError": "errors",
    "Artifact": "findings",
    "Finding": "findings",
    "Location": "findings",
    "ScanReport": "findings",
    "Severity": "findings",
}
"""Where each public name lives: imported on first use, so that a command that
needs none of them (`modeltrust sign`, `--version`) does not pay for them."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


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
