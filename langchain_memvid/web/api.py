"""What the web page asks of a store, as plain data: the logic behind `lcmemvid serve`'s JSON API.

No web framework is imported here (`app.py` translates HTTP to these calls, and this module loads
without the `web` extra). Every argument arrives as the text of a query parameter and is checked
here, so a bad request becomes a `BadRequest` that says what was wrong (a 4xx), never a traceback.
Nothing here writes to the store.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_memvid.engine import Engine, InvalidArgument, InvalidRecord, MemvidError
from langchain_memvid.querying import MODES, available_modes, hit_dicts, parse_filter, search_with_mode

if TYPE_CHECKING:
    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "MODES",
    "BadRequest",
    "NotFound",
    "StoreView",
    "available_modes",
    "frame_url",
    "search_with_mode",
]

SCORES = {
    "cosine": "cosine similarity, higher is closer",
    "ip": "inner product, higher is closer",
    "l2": "Euclidean distance, lower is closer",
    "lexical": "word match (BM25), higher is better",
    "hybrid": "words and vector fused, higher is better",
}
K_MAX = 100  # hits per search
PAGE_MAX = 100  # records per browse page
QUERY_MAX_CHARS = 2000  # far beyond what the embedding model reads (it truncates)
ID_MAX_CHARS = 1024
SCALE_MAX = 8  # a robust frame is ~700 px a side: 8x is 5,600 px, ~30 MB of pixels
STRIP_SIDE = 2  # neighbouring frames shown on each side of a record's own frames
STRIP_MAX = 12  # frames in a strip at most (a record may span many frames)
PROBLEMS_MAX = 1000  # verify problems returned in full; the rest are counted


class BadRequest(ValueError):
    """A request the API refuses: `status` (400 unless said otherwise) and a message for the user."""

    status = 400

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class NotFound(BadRequest):
    """The record, segment or frame a request names is not in the store (404)."""

    status = 404


def frame_url(segment: str, frame: int) -> str:
    """The API address of a frame's PNG, from a segment as `locate` names it.

    >>> frame_url("segments/00000001-3f2a9c1e.mov", 2)
    '/api/frames/00000001-3f2a9c1e/2.png'
    """
    return f"/api/frames/{_segment_name(segment)}/{frame}.png"


class StoreView:
    """The store as the web page sees it: searches, records, frames, figures and a verify job.

    Thread-safe. One lock serialises this view's calls on the store: the engine is thread-safe by
    itself, but the browse listing and the segment table read the engine's catalog connection
    directly, and those reads must not interleave with the engine's own. `verify` runs on a
    second engine of its own, so the page stays usable while it runs.
    """

    def __init__(self, store: MemvidVectorStore, *, name: str | None = None) -> None:
        """Wrap an open store; `name` is what the page calls it (default: its folder's name)."""
        self.store = store
        path = store.path
        self.name = name or (
            path.resolve().name if isinstance(path, Path) else path.rstrip("/").rsplit("/", 1)[-1]
        )
        self._lock = threading.Lock()
        self._listing: tuple[int, list[tuple[str, str | None]]] | None = None  # (generation, rows)
        self._segments: tuple[int, dict[str, int]] | None = None  # (generation, {name: frames})
        self._verify = _VerifyJob()
        self._verify_lock = threading.Lock()

    # -- searching -------------------------------------------------------------------------

    def modes(self) -> list[str]:
        """The search modes this store offers."""
        return available_modes(self.store)

    def search(self, q: str | None, k: str | None, mode: str | None, filter: str | None) -> dict[str, Any]:
        """`/api/search`: the `k` best hits for `q` in `mode`, each with where it lives in the video."""
        query = _text(q, "q", QUERY_MAX_CHARS)
        count = _integer(k, "k", 1, K_MAX, default=4)
        mode = mode or "vector"
        flt = None
        if filter:
            try:
                flt = parse_filter(filter)
            except ValueError as e:
                raise BadRequest(f"filter: {e}") from e
        with self._lock, _translated():
            start = time.perf_counter()
            pairs = search_with_mode(self.store, mode, query, count, flt)
            hits = hit_dicts(self.store, [d for d, _ in pairs], [s for _, s in pairs])
            took = time.perf_counter() - start
        for hit in hits:
            _add_frame_url(hit)
        scores = self.store.metric if mode == "vector" else mode
        return {
            "query": query,
            "mode": mode,
            "k": count,
            "filter": flt,
            "scores": SCORES.get(scores, scores),
            "took_ms": round(took * 1000, 1),
            "hits": hits,
        }

    # -- reading ---------------------------------------------------------------------------

    def record(self, record_id: str) -> dict[str, Any]:
        """`/api/records/{id}`: one record, where it lives, and the strip of frames around it."""
        rid = _text(record_id, "id", ID_MAX_CHARS)
        with self._lock, _translated():
            docs = self.store.get_by_ids([rid])
            if not docs:
                raise NotFound(f"No record with id {rid!r} in this store.")
            (hit,) = hit_dicts(self.store, docs, None)
            segments = self._segment_frames()
        del hit["rank"]
        _add_frame_url(hit)
        place = hit["location"]
        if place is not None:
            name = _segment_name(place["segment"])
            total = segments.get(name, place["frame"] + place["frame_count"])
            first, last = place["frame"], place["frame"] + place["frame_count"] - 1
            lo = max(0, first - STRIP_SIDE)
            hi = min(total - 1, last + STRIP_SIDE, lo + STRIP_MAX - 1)
            hit["segment_frames"] = total
            hit["strip"] = [
                {"frame": n, "url": frame_url(name, n), "holds_record": first <= n <= last}
                for n in range(lo, hi + 1)
            ]
        return hit

    def records(self, offset: str | None, limit: str | None, source: str | None) -> dict[str, Any]:
        """`/api/records`: a page of records in storage order, optionally of one `source` only."""
        start = _integer(offset, "offset", 0, None, default=0)
        size = _integer(limit, "limit", 1, PAGE_MAX, default=20)
        wanted = _text(source, "source", ID_MAX_CHARS) if source else None
        with self._lock, _translated():
            rows = self._listing_rows()
            ids = [rid for rid, src in rows if wanted is None or src == wanted]
            page = ids[start : start + size]
            items = hit_dicts(self.store, self.store.get_by_ids(page), None) if page else []
        for n, item in enumerate(items):
            item["rank"] = start + n + 1
            _add_frame_url(item)
        return {"total": len(ids), "offset": start, "limit": size, "source": wanted, "records": items}

    def sources(self) -> dict[str, Any]:
        """`/api/sources`: each `source` in the store with its number of records, by name."""
        with self._lock, _translated():
            counts = Counter(src for _, src in self._listing_rows())
        unsourced = counts.pop(None, 0)
        return {
            "sources": [{"source": s, "records": n} for s, n in sorted(counts.items())],
            "unsourced": unsourced,
        }

    def frame_png(self, segment: str, frame: str, scale: str | None) -> bytes:
        """`/api/frames/{segment}/{frame}.png`: one video frame, as stored, as a PNG.

        `segment` must be one of the store's own segment names (with or without `.mov`): it is
        looked up in the catalog's list, never joined to a path.
        """
        import cv2

        name = _segment_name(_text(segment, "segment", 80))
        number = _integer(frame, "frame", 0, None)
        factor = _integer(scale, "scale", 1, SCALE_MAX, default=1)
        with self._lock, _translated():
            segments = self._segment_frames()
            if name not in segments:
                msg = f"No segment {segment!r} in this store; a record's location names its segment (/api/records/ID)."
                raise NotFound(msg)
            if number >= segments[name]:
                raise NotFound(f"Segment {name} has frames 0..{segments[name] - 1}; got {number}.")
            image = self.store.engine.frame_image(name, number)
        if factor > 1:
            image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_NEAREST)
        ok, png = cv2.imencode(".png", image)
        if not ok:  # pragma: no cover - OpenCV encodes any 8-bit grayscale image
            msg = f"Frame {number} of segment {name} could not be encoded as PNG."
            raise RuntimeError(msg)
        return png.tobytes()

    # -- the store as a whole --------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """`/api/stats`: the store's counts, sizes and settings, its versions and search modes."""
        with self._lock, _translated():
            stats = self.store.stats()
            catalog = self.store.engine.catalog
            versions = {"format": catalog.get_meta("format_version"), "commits": catalog.generation()}
        return {
            "store": self.name,
            **stats,
            "versions": {**versions, "library": _library_version()},
            "modes": self.modes(),
            "limits": {"k": K_MAX, "page": PAGE_MAX, "scale": SCALE_MAX},
        }

    def start_verify(self, cross_check: bool = True) -> dict[str, Any]:
        """`POST /api/verify`: start checking every frame and record (unless a check is running)."""
        with self._verify_lock:
            if self._verify.state != "running":
                with self._lock, _translated():
                    stats = self.store.stats()
                self._verify = _VerifyJob(
                    state="running",
                    cross_check=cross_check,
                    started=time.monotonic(),
                    frames=int(stats["frames"]),
                    records=int(stats["records"]),
                )
                job = self._verify
                threading.Thread(
                    target=self._run_verify, args=(job,), name="memvid-verify", daemon=True
                ).start()
            return self._verify.status()

    def verify_status(self) -> dict[str, Any]:
        """`GET /api/verify`: the state of the last check: idle, running, done or failed."""
        with self._verify_lock:
            return self._verify.status()

    def _run_verify(self, job: _VerifyJob) -> None:
        engine = self.store.engine
        try:
            # Its own engine (catalog connection, readers, lock): searches go on meanwhile.
            with Engine(
                engine.location,
                create=False,
                encoder=engine.encoder,
                decoder=engine.decoder,
                storage_options=engine.storage_options,
                version=engine.version if engine.read_only else None,
            ) as checker:
                report = checker.verify(cross_check=job.cross_check)
        except Exception as e:  # reported on the page; the server goes on
            with self._verify_lock:
                job.state, job.error = "failed", f"{type(e).__name__}: {e}"
                job.finished = time.monotonic()
            return
        problems = [dataclasses.asdict(p) for p in report.problems]
        with self._verify_lock:
            job.result = {
                **dataclasses.asdict(report),
                "ok": report.ok,
                "problems": problems[:PROBLEMS_MAX],
                "problems_total": len(problems),
            }
            job.state, job.finished = "done", time.monotonic()

    # -- helpers (called under the lock) ---------------------------------------------------

    def _listing_rows(self) -> list[tuple[str, str | None]]:
        """(id, source) of every live record in storage order, cached until the next commit."""
        catalog = self.store.engine.catalog
        generation = catalog.generation()
        if self._listing is None or self._listing[0] != generation:
            rows = [(row.id, _source_of(row.metadata)) for row in catalog.iter_records()]
            self._listing = (generation, rows)
        return self._listing[1]

    def _segment_frames(self) -> dict[str, int]:
        """{segment name: frame count} of the store's segments, as the catalog lists them."""
        catalog = self.store.engine.catalog
        generation = catalog.generation()
        if self._segments is None or self._segments[0] != generation:
            self._segments = (generation, {s.name: s.frame_count for s in catalog.segments()})
        return self._segments[1]


@dataclasses.dataclass
class _VerifyJob:
    state: str = "idle"  # idle, running, done, failed
    cross_check: bool = True
    started: float | None = None
    finished: float | None = None
    frames: int = 0
    records: int = 0
    result: dict[str, Any] | None = None
    error: str | None = None

    def status(self) -> dict[str, Any]:
        end = self.finished if self.finished is not None else time.monotonic()
        elapsed = None if self.started is None else round(end - self.started, 2)
        return {
            "state": self.state,
            "cross_check": self.cross_check,
            "elapsed_s": elapsed,
            "frames": self.frames,
            "records": self.records,
            "result": self.result,
            "error": self.error,
        }


@contextmanager
def _translated() -> Iterator[None]:
    """The store's own errors as API errors: a refused argument is 400, a missing lexicon 409.

    Anything else the store raises (a damaged or missing file) is left to the app, which answers
    500 with the message and no traceback.
    """
    try:
        yield
    except (InvalidArgument, InvalidRecord) as e:
        raise BadRequest(str(e)) from e
    except MemvidError as e:
        if isinstance(e, LookupError):  # LexiconMissing: the store must be prepared first
            raise BadRequest(str(e), status=409) from e
        raise


def _text(value: str | None, name: str, max_chars: int) -> str:
    if value is None or not value.strip():
        msg = f"{name} is required and must not be empty."
        raise BadRequest(msg)
    if len(value) > max_chars:
        msg = f"{name} is {len(value):,} characters long; the most is {max_chars:,}."
        raise BadRequest(msg)
    return value


def _integer(value: str | None, name: str, low: int, high: int | None, *, default: int | None = None) -> int:
    """A query parameter as an int in [low, high].

    >>> _integer("7", "k", 1, 100)
    7
    >>> _integer("0", "k", 1, 100)
    Traceback (most recent call last):
    ...
    langchain_memvid.web.api.BadRequest: k must be an integer from 1 to 100; got '0'.
    """
    if value is None or value == "":
        if default is None:
            raise BadRequest(f"{name} is required.")
        return default
    span = f"from {low} to {high}" if high is not None else f"of at least {low}"
    digits = value.isascii() and value.isdigit() and len(value) <= 12
    number = int(value) if digits else -1
    if number < low or (high is not None and number > high):
        raise BadRequest(f"{name} must be an integer {span}; got {value!r}.")
    return number


def _segment_name(segment: str) -> str:
    """A segment's name as the catalog keeps it: `locate`'s `segments/NAME.mov` without the wrapping.

    >>> _segment_name("segments/00000001-3f2a9c1e.mov")
    '00000001-3f2a9c1e'
    """
    return segment.removeprefix("segments/").removesuffix(".mov")


def _source_of(metadata: dict[str, Any]) -> str | None:
    source = metadata.get("source")
    if source is None:
        return None
    return source if isinstance(source, str) else str(source)


def _add_frame_url(hit: dict[str, Any]) -> None:
    place = hit.get("location")
    hit["frame_url"] = frame_url(place["segment"], place["frame"]) if place else None


def _library_version() -> str | None:
    try:
        return importlib.metadata.version("langchain-qrvideo")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return None
