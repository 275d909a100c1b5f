"""Text walked as a pickle (pickle.load reads any bytes from offset 0) stops
where the loader stops: a GLOBAL or INST whose module line is no dotted name
of identifiers ends in find_class's ModuleNotFoundError before anything runs,
so prose such as a CITATION.cff (`c` + 'ff-version: 1.2.0') or a licence
(`i` INST + 'lla Public License') is not an import. A real module name in a
text file is still judged as the import it is."""

from __future__ import annotations

from pathlib import Path

import pytest

from modeltrust.findings import Severity
from modeltrust.rules import RuleSet

from . import oracle
from .conftest import MARKER, scan_bytes

PROSE = {
    "CITATION.cff": "cff-version: 1.2.0\ntitle: tiny\nauthors:\n  - family-names: Doe\n",
    "LICENSE": "Mozilla Public License Version 2.0\n==================================\n\n1. Definitions\n",
    "modeling_x.py.txt": "class M:\n    pass\n",
}


@pytest.mark.parametrize("name", sorted(PROSE))
def test_prose_is_not_an_import(name: str, rules: RuleSet, tmp_path: Path) -> None:
    data = PROSE[name].encode()
    result = oracle.run_bytes(data, "pickle", oracle.EVERYTHING)
    # The real loader stops in find_class (or before) without resolving anything.
    assert not result.completed and not result.marker_created
    assert not result.names or (result.error or "").startswith("ModuleNotFoundError"), result.error
    report = scan_bytes(tmp_path, data, name, rules=rules)
    loud = [f"{f.rule_id}: {f.message}" for f in report.findings if f.severity >= Severity.MEDIUM]
    assert not [line for line in loud if line.startswith("pickle")], loud


def test_text_with_a_real_module_name_is_still_judged(rules: RuleSet, tmp_path: Path) -> None:
    data = f"cos\nsystem\n(S'touch {MARKER}'\ntR.\n".encode()
    assert oracle.run_bytes(data, "pickle", oracle.EVERYTHING).marker_created
    report = scan_bytes(tmp_path, data, "notes.txt", rules=rules)
    assert report.max_severity is Severity.CRITICAL
