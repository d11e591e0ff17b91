"""Keep a folder of notes in sync with a store, using LangChain's indexing API.

    python examples/sync_folder.py [WORK_FOLDER]

`langchain_core.indexing.index()` hashes every chunk and asks a record manager what it wrote
last time, so a sync embeds only new or changed chunks and deletes the chunks of changed or
removed files (`cleanup="full"`). The record manager must outlive the process for that to work
across runs: `SQLiteRecordManager` below keeps it in a SQLite file beside the store, with the
standard library only. (`InMemoryRecordManager` works within one process; langchain-classic's
`SQLRecordManager` works with any SQL database.)

The demo writes three notes, syncs, then adds one, changes one and deletes one, and syncs again.
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from langchain_core.embeddings import Embeddings
from langchain_core.indexing import IndexingResult, RecordManager, index

from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings, load_path, split_documents


class SQLiteRecordManager(RecordManager):
    """A record manager in one SQLite table: (namespace, key) -> group id and time of update."""

    def __init__(self, namespace: str, db_path: str | Path) -> None:
        super().__init__(namespace)
        self.db = sqlite3.connect(str(db_path))

    def create_schema(self) -> None:
        with self.db:
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS records (namespace TEXT, key TEXT, group_id TEXT, "
                "updated_at REAL, PRIMARY KEY (namespace, key))"
            )

    def get_time(self) -> float:
        return time.time()

    def update(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        now = self.get_time()
        if time_at_least is not None and time_at_least > now:
            msg = "time_at_least must not be in the future"
            raise ValueError(msg)
        groups = group_ids if group_ids is not None else [None] * len(keys)
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                [(self.namespace, k, g, now) for k, g in zip(keys, groups, strict=True)],
            )

    def exists(self, keys: Sequence[str]) -> list[bool]:
        found = {
            row[0]
            for row in self.db.execute(
                f"SELECT key FROM records WHERE namespace = ? AND key IN ({','.join('?' * len(keys))})",
                [self.namespace, *keys],
            )
        }
        return [k in found for k in keys]

    def list_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        sql, args = "SELECT key FROM records WHERE namespace = ?", [self.namespace]
        if before is not None:
            sql, args = sql + " AND updated_at < ?", [*args, before]
        if after is not None:
            sql, args = sql + " AND updated_at > ?", [*args, after]
        if group_ids is not None:
            sql += f" AND group_id IN ({','.join('?' * len(group_ids))})"
            args += list(group_ids)
        if limit:
            sql, args = sql + " LIMIT ?", [*args, limit]
        return [row[0] for row in self.db.execute(sql, args)]

    def delete_keys(self, keys: Sequence[str]) -> None:
        with self.db:
            self.db.executemany(
                "DELETE FROM records WHERE namespace = ? AND key = ?", [(self.namespace, k) for k in keys]
            )

    # The async API delegates to the sync one: SQLite calls are short.
    async def acreate_schema(self) -> None:
        self.create_schema()

    async def aget_time(self) -> float:
        return self.get_time()

    async def aupdate(
        self,
        keys: Sequence[str],
        *,
        group_ids: Sequence[str | None] | None = None,
        time_at_least: float | None = None,
    ) -> None:
        self.update(keys, group_ids=group_ids, time_at_least=time_at_least)

    async def aexists(self, keys: Sequence[str]) -> list[bool]:
        return self.exists(keys)

    async def alist_keys(
        self,
        *,
        before: float | None = None,
        after: float | None = None,
        group_ids: Sequence[str] | None = None,
        limit: int | None = None,
    ) -> list[str]:
        return self.list_keys(before=before, after=after, group_ids=group_ids, limit=limit)

    async def adelete_keys(self, keys: Sequence[str]) -> None:
        self.delete_keys(keys)


def sync(folder: Path, store: MemvidVectorStore, record_manager: RecordManager) -> IndexingResult:
    """Bring the store in line with the folder: add new chunks, delete stale ones."""
    chunks = split_documents(load_path(folder), chunk_size=500, chunk_overlap=50)
    return index(chunks, record_manager, store, cleanup="full", source_id_key="source", key_encoder="sha256")


def main(workdir: str | Path | None = None, embedding: Embeddings | None = None) -> list[IndexingResult]:
    """Sync a folder, change it (add, edit, delete a file), sync again; print both results."""
    root = Path(workdir) if workdir is not None else Path(tempfile.mkdtemp())
    notes = root / "notes"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "qr.txt").write_text("QR codes store data in black and white modules.", encoding="utf-8")
    (notes / "film.md").write_text("# Film\n\nMicrofilm lasts for centuries.", encoding="utf-8")
    (notes / "tape.txt").write_text("Magnetic tape holds most of the world's archives.", encoding="utf-8")

    record_manager = SQLiteRecordManager("memvid/notes", root / "records.sqlite")
    record_manager.create_schema()
    results = []
    with MemvidVectorStore(root / "store", embedding or SentenceTransformerEmbeddings()) as store:
        results.append(sync(notes, store, record_manager))
        print(f"first sync:  {results[-1]}")

        (notes / "video.txt").write_text("Video frames can carry QR codes.", encoding="utf-8")  # add
        (notes / "qr.txt").write_text("QR codes were invented in 1994.", encoding="utf-8")  # change
        (notes / "tape.txt").unlink()  # delete
        results.append(sync(notes, store, record_manager))
        print(f"second sync: {results[-1]}")
        print(f"{len(store)} chunks in the store")
    return results


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
