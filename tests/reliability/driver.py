"""Child-process driver for the reliability tests: ``python -m tests.reliability.driver MODE ...``.

Modes:

``zygote``
    Imports the engine once, then forks one crash-workload child per JSON line read from stdin
    (``{"store", "log", "seed", "kill"}``). It prints ``pid N`` when the child starts and
    ``exit N STATUS`` when it is reaped, so the test can SIGKILL the child at a random moment
    without paying the import cost on every cycle.
``writer`` / ``reader``
    The two sides of the concurrency stress test.
``hold-lock``
    Takes a store's write lock, prints ``locked`` and holds it until stdin closes.
``readonly``
    Drops root privileges (to ``nobody``) and reports what each operation on a read-only store
    raises, as JSON.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import sys
import threading
import time
import traceback
import zlib
from pathlib import Path
from typing import Any

import filelock
import numpy as np

from langchain_memvid.engine import Engine, MemvidError, Record, StoreLocked, rebuild_store
from langchain_memvid.engine import catalog as catalog_mod
from langchain_memvid.engine.catalog import db as catalog_db
from langchain_memvid.engine.storage import segments as segments_mod

from .common import DIM, check_record, log_line, meta_for, text_for, vector_for

# -- crash workload ---------------------------------------------------------------------------

KILL_TARGETS = ("replace", "fsync", "commit", "unlink", "write_video", "add_segment", "put_records")
REBUILD_KILL_TARGETS = ("replace", "fsync", "commit", "link", "backup")


def install_kill_hook(target: str, n: int, when: str, log_fd: int) -> None:
    """SIGKILL this process at the n-th call of a step of the commit protocol (before or after it)."""
    calls = [0]

    def _die() -> None:
        log_line(log_fd, {"event": "hook", "target": target, "n": n, "when": when})
        os.kill(os.getpid(), signal.SIGKILL)

    def wrap(original: Any) -> Any:
        def hooked(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            hit = calls[0] == n
            if hit and when == "before":
                _die()
            result = original(*args, **kwargs)
            if hit:
                _die()
            return result

        return hooked

    if target == "replace":
        os.replace = wrap(os.replace)
    elif target == "fsync":
        os.fsync = wrap(os.fsync)
    elif target == "unlink":
        pathlib.Path.unlink = wrap(pathlib.Path.unlink)  # type: ignore[method-assign]
    elif target == "link":
        os.link = wrap(os.link)
    elif target == "backup":
        catalog_mod.Catalog.backup_to = wrap(catalog_mod.Catalog.backup_to)  # type: ignore[method-assign]
    elif target == "write_video":
        segments_mod.write_video = wrap(segments_mod.write_video)
    elif target == "commit":
        cls = catalog_db.Transaction
        cls.__exit__ = wrap(cls.__exit__)  # type: ignore[method-assign]
    elif target == "add_segment":
        catalog_mod.Catalog.add_segment = wrap(catalog_mod.Catalog.add_segment)  # type: ignore[method-assign]
    elif target == "put_records":
        catalog_mod.Catalog.put_records = wrap(catalog_mod.Catalog.put_records)  # type: ignore[method-assign]
    else:
        msg = f"unknown kill target {target!r}"
        raise ValueError(msg)


def crash_workload(store: str, log: str, seed: int, kill: dict[str, Any] | None) -> None:
    """Run random writes forever (until killed), logging ``about`` before and ``ack`` after each."""
    rng = random.Random(seed)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    engine = Engine(store, dim=DIM, lock_timeout=30, segment_records=4)
    state = {rec.id: check_record(rec) for rec in engine.iter_records()}
    next_id = max((int(i[1:]) for i in state), default=-1) + 1
    log_line(fd, {"event": "open", "records": len(state)})
    if kill is not None:
        install_kill_hook(kill["target"], kill["n"], kill["when"], fd)
    for _ in range(10_000):
        op: dict[str, Any]
        r = rng.random()
        if len(state) > 40:
            r = 0.5 + r * 0.5  # no fresh adds while the store is large: keep cycles fast
        if r < 0.45 or not state:
            fresh = [f"r{next_id + i:05d}" for i in range(rng.randint(1, 7))]
            next_id += len(fresh)
            op = {"op": "add", "recs": dict.fromkeys(fresh, 1)}
        elif r < 0.70:
            chosen = rng.sample(sorted(state), min(len(state), rng.randint(1, 5)))
            recs = {i: state[i] + 1 for i in chosen}
            if rng.random() < 0.3:
                recs[f"r{next_id:05d}"] = 1
                next_id += 1
            op = {"op": "add", "recs": recs}
        elif r < 0.93:
            chosen = rng.sample(sorted(state), min(len(state), rng.randint(1, 6)))
            op = {"op": "delete", "ids": [*chosen, "never-stored"]}
        else:  # sometimes converting the vectors on the way (a commit of format 2)
            op = {"op": "compact", "vectors": rng.choice(("float32", "float16", "int8"))}
        log_line(fd, {"event": "about", **op})
        if op["op"] == "add":
            recs = op["recs"]
            records = [Record(i, text_for(i, v), meta_for(i, v)) for i, v in recs.items()]
            vectors = np.stack([vector_for(i, v) for i, v in recs.items()])
            engine.add(records, vectors)
            state.update(recs)
        elif op["op"] == "delete":
            engine.delete(op["ids"])
            for i in op["ids"]:
                state.pop(i, None)
        else:
            engine.compact(vector_encoding=op["vectors"])
        log_line(fd, {"event": "ack", **op})


def crash_add(store: str, rid: str, version: int, target: str, n: int, when: str) -> None:
    """Upsert one record and SIGKILL this process at a step of its commit (a crashed write)."""
    engine = Engine(store, lock_timeout=30)
    fd = os.open(Path(store).parent / "crash-add.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    install_kill_hook(target, n, when, fd)
    engine.add([Record(rid, text_for(rid, version), meta_for(rid, version))], vector_for(rid, version)[None])
    sys.exit("the kill hook never fired")


def text_vectors(texts: Any) -> np.ndarray:
    """A deterministic embedding of texts, for a rebuild that must re-embed lost vectors."""
    rows = [np.random.default_rng(zlib.crc32(t.encode())).standard_normal(DIM) for t in texts]
    return np.asarray(rows, dtype=np.float32).reshape(len(rows), DIM)


def crash_rebuild(store: str, target: str, n: int, when: str) -> None:
    """Run ``rebuild_store`` and SIGKILL this process at a step of it (exits 0 if it never fired)."""
    fd = os.open(Path(store).parent / "crash-rebuild.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    install_kill_hook(target, n, when, fd)
    rebuild_store(store, embed=text_vectors)


def zygote() -> None:
    """Fork one crash-workload child per command line on stdin; see the module docstring."""
    for line in sys.stdin:
        cmd = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                crash_workload(cmd["store"], cmd["log"], cmd["seed"], cmd.get("kill"))
            except BaseException:
                with open(cmd["log"], "a") as fh:
                    fh.write(json.dumps({"event": "error", "traceback": traceback.format_exc()}) + "\n")
                code = 3
            os._exit(code)
        print(f"pid {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


# -- concurrency stress -----------------------------------------------------------------------

GROUP = 4  # records written (and deleted) together: a reader must see all or none of a group
READER_MIN_OPS = 450  # per reader process, so a run always counts a few thousand operations


def group_ids(g: int) -> list[str]:
    """The ids of group g."""
    return [f"g{g:03d}-{k}" for k in range(GROUP)]


def writer(store: str, n_ops: int, seed: int, out: str, done: str) -> None:
    """Upsert, delete and compact groups of records; every group is written in one call."""
    rng = random.Random(seed)
    engine = Engine(store, dim=DIM, lock_timeout=60)
    versions: dict[int, int] = {}  # last version written per group, deleted ones included
    live: set[int] = set()
    errors: list[str] = []
    reads = [0]
    stop = threading.Event()

    def read_along() -> None:  # a reader thread sharing the writer's engine
        check = random.Random(seed + 1)
        while not stop.is_set():
            try:
                _check_group(engine.get(group_ids(check.randrange(40))), None)
                reads[0] += 1
            except Exception as e:
                errors.append(f"writer-thread read: {type(e).__name__}: {e}")
            time.sleep(0.01)

    thread = threading.Thread(target=read_along)
    thread.start()
    ops = 0
    try:
        for _ in range(n_ops):
            r = rng.random()
            if r < 0.65 or len(live) < 3:
                g = rng.randrange(40)
                v = versions.get(g, 0) + 1  # a re-added group continues its version sequence
                ids = group_ids(g)
                engine.add(
                    [Record(i, text_for(i, v), meta_for(i, v)) for i in ids],
                    np.stack([vector_for(i, v) for i in ids]),
                )
                versions[g] = v
                live.add(g)
            elif r < 0.97:
                g = rng.choice(sorted(live))
                engine.delete(group_ids(g))
                live.discard(g)
            else:
                engine.compact()
            ops += 1
    except Exception as e:
        errors.append(f"writer: {type(e).__name__}: {e}\n{traceback.format_exc()}")
    finally:
        stop.set()
        thread.join()
        Path(done).write_text("done")
        Path(out).write_text(json.dumps({"ops": ops, "reads": reads[0], "errors": errors}))


def _check_group(records: list[Record], g: int | None) -> int | None:
    """All records of a group at one version, or none of them; returns that version."""
    if not records:
        return None
    got = {rec.id: check_record(rec) for rec in records}
    if g is None:
        g = int(records[0].id[1:4])
    if sorted(got) != group_ids(g) or len(set(got.values())) != 1:
        msg = f"group {g} is half-visible or mixed: {got}"
        raise AssertionError(msg)
    return next(iter(got.values()))


def reader(store: str, seed: int, out: str, done: str, threads: int) -> None:
    """Read groups, whole scans and searches until the writer is done; check every record read."""
    shared = Engine(store, create=False, lock_timeout=60)
    errors: list[str] = []
    counts: list[int] = [0] * threads
    wrong = [0]

    def run(t: int) -> None:
        rng = random.Random(seed * 100 + t)
        engine = shared if t % 2 == 0 else Engine(store, create=False, lock_timeout=60)
        seen: dict[str, int] = {}  # highest version seen per id: must never go backwards

        def observe(rec: Record) -> None:
            v = check_record(rec)
            if v < seen.get(rec.id, 0):
                msg = f"{rec.id} went back from v{seen[rec.id]} to v{v}"
                raise AssertionError(msg)
            seen[rec.id] = v

        while not os.path.exists(done) or sum(counts) < READER_MIN_OPS:
            try:
                r = rng.random()
                if r < 0.5:
                    g = rng.randrange(40)
                    records = engine.get(group_ids(g))
                    _check_group(records, g)
                    for rec in records:
                        observe(rec)
                elif r < 0.6:
                    # A scan reads in batches and is not one snapshot when writes run meanwhile:
                    # each record is some committed version, never older than one seen before.
                    for rec in engine.iter_records(batch=16):
                        observe(rec)
                else:
                    g = rng.randrange(40)
                    v = seen.get(group_ids(g)[0], 1)
                    for hit in engine.search(vector_for(group_ids(g)[0], v), 3):
                        observe(hit.record)
                counts[t] += 1
                time.sleep(0.015)  # leave the two CPUs of a CI machine to the writer
            except (AssertionError, ValueError) as e:
                wrong[0] += 1
                errors.append(f"reader {t}: WRONG {type(e).__name__}: {e}")
            except Exception as e:
                errors.append(f"reader {t}: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            if len(errors) > 20:
                return

    pool = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    Path(out).write_text(json.dumps({"ops": sum(counts), "errors": errors, "wrong": wrong[0]}))


# -- lock and permissions -----------------------------------------------------------------------


def hold_lock(store: str) -> None:
    """Hold the write lock the way a long write does, until stdin closes."""
    Engine(store, dim=DIM).close()  # creates the store; its LOCK file is the documented write lock
    with filelock.FileLock(str(Path(store) / "LOCK")):
        print("locked", flush=True)
        sys.stdin.read()


def readonly(store: str) -> None:
    """As ``nobody``, try each operation on a store whose files root owns read-only."""
    import faiss  # noqa: F401 - imported before dropping privileges (lazy imports would fail)

    from langchain_memvid.engine import rebuild, verify  # noqa: F401

    os.setgid(65534)
    os.setuid(65534)
    print(json.dumps(readonly_results(store)))


def readonly_results(store: str) -> dict[str, Any]:
    """What each operation on a read-only store does: its error (type, message) or its result."""
    results: dict[str, Any] = {}

    def attempt(name: str, fn: Any) -> Any:
        try:
            value = fn()
        except MemvidError as e:
            results[name] = {"error": type(e).__name__, "message": str(e)}
        except Exception as e:
            results[name] = {"error": type(e).__name__, "message": str(e), "undocumented": True}
        else:
            results[name] = {"ok": repr(value)[:200]}
            return value
        return None

    engine = attempt("open", lambda: Engine(store, create=False, lock_timeout=2))
    if engine is not None:
        attempt("count", lambda: len(engine))
        attempt("get", lambda: [r.text for r in engine.get(["a", "b"])])
        attempt("add", lambda: engine.add([Record("c", "new")], np.ones((1, DIM), np.float32)))
        attempt("delete", lambda: engine.delete(["a"]))
        attempt("compact", engine.compact)
        attempt("count_after", lambda: len(engine))
    attempt("create_new", lambda: Engine(Path(store) / "sub", dim=DIM, lock_timeout=2))
    return results


def read_all(store: str) -> None:
    """Open a (possibly crafted) store, read every record and verify; report errors and peak memory.

    Prints JSON: what each step raised (type and message; ``undocumented`` when it is not a
    MemvidError) and the growth of peak RSS over the process's size after opening.
    """
    import resource

    def peak_kb() -> int:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    results: dict[str, Any] = {}

    def attempt(name: str, fn: Any) -> Any:
        try:
            value = fn()
        except MemvidError as e:
            results[name] = {"error": type(e).__name__, "message": str(e)}
        except BaseException as e:  # reported, and the test fails on it
            results[name] = {"error": type(e).__name__, "message": str(e), "undocumented": True}
        else:
            results[name] = {"ok": repr(value)[:200]}
            return value
        return None

    base = peak_kb()
    engine = attempt("open", lambda: Engine(store, create=False, lock_timeout=5))
    results["open_growth_kb"] = peak_kb() - base
    if engine is not None:
        base = peak_kb()
        for rid in attempt("ids", engine.ids) or []:
            attempt(f"get {rid}", lambda rid=rid: [r.text[:40] for r in engine.get([rid])])
        attempt("search", lambda: len(engine.search(np.ones(DIM, np.float32), 3)))
        report = attempt("verify", lambda: engine.verify(cross_check=False))
        if report is not None:
            results["verify_problems"] = [f"{p.file}: {p.message}" for p in report.problems][:20]
        results["read_growth_kb"] = peak_kb() - base
    print(json.dumps(results))


def main(argv: list[str]) -> None:
    """Dispatch on the mode (see the module docstring)."""
    mode, *args = argv
    if mode == "zygote":
        zygote()
    elif mode == "writer":
        writer(args[0], int(args[1]), int(args[2]), args[3], args[4])
    elif mode == "reader":
        reader(args[0], int(args[1]), args[2], args[3], int(args[4]))
    elif mode == "hold-lock":
        hold_lock(args[0])
    elif mode == "readonly":
        readonly(args[0])
    elif mode == "read-all":
        read_all(args[0])
    elif mode == "crash-rebuild":
        crash_rebuild(args[0], args[1], int(args[2]), args[3])
    elif mode == "crash-add":
        crash_add(args[0], args[1], int(args[2]), args[3], int(args[4]), args[5])
    else:
        msg = f"unknown mode {mode!r}"
        raise SystemExit(msg)


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except StoreLocked as e:
        print(f"StoreLocked: {e}", file=sys.stderr)
        sys.exit(75)
