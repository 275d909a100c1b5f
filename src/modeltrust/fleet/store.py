"""The fleet's memory: an embedded SQLite database of what was already judged.

- files: per-file results keyed by (sha256, rules digest, tool version): a Hub LFS
  file already judged under the same rules is neither downloaded nor scanned again.
- targets: per-target results keyed by (target at its commit, rules digest, policy
  digest, tool version): a vetted commit is skipped, so a killed run resumes.

A different rules digest or tool version never matches, so results are never
trusted across a rule or version change. WAL mode and a busy timeout let several
worker processes write at once.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    sha256 TEXT NOT NULL, rules TEXT NOT NULL, version TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (sha256, rules, version)
);
CREATE TABLE IF NOT EXISTS targets (
    unit TEXT NOT NULL, rules TEXT NOT NULL, policy TEXT NOT NULL, version TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (unit, rules, policy, version)
);
"""


@functools.cache
def _connection(path: str) -> sqlite3.Connection:
    """One connection per process and database (a worker vets many targets)."""
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA busy_timeout=60000")
    return db


@dataclass(frozen=True, slots=True)
class StoreKey:
    """What a stored result is only valid under."""

    rules: str
    policy: str
    version: str


class ResultStore:
    def __init__(self, path: str | Path, key: StoreKey) -> None:
        self.path = Path(path)
        self.key = key
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        yield _connection(str(self.path))

    def file_result(self, sha256: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT result FROM files WHERE sha256=? AND rules=? AND version=?",
                (sha256, self.key.rules, self.key.version),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def file_results(self, digests: list[str]) -> dict[str, dict[str, Any]]:
        """Stored results for any of `digests` (one query)."""
        if not digests:
            return {}
        found: dict[str, dict[str, Any]] = {}
        with self._connect() as db:
            for start in range(0, len(digests), 500):
                chunk = digests[start : start + 500]
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT sha256, result FROM files WHERE rules=? AND version=? AND sha256 IN ({marks})",
                    (self.key.rules, self.key.version, *chunk),
                ).fetchall()
                found.update({sha: json.loads(result) for sha, result in rows})
        return found

    def put_files(self, results: dict[str, dict[str, Any]]) -> None:
        if not results:
            return
        rows = [(sha, self.key.rules, self.key.version, json.dumps(r)) for sha, r in results.items()]
        with self._connect() as db:
            db.executemany("INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?)", rows)

    def target_line(self, unit: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT line FROM targets WHERE unit=? AND rules=? AND policy=? AND version=?",
                (unit, self.key.rules, self.key.policy, self.key.version),
            ).fetchone()
        return json.loads(row[0]) if row else None

    def put_target(self, unit: str, line: dict[str, Any]) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?, ?)",
                (unit, self.key.rules, self.key.policy, self.key.version, json.dumps(line)),
            )
