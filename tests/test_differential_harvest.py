"""Differential tests against the real loaders, over what libraries really write
(fixtures/benign/harvest/, made by fixtures/harvest.py) and over every
malicious fixture.

- A harvested benign file scans with no finding at medium or above (false
  alarms on real work matter as much as detection), unless its manifest entry
  says why it is flagged on purpose.
- The real loader, stopped at the first name our allowlist does not admit
  (tests/oracle.py), completes on every benign file: the allowlist covers what
  the libraries need, checked against the loader rather than our own walker.
- Every name the real loader resolved - and the one it was stopped at - is a
  name the scanner saw: scanned with an EMPTY allowlist, every import is
  reported, so each oracle name must appear as a finding subject.
- No malicious fixture's payload runs under the oracle: the allowlist never
  admits a name a payload needs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from modeltrust.findings import ScanReport, Severity
from modeltrust.rules import RuleSet

from . import oracle
from .conftest import FIXTURES, manifest, scan_paths

HARVEST = FIXTURES / "benign" / "harvest"
HARVEST_MANIFEST: dict[str, dict[str, object]] = json.loads((HARVEST / "manifest.json").read_text())["files"]

# Harvested files the walker still gets wrong (reproducers sent to the walker):
# they are expected to fail until the fix lands, and strict xfail says so.
WALKER_PENDING_CLEAN: dict[str, str] = {}
WALKER_PENDING_SEEN: dict[str, str] = {}

LOADER_BY_SUFFIX = {
    ".pt": "torch",
    ".bin": "torch",
    ".ckpt": "torch",
    ".npy": "numpy",
    ".npz": "numpy",
    ".pkl": "pickle",
    ".gz": "joblib",
    ".bz2": "joblib",
    ".xz": "joblib",
    ".lzma": "joblib",
    ".z": "joblib",
    ".joblib": "joblib",
}


def _harvest_params(pending: dict[str, str]) -> Iterator[object]:
    for rel in sorted(HARVEST_MANIFEST):
        reason = pending.get(rel)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(rel, marks=marks, id=rel)


def _loader_of_malicious(name: str) -> str | None:
    path = FIXTURES / name
    if ".joblib" in path.name:
        return "joblib"
    if path.suffix == ".tar":
        return "torch"
    if path.suffix in (".pt", ".bin", ".ckpt", ".npy", ".npz", ".pkl"):
        return LOADER_BY_SUFFIX[path.suffix]
    return None


MALICIOUS = sorted(
    name for name, entry in manifest().items() if entry["malicious"] and _loader_of_malicious(name)
)


def _subjects(report: ScanReport) -> set[str]:
    return {f.subject for f in report.findings}


# pandas pickles ZoneInfo._unpickle as getattr(ZoneInfo, "_unpickle") with
# protocol 2 and 5; the scanner folds such a call into an import of the dotted
# name, judged by the allowlist. For our own benign files the oracle lets getattr
# resolve, so the rest of the stream is still checked against the allowlist.
GETATTR = frozenset({("builtins", "getattr"), ("__builtin__", "getattr")})


def _oracle_batch(
    paths: dict[str, tuple[Path, str]], allow: oracle.Allow = oracle.RULES
) -> dict[str, oracle.OracleResult]:
    """One oracle child per loader; loaders that are not installed are left out."""
    results: dict[str, oracle.OracleResult] = {}
    for loader in oracle.LOADERS:
        mine = sorted(k for k, (_, ld) in paths.items() if ld == loader)
        if not mine or not oracle.loader_available(loader):
            continue
        found = oracle.run_loader_many([paths[k][0] for k in mine], loader, allow)
        results.update(zip(mine, found, strict=True))
    return results


@pytest.fixture(scope="session")
def harvest_oracle() -> dict[str, oracle.OracleResult]:
    paths = {rel: (HARVEST / rel, str(e["loader"])) for rel, e in HARVEST_MANIFEST.items()}
    return _oracle_batch(paths, oracle.Allow(names=GETATTR | oracle.FOLDED_HELPERS, rules=True))


@pytest.fixture(scope="session")
def malicious_oracle() -> dict[str, oracle.OracleResult]:
    return _oracle_batch({name: (FIXTURES / name, str(_loader_of_malicious(name))) for name in MALICIOUS})


def _oracle_for(results: dict[str, oracle.OracleResult], key: str, loader: str) -> oracle.OracleResult:
    if key not in results:
        oracle.require_loader(loader)  # skips with the reason
        pytest.fail(f"no oracle result for {key}")
    return results[key]


def test_harvest_manifest_covers_every_file() -> None:
    on_disk = {p.relative_to(HARVEST).as_posix() for p in HARVEST.rglob("*") if p.is_file()}
    assert on_disk - {"manifest.json"} == set(HARVEST_MANIFEST)
    assert len(HARVEST_MANIFEST) >= 250


@pytest.mark.parametrize("rel", list(_harvest_params(WALKER_PENDING_CLEAN)))
def test_harvested_file_is_clean(rel: str, rules: RuleSet) -> None:
    entry = HARVEST_MANIFEST[rel]
    report = scan_paths(HARVEST / rel, rules=rules)
    loud = [f for f in report.findings if f.severity >= Severity.MEDIUM]
    if entry.get("flagged"):
        assert loud, f"{rel} should be flagged: {entry['flagged']}"
        return
    assert not loud, "; ".join(f"{f.severity.label} {f.rule_id} {f.message}" for f in loud)


@pytest.mark.parametrize("rel", sorted(HARVEST_MANIFEST))
def test_real_loader_needs_only_allowed_names(
    rel: str, harvest_oracle: dict[str, oracle.OracleResult]
) -> None:
    entry = HARVEST_MANIFEST[rel]
    result = _oracle_for(harvest_oracle, rel, str(entry["loader"]))
    if result.stopped is None and (result.error or "").startswith("ModuleNotFoundError"):
        pytest.skip(f"{rel}: the library that wrote it is not installed ({result.error})")
    if entry.get("flagged"):
        assert result.stopped is not None, f"{rel}: flagged on purpose, yet every name it needs is allowed"
        return
    assert result.stopped is None, f"{rel}: the real loader needs {result.stopped}, which is not allowed"
    assert result.completed, result.error
    assert not result.marker_created


@pytest.mark.parametrize("rel", list(_harvest_params(WALKER_PENDING_SEEN)))
def test_scanner_sees_every_name_the_loader_resolves(
    rel: str, harvest_oracle: dict[str, oracle.OracleResult], no_allow_rules: RuleSet
) -> None:
    entry = HARVEST_MANIFEST[rel]
    result = _oracle_for(harvest_oracle, rel, str(entry["loader"]))
    subjects = _subjects(scan_paths(HARVEST / rel, rules=no_allow_rules))
    missing = [f"{m}.{n}" for m, n in result.names if f"{m}.{n}" not in subjects]
    assert not missing, f"the real loader resolved {missing}, which the scan never reported"


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_payload_never_runs_under_the_allowlist(
    name: str, malicious_oracle: dict[str, oracle.OracleResult]
) -> None:
    result = _oracle_for(malicious_oracle, name, str(_loader_of_malicious(name)))
    assert not result.marker_created, f"{name}: the payload ran using only allowed names {result.resolved}"


@pytest.mark.parametrize("name", MALICIOUS)
def test_malicious_names_the_loader_resolves_are_reported(
    name: str, malicious_oracle: dict[str, oracle.OracleResult], no_allow_rules: RuleSet, rules: RuleSet
) -> None:
    result = _oracle_for(malicious_oracle, name, str(_loader_of_malicious(name)))
    seen = _subjects(scan_paths(FIXTURES / name, rules=no_allow_rules))
    missing = [f"{m}.{n}" for m, n in result.names if f"{m}.{n}" not in seen]
    assert not missing, f"the real loader resolved {missing}, which the scan never reported"
    if result.stopped is not None:  # the name the loader would have used next: reported for real
        module, attr = result.stopped
        reported = _subjects(scan_paths(FIXTURES / name, rules=rules))
        assert f"{module}.{attr}" in reported, f"{name}: {module}.{attr} is not reported"
