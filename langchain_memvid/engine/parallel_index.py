"""IVF indexes built in parallel: a job per segment for any worker, one merge and commit here.

``Engine.index_build`` holds the write lock, trains the index once on a sample of the store's
vectors (as ``build_index`` does) and hands out one ``IndexPartJob`` per live records segment.
Anything that sees the store's folder runs ``fill_index_part`` on a job (a Ray task, a process
pool, this process): it reads that segment's vector file, checks it against the catalog's size
and SHA-256, and writes the slice's inverted lists into ``tmp/``. ``IndexBuild.commit`` merges the
parts list by list into one snapshot (``search/ivf_parts.py``) and records it in one commit, as
``build_index`` would. The store then serves the same index, and no process held every vector:
a worker holds one segment's, the merge one list's codes.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from langchain_memvid.engine import indexing
from langchain_memvid.engine.errors import CorruptData, InvalidArgument
from langchain_memvid.engine.search.index import new_main
from langchain_memvid.engine.search.index_spec import IndexSpec
from langchain_memvid.engine.search.ivf_parts import IndexPart, fill_part, merge_parts, template_of
from langchain_memvid.engine.search.vector_files import read_file_ids
from langchain_memvid.engine.storage.reader import load_vector_file


@dataclass(frozen=True)
class IndexPartJob:
    """One segment's share of an index build: which vectors to add, and where to write them.

    Picklable and self-contained: a worker needs the store's folder, not its catalog.
    """

    key: int  # the segment's sequence number
    vector_file: str  # absolute path of the segment's vector file
    size: int  # the file's size and SHA-256, as the catalog records them
    sha256: str
    dim: int
    live_ids: np.ndarray = field(repr=False)  # vector ids of the segment's live records
    out: str = ""  # the part file to write, in the store's tmp/


def fill_index_part(job: IndexPartJob, template: bytes) -> IndexPart:
    """Add one segment's live vectors to a copy of the trained ``template``; write the part.

    Raises:
        SegmentNotFound, ChecksumMismatch: the vector file is missing, or not the one the
            catalog records.
        CorruptData: the file lacks some of the job's live vector ids.
    """
    path = Path(job.vector_file)
    ids, vectors = load_vector_file(path, job.size, job.sha256, job.dim)
    keep = np.isin(ids, job.live_ids)
    if int(keep.sum()) != len(job.live_ids):
        msg = f"Vector file {path.name} lacks vectors of live records; run `verify`."
        raise CorruptData(msg)
    return fill_part(template, ids[keep], vectors[keep], Path(job.out), job.key)


class IndexBuild:
    """One parallel build of a store's IVF index, for ``Engine.index_build`` (see there)."""

    def __init__(
        self, host: indexing.IndexHost, spec: IndexSpec, apply: Callable[[indexing.Outcome], None]
    ) -> None:
        settings = host.settings()
        if settings.get("dim") is None:
            msg = "The store has no vectors yet; add some before building its index."
            raise InvalidArgument(msg)
        dim, metric = int(settings["dim"]), str(settings["metric"])
        self._host, self._spec, self._apply, self.dim = host, spec, apply, dim
        self._live = np.sort(np.asarray(host.catalog.live_vector_ids(), dtype=np.int64))
        n = len(self._live)
        fresh, factory = spec.new_index(dim, metric, max(n, 1))
        ivf = faiss.try_extract_index_ivf(fresh)
        if ivf is None:
            msg = (
                f"Only IVF indexes are built in parallel; {factory} is built by build_index() in one process."
            )
            raise InvalidArgument(msg)
        if n == 0:
            msg = "The store holds no live records; there is nothing to index."
            raise InvalidArgument(msg)
        sample = indexing.sample_vectors(host, dim, self._live, spec.train_size(n, int(ivf.nlist)))
        main, self.factory, sample_size = new_main(spec, dim, metric, n, sample)
        self.template = template_of(main)
        self.trained = (n, sample_size)
        self._jobs: dict[int, IndexPartJob] = {}
        self._token = secrets.token_hex(4)
        self.committed = False

    def jobs(self) -> list[IndexPartJob]:
        """One job per live records segment holding live vectors (reads each file's id list only)."""
        host = self._host
        out = []
        for seg in indexing.live_segments(host):
            path = host.reader.segment_file(seg.index_file)
            ids = read_file_ids(path, self.dim)
            job = IndexPartJob(
                key=seg.seq,
                vector_file=str(path.resolve()),
                size=seg.index_bytes,
                sha256=seg.index_sha256,
                dim=self.dim,
                live_ids=ids[np.isin(ids, self._live)],
                out=str((host.path / "tmp" / f"ivfpart-{seg.seq:08d}-{self._token}.part").resolve()),
            )
            if len(job.live_ids):
                self._jobs[job.key] = job
                out.append(job)
        return out

    def commit(self, parts: Sequence[IndexPart]) -> None:
        """Merge the filled parts into the store's index snapshot and serve it, in one commit.

        Raises:
            InvalidArgument: the parts are not exactly one per job, or do not hold their job's count.
        """
        by_key = {p.key: p for p in parts}
        if len(by_key) != len(parts) or set(by_key) != set(self._jobs):
            msg = "An index build commits exactly one filled part per job it handed out."
            raise InvalidArgument(msg)
        for key, job in self._jobs.items():
            part = by_key[key]
            if Path(part.path) != Path(job.out) or part.count != len(job.live_ids):
                msg = f"The part for segment {key} is not what its job asked for (file or vector count)."
                raise InvalidArgument(msg)
        if sum(len(job.live_ids) for job in self._jobs.values()) != len(self._live):
            msg = "The jobs do not cover every live vector; call jobs() once before committing."
            raise InvalidArgument(msg)
        missing = [job.out for job in self._jobs.values() if not Path(job.out).is_file()]
        if missing:
            msg = f"Part file {missing[0]} is missing: workers must see the store folder at the same path as this process."
            raise InvalidArgument(msg)
        name, tmp = indexing.snapshot_name(self._host)
        try:
            total = merge_parts(self.template, [Path(self._jobs[k].out) for k in sorted(self._jobs)], tmp)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        outcome = indexing.publish_snapshot(
            self._host, tmp, name, self._spec, total, self.factory, self.trained
        )
        self.committed = True
        self._apply(indexing.Outcome(outcome.generation, reload=True))

    def discard(self) -> None:
        """Delete the part files (the write lock is still held: no one else writes in ``tmp/``)."""
        for job in self._jobs.values():
            Path(job.out).unlink(missing_ok=True)
        self._jobs.clear()
