"""The catalog's SQLite connection: every call guarded, every SQLite error translated.

A damaged or crafted catalog, a full disk or a locked file surfaces as the engine's own error
(``CorruptData``, ``DiskFull``, ``StoreLocked``...) naming the catalog, never as a bare
``sqlite3`` error. Transactions take SQLite's write lock up front (``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import errno
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import Any

from langchain_memvid.engine.errors import (
    CorruptData,
    DiskFull,
    InvalidArgument,
    MemvidError,
    ReadOnlyStore,
    StoreIOError,
    StoreLocked,
)


def translate_error(e: sqlite3.Error, path: Path) -> MemvidError:
    """The engine's error for an SQLite error on the catalog at ``path``."""
    text = str(e)
    low = text.lower()
    if getattr(e, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in low:
        return DiskFull(
            errno.ENOSPC,
            f"No room left to write the catalog {path} ({text}): the disk is full or a file-size "
            "limit was reached. Nothing of this call was committed; free space and retry.",
        )
    if getattr(e, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_IOERR or "disk i/o error" in low:
        if _nearly_full(path.parent):  # e.g. no room for the -shm file a reader maps
            return DiskFull(
                errno.ENOSPC,
                f"No room left on the disk of {path} ({text}): free space and retry. Nothing of "
                "this call was committed.",
            )
        return StoreIOError(
            f"The operating system failed a read or write of the catalog {path} ({text}): an I/O "
            "error or a file-size limit. Nothing of this call was committed; check the disk and retry."
        )
    if "locked" in low or "busy" in low:
        return StoreLocked(f"The catalog {path} stayed locked by another process ({text}); retry later.")
    if any(w in low for w in ("readonly", "read-only", "permission", "unable to open", "access")):
        return ReadOnlyStore(
            f"Cannot use the catalog {path} ({text}): the store folder and its files must be "
            "readable and writable by this user, on a writable file system."
        )
    if isinstance(e, sqlite3.ProgrammingError) and "closed" in low:
        return InvalidArgument(f"The store at {path.parent} is closed; open it again.")
    if isinstance(e, sqlite3.InterfaceError):
        return InvalidArgument(f"A value of an unsupported type was passed to the catalog: {text}")
    return CorruptData(
        f"The catalog {path} is damaged ({text}); run `verify`, then `rebuild` to recreate it from the videos."
    )


def _nearly_full(folder: Path) -> bool:
    """True when the file system of ``folder`` has under 1 MiB free (then an I/O error is that)."""
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < (1 << 20)


class Guard:
    """Context manager turning ``sqlite3`` errors into the engine's own (see ``translate_error``)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if isinstance(exc, sqlite3.Error):
            raise translate_error(exc, self.path) from exc
        if isinstance(exc, UnicodeDecodeError):  # text in a damaged catalog
            msg = f"The catalog {self.path} holds text that is not UTF-8; run `verify`, then `rebuild`."
            raise CorruptData(msg) from exc


class Cursor:
    """A cursor whose fetches (and iteration) go through the guard."""

    def __init__(self, cursor: sqlite3.Cursor, guard: Guard) -> None:
        self._cursor, self._guard = cursor, guard

    def fetchone(self) -> Any:
        """The next row, or None."""
        with self._guard:
            return self._cursor.fetchone()

    def fetchall(self) -> list[Any]:
        """The remaining rows."""
        with self._guard:
            return self._cursor.fetchall()

    def __iter__(self) -> Iterator[Any]:
        while True:
            with self._guard:
                rows = self._cursor.fetchmany(256)
            if not rows:
                return
            yield from rows


class Connection:
    """The catalog's SQLite connection, with every call guarded."""

    def __init__(self, path: Path, uri: str) -> None:
        self._guard = Guard(path)
        with self._guard:
            self._db = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30
            )
        self._shm = Path(f"{path}-shm")
        self._shm_fd: int | None = None
        self._wal_hint: bytes | None = None  # the WAL-index header when ``_token`` was read
        self._token = (-1, -1)

    @property
    def in_transaction(self) -> bool:
        """True inside an open transaction."""
        return self._db.in_transaction

    def change_token(self) -> tuple[int, int]:
        """SQLite's ``data_version`` and ``total_changes``, cheaply when nothing was committed.

        The first moves with other connections' commits, the second with this connection's writes.
        Every commit in WAL mode rewrites the WAL-index header, so while that header and
        ``total_changes`` stand still the last token still holds; reading 48 bytes costs a few
        microseconds where the PRAGMA cost ~30 at 1M vectors, measured between FAISS searches.
        """
        hint = self._read_wal_hint()
        if hint is not None and hint == self._wal_hint and self._db.total_changes == self._token[1]:
            return self._token
        with self._guard:
            token = self._db.execute("PRAGMA data_version").fetchone()[0], self._db.total_changes
        self._wal_hint, self._token = hint, token  # the hint read first: a commit between moves it
        return token

    def _read_wal_hint(self) -> bytes | None:
        """The WAL-index header, or None where it cannot be read (no WAL yet, no ``os.pread``).

        That is the first 48 bytes of the ``-shm`` file, in SQLite's documented wal-index format.
        """
        if self._shm_fd is None:
            if not hasattr(os, "pread") or not self._shm.exists():
                return None
            try:
                self._shm_fd = os.open(self._shm, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            except OSError:
                return None
        try:
            head = os.pread(self._shm_fd, 48, 0)
        except OSError:
            return None
        return head if len(head) == 48 else None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        """Run one statement, guarded."""
        with self._guard:
            return Cursor(self._db.execute(sql, params), self._guard)

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> None:
        """Run one statement for each parameter row, guarded."""
        with self._guard:
            self._db.executemany(sql, params)

    def backup(self, dest: Path) -> None:
        """A consistent copy of the database (WAL content included) at ``dest``, fsynced."""
        with self._guard:
            target = sqlite3.connect(dest)
            try:
                self._db.backup(target)
            finally:
                target.close()
        with open(dest, "rb+") as fh:
            os.fsync(fh.fileno())

    def close(self) -> None:
        """Close the connection and the WAL-index file."""
        if self._shm_fd is not None:
            os.close(self._shm_fd)
            self._shm_fd = None
        with self._guard:
            self._db.close()


class Transaction:
    """BEGIN IMMEDIATE takes SQLite's write lock up front, so a commit never fails half-way."""

    def __init__(self, db: Connection) -> None:
        self.db = db
        self.outer = False

    def __enter__(self) -> None:
        self.outer = not self.db.in_transaction
        if self.outer:
            self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if not self.outer:
            return
        if exc_type is None:
            self.db.execute("COMMIT")
        elif self.db.in_transaction:
            # SQLite rolls back by itself on some errors (a full disk); and a failed ROLLBACK
            # must not hide the error that caused it.
            with suppress(MemvidError):
                self.db.execute("ROLLBACK")
