"""Child processes for the versioned-store (S3) reliability tests: ``python -m tests.reliability.s3_driver MODE ...``.

Every mode takes one JSON argument (or, for ``zygote``, one JSON line per child on stdin) with
``url`` and ``options`` (the store and its storage options, from ``tests/s3_server.py``), a
``log`` (JSON lines, appended and fsynced one by one, as in ``driver.py``) and ``hooks`` (below).
The object cache is ``$LCMEMVID_CACHE``, shared by every process of a test.

Modes:

``racer``
    One of several writers on one store: waits for the ``go`` file, then makes ``ops`` calls of
    ``add`` (fresh ids ``<prefix>NNNN``) or ``delete`` (ids it added itself). Before each attempt
    it logs ``about``, after it returns ``ack``; a ``CommitConflict`` is logged as ``conflict``
    and the call is retried, or given up (``abandon``) with its ids never used again. Every
    acknowledged id is printed, flushed, as ``acked ID``.
``crash``
    Random adds, upserts, deletes and compactions (``driver.crash_workload``'s mix) until killed,
    logging ``about`` / ``ack``; the hooks are installed once the store is open, or before it
    is opened (and perhaps created) with ``"hook_open": true``.
``reader``
    Reads a store while a writer commits, until the ``done`` file exists: a handle that takes in
    versions only on ``refresh()`` logs ``snap`` (version, len, digest of every record) and a
    handle that follows every version (``refresh_interval=0``) logs ``get`` (digest of one
    ``get`` of every id the writer may write) and ``len``.
``zygote``
    Imports everything once, then forks one ``crash`` child per JSON line on stdin; prints
    ``pid N`` when the child starts and ``exit N STATUS`` when it is reaped.

Hooks (a list; also read from ``$S3_DRIVER_HOOKS`` as JSON) instrument ``ObjectStore`` in this
process only, not the library: ``{"target": "put_file" | "put" | "put_if_absent", "match":
name prefix (optional), "n": the n-th matching call (null: every one), "when": "before" |
"after", "action": "kill" | "sleep", "seconds": for sleep}``. ``kill`` logs ``hook`` (with the
object's name) and SIGKILLs the process; ``sleep`` widens the window around an upload.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sys
import time
import traceback
from typing import Any

import numpy as np

from langchain_memvid.engine import CommitConflict, Engine, Record
from langchain_memvid.engine.storage.objects import ObjectStore

from .common import DIM, check_record, log_line, meta_for, text_for, vector_for

HOOK_TARGETS = ("put_file", "put", "put_if_absent")


def install_hooks(hooks: list[dict[str, Any]], log_fd: int) -> None:
    """Wrap ``ObjectStore`` methods as the hook specs say (see the module docstring)."""
    for spec in hooks:
        target = spec["target"]
        if target not in HOOK_TARGETS:
            msg = f"unknown hook target {target!r}"
            raise ValueError(msg)
        original = getattr(ObjectStore, target)
        calls = [0]

        def act(name: str, spec: dict[str, Any] = spec) -> None:
            if spec["action"] == "kill":
                log_line(log_fd, {"event": "hook", **spec, "object": name})
                os.kill(os.getpid(), signal.SIGKILL)
            else:
                time.sleep(spec["seconds"])

        def hooked(
            self: ObjectStore,
            name: str,
            *args: Any,
            _original: Any = original,
            _spec: dict[str, Any] = spec,
            _calls: list[int] = calls,
            _act: Any = act,
            **kwargs: Any,
        ) -> Any:
            hit = False
            if name.startswith(_spec.get("match", "")):
                _calls[0] += 1
                hit = _spec.get("n") is None or _calls[0] == _spec["n"]
            if hit and _spec["when"] == "before":
                _act(name)
            result = _original(self, name, *args, **kwargs)
            if hit and _spec["when"] == "after":
                _act(name)
            return result

        setattr(ObjectStore, target, hooked)


def _open_log(path: str) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _add(engine: Engine, recs: dict[str, int]) -> None:
    records = [Record(i, text_for(i, v), meta_for(i, v)) for i, v in recs.items()]
    engine.add(records, np.stack([vector_for(i, v) for i, v in recs.items()]))


def digest(records: list[Record]) -> str:
    """SHA-256 of records (id, text, metadata), in id order: equal digests, equal contents."""
    h = hashlib.sha256()
    for rec in sorted(records, key=lambda r: r.id):
        h.update(json.dumps([rec.id, rec.text, rec.metadata], sort_keys=True).encode())
    return h.hexdigest()


# -- racing writers ---------------------------------------------------------------------------


def racer(cfg: dict[str, Any]) -> None:
    """Adds and deletes of this writer's own ids, retrying on CommitConflict (module docstring)."""
    fd = _open_log(cfg["log"])
    rng = random.Random(cfg["seed"])
    prefix = cfg["prefix"]
    install_hooks(cfg.get("hooks", []), fd)
    log_line(fd, {"event": "ready"})
    while not os.path.exists(cfg["go"]):
        time.sleep(0.005)
    engine = Engine(cfg["url"], dim=DIM, storage_options=cfg["options"], lock_timeout=60, segment_records=4)
    log_line(fd, {"event": "open", "version": engine.version})
    live: list[str] = []
    fresh = 0
    for call in range(cfg["ops"]):
        op: dict[str, Any]
        if rng.random() < 0.7 or len(live) < 2:
            ids = [f"{prefix}{fresh + k:04d}" for k in range(rng.randint(1, 3))]
            fresh += len(ids)
            op = {"op": "add", "recs": dict.fromkeys(ids, 1)}
        else:
            op = {"op": "delete", "ids": rng.sample(live, rng.randint(1, 2))}
        for attempt in range(50):
            log_line(fd, {"event": "about", "call": call, "attempt": attempt, **op})
            try:
                if op["op"] == "add":
                    _add(engine, op["recs"])
                else:
                    engine.delete(op["ids"])
            except CommitConflict as e:
                log_line(fd, {"event": "conflict", "call": call, "attempt": attempt, "message": str(e)})
                if rng.random() < 0.3:
                    log_line(fd, {"event": "abandon", "call": call, **op})
                    break
                continue
            version = engine.version
            log_line(fd, {"event": "ack", "call": call, "attempt": attempt, "version": version, **op})
            if op["op"] == "add":
                live.extend(op["recs"])
                for rid in op["recs"]:
                    print(f"acked {rid}", flush=True)
            else:
                live = [i for i in live if i not in op["ids"]]
            break
    log_line(fd, {"event": "done", "version": engine.version})
    engine.close()


# -- crash workload ---------------------------------------------------------------------------


def crash_workload(cfg: dict[str, Any]) -> None:
    """Random writes until killed, logging ``about`` before and ``ack`` after each call."""
    fd = _open_log(cfg["log"])
    rng = random.Random(cfg["seed"])
    if cfg.get("hook_open"):  # the hooks see the store's creation too
        install_hooks(cfg.get("hooks", []), fd)
    engine = Engine(cfg["url"], dim=DIM, storage_options=cfg["options"], lock_timeout=30, segment_records=4)
    state = {rec.id: check_record(rec) for rec in engine.iter_records()}
    # Another process's records (ids not made here) may be there too: number after ours.
    next_id = max((int(i[1:]) for i in state if i[:1] == "r" and i[1:].isdigit()), default=-1) + 1
    log_line(fd, {"event": "open", "records": len(state), "version": engine.version})
    if not cfg.get("hook_open"):
        install_hooks(cfg.get("hooks", []), fd)
    for _ in range(cfg.get("ops", 200)):
        op: dict[str, Any]
        r = rng.random()
        if len(state) > 24:
            r = 0.45 + r * 0.55  # no fresh adds while the store is large: keep cycles fast
        if r < 0.45 or not state:
            fresh = [f"r{next_id + i:05d}" for i in range(rng.randint(1, 5))]
            next_id += len(fresh)
            op = {"op": "add", "recs": dict.fromkeys(fresh, 1)}
        elif r < 0.70:
            chosen = rng.sample(sorted(state), min(len(state), rng.randint(1, 4)))
            op = {"op": "add", "recs": {i: state[i] + 1 for i in chosen}}
        elif r < 0.92:
            chosen = rng.sample(sorted(state), min(len(state), rng.randint(1, 4)))
            op = {"op": "delete", "ids": [*chosen, "never-stored"]}
        else:
            op = {"op": "compact"}
        log_line(fd, {"event": "about", **op})
        if op["op"] == "add":
            _add(engine, op["recs"])
            state.update(op["recs"])
        elif op["op"] == "delete":
            engine.delete(op["ids"])
            for i in op["ids"]:
                state.pop(i, None)
        else:
            engine.compact()
        log_line(fd, {"event": "ack", "version": engine.version, **op})
    log_line(fd, {"event": "finished"})


def zygote() -> None:
    """Fork one crash-workload child per JSON line on stdin; see the module docstring."""
    import botocore.session  # noqa: F401 - imported once here, not in every child
    import faiss  # noqa: F401
    import s3fs  # noqa: F401

    for line in sys.stdin:
        cfg = json.loads(line)
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                crash_workload(cfg)
            except BaseException:
                with open(cfg["log"], "a") as fh:
                    fh.write(json.dumps({"event": "error", "traceback": traceback.format_exc()}) + "\n")
                code = 3
            os._exit(code)
        print(f"pid {pid}", flush=True)  # the child may be killed any moment from now
        _, status = os.waitpid(pid, 0)
        print(f"exit {pid} {status}", flush=True)


# -- a reader during commits --------------------------------------------------------------------


def reader(cfg: dict[str, Any]) -> None:
    """Read while a writer commits; log what was seen for the test to match with the versions."""
    fd = _open_log(cfg["log"])
    pinned = Engine(cfg["url"], storage_options=cfg["options"], create=False, refresh_interval=1e9)
    follower = Engine(cfg["url"], storage_options=cfg["options"], create=False, refresh_interval=0)
    universe = cfg["universe"]
    rounds = 0
    last = False
    while True:
        last = os.path.exists(cfg["done"])
        try:
            version = pinned.refresh()
            count = len(pinned)
            records = list(pinned.iter_records(batch=5))
            for rec in records:
                check_record(rec)
            log_line(
                fd,
                {
                    "event": "snap",
                    "version": version,
                    "after": pinned.version,
                    "len": count,
                    "n": len(records),
                    "digest": digest(records),
                },
            )
            got = follower.get(universe)
            for rec in got:
                check_record(rec)
            log_line(fd, {"event": "get", "n": len(got), "digest": digest(got)})
            log_line(fd, {"event": "len", "n": len(follower)})
        except Exception:
            log_line(fd, {"event": "error", "traceback": traceback.format_exc()})
        rounds += 1
        if last and rounds >= cfg.get("min_rounds", 1):
            break
    log_line(fd, {"event": "done", "rounds": rounds})
    pinned.close()
    follower.close()


def main(argv: list[str]) -> None:
    """Dispatch on the mode (see the module docstring)."""
    mode, *args = argv
    if mode == "zygote":
        zygote()
        return
    cfg = json.loads(args[0])
    if "hooks" not in cfg and os.environ.get("S3_DRIVER_HOOKS"):
        cfg["hooks"] = json.loads(os.environ["S3_DRIVER_HOOKS"])
    if mode == "racer":
        racer(cfg)
    elif mode == "crash":
        crash_workload(cfg)
    elif mode == "reader":
        reader(cfg)
    else:
        msg = f"unknown mode {mode!r}"
        raise SystemExit(msg)


if __name__ == "__main__":
    main(sys.argv[1:])
