"""``verify``: read everything back and compare it with what the catalog promises.

Checks, per segment: both files exist and match their size and SHA-256; every frame's packet
matches its CRC-32, decodes to a QR payload whose own CRC-32 holds, and (cross-check) decodes to the
same bytes with a second, independent QR decoder; the vector file holds every live vector. Per
record: its pack decompresses and holds the record at the catalog's slot with the catalog's
metadata. Catalog: SQLite's integrity check, and every row against its CRC-32. Problems are
collected, not raised, so one report lists all the damage. Files are read only if they are regular
files inside the store (no symlinks, FIFOs or devices).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from langchain_memvid.engine.catalog.catalog import Catalog, RecordRow, SegmentRow
from langchain_memvid.engine.codec import qr
from langchain_memvid.engine.codec.frames import parse_frame
from langchain_memvid.engine.errors import MemvidError, UnsupportedFormat
from langchain_memvid.engine.search.lexicon import lexicon_problems
from langchain_memvid.engine.storage.reader import SegmentReader


@dataclass
class Problem:
    """One thing ``verify`` found wrong."""

    file: str
    message: str
    record_id: str | None = None
    frame: int | None = None
    # What fixes it: "rebuild" (damage), "upgrade" (written by a newer format: rebuild would not
    # understand it either) or "quarantine" (a file the catalog does not know).
    action: str = "rebuild"


@dataclass
class VerifyReport:
    """What ``verify`` checked and what it found."""

    records_checked: int = 0
    frames_checked: int = 0
    frames_cross_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def verify_store(
    catalog: Catalog,
    reader: SegmentReader,
    *,
    dim: int | None,
    vectors_in_index: int,
    unknown_files: list[str],
    cross_check: bool = True,
) -> VerifyReport:
    """Check every byte the catalog refers to; see the module docstring.

    ``reader.segments`` are the live segments (the caller has caught up with the catalog);
    ``vectors_in_index`` is what the in-memory index holds, ``unknown_files`` what the store
    folder holds that the catalog does not name.
    """
    report = VerifyReport()
    # The cross-check uses any other available decoder: zbar for a zxing store, zxing for a zbar one.
    others = [d for d in qr.available_decoders() if d != reader.decoder]
    second = others[0] if cross_check and others else None
    report.problems += [
        Problem(Catalog.FILE, f"SQLite integrity check: {p}") for p in catalog.integrity_problems()
    ]
    rows_by_seq: dict[int, list[RecordRow]] = defaultdict(list)
    for rid, row, error in catalog.check_records():  # one bad row is reported, the rest checked
        if row is None:
            report.problems.append(Problem(Catalog.FILE, f"record unreadable: {error}", rid))
            continue
        rows_by_seq[row.seq].append(row)
    for seq in sorted(set(rows_by_seq) - set(reader.segments)):
        report.problems += [
            Problem(Catalog.FILE, f"record points at segment {seq}, which the catalog does not list", r.id)
            for r in rows_by_seq[seq]
        ]
    files: dict[int, np.ndarray] = {}  # seq -> ids in its vector file
    for seg in reader.segments.values():
        try:
            size, digest = reader.video_digest(seg)
        except MemvidError as e:
            report.problems.append(Problem(seg.video_file, f"video file unreadable: {e}"))
            report.problems += [
                Problem(seg.video_file, f"record unreadable: {e}", r.id) for r in rows_by_seq[seg.seq]
            ]
            continue
        if size != seg.video_bytes or digest != seg.video_sha256:
            report.problems.append(Problem(seg.video_file, "video file fails its size/SHA-256 check"))
        table = catalog.frames_problem(seg.seq)
        if table is not None:
            report.problems.append(Problem(Catalog.FILE, table))
        try:
            frames = catalog.frames(seg.seq, 0, seg.frame_count)
        except MemvidError as e:
            report.problems.append(Problem(Catalog.FILE, f"frame table of {seg.video_file}: {e}"))
            frames = []
        for n, (loc, crc) in enumerate(frames):
            report.frames_checked += 1
            try:
                payload = reader.frame_payload(seg, n, loc, crc)
                parse_frame(payload)
                if second is not None:
                    other = reader.frame_payload(seg, n, loc, crc, decoder=second)
                    report.frames_cross_checked += 1
                    if other != payload:
                        report.problems.append(
                            Problem(
                                seg.video_file, f"decoders disagree ({reader.decoder} vs {second})", frame=n
                            )
                        )
            except MemvidError as e:
                report.problems.append(Problem(seg.video_file, str(e), frame=n, action=_action(e)))
        held = _verify_vectors(reader, dim, seg, rows_by_seq[seg.seq], report)
        if held is not None and seg.kind == "records":
            files[seg.seq] = held
        reader.clear_packs()
        texts: dict[int, str] = {}  # vector id -> text, for the lexicon check
        for row in rows_by_seq[seg.seq]:
            report.records_checked += 1
            try:
                record = reader.read_rows([row])[row.id]
                texts[row.vector_id] = record.text
                stored = json.dumps(record.metadata, sort_keys=True)
                if stored != json.dumps(row.metadata, sort_keys=True):
                    report.problems.append(
                        Problem(
                            seg.video_file,
                            "metadata in the video differs from the catalog",
                            row.id,
                            row.first_frame,
                        )
                    )
                if len(record.text.encode("utf-8")) != row.text_bytes:
                    report.problems.append(
                        Problem(
                            seg.video_file, "text length differs from the catalog", row.id, row.first_frame
                        )
                    )
            except MemvidError as e:
                report.problems.append(
                    Problem(seg.video_file, f"record unreadable: {e}", row.id, row.first_frame, _action(e))
                )
        if seg.kind == "records":
            report.problems += [Problem(Catalog.FILE, p) for p in _lexicon_problems(catalog, seg.seq, texts)]
    report.problems += [
        Problem(
            name,
            "not in the catalog: kept untouched (it may be the only copy of records the catalog "
            "lost). `lcmemvid quarantine STORE` moves such files to quarantine/; `rebuild` replays "
            "what the catalog committed.",
            action="quarantine",
        )
        for name in unknown_files
    ]
    if len(files) == sum(s.kind == "records" for s in reader.segments.values()):
        report.problems += [Problem(Catalog.FILE, p) for p in catalog.dead_list_problems(files)]
    live = catalog.count()
    if live != vectors_in_index:
        report.problems.append(
            Problem(
                "(index)", f"the in-memory index holds {vectors_in_index} vectors for {live} live records"
            )
        )
    return report


def _lexicon_problems(catalog: Catalog, seq: int, texts: dict[int, str]) -> list[str]:
    """The lexicon of segment ``seq`` against its live records' texts; none kept is no problem."""
    try:
        blob = catalog.lexicons([seq]).get(seq)
    except MemvidError as e:
        return [str(e)]
    return [] if blob is None else lexicon_problems(seq, blob, texts)


def _action(e: MemvidError) -> str:
    """A newer format's data is not damage: the fix is to upgrade, never to rebuild without it."""
    return "upgrade" if isinstance(e, UnsupportedFormat) else "rebuild"


def _verify_vectors(
    reader: SegmentReader, dim: int | None, seg: SegmentRow, rows: list[RecordRow], report: VerifyReport
) -> np.ndarray | None:
    """The segment's vector file passes the same checks a reader applies, and holds every live id.

    Returns the ids it holds (None when it cannot be read).
    """
    if dim is None:
        return None
    try:
        ids, _ = reader.load_vectors(seg, int(dim))
    except MemvidError as e:
        report.problems.append(Problem(seg.index_file, str(e)))
        return None
    held = set(ids.tolist())
    report.problems += [
        Problem(seg.index_file, "vector missing from the segment's vector file", r.id)
        for r in rows
        if r.vector_id not in held
    ]
    return ids


__all__ = ["Problem", "VerifyReport", "verify_store"]
