"""Crash-safe, append-only SQLite journal of a search (WAL mode).

Every ask and every tell is one transaction, recorded as an event in order. A search killed
at any point (even SIGKILL) resumes by replaying the events into a fresh strategy with the
same seed (strategies are deterministic given their calls), so no completed trial is lost
and none is evaluated twice; trials asked but unfinished are evaluated again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgenas.errors import EdgenasError
from edgenas.spaces.base import Arch

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    id INTEGER PRIMARY KEY,
    arch_id TEXT NOT NULL,
    arch TEXT NOT NULL,
    arch_str TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'done', 'failed', 'infeasible')),
    cost TEXT,
    metrics TEXT,
    error TEXT,
    worker TEXT,
    asked_at REAL NOT NULL,
    finished_at REAL
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('ask', 'tell')),
    trial INTEGER NOT NULL REFERENCES trials(id)
);
"""


@dataclass(frozen=True)
class Trial:
    id: int
    arch: Arch
    arch_str: str
    status: str
    cost: dict[str, Any] | None
    metrics: dict[str, Any] | None
    error: str | None
    worker: str | None
    asked_at: float
    finished_at: float | None

    @property
    def values(self) -> dict[str, float] | None:
        """What the strategy was told: cost and metrics together, None if not done."""
        if self.status != "done":
            return None
        return {**(self.cost or {}), **(self.metrics or {})}


class Journal:
    """One search's journal file. Open it with :meth:`open`; one writer process at a time."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._db = conn

    @classmethod
    def open(cls, path: str | Path) -> Journal:
        path = Path(path)
        if path.exists() and path.is_dir():
            raise EdgenasError(f"journal {path} is a directory; give a file path such as runs/search.db")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
        except sqlite3.DatabaseError as e:
            raise EdgenasError(
                f"journal {path} is not an edgenas journal ({e}); give a new file name"
            ) from None
        return cls(path, conn)

    def close(self) -> None:
        self._db.close()

    # --- metadata ------------------------------------------------------------------------
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def bind(self, meta: dict[str, Any], must_match: tuple[str, ...]) -> dict[str, Any]:
        """Store ``meta`` in a new journal, or check a resumed one was made for the same search.

        Keys in ``must_match`` must be equal (e.g. the space); the stored meta is returned.
        """
        stored = self.meta()
        if not stored:
            with self._tx():
                self._db.executemany(
                    "INSERT INTO meta (key, value) VALUES (?, ?)",
                    [(k, json.dumps(v, sort_keys=True)) for k, v in meta.items()],
                )
            return meta
        for key in must_match:
            if stored.get(key) != meta.get(key):
                raise EdgenasError(
                    f"journal {self.path} belongs to another search ({key} {stored.get(key)!r}, "
                    f"not {meta.get(key)!r}); use a new --journal file or the original settings"
                )
        return stored

    # --- trials --------------------------------------------------------------------------
    def _tx(self) -> _Transaction:
        return _Transaction(self._db)

    def record_ask(self, arch: Arch, arch_str: str, cost: dict[str, Any] | None) -> int:
        with self._tx():
            cur = self._db.execute(
                "INSERT INTO trials (arch_id, arch, arch_str, status, cost, asked_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?)",
                (arch.id, arch.model_dump_json(), arch_str, json.dumps(cost), time.time()),
            )
            trial_id = int(cur.lastrowid)
            self._db.execute("INSERT INTO events (kind, trial) VALUES ('ask', ?)", (trial_id,))
        return trial_id

    def record_tell(
        self, trial_id: int, status: str, metrics: dict[str, Any] | None = None,
        error: str | None = None, worker: str | None = None,
    ) -> None:
        with self._tx():
            self._db.execute(
                "UPDATE trials SET status = ?, metrics = ?, error = ?, worker = ?, finished_at = ? "
                "WHERE id = ?",
                (status, json.dumps(metrics), error, worker, time.time(), trial_id),
            )
            self._db.execute("INSERT INTO events (kind, trial) VALUES ('tell', ?)", (trial_id,))

    def trials(self, status: str | None = None) -> list[Trial]:
        query = "SELECT * FROM trials" + (" WHERE status = ?" if status else "") + " ORDER BY id"
        rows = self._db.execute(query, (status,) if status else ())
        return [_trial(row) for row in rows]

    def trial(self, trial_id: int) -> Trial:
        row = self._db.execute("SELECT * FROM trials WHERE id = ?", (trial_id,)).fetchone()
        return _trial(row)

    def events(self) -> list[tuple[str, int]]:
        return list(self._db.execute("SELECT kind, trial FROM events ORDER BY seq"))

    def count(self, *statuses: str) -> int:
        marks = ",".join("?" * len(statuses))
        return self._db.execute(
            f"SELECT COUNT(*) FROM trials WHERE status IN ({marks})", statuses
        ).fetchone()[0]


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")


def _trial(row: tuple) -> Trial:
    (tid, _arch_id, arch, arch_str, status, cost, metrics, error, worker, asked, finished) = row
    return Trial(
        id=tid, arch=Arch.model_validate_json(arch), arch_str=arch_str, status=status,
        cost=json.loads(cost) if cost else None, metrics=json.loads(metrics) if metrics else None,
        error=error, worker=worker, asked_at=asked, finished_at=finished,
    )
