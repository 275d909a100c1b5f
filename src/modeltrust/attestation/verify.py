"""Check an attestation file: every signed document verifies with the given
key (or sigstore identity), carries an in-toto Statement v1 with an expected
predicate type, and, with a target, every subject digest matches the files
there and no file is left unattested."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..digests import hash_files
from ..sources.local import expand_targets
from .dsse import EnvelopeRejected, IdentityCheck, KeyCheck, open_document, read_documents
from .statement import KNOWN_PREDICATES, STATEMENT_TYPE


@dataclass(frozen=True, slots=True)
class AttestationCheck:
    predicate_types: tuple[str, ...]
    """Of the statements that verified, in file order."""
    subjects: int
    problems: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.predicate_types)


def _subjects(statement: dict[str, Any], where: str, problems: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    raw = statement.get("subject")
    if not isinstance(raw, list) or not raw:
        problems.append(f"{where}: the statement has no subjects")
        return found
    for entry in raw:
        digest = entry.get("digest") if isinstance(entry, dict) else None
        if not isinstance(digest, dict) or not isinstance(digest.get("sha256"), str):
            problems.append(f"{where}: a subject has no sha256 digest")
            continue
        found[str(entry.get("name", ""))] = digest["sha256"]
    return found


def verify_attestation(
    path: Path,
    how: KeyCheck | IdentityCheck,
    target: Path | None = None,
    require: Sequence[str] = (),
) -> AttestationCheck:
    problems: list[str] = []
    types: list[str] = []
    subjects: dict[str, str] = {}
    invocations: set[str] = set()
    accepted = tuple(require) or KNOWN_PREDICATES
    for number, document in enumerate(read_documents(path), start=1):
        where = f"statement {number}"
        try:
            statement = open_document(document, how)
        except EnvelopeRejected as exc:
            problems.append(f"{where}: signature does not verify: {exc}")
            continue
        if statement.get("_type") != STATEMENT_TYPE:
            problems.append(f"{where}: not an in-toto Statement v1 ({statement.get('_type')!r})")
            continue
        kind = str(statement.get("predicateType"))
        if kind not in accepted:
            problems.append(f"{where}: unexpected predicate type {kind!r}")
            continue
        types.append(kind)
        for name, digest in _subjects(statement, where, problems).items():
            if subjects.setdefault(name, digest) != digest:
                problems.append(f"{where}: subject {name!r} has another digest than in an earlier statement")
        invocation = _invocation(statement)
        if invocation:
            invocations.add(invocation)
    for kind in require:
        if kind not in types:
            problems.append(f"no verified statement with predicate type {kind!r}")
    if len(invocations) > 1:
        problems.append("the statements come from different runs (invocation ids differ)")
    if target is not None and subjects:
        problems.extend(compare_with_target(subjects, target))
    return AttestationCheck(tuple(types), len(subjects), tuple(problems))


def _invocation(statement: dict[str, Any]) -> str:
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        return ""
    if "invocationId" in predicate:
        return str(predicate["invocationId"])
    run = predicate.get("runDetails")
    metadata = run.get("metadata") if isinstance(run, dict) else None
    return str(metadata.get("invocationId", "")) if isinstance(metadata, dict) else ""


def compare_with_target(subjects: dict[str, str], target: Path) -> list[str]:
    """Every attested file present with its digest, and nothing else there
    (the same files a scan of `target` would read)."""
    if target.is_file():
        files = {target.name: target}
    else:
        prefix = os.path.join(str(target), "")
        files = {
            item.display[len(prefix) :].replace(os.sep, "/"): item.path
            for item in expand_targets((str(target),))
        }
    digests = hash_files(list(files.values()))
    problems = []
    for name, expected in sorted(subjects.items()):
        path = files.get(name)
        if path is None:
            problems.append(f"{name}: attested but missing from {target}")
        elif digests[path].sha256 != expected:
            problems.append(
                f"{name}: sha256 {digests[path].sha256[:16]}... differs from the attested {expected[:16]}..."
            )
    for name in sorted(set(files) - set(subjects)):
        problems.append(f"{name}: present in {target} but not attested")
    return problems
