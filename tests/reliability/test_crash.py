"""Crash safety: SIGKILL a writer at random moments, reopen, and check nothing is lost or half-done.

A child process (``driver.py``, forked from a pre-imported zygote so a cycle costs milliseconds)
adds, upserts, deletes and compacts small batches. Before each call it logs and fsyncs an
``about`` line, after the call returns an ``ack`` line. The test kills it with SIGKILL - half of
the cycles after a random delay, the other half at a chosen step of the commit protocol (the n-th
``os.replace``, ``fsync``, catalog ``COMMIT``, unlink, video write or catalog insert, before or
after it runs) - then reopens the store in this process and checks:

* it opens without manual repair, and ``tmp/`` and unreferenced segment files are gone;
* every acknowledged write is present and byte-exact (text and metadata);
* the one in-flight write is either fully applied or fully absent;
* ``verify()`` passes and search finds records by their own vectors.

The cycle count and seed are fixed (``MEMVID_RELIABILITY_SEED`` changes the seed), so a failure
is reproduced by rerunning with the same seed; the random-delay kills also depend on timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from langchain_memvid.engine import Engine, Record, rebuild_store

from . import stats
from .common import DIM, check_record, meta_for, read_log, text_for, vector_for
from .driver import KILL_TARGETS, REBUILD_KILL_TARGETS, text_vectors

KILLS = int(os.environ.get("MEMVID_CRASH_KILLS", "60"))


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _apply(model: dict[str, int], op: dict[str, Any]) -> None:
    if op["op"] == "add":
        model.update(op["recs"])
    elif op["op"] == "delete":
        for rid in op["ids"]:
            model.pop(rid, None)


def _resolve_inflight(op: dict[str, Any], model: dict[str, int], actual: dict[str, int]) -> str:
    """'applied', 'absent' or 'half' for the write that was running when the child died."""
    if op["op"] == "add":
        ids = list(op["recs"])
        applied = all(actual.get(i) == v for i, v in op["recs"].items())
        absent = all(actual.get(i) == model.get(i) for i in ids)
    elif op["op"] == "delete":
        ids = op["ids"]
        applied = all(i not in actual for i in ids)
        absent = all(actual.get(i) == model.get(i) for i in ids)
    else:  # compaction changes no record
        return "applied"
    if applied:
        return "applied"
    return "absent" if absent else "half"


def compare_with_model(
    engine: Engine, model: dict[str, int], inflight: dict[str, Any] | None, label: str = "inflight"
) -> tuple[list[str], dict[str, int]]:
    """What is wrong with the records against the acknowledged writes (``model``, updated with an
    in-flight write found applied): wrong texts, a half-visible write, lost or unexplained records;
    and the records found (id -> version)."""
    problems: list[str] = []
    actual: dict[str, int] = {}
    for rec in engine.iter_records():
        try:
            actual[rec.id] = check_record(rec)
        except ValueError as e:
            stats.add("wrong_texts")
            problems.append(f"wrong text: {e}")
    if inflight is not None:
        outcome = _resolve_inflight(inflight, model, actual)
        if outcome == "half":
            stats.add("half_visible")
            problems.append(f"in-flight write half-visible: {inflight}")
        elif inflight["op"] != "compact":
            stats.add(f"{label}_applied" if outcome == "applied" else f"{label}_absent")
            if outcome == "applied":
                _apply(model, inflight)
    lost = [i for i, v in model.items() if actual.get(i, 0) < v]
    if lost:
        stats.add("acked_lost", len(lost))
        problems.append(f"acknowledged writes lost: {[(i, model[i], actual.get(i)) for i in lost]}")
    extra = {i: v for i, v in actual.items() if model.get(i) != v and i not in lost}
    if extra:
        problems.append(f"records that no acknowledged or in-flight write made: {extra}")
    if len(engine) != len(actual):
        problems.append(f"len() says {len(engine)}, iteration found {len(actual)}")
    return problems, actual


def replay_log(log: Path, model: dict[str, int]) -> tuple[list[str], dict[str, Any] | None]:
    """Apply a killed writer's acknowledged writes to ``model``; (its errors, the write in flight)."""
    events = read_log(log)
    problems = [e["traceback"] for e in events if e["event"] == "error"]
    inflight: dict[str, Any] | None = None
    for ev in events:
        if ev["event"] == "about":
            inflight = ev
        elif ev["event"] == "ack":
            _apply(model, ev)
            inflight = None
    return problems, inflight


def check_store(store: Path, log: Path, model: dict[str, int]) -> list[str]:
    """Reopen after a kill and compare with the acknowledged writes; returns problems found."""
    problems, inflight = replay_log(log, model)
    engine = Engine(store, lock_timeout=30)  # must open with no manual repair
    try:
        left = sorted(p.name for p in (store / "tmp").iterdir())
        if left:
            problems.append(f"tmp/ not cleaned on open: {left}")
        referenced = {f for s in engine.catalog.segments() for f in (s.video_file, s.index_file)}
        on_disk = {p.name for p in (store / "segments").iterdir()}
        if on_disk != referenced:
            problems.append(f"unreferenced segment files left: {sorted(on_disk - referenced)}")
        found, actual = compare_with_model(engine, model, inflight)
        problems += found
        report = engine.verify(cross_check=False)
        if not report.ok:
            problems.append(f"verify failed: {report.problems}")
        for rid in sorted(actual)[:: max(1, len(actual) // 4)]:
            hits = engine.search(vector_for(rid, actual[rid]), 1)
            if not hits or hits[0].record.id != rid:
                problems.append(f"search by its own vector does not find {rid}")
        model.clear()
        model.update(actual)  # continue from what is stored (equal to the model when all is well)
    finally:
        engine.close()
    return problems


def test_sigkill_during_writes(tmp_path: Path, driver: Any, seed: int) -> None:
    for key in ("acked_lost", "half_visible", "wrong_texts", "inflight_applied", "inflight_absent"):
        stats.add(key, 0)  # printed even when nothing went wrong
    rng = random.Random(seed)
    store = tmp_path / "store"
    zygote = driver("zygote", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    model: dict[str, int] = {}
    failures: list[str] = []
    targeted: dict[str, int] = {}
    for cycle in range(KILLS):
        log = tmp_path / f"cycle-{cycle:03d}.jsonl"
        kill: dict[str, Any] | None = None
        if cycle % 2:
            kill = {
                "target": KILL_TARGETS[(cycle // 2) % len(KILL_TARGETS)],
                "n": rng.randint(1, 2 if cycle % 4 == 3 else 5),
                "when": rng.choice(["before", "after"]),
            }
        command = {"store": str(store), "log": str(log), "seed": seed * 1000 + cycle, "kill": kill}
        zygote.stdin.write(json.dumps(command) + "\n")
        zygote.stdin.flush()
        tag, pid_text = zygote.stdout.readline().split()
        assert tag == "pid"
        pid = int(pid_text)
        # Random-delay cycles are killed by this timer; hooked cycles kill themselves, with the
        # timer as a backstop when the hooked step never comes.
        delay = rng.uniform(0.03, 0.35) if kill is None else 2.5
        timer = threading.Timer(delay, _kill, (pid,))
        timer.start()
        _, reaped, status_text = zygote.stdout.readline().split()
        timer.cancel()
        assert int(reaped) == pid
        status = int(status_text)
        if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
            failures.append(
                f"cycle {cycle}: child ended with status {status}, not SIGKILL: {read_log(log)[-1:]}"
            )
            continue
        stats.add("kills_run")
        if kill is not None and any(e["event"] == "hook" for e in read_log(log)):
            targeted[kill["target"]] = targeted.get(kill["target"], 0) + 1
        problems = check_store(store, log, model)
        if problems:
            failures.append(f"cycle {cycle} (kill {kill}): " + "; ".join(problems))
        else:
            stats.add("kills_survived")
    zygote.stdin.close()
    zygote.wait(timeout=30)
    stats.put("crash targeted kills by step", targeted)
    assert stats.STATS.get("kills_run", 0) >= 50 or KILLS < 50
    assert not failures, "\n".join(failures[:10])


def test_a_crashed_write_never_resurfaces_through_rebuild(tmp_path: Path, driver: Any) -> None:
    """A crash between publishing files and committing leaves files whose sequence number the
    next commit reuses. A writer that was already open (it does not reopen) must delete them
    before it commits; otherwise ``rebuild`` finds two segments with one number and may replay
    the crashed, unacknowledged version over the acknowledged one.
    """
    store = tmp_path / "store"
    engine = Engine(store, dim=DIM)
    rid = "y"
    engine.add([Record(rid, text_for(rid, 1), meta_for(rid, 1))], vector_for(rid, 1)[None])
    child = driver("crash-add", str(store), rid, "2", "replace", "2", "after")
    assert child.wait(timeout=60) == -signal.SIGKILL
    referenced = {f for s in engine.catalog.segments() for f in (s.video_file, s.index_file)}
    assert {p.name for p in (store / "segments").iterdir()} - referenced, "the crash left no files"
    engine.add([Record(rid, text_for(rid, 3), meta_for(rid, 3))], vector_for(rid, 3)[None])  # acknowledged
    referenced = {f for s in engine.catalog.segments() for f in (s.video_file, s.index_file)}
    assert {p.name for p in (store / "segments").iterdir()} == referenced
    engine.close()
    for file in store.glob("catalog.sqlite*"):
        file.unlink()
    rebuild_store(store)
    with Engine(store, create=False) as rebuilt:
        assert [check_record(r) for r in rebuilt.get([rid])] == [3]
    stats.add("kills_run")
    stats.add("kills_survived")


@pytest.mark.slow
def test_reopened_store_keeps_working_after_kills(tmp_path: Path, driver: Any, seed: int) -> None:
    """After a kill, a fresh child appends to the same store as if nothing happened (longer runs)."""
    store = tmp_path / "store"
    zygote = driver("zygote", stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    model: dict[str, int] = {}
    rng = random.Random(seed + 7)
    for cycle in range(6):
        log = tmp_path / f"long-{cycle}.jsonl"
        command = {"store": str(store), "log": str(log), "seed": seed * 7 + cycle, "kill": None}
        zygote.stdin.write(json.dumps(command) + "\n")
        zygote.stdin.flush()
        pid = int(zygote.stdout.readline().split()[1])
        timer = threading.Timer(rng.uniform(1.0, 2.0), _kill, (pid,))
        timer.start()
        zygote.stdout.readline()
        timer.cancel()
        stats.add("kills_run")
        problems = check_store(store, log, model)
        assert not problems, problems
        stats.add("kills_survived")
    zygote.stdin.close()
    zygote.wait(timeout=30)


def _rebuild_scenario(store: Path, scenario: str) -> dict[str, int]:
    """A store for rebuild to work on; returns the records (id -> version) it must keep."""
    engine = Engine(store, dim=DIM, segment_records=3)
    model = {f"r{i:02d}": 1 for i in range(8)}
    for rid, v in model.items():
        engine.add([Record(rid, text_for(rid, v), meta_for(rid, v))], vector_for(rid, v)[None])
    engine.delete(["r03"])
    model.pop("r03")
    first = engine.catalog.segments()[0]
    engine.close()
    if scenario == "empty catalog":  # the catalog cannot take a transaction: files are swapped
        (store / "catalog.sqlite").write_bytes(b"")
    elif scenario == "lost vectors":  # re-embedding writes vector files
        (store / "segments" / first.index_file).unlink()
    elif scenario == "unknown file":  # quarantining moves files
        video = store / "segments" / first.video_file
        (store / "segments" / "00000090-0badf00d.mov").write_bytes(video.read_bytes())
    return model


@pytest.mark.parametrize("scenario", ["sound catalog", "empty catalog", "lost vectors", "unknown file"])
def test_rebuild_killed_at_any_step_loses_nothing(tmp_path: Path, driver: Any, scenario: str) -> None:
    """SIGKILL rebuild at each step it takes; the store then opens or says `rebuild`, and a rerun
    recovers every record byte for byte. No video is ever deleted (some move to quarantine/)."""
    failures = []
    for target in REBUILD_KILL_TARGETS:
        for n in (1, 2):
            for when in ("before", "after"):
                store = tmp_path / f"{scenario}-{target}-{n}-{when}".replace(" ", "_") / "store"
                model = _rebuild_scenario(store, scenario)
                videos = {p.name for p in (store / "segments").glob("*.mov")}
                child = driver("crash-rebuild", str(store), target, str(n), when)
                code = child.wait(timeout=120)
                if code != -signal.SIGKILL:
                    continue  # this step does not happen n times in this scenario
                stats.add("rebuild kills run")
                kept = {p.name for p in store.glob("*/*.mov") if p.parent.name in ("segments", "quarantine")}
                if not videos <= kept:
                    failures.append(f"{target} {n} {when}: videos gone: {sorted(videos - kept)}")
                    continue
                try:
                    rebuild_store(store, embed=text_vectors)
                    with Engine(store, create=False) as engine:
                        actual = {r.id: check_record(r) for r in engine.iter_records()}
                        ok = engine.verify(cross_check=False).ok
                except Exception as e:  # a failure to report, with its step
                    failures.append(f"{target} {n} {when}: {type(e).__name__}: {e}")
                    continue
                if actual != model or not ok:
                    failures.append(f"{target} {n} {when}: records {actual} != {model} or verify failed")
                    continue
                stats.add("rebuild kills survived")
    assert not failures, "\n".join(failures)
