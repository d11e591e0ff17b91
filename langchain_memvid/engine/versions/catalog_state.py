"""A version's catalog as immutable files: a checkpoint and a delta of the rows changed since it.

In format 3 the catalog is never written in place (docs/format.md section 11). A version names a
*checkpoint* (a whole SQLite catalog) and a cumulative *delta*; a copy of the checkpoint with the
delta applied is that version's catalog. A delta is found by comparing two catalogs table by
table inside SQLite (rows of the new one that the old one lacks or holds otherwise, and keys the
new one no longer has), so it holds exactly what changed, whatever the engine wrote.

A delta is a SQLite file with the catalog's tables (the changed rows) and ``_removed (tbl, key)``,
``key`` being the row's primary key as a JSON array; uploaded zstd-compressed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import zstandard

from langchain_memvid.engine.errors import CorruptData

REMOVED = "_removed"
MAX_DELTA_BYTES = 1 << 32  # a decompressed delta larger than this is refused as damage


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_CREATE = re.compile(
    r"CREATE TABLE (IF NOT EXISTS )?(\"?)[A-Za-z_][A-Za-z0-9_]*\2 ?\([^;]*\)( WITHOUT ROWID)?", re.I
)


def _tables(conn: sqlite3.Connection, schema: str) -> dict[str, str]:
    """Catalog tables of an attached database: name -> CREATE statement (ours only).

    The statement is run again to make the table elsewhere, so anything but a plain
    ``CREATE TABLE name (...)`` (a hostile file can write any text there) is damage.
    """
    rows = conn.execute(
        f"SELECT name, sql FROM {schema}.sqlite_master WHERE type = 'table' "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND name != ?",
        (REMOVED,),
    ).fetchall()
    out = {}
    for name, sql in rows:
        if not isinstance(sql, str) or not _CREATE.fullmatch(sql.strip()):
            msg = f"A catalog file defines table {name!r} with {str(sql)[:80]!r}, not a plain CREATE TABLE; it is damaged."
            raise CorruptData(msg)
        out[str(name)] = sql
    return out


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> tuple[list[str], list[str]]:
    """(all columns, primary-key columns) of a table."""
    info = conn.execute(f"PRAGMA {schema}.table_info({_quote(table)})").fetchall()
    cols = [str(r[1]) for r in info]
    keys = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]]
    if not keys:
        msg = f"Catalog table {table!r} has no primary key; a delta cannot name its rows."
        raise CorruptData(msg)
    return cols, keys


@contextlib.contextmanager
def _connect(path: Path, *attached: tuple[str, Path]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for alias, other in attached:
            conn.execute(f"ATTACH DATABASE ? AS {alias}", (f"file:{other}?mode=ro&immutable=1",))
        yield conn
    finally:
        conn.close()


def _same_key(keys: list[str], left: str, right: str) -> str:
    return " AND ".join(f"{left}.{_quote(k)} IS {right}.{_quote(k)}" for k in keys)


def _changes_sql(table: str, cols: list[str], src: str, dst: str) -> tuple[str, str]:
    """SQL selecting rows of ``src.table`` that ``dst`` lacks or holds otherwise, and the columns."""
    names = ", ".join(_quote(c) for c in cols)
    sql = f"SELECT {names} FROM {src}.{_quote(table)} EXCEPT SELECT {names} FROM {dst}.{_quote(table)}"
    return sql, names


def copy_catalog(source: Path, out: Path) -> None:
    """A consistent, standalone copy of a live catalog (SQLite's backup API; no WAL beside it)."""
    out.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(out)
        try:
            src.backup(dst)
            dst.execute("PRAGMA journal_mode=DELETE")
        finally:
            dst.close()
    finally:
        src.close()


def compact_file(path: Path) -> None:
    """VACUUM a standalone catalog copy so that a checkpoint holds no free pages."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("VACUUM")
    finally:
        conn.close()


def make_delta(base: Path, new: Path, out: Path) -> None:
    """Write to ``out`` the rows that turn catalog ``base`` into catalog ``new``."""
    out.unlink(missing_ok=True)
    with _connect(out, ("b", base), ("n", new)) as conn:
        conn.execute("BEGIN")
        conn.execute(
            f"CREATE TABLE {REMOVED} (tbl TEXT NOT NULL, key TEXT NOT NULL, PRIMARY KEY (tbl, key)) WITHOUT ROWID"
        )
        old = _tables(conn, "b")
        for table, create in _tables(conn, "n").items():
            conn.execute(create)
            cols, keys = _columns(conn, "n", table)
            if table in old:
                sql, names = _changes_sql(table, cols, "n", "b")
                conn.execute(f"INSERT INTO main.{_quote(table)} ({names}) {sql}")
                key = ", ".join(f"b.{_quote(k)}" for k in keys)
                conn.execute(
                    f"INSERT INTO {REMOVED} SELECT ?, json_array({key}) FROM b.{_quote(table)} AS b "
                    f"WHERE NOT EXISTS (SELECT 1 FROM n.{_quote(table)} AS x WHERE {_same_key(keys, 'x', 'b')})",
                    (table,),
                )
            else:
                names = ", ".join(_quote(c) for c in cols)
                conn.execute(
                    f"INSERT INTO main.{_quote(table)} ({names}) SELECT {names} FROM n.{_quote(table)}"
                )
        for table in set(old) - set(_tables(conn, "n")):  # a dropped table: every row removed
            _, keys = _columns(conn, "b", table)
            key = ", ".join(f"b.{_quote(k)}" for k in keys)
            conn.execute(
                f"INSERT INTO {REMOVED} SELECT ?, json_array({key}) FROM b.{_quote(table)} AS b", (table,)
            )
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=DELETE")
        conn.execute("VACUUM")


def apply_delta(target: Path, delta: Path) -> None:
    """Apply a delta to a standalone catalog file, in one transaction: removals, then rows."""
    with _connect(target, ("d", delta)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        present = _tables(conn, "main")
        for (table,) in conn.execute(f"SELECT DISTINCT tbl FROM d.{REMOVED}").fetchall():
            if table not in present:
                continue  # nothing of it to remove
            _, keys = _columns(conn, "main", table)
            where = " AND ".join(f"{_quote(k)} IS ?" for k in keys)
            gone = conn.execute(f"SELECT key FROM d.{REMOVED} WHERE tbl = ?", (table,)).fetchall()
            conn.executemany(
                f"DELETE FROM main.{_quote(table)} WHERE {where}",
                [_key_values(k, len(keys)) for (k,) in gone],
            )
        for table, create in _tables(conn, "d").items():
            if table not in present:
                conn.execute(create)
            cols, _ = _columns(conn, "d", table)
            names = ", ".join(_quote(c) for c in cols)
            conn.execute(
                f"INSERT OR REPLACE INTO main.{_quote(table)} ({names}) SELECT {names} FROM d.{_quote(table)}"
            )
        conn.execute("COMMIT")


def _key_values(key: str, count: int) -> list[object]:
    try:
        values = json.loads(key)
    except ValueError as e:
        msg = f"A catalog delta names a removed row by {key!r}, which is not a JSON array; the delta is damaged."
        raise CorruptData(msg) from e
    if not isinstance(values, list) or len(values) != count:
        msg = f"A catalog delta names a removed row by {key!r}, which does not match the table's key; the delta is damaged."
        raise CorruptData(msg)
    return values


def sync_into(target: Path, source: Path) -> None:
    """Make the live catalog ``target`` hold exactly what ``source`` holds, in one transaction.

    Readers of ``target`` (the engine's connection) then see one commit, as if a writer had made
    it: that is how a handle takes in a version another writer published.
    """
    with _connect(target, ("s", source)) as conn:
        conn.execute("PRAGMA busy_timeout = 60000")
        conn.execute("BEGIN IMMEDIATE")
        present = _tables(conn, "main")
        wanted = _tables(conn, "s")
        for table in set(present) - set(wanted):
            conn.execute(f"DELETE FROM main.{_quote(table)}")
        for table, create in wanted.items():
            if table not in present:
                conn.execute(create)
            cols, keys = _columns(conn, "s", table)
            conn.execute(
                f"DELETE FROM main.{_quote(table)} WHERE NOT EXISTS "
                f"(SELECT 1 FROM s.{_quote(table)} AS x WHERE {_same_key(keys, 'x', _quote(table))})"
            )
            sql, names = _changes_sql(table, cols, "s", "main")
            conn.execute(f"INSERT OR REPLACE INTO main.{_quote(table)} ({names}) {sql}")
        conn.execute("COMMIT")


def compress(path: Path) -> bytes:
    """A delta file as one zstd frame that declares its size."""
    return zstandard.ZstdCompressor(level=9, write_content_size=True).compress(path.read_bytes())


def decompress_to(data: bytes, out: Path, name: str) -> None:
    """Undo ``compress`` into ``out``; damage raises ``CorruptData`` naming the object."""
    try:
        declared = zstandard.frame_content_size(data)
        if declared > MAX_DELTA_BYTES:  # max_output_size binds only frames that do not declare it
            msg = f"Catalog delta {name} declares {declared} bytes, more than a delta may hold ({MAX_DELTA_BYTES}); the version that names it is damaged."
            raise CorruptData(msg)
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=MAX_DELTA_BYTES)
    except zstandard.ZstdError as e:
        msg = (
            f"Catalog delta {name} is not a readable zstd frame ({e}); the version that names it is damaged."
        )
        raise CorruptData(msg) from e
    out.unlink(missing_ok=True)
    with out.open("wb") as fh:
        fh.write(raw)
        fh.flush()
        os.fsync(fh.fileno())


__all__ = [
    "apply_delta",
    "compact_file",
    "compress",
    "copy_catalog",
    "decompress_to",
    "make_delta",
    "sync_into",
]
