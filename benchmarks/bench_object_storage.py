"""Versioned stores in object storage (format 3): requests, latency against a local folder, and
local stores unchanged, in one run against a local S3 (moto) and a local folder side by side.

Records: ``bench_storage``'s corpus chunks (~500 characters of CPython's ``pydoc_data/topics.py``,
cycled) and deterministic fake vectors (dim 384, int8 vector files), ``SEG`` (20) records per
segment, so a store of N segments holds 20 N records. Request counts are the engine's own
(``ObjectStore.requests``, by kind); the server's log (``tests/s3_server.py``) is shown beside
them where it differs. Printed:

1. Opening stores of 1, 10 and 100 segments written in one commit, and of 100 segments written in
   100 commits (a chain of catalog deltas): requests and bytes downloaded with an empty
   ``cache_dir`` (cold), then again with the same ``cache_dir`` (warm).
2. Ranged GETs per record: 50 single-record ``get`` calls of random records on a fresh handle of
   the 100-segment store whose segment dictionaries were read once before.
3. Latency, medians of ``--reps`` repetitions, S3 and a format-2 folder with the same records
   taking turns: one record's ``get`` from S3 less one round trip (the median of a 16-byte ranged
   GET of a segment video) over the same ``get`` on the folder; ``search`` (k=4, texts read back)
   and ``search_ids`` (no texts) on S3 with a warm cache over the folder, and ``search`` on a
   handle with ``cache_videos=True`` (videos downloaded into the cache on first read). Twice: against
   ``tests/s3_server.py`` (moto in this process, one request at a time, so its CPU and GIL are
   shared with the client) and against moto in its own process with ``DELAY`` (20 ms) added to
   every request, a network's latency under which requests sent together overlap. Decoded packs
   are dropped before each read, so every read goes to the video.
4. One ``add`` of one segment's records to the 100-segment store: every request, the PUTs by
   kind, and the bytes uploaded over the new segment files' bytes.
5. Local stores unchanged: add, get and search on a plain local folder, the working tree against
   ``--base`` (a ``git worktree`` at /tmp/lcmemvid-base, removed at the end), each in a fresh
   subprocess with ``PYTHONPATH`` pointing at its tree, taking turns (A B A B ...); the median
   of each side's per-process medians, new / base.

    python benchmarks/bench_object_storage.py            # ~2 minutes on 2 cores

Writes ``benchmarks/results/object_storage.json``: the figures, and the printed report as lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).parent))

from bench_storage import corpus_chunks, fake_vectors  # noqa: E402

from langchain_memvid.engine import Engine, Record  # noqa: E402
from langchain_memvid.engine.storage.objects import KINDS, ObjectNotFound, ObjectStore  # noqa: E402
from tests.s3_server import BUCKET, KEY, REGION, SECRET, MotoS3  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
DIM, SEG, K = 384, 20, 4
DELAY = 0.020  # seconds added to each request by the second S3 server (part 3)
SIZES = (1, 10, 100)  # segments per store
# (name, segments, commits): the stores opened in part 1; the last adds one segment per commit
STORES = [(f"s{n}", n, 1) for n in SIZES] + [("s100x100", 100, 100)]
BASE_TREE = Path("/tmp/lcmemvid-base")

LINES: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    LINES.append(text)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    with open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    return {
        "tree": head.stdout.strip() + (" + uncommitted changes" if dirty.stdout.strip() else ""),
        "cpu": cpu,
        "cores": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }


# -- what went over the wire ---------------------------------------------------------------------


class Tally:
    """Bytes and names of what ObjectStore read and wrote, by kind (patched in at class level)."""

    def __init__(self) -> None:
        self.log: list[tuple[str, str, int]] = []  # (kind, name, bytes)

    def install(self) -> None:
        read, read_range = ObjectStore.read, ObjectStore.read_range
        put, put_file, put_if_absent = ObjectStore.put, ObjectStore.put_file, ObjectStore.put_if_absent
        log = self.log

        def w_read(store: ObjectStore, name: str) -> bytes:
            try:
                data = read(store, name)
            except ObjectNotFound:
                log.append(("GET", name, -1))  # a miss (404)
                raise
            log.append(("GET", name, len(data)))
            return data

        def w_read_range(store: ObjectStore, name: str, start: int, end: int) -> bytes:
            data = read_range(store, name, start, end)
            log.append(("GET_RANGE", name, len(data)))
            return data

        def w_put(store: ObjectStore, name: str, data: bytes) -> None:
            put(store, name, data)
            log.append(("PUT", name, len(data)))

        def w_put_file(store: ObjectStore, name: str, local_path: Any) -> None:
            size = os.path.getsize(local_path)
            put_file(store, name, local_path)
            log.append(("PUT", name, size))

        def w_put_if_absent(store: ObjectStore, name: str, data: bytes) -> bool:
            created = put_if_absent(store, name, data)
            log.append(("PUT", name, len(data)))
            return created

        ObjectStore.read, ObjectStore.read_range = w_read, w_read_range  # type: ignore[method-assign]
        ObjectStore.put, ObjectStore.put_file = w_put, w_put_file  # type: ignore[method-assign]
        ObjectStore.put_if_absent = w_put_if_absent  # type: ignore[method-assign]

    def mark(self) -> int:
        return len(self.log)

    def since(self, mark: int) -> list[tuple[str, str, int]]:
        return self.log[mark:]


def wire(srv: MotoS3) -> Counter[str]:
    """The server's log, by the engine's kinds (multipart parts and POSTs under their own)."""
    out: Counter[str] = Counter()
    for r in srv.requests:
        if r.method == "GET":
            kind = (
                "GET_RANGE"
                if r.range
                else ("LIST" if "list-type" in r.query or r.path.rstrip("/") == f"/{BUCKET}" else "GET")
            )
        elif r.method == "PUT" and "partNumber" in r.query:
            kind = "PUT_PART"
        else:
            kind = r.method
        out[kind] += 1
    return out


def kinds_row(label: str, counted: dict[str, int], on_wire: Counter[str], extra: str = "") -> str:
    cells = []
    for kind in KINDS:
        c, w = counted.get(kind, 0), on_wire.get(kind, 0)
        cells.append(f"{c:>11}" if c == w else f"{f'{c} (w{w})':>11}")
    others = {k: v for k, v in on_wire.items() if k not in KINDS}
    more = " ".join(f"{k}={v}" for k, v in sorted(others.items()))
    return f"  {label:<34}{''.join(cells)}  {extra}{(' wire: ' + more) if more else ''}"


def kinds_header() -> str:
    return f"  {'':<34}{''.join(f'{k:>11}' for k in KINDS)}"


# -- data ------------------------------------------------------------------------------------------


def make_records(start: int, n: int, chunks: list[str]) -> list[Record]:
    return [
        Record(f"r{i}", chunks[i % len(chunks)], {"source": "topics.py", "chunk_index": i})
        for i in range(start, start + n)
    ]


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


@contextmanager
def timer(out: list[float]) -> Iterator[None]:
    t0 = time.perf_counter()
    yield
    out.append(time.perf_counter() - t0)


class Waits:
    """Time a handle spends waiting on its own requests: the union of their (start, end) spans.

    Installed on one ``ObjectStore`` instance (shadowing ``read``/``read_range``), so a call's
    wall time less ``spent()`` is what the client did besides waiting, requests sent together
    counted once.
    """

    def __init__(self, store: ObjectStore) -> None:
        self.spans: list[tuple[float, float]] = []
        self.lock = threading.Lock()
        for method in ("read", "read_range"):
            setattr(store, method, self._wrap(getattr(store, method)))

    def _wrap(self, call: Callable[..., bytes]) -> Callable[..., bytes]:
        def timed(*args: Any) -> bytes:
            t0 = time.perf_counter()
            try:
                return call(*args)
            finally:
                with self.lock:
                    self.spans.append((t0, time.perf_counter()))

        return timed

    def reset(self) -> None:
        with self.lock:
            self.spans.clear()

    def spent(self) -> float:
        with self.lock:
            spans = sorted(self.spans)
        total, end = 0.0, float("-inf")
        for a, b in spans:
            if b > end:
                total += b - max(a, end)
                end = b
        return total


def warm_dictionaries(engine: Engine, n_segments: int) -> None:
    """Read one record of every segment: each segment's dictionary frames are then in memory."""
    for s in range(n_segments):
        engine.get([f"r{s * SEG}"])


def build_s3(
    url: str, opts: dict[str, Any], cache: Path, records: list[Record], vectors: np.ndarray, commits: int
) -> None:
    """A store of ``records`` at ``url``, written in ``commits`` adds of equal size."""
    step = len(records) // commits
    with Engine(url, dim=DIM, segment_records=SEG, storage_options=opts, cache_dir=cache) as engine:
        for start in range(0, len(records), step):
            engine.add(records[start : start + step], vectors[start : start + step])


# -- 1. requests -----------------------------------------------------------------------------------


def bench_requests_open(
    srv: MotoS3, tally: Tally, opts: dict[str, Any], tmp: Path, local: Path
) -> dict[str, Any]:
    say("\n1. Opening a store (Engine(url, create=False)): requests by kind, (wN) = N on the wire where")
    say("   the server's log differs; cold = empty cache_dir, warm = second open with the same cache_dir")
    say(kinds_header())
    out: dict[str, Any] = {}
    gets: dict[str, str] = {}
    for name, segs, commits in STORES:
        cache = tmp / f"cache-{name}"
        for phase in ("cold", "warm"):
            srv.reset_log()
            mark = tally.mark()
            t0 = time.perf_counter()
            engine = Engine(f"s3://{BUCKET}/{name}", storage_options=opts, cache_dir=cache, create=False)
            ms = (time.perf_counter() - t0) * 1000
            counted = engine._versions.objects.requests  # type: ignore[union-attr]
            version = engine.version
            engine.close()
            got = wire(srv)
            down = sum(max(b, 0) for k, _, b in tally.since(mark) if k in ("GET", "GET_RANGE"))
            label = f"{segs} segment{'s' if segs > 1 else ''}, {commits} commit{'s' if commits > 1 else ''}, {phase}"
            say(kinds_row(label, counted, got, f"{down:>9,} B down {ms:6.0f} ms"))
            out[f"{name}_{phase}"] = {
                "segments": segs,
                "commits": commits,
                "version": version,
                "requests": counted,
                "wire": dict(got),
                "bytes_down": down,
                "open_ms": round(ms, 1),
            }
            if segs == SIZES[-1]:
                named = Counter(
                    ("GET " if k == "GET" else "GET_RANGE ") + describe(n, b) for k, n, b in tally.since(mark)
                )
                gets[f"{name} (version {version}), {phase}"] = ", ".join(
                    f"{c} x {what}" if c > 1 else what for what, c in named.items()
                )
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        Engine(local, create=False).close()
        times.append(time.perf_counter() - t0)
    out["local_open_ms"] = round(median_ms(times), 1)
    say(
        f"  {'local folder, 100 segments':<34}no requests; opening takes {out['local_open_ms']:.0f} ms (median of 3)"
    )
    say("   what the opens of 100 segments asked for:")
    for label, text in gets.items():
        say(f"    {label}: {text}")
    return out


def describe(name: str, size: int) -> str:
    """An object's name for the report: kinds of names, and misses."""
    if name.startswith("segments/"):
        name = "segments/*." + name.rsplit(".", 1)[-1]
    elif name.startswith("catalog/delta-"):
        name = "catalog delta"
    elif name.startswith("catalog/"):
        name = "catalog checkpoint"
    return f"{name} (miss)" if size < 0 else name


def open_largest(opts: dict[str, Any], tmp: Path) -> tuple[Engine, ObjectStore]:
    """The largest store of section 1 on its own cache (warm from section 1), and its request counts."""
    segs = SIZES[-1]
    engine = Engine(
        f"s3://{BUCKET}/s{segs}", storage_options=opts, cache_dir=tmp / f"cache-s{segs}", create=False
    )
    return engine, engine._versions.objects  # type: ignore[union-attr]


def bench_requests_get(srv: MotoS3, opts: dict[str, Any], tmp: Path, n_gets: int) -> dict[str, Any]:
    segs = SIZES[-1]
    engine, objects = open_largest(opts, tmp)
    try:
        objects.reset_requests()
        srv.reset_log()
        warm_dictionaries(engine, segs)
        warm = objects.requests["GET_RANGE"]
        objects.reset_requests()
        srv.reset_log()
        ids = random.Random(1).sample([f"r{i}" for i in range(segs * SEG)], n_gets)
        for rid in ids:
            engine.reader.clear_packs()
            assert len(engine.get([rid])) == 1
        counted = objects.requests
        got = wire(srv)
    finally:
        engine.close()
    per = counted["GET_RANGE"] / n_gets
    say(f"\n2. Reading records: {n_gets} single-record get() of random records, fresh handle, 100 segments")
    say(
        f"   after one record of each segment was read once (that warm-up: {warm} ranged GETs for {segs} first reads,"
    )
    say("   each with the segment's dictionary frames); decoded packs dropped before each get")
    say(kinds_header())
    say(kinds_row(f"{n_gets} gets", counted, got))
    say(
        f"    => {per:.2f} ranged GET per record ({counted['GET']} GETs: the version check, at most one per second)"
    )
    return {
        "gets": n_gets,
        "requests": counted,
        "wire": dict(got),
        "get_range_per_record": per,
        "warmup_get_range": warm,
    }


def put_kind(name: str) -> str:
    if name.startswith("segments/"):
        return "segment " + name.rsplit(".", 1)[-1]
    if name.startswith("catalog/delta-"):
        return "catalog delta"
    if name.startswith("catalog/"):
        return "catalog checkpoint"
    if name.startswith("_versions/"):
        return "version object"
    if name == "_latest":
        return "_latest"
    return name.split("/", 1)[0]


def bench_requests_add(
    srv: MotoS3, tally: Tally, opts: dict[str, Any], tmp: Path, chunks: list[str]
) -> dict[str, Any]:
    segs = SIZES[-1]
    n0 = segs * SEG
    engine, objects = open_largest(opts, tmp)
    try:
        objects.reset_requests()
        srv.reset_log()
        mark = tally.mark()
        t0 = time.perf_counter()
        engine.add(make_records(n0, SEG, chunks), fake_vectors(SEG, DIM, seed=99))
        ms = (time.perf_counter() - t0) * 1000
        counted = objects.requests
        got = wire(srv)
        puts = [(name, b) for k, name, b in tally.since(mark) if k == "PUT"]
        named = Counter(describe(name, b) for k, name, b in tally.since(mark) if k == "GET")
        version = engine.version
    finally:
        engine.close()
    by_kind: dict[str, list[int]] = {}
    for name, b in puts:
        by_kind.setdefault(put_kind(name), []).append(b)
    seg_bytes = sum(b for name, b in puts if name.startswith("segments/"))
    total = sum(b for _, b in puts)
    say(
        f"\n4. One add() of {SEG} records (one new segment) to the {segs}-segment store ({n0} records), now version {version}"
    )
    say(kinds_header())
    say(kinds_row("add", counted, got, f"{ms:.0f} ms"))
    say(f"    GETs: {', '.join(named) or 'none'}")
    say("    PUTs by kind:")
    for kind, sizes in sorted(by_kind.items()):
        say(f"      {kind:<20} {len(sizes)} PUT{'s' if len(sizes) > 1 else ' '}  {sum(sizes):>9,} B")
    say(
        f"    bytes uploaded / bytes of the new segment files = {total:,} / {seg_bytes:,} = {total / seg_bytes:.3f}"
    )
    return {
        "requests": counted,
        "wire": dict(got),
        "puts": {k: {"count": len(v), "bytes": sum(v)} for k, v in by_kind.items()},
        "bytes_uploaded": total,
        "segment_bytes": seg_bytes,
        "uploaded_over_segment_bytes": total / seg_bytes,
        "add_ms": round(ms, 1),
    }


# -- 2. latency ------------------------------------------------------------------------------------


def bench_latency(
    url: str, opts: dict[str, Any], cache: Path, local: Path, reps: int, server: str
) -> dict[str, Any]:
    segs = SIZES[-1]
    remote = Engine(url, storage_options=opts, cache_dir=cache, create=False)
    near = Engine(local, create=False)
    # cache_videos: each segment's first read downloads its video into the cache; then local reads
    kept = Engine(url, storage_options=opts, cache_dir=cache, create=False, cache_videos=True)
    objects = remote._versions.objects  # type: ignore[union-attr]
    try:
        warm_dictionaries(remote, segs)
        warm_dictionaries(near, segs)
        warm_dictionaries(kept, segs)
        s_kept: list[float] = []
        videos = sorted(s.video_file for s in remote.reader.segments.values())
        ids = random.Random(2).sample([f"r{i}" for i in range(segs * SEG)], reps)
        t_remote: list[float] = []
        t_local: list[float] = []
        t_rtt: list[float] = []

        waits = Waits(objects)
        x_remote: list[float] = []  # wall time less the time waiting on requests

        def get_remote(rid: str) -> None:
            remote.reader.clear_packs()
            waits.reset()
            with timer(t_remote):
                remote.get([rid])
            x_remote.append(t_remote[-1] - waits.spent())

        def get_local(rid: str) -> None:
            near.reader.clear_packs()
            with timer(t_local):
                near.get([rid])

        def rtt(rid: str) -> None:
            name = f"segments/{videos[int(rid[1:]) // SEG]}"
            with timer(t_rtt):
                objects.read_range(name, 0, 16)

        steps: list[Callable[[str], None]] = [rtt, get_remote, get_local]
        for i, rid in enumerate(ids):
            for step in steps if i % 2 == 0 else steps[::-1]:
                step(rid)
        read_remote, read_local, round_trip = median_ms(t_remote), median_ms(t_local), median_ms(t_rtt)

        queries = fake_vectors(reps, DIM, seed=7)
        for q in queries[:5]:  # warm-up, untimed
            remote.search(q, K)
            near.search(q, K)
        s_remote: list[float] = []
        s_local: list[float] = []
        i_remote: list[float] = []
        i_local: list[float] = []
        t_batch: list[float] = []
        pick = random.Random(3)

        def batch() -> None:
            names = [f"segments/{v}" for v in pick.sample(videos, K)]
            with timer(t_batch), ThreadPoolExecutor(max_workers=K) as pool:
                list(pool.map(lambda name: objects.read_range(name, 0, 16), names))

        xs_remote: list[float] = []
        objects.reset_requests()
        for i, q in enumerate(queries):
            pairs = [(remote, s_remote), (near, s_local), (kept, s_kept)]
            for engine, times in pairs if i % 2 == 0 else pairs[::-1]:
                engine.reader.clear_packs()
                waits.reset()
                with timer(times):
                    engine.search(q, K)
                if engine is remote:
                    xs_remote.append(times[-1] - waits.spent())
            batch()
        ranges = objects.requests["GET_RANGE"] - K * reps  # less the batches'
        for i, q in enumerate(queries):
            pairs = [(remote, i_remote), (near, i_local)]
            for engine, times in pairs if i % 2 == 0 else pairs[::-1]:
                with timer(times):
                    engine.search_ids(q, K)
        ranges_per_search = ranges / reps
    finally:
        remote.close()
        near.close()
        kept.close()
    search_remote, search_local = median_ms(s_remote), median_ms(s_local)
    search_kept = median_ms(s_kept)
    ids_remote, ids_local = median_ms(i_remote), median_ms(i_local)
    read_ratio = (read_remote - round_trip) / read_local
    one = (search_remote - round_trip) / search_local
    get_besides = median_ms(x_remote) / read_local
    search_besides = median_ms(xs_remote) / search_local
    together = median_ms(t_batch)
    less_batch = (search_remote - together) / search_local
    say(f"\n   S3 server: {server}")
    say(f"   one round trip (16-byte ranged GET of a segment video)     {round_trip:6.2f} ms")
    say(f"   {K} such GETs sent together (a thread each, like the reader)  {together:6.2f} ms")
    say(f"   get() one record             S3 {read_remote:6.2f} ms   local {read_local:6.2f} ms")
    say(
        f"     (S3 - one round trip) / local = ({read_remote:.2f} - {round_trip:.2f}) / {read_local:.2f} = {read_ratio:.2f}x   (want <= 1.5x)"
    )
    say(
        f"     S3 less the time it waited on its own request, per call / local = {median_ms(x_remote):.2f} / {read_local:.2f} = {get_besides:.2f}x"
    )
    say(
        f"   search(k={K}), texts read     S3 {search_remote:6.2f} ms   local {search_local:6.2f} ms   S3 / local = {search_remote / search_local:.2f}x   (want <= 1.2x)"
    )
    say(f"     {ranges_per_search:.2f} ranged GETs per search (a pack each, sent together)")
    say(
        f"     (S3 - one round trip) / local = ({search_remote:.2f} - {round_trip:.2f}) / {search_local:.2f} = {one:.2f}x"
    )
    say(
        f"     (S3 - {K} GETs together) / local = ({search_remote:.2f} - {together:.2f}) / {search_local:.2f} = {less_batch:.2f}x"
    )
    say(
        f"     S3 less the time it waited on its requests (spans merged), per call / local = {median_ms(xs_remote):.2f} / {search_local:.2f} = {search_besides:.2f}x"
    )
    say(
        f"   search(k={K}), cache_videos=True (videos in the warm cache)   S3 {search_kept:6.2f} ms   local {search_local:6.2f} ms   S3 / local = {search_kept / search_local:.2f}x   (want <= 1.2x)"
    )
    say(
        f"   search_ids(k={K}), no texts   S3 {ids_remote:6.3f} ms   local {ids_local:6.3f} ms   S3 / local = {ids_remote / ids_local:.2f}x   (want <= 1.2x)"
    )
    return {
        "server": server,
        "reps": reps,
        "round_trip_ms": round_trip,
        "get_s3_ms": read_remote,
        "get_local_ms": read_local,
        "get_s3_minus_rtt_over_local": read_ratio,
        "search_s3_ms": search_remote,
        "search_local_ms": search_local,
        "search_s3_over_local": search_remote / search_local,
        "search_get_range_per_query": ranges_per_search,
        "search_s3_minus_one_rtt_over_local": one,
        "gets_together_ms": together,
        "get_s3_besides_waiting_over_local": get_besides,
        "search_s3_besides_waiting_over_local": search_besides,
        "search_s3_minus_gets_together_over_local": less_batch,
        "search_cache_videos_s3_ms": search_kept,
        "search_cache_videos_s3_over_local": search_kept / search_local,
        "search_ids_s3_ms": ids_remote,
        "search_ids_local_ms": ids_local,
        "search_ids_s3_over_local": ids_remote / ids_local,
    }


SERVER = r"""
import logging, sys, threading, time
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server
logging.getLogger("werkzeug").setLevel(logging.ERROR)
delay = float(sys.argv[1])
app = DomainDispatcherApplication(create_backend_app)
def delayed(environ, start_response):  # a network's latency: sleeping threads overlap
    time.sleep(delay)
    return app(environ, start_response)
server = make_server("127.0.0.1", 0, delayed, True, request_handler=MotoRequestHandler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()  # until the benchmark closes the pipe
server.shutdown()
"""


@contextmanager
def moto_process(delay: float) -> Iterator[dict[str, Any]]:
    """moto in a process of its own, each request answered ``delay`` seconds late (requests in
    threads, so concurrent ones wait together, as on a network); yields storage options for it,
    with the bucket made."""
    import boto3

    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(delay)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        endpoint = f"http://127.0.0.1:{port}"
        opts = {
            "endpoint_url": endpoint,
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"region_name": REGION},
        }
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        ).create_bucket(Bucket=BUCKET)
        yield opts
    finally:
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- 3. local stores unchanged ---------------------------------------------------------------------

CHILD = r"""
import json, random, statistics, sys, tempfile, time
from pathlib import Path
import langchain_memvid
from langchain_memvid.engine import Engine, Record
tree, chunks_file = sys.argv[1], sys.argv[2]
assert langchain_memvid.__file__.startswith(tree), (langchain_memvid.__file__, tree)
import numpy as np
chunks = json.loads(Path(chunks_file).read_text())
DIM, BATCH, ADDS, READS = 384, 100, 6, 200
rng = np.random.default_rng(0)
out = {"add": [], "get": [], "search": []}
with tempfile.TemporaryDirectory() as tmp:
    engine = Engine(Path(tmp) / "store", dim=DIM)
    for b in range(ADDS):
        recs = [Record(f"r{i}", chunks[i % len(chunks)], {"chunk_index": i}) for i in range(b * BATCH, (b + 1) * BATCH)]
        vecs = rng.normal(size=(BATCH, DIM)).astype(np.float32)
        t0 = time.perf_counter(); engine.add(recs, vecs); out["add"].append(time.perf_counter() - t0)
    engine.close()
    engine = Engine(Path(tmp) / "store", create=False)
    ids = random.Random(3).sample([f"r{i}" for i in range(ADDS * BATCH)], READS)
    engine.get(ids[:5])
    for rid in ids:
        engine.reader.clear_packs()
        t0 = time.perf_counter(); engine.get([rid]); out["get"].append(time.perf_counter() - t0)
    queries = rng.normal(size=(READS, DIM)).astype(np.float32)
    engine.search(queries[0], 4)
    for q in queries:
        engine.reader.clear_packs()
        t0 = time.perf_counter(); engine.search(q, 4); out["search"].append(time.perf_counter() - t0)
    engine.close()
print(json.dumps({k: statistics.median(v) for k, v in out.items()}))
"""


def run_child(tree: Path, chunks_file: Path, cwd: Path) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tree), str(chunks_file)],
        env=env,
        cwd=cwd,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench_local_unchanged(base: str, rounds: int, tmp: Path, chunks: list[str]) -> dict[str, Any]:
    if BASE_TREE.exists():
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(BASE_TREE)],
            cwd=REPO,
            check=False,
            capture_output=True,
        )
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(BASE_TREE), base],
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    chunks_file = tmp / "chunks.json"
    chunks_file.write_text(json.dumps(chunks))
    got: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    try:
        for n in range(rounds):
            for who in ("base", "new") if n % 2 == 0 else ("new", "base"):
                got[who].append(run_child(BASE_TREE if who == "base" else REPO, chunks_file, tmp))
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(BASE_TREE)],
            cwd=REPO,
            check=False,
            capture_output=True,
        )
    say(
        f"\n5. Local folder (format 2), this working tree against {base}: {rounds} fresh processes each, taking turns"
    )
    say("   per process: 6 adds of 100 records (dim 384) to a new store, then 200 single-record get() and")
    say(
        "   200 search(k=4) on a reopened handle (decoded packs dropped before each); medians of each process,"
    )
    say("   then the median over processes (and, less sensitive to other load on the machine, the fastest)")
    say(
        f"   {'operation':<10}{'base ms':>9}{'new ms':>9}{'new/base':>10}{'fastest':>9}   each round's new/base   (want within 5 %)"
    )
    out: dict[str, Any] = {"base": base, "rounds": rounds}
    for op in ("add", "get", "search"):
        b = statistics.median(r[op] for r in got["base"]) * 1000
        w = statistics.median(r[op] for r in got["new"]) * 1000
        fastest = min(r[op] for r in got["new"]) / min(r[op] for r in got["base"])
        per = [n[op] / o[op] for n, o in zip(got["new"], got["base"], strict=True)]
        say(
            f"   {op:<10}{b:>9.2f}{w:>9.2f}{w / b:>10.3f}{fastest:>9.3f}   {' '.join(f'{p:.2f}' for p in per)}"
        )
        out[op] = {
            "base_ms": b,
            "new_ms": w,
            "new_over_base": w / b,
            "fastest_new_over_base": fastest,
            "per_round": per,
        }
    return out


# -- main ------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=200, help="repetitions of each latency measure")
    parser.add_argument("--gets", type=int, default=50, help="record reads counted in 1b")
    parser.add_argument("--base", default="928517d", help="the revision local stores are compared with")
    parser.add_argument("--rounds", type=int, default=8, help="subprocesses per side in part 3")
    args = parser.parse_args()
    started = time.perf_counter()
    info = machine()
    say(f"Object storage (format 3) benchmark, {info['date']}")
    say(f"tree: {info['tree']}")
    say(f"machine: {info['cpu']}, {info['cores']} cores, Python {info['python']}, {info['platform']}")
    say(
        f"S3: moto {__import__('moto').__version__} in this process on 127.0.0.1 (tests/s3_server.py), s3fs {__import__('s3fs').__version__}"
    )
    say(
        f"stores: {SEG} records per segment, ~500-character texts, dim {DIM} int8 vectors, flat index, lexical index on"
    )

    say("requests: counted by kind by the engine (ObjectStore.requests); times: wall clock, medians;")
    say("ratios: S3 / local folder (or new tree / base tree); 'want': the issue's targets")

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    tally = Tally()
    tally.install()
    chunks = corpus_chunks()
    n = SIZES[-1] * SEG
    records, vectors = make_records(0, n, chunks), fake_vectors(n, DIM)
    srv = MotoS3()
    srv.start()
    running = True
    result: dict[str, Any] = {"machine": info, "segment_records": SEG, "dim": DIM}
    try:
        srv.reset()
        srv.create_bucket()
        opts = srv.storage_options()
        with tempfile.TemporaryDirectory(prefix="memvid-objbench-") as tmp_name:
            tmp = Path(tmp_name)
            t0 = time.perf_counter()
            for name, segs, commits in STORES:
                build_s3(
                    f"s3://{BUCKET}/{name}",
                    opts,
                    tmp / "writer-cache",
                    records[: segs * SEG],
                    vectors,
                    commits,
                )
            local = tmp / "local"
            with Engine(local, dim=DIM, segment_records=SEG) as engine:
                engine.add(records, vectors)
            say(f"(built the S3 stores and the local folder in {time.perf_counter() - t0:.0f} s)")

            result["open"] = bench_requests_open(srv, tally, opts, tmp, local)
            result["get"] = bench_requests_get(srv, opts, tmp, args.gets)
            say(
                f"\n3. Latency on the 100-segment store: medians of {args.reps}, S3 and the same records in a local"
            )
            say("   folder (format 2) taking turns; decoded packs dropped before each read or search")
            result["latency"] = [
                bench_latency(
                    f"s3://{BUCKET}/s100",
                    opts,
                    tmp / "cache-s100",
                    local,
                    args.reps,
                    "tests/s3_server.py: moto in this process, one request at a time",
                )
            ]
            with moto_process(DELAY) as other:
                build_s3(f"s3://{BUCKET}/s100", other, tmp / "writer-cache-b", records, vectors, 1)
                Engine(
                    f"s3://{BUCKET}/s100", storage_options=other, cache_dir=tmp / "cache-b", create=False
                ).close()
                result["latency"].append(
                    bench_latency(
                        f"s3://{BUCKET}/s100",
                        other,
                        tmp / "cache-b",
                        local,
                        args.reps,
                        f"moto in a process of its own, {DELAY * 1000:.0f} ms added to every request (a network's"
                        " latency; requests in flight together wait together)",
                    )
                )
            result["add"] = bench_requests_add(srv, tally, opts, tmp, chunks)
            srv.stop()  # part 5 runs without the server's thread
            running = False
            result["local_unchanged"] = bench_local_unchanged(args.base, args.rounds, tmp, chunks)
    finally:
        if running:
            srv.stop()
    say(f"\n(total {time.perf_counter() - started:.0f} s)")
    result["printed"] = LINES
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "object_storage.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS / 'object_storage.json'}", file=sys.stderr)


if __name__ == "__main__":
    main()
