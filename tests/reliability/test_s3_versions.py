"""Versioned stores in S3 (format 3): racing writers, SIGKILLed writers, readers during commits.

The bucket is moto's S3 on 127.0.0.1 (``tests/s3_server.py``), a real HTTP endpoint, so the
writers and readers are separate processes (``s3_driver.py``) as they would be on separate
machines; they share one object cache (``$LCMEMVID_CACHE``), which is process-safe.

* Racing writers: two or three processes add (and delete) their own ids on one store, retrying
  a call that raised ``CommitConflict`` (or giving it up). Every acknowledged id is there with its
  exact text, nothing of a given-up call is; the versions are 1..K without gaps and each version
  is exactly its parent plus one acknowledged call (the one that reported that version), opened
  with ``version=N`` and read whole (the newest and a seeded sample verified; all of them in the
  slow variant); afterwards cleanup takes exactly what the losers had uploaded.
* SIGKILL: a writer is killed after a seeded random delay, or at the n-th upload of a segment
  file, catalog delta or checkpoint, version object or ``_latest`` (before or after it), by hooks
  the driver installs on ``ObjectStore``. After each kill the store opens at its last version,
  every version it lists opens, acknowledged writes are there byte for byte, the in-flight write
  is all there or not at all, ``verify()`` is clean, and ``cleanup(older_than=0, keep_last=1,
  grace=0)`` leaves exactly the objects the newest version names (compared with a listing),
  after which the store reads byte-exact. A handle open since the first cycle catches up with
  ``refresh()`` after every kill and reads on through the cleanup.
* A writer killed while it creates the store: the store exists whole or not at all, and can be
  created (again) without repair; a second process opening the URL while the first creates it
  gets one store.
* A handle whose version cleanup removed (it neither read nor wrote meanwhile) catches up, and
  never publishes that version's number again.
* A reader during commits: a handle refreshed between reads always holds exactly one published
  version (count and digest of every record), and a handle that follows every version sees, in
  one ``get``, the records of some published version.

Seeds are fixed (``MEMVID_RELIABILITY_SEED`` changes them); random-delay kills also depend on
timing. ``MEMVID_S3_KILLS`` sets the number of kill cycles.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from langchain_memvid.engine import Engine, MemvidError, StoreNotFound
from tests.s3_server import S3Target

from . import stats
from .common import DIM, REPO, check_record, meta_for, read_log, text_for
from .s3_driver import _add, digest
from .test_crash import _apply, _kill, compare_with_model, replay_log

pytest_plugins = ["tests.s3_server"]
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])  # moto only (tests/s3_server.py)

RACE_OPS = int(os.environ.get("MEMVID_S3_RACE_OPS", "6"))
VERIFY_SAMPLE = 3  # older versions verified besides the newest (all of them in the slow variants)
KILLS = int(os.environ.get("MEMVID_S3_KILLS", "16"))
VERSIONS = "_versions/"

# Kill points: (ObjectStore method, object-name prefix, n-th such call counted from the child's
# open). Every other cycle takes the next one, before or after the call (alternating; the slow
# variant takes each both ways); a point a cycle never reaches falls back to the backstop timer.
KILL_POINTS = [
    ("put_file", "segments/", 1),  # the first segment file of a commit
    ("put_file", "segments/", 2),
    ("put", "catalog/", 1),  # the catalog delta
    ("put_if_absent", VERSIONS, 1),  # the version object
    ("put", "_latest", 1),  # the hint, after the version exists
    ("put_file", "segments/", 3),  # a later commit's uploads
    ("put_if_absent", VERSIONS, 2),  # a later commit's version
    ("put_file", "catalog/", 1),  # a new checkpoint (only once a delta chain is long)
]


@pytest.fixture
def store(s3_bucket: S3Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> S3Target:
    """The test bucket's store, with an object cache shared by this process and its children."""
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))
    return s3_bucket


@pytest.fixture
def child() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start ``python -m tests.reliability.s3_driver MODE [JSON]``; all are reaped at the end."""
    procs: list[subprocess.Popen[str]] = []

    def start(mode: str, cfg: dict[str, Any] | None = None, **kwargs: Any) -> subprocess.Popen[str]:
        args = [sys.executable, "-m", "tests.reliability.s3_driver", mode]
        if cfg is not None:
            args.append(json.dumps(cfg))
        proc = subprocess.Popen(args, cwd=REPO, text=True, **kwargs)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


# -- the bucket as the tests see it ----------------------------------------------------------


def _open(target: S3Target, **kwargs: Any) -> Engine:
    return Engine(target.url, storage_options=target.storage_options, **kwargs)


def _split(target: S3Target) -> tuple[str, str]:
    bucket, prefix = target.url.removeprefix("s3://").split("/", 1)
    return bucket, prefix.rstrip("/") + "/"


def _client(target: S3Target) -> Any:
    import boto3

    opts = target.storage_options
    return boto3.client(
        "s3",
        endpoint_url=opts["endpoint_url"],
        aws_access_key_id=opts["key"],
        aws_secret_access_key=opts["secret"],
        region_name=opts["client_kwargs"]["region_name"],
    )


def bucket_objects(target: S3Target) -> set[str]:
    """Every object below the store's root, listed with boto3 (not the code under test)."""
    bucket, prefix = _split(target)
    names: set[str] = set()
    for page in _client(target).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        names.update(obj["Key"][len(prefix) :] for obj in page.get("Contents", []))
    return names


def _named(value: Any) -> set[str]:
    """Every ``name`` of an object reference anywhere in a version object."""
    if isinstance(value, dict):
        found = {value["name"]} if isinstance(value.get("name"), str) else set()
        return found.union(*(_named(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_named(v) for v in value))
    return set()


def referenced(target: S3Target) -> set[str]:
    """What the newest version needs: itself, ``_latest``, its catalog objects, segments, snapshot."""
    numbers = sorted(int(n[len(VERSIONS) : -5]) for n in bucket_objects(target) if n.startswith(VERSIONS))
    name = f"{VERSIONS}{numbers[-1]:020d}.json"
    bucket, prefix = _split(target)
    body = json.loads(_client(target).get_object(Bucket=bucket, Key=prefix + name)["Body"].read())
    names = {name, "_latest"} | _named(body)
    with _open(target, version=numbers[-1]) as engine:
        for seg in engine.catalog.segments():
            names.update({f"segments/{seg.video_file}", f"segments/{seg.index_file}"})
        snap = engine.settings.get("index_snapshot")
        if isinstance(snap, dict):
            names.add(f"index/{snap['file']}")
    return names


def read_version(
    target: S3Target, number: int, *, verify: str | None = None
) -> tuple[dict[str, int], str, list[str]]:
    """(id -> record version, digest, problems) of one version, opened with ``version=N``.

    Every record is read and checked; ``verify`` is None (no ``verify()``: it costs four times a
    full read), ``"quick"`` (``cross_check=False``) or ``"full"``.
    """
    problems: list[str] = []
    content: dict[str, int] = {}
    with _open(target, version=number) as engine:
        if engine.version != number:
            problems.append(f"version={number} opened version {engine.version}")
        records = list(engine.iter_records())
        for rec in records:
            try:
                content[rec.id] = check_record(rec)
            except ValueError as e:
                stats.add("wrong_texts")
                problems.append(f"version {number}: wrong text: {e}")
        if len(engine) != len(records):
            problems.append(f"version {number}: len() says {len(engine)}, iteration found {len(records)}")
        if verify is not None:
            report = engine.verify(cross_check=verify == "full")
            if not report.ok:
                problems.append(f"version {number}: verify: {report.problems}")
    return content, digest(records), problems


def _events(log: Path, kind: str) -> list[dict[str, Any]]:
    return [e for e in read_log(log) if e["event"] == kind]


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- racing writers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("writers", "ops", "slow_publish", "verify_all"),
    [
        pytest.param(3, RACE_OPS, True, False, id="3-writers-slow-publish"),
        pytest.param(2, 2 * RACE_OPS, False, True, id="2-writers-verify-all", marks=pytest.mark.slow),
    ],
)
def test_racing_writers_lose_nothing_and_number_versions_without_gaps(
    store: S3Target,
    child: Any,
    tmp_path: Path,
    seed: int,
    writers: int,
    ops: int,
    slow_publish: bool,
    verify_all: bool,
) -> None:
    go = tmp_path / "go"
    # A pause before each version object widens the window in which another writer publishes.
    hooks = (
        [
            {
                "target": "put_if_absent",
                "match": VERSIONS,
                "n": None,
                "when": "before",
                "action": "sleep",
                "seconds": 0.05,
            }
        ]
        if slow_publish
        else []
    )
    logs = [tmp_path / f"racer-{w}.jsonl" for w in range(writers)]
    procs = [
        child(
            "racer",
            {
                "url": store.url,
                "options": store.storage_options,
                "log": str(log),
                "seed": seed * 10 + w,
                "prefix": f"w{w}-",
                "ops": ops,
                "go": str(go),
                "hooks": hooks,
            },
            stdout=subprocess.PIPE,
        )
        for w, log in enumerate(logs)
    ]
    _wait_for(lambda: all(_events(log, "ready") for log in logs), 120, "the writers to start")
    # Version 1 is made here: creating a store while another process opens it is a test of its
    # own (test_opening_while_another_writer_creates_the_store), not a race these writers may lose.
    _open(store, dim=DIM, segment_records=4).close()
    go.touch()  # all start at once
    outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0] * writers, outputs

    model: dict[str, int] = {}
    acks: dict[int, tuple[int, dict[str, Any]]] = {}  # version -> (writer, acknowledged call)
    abandoned: list[dict[str, Any]] = []
    problems: list[str] = []
    conflicts = 0
    for w, (log, out) in enumerate(zip(logs, outputs, strict=True)):
        events = read_log(log)
        problems += [e["traceback"] for e in events if e["event"] == "error"]
        conflicts += sum(e["event"] == "conflict" for e in events)
        printed = {line.split()[1] for line in out.splitlines() if line.startswith("acked ")}
        logged = {i for e in events if e["event"] == "ack" and e["op"] == "add" for i in e["recs"]}
        if printed != logged:
            problems.append(f"writer {w}: printed acks {sorted(printed ^ logged)} differ from its log")
        seen = 0
        for e in events:
            if e["event"] == "ack":
                _apply(model, e)
                if e["version"] in acks:
                    problems.append(
                        f"version {e['version']} acknowledged twice: {acks[e['version']]} and {e}"
                    )
                acks[e["version"]] = (w, e)
                if e["version"] <= seen:
                    problems.append(
                        f"writer {w}: its call {e['call']} got version {e['version']} after {seen}"
                    )
                seen = e["version"]
            elif e["event"] == "abandon":
                abandoned.append(e)
    stats.add("s3 race conflicts retried or given up", conflicts)
    stats.add("s3 race calls acknowledged", len(acks))
    assert not problems, "\n".join(problems)

    with _open(store, create=False) as engine:
        listed = [v["version"] for v in engine.versions()]
        actual = {rec.id: check_record(rec) for rec in engine.iter_records()}
        assert len(engine) == len(actual)
        head = engine.version
    # 1..K without gaps: version 1 created the store, each later one is one acknowledged call.
    assert listed == list(range(1, len(acks) + 2)), (listed, sorted(acks))
    assert head == listed[-1]
    assert sorted(acks) == listed[1:]
    # Every acknowledged id is there with its exact text; nothing of a given-up call is.
    missing = sorted(set(model) - set(actual))
    assert not missing, f"acknowledged ids lost: {missing}"
    for e in abandoned:
        if e["op"] == "add":
            leaked = sorted(set(e["recs"]) & set(actual))
            assert not leaked, f"ids of a call that raised (and was given up) are stored: {leaked}"
    assert actual == model, {"extra": sorted(set(actual) - set(model))}

    # Each version is its parent plus exactly the call that reported it; each opens and reads whole.
    sample = set(random.Random(seed).sample(listed[:-1], min(VERIFY_SAMPLE, len(listed) - 1)))
    previous: dict[str, int] = {}
    for number in listed:
        check = "full" if number == listed[-1] else "quick" if verify_all or number in sample else None
        content, _, probs = read_version(store, number, verify=check)
        problems += probs
        if number == 1:
            if content:
                problems.append(f"version 1 (the store's creation) holds records: {content}")
            continue
        w, e = acks[number]
        added = {i: v for i, v in content.items() if previous.get(i) != v}
        removed = sorted(set(previous) - set(content))
        want = (e["recs"], []) if e["op"] == "add" else ({}, sorted(e["ids"]))
        if (added, removed) != want:
            problems.append(f"version {number} adds {added} and removes {removed}; writer {w}'s call did {e}")
        previous = content
    assert previous == model
    assert not problems, "\n".join(problems)

    # What the losers uploaded before they lost is unreferenced; cleanup takes exactly that.
    with _open(store, create=False) as engine:
        engine.cleanup(older_than=0, keep_last=1, grace=0)
        assert {rec.id: check_record(rec) for rec in engine.iter_records()} == model
    present, needed = bucket_objects(store), referenced(store)
    assert present == needed, {"unreferenced": sorted(present - needed), "missing": sorted(needed - present)}


# -- SIGKILL during upload and publish ------------------------------------------------------------


def check_after_kill(target: S3Target, log: Path, model: dict[str, int], follower: Engine) -> list[str]:
    """Reopen after a kill, compare with the acknowledged writes, clean up; returns problems.

    ``follower`` is a handle open since before the first kill: it must catch up with
    ``refresh()`` and, being at the newest version, read on unchanged through the cleanup.
    """
    problems, inflight = replay_log(log, model)
    engine = _open(target, create=False)  # opens with no repair
    try:
        listed = [v["version"] for v in engine.versions()]
        if listed != list(range(listed[0], listed[-1] + 1)) or engine.version != listed[-1]:
            problems.append(f"versions {listed}, handle opened version {engine.version}")
        for number in listed[:-1]:  # every version it lists opens and reads whole
            problems += read_version(target, number)[2]
        found, actual = compare_with_model(engine, model, inflight, label="s3 inflight")
        problems += found
        report = engine.verify()
        if not report.ok:
            problems.append(f"verify failed: {report.problems}")
        follower.refresh()
        followed = {rec.id: check_record(rec) for rec in follower.iter_records()}
        if followed != actual or follower.version != engine.version:
            problems.append(f"a handle open since the start reads version {follower.version}: {followed}")

        removed = engine.cleanup(older_than=0, keep_last=1, grace=0)
        stats.add("s3 leftover objects removed by cleanup", removed["objects_removed"])
        present, needed = bucket_objects(target), referenced(target)
        if present != needed:
            problems.append(
                f"after cleanup: unreferenced {sorted(present - needed)}, missing {sorted(needed - present)}"
            )
        after = {rec.id: check_record(rec) for rec in engine.iter_records()}
        if after != actual or len(engine) != len(actual):
            problems.append(f"the open handle reads otherwise after cleanup: {after} != {actual}")
        followed = {rec.id: (rec.text, rec.metadata) for rec in follower.iter_records()}
        if followed != {i: (text_for(i, v), meta_for(i, v)) for i, v in actual.items()}:
            problems.append("the handle open since the start reads otherwise after cleanup")
    finally:
        engine.close()
    with _open(target, create=False) as fresh:
        again = {rec.id: (rec.text, rec.metadata) for rec in fresh.iter_records()}
        exact = {i: (text_for(i, v), meta_for(i, v)) for i, v in actual.items()}
        if again != exact or len(fresh) != len(exact):
            problems.append("a fresh handle reads otherwise after cleanup")
        if not fresh.verify(cross_check=False).ok:
            problems.append("verify fails after cleanup")
    model.clear()
    model.update(actual)
    return problems


def _kill_cycles(
    target: S3Target, tmp_path: Path, seed: int, cycles: int, *, delays: tuple[float, float]
) -> None:
    for key in ("acked_lost", "half_visible", "wrong_texts"):
        stats.add(key, 0)
    rng = random.Random(seed)
    # Version 1, made here; this handle stays open through every kill and cleanup, catching up.
    follower = _open(target, dim=DIM, segment_records=4)
    zygote = subprocess.Popen(
        [sys.executable, "-m", "tests.reliability.s3_driver", "zygote"],
        cwd=REPO,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert zygote.stdin is not None
    assert zygote.stdout is not None
    model: dict[str, int] = {}
    failures: list[str] = []
    hit: dict[str, int] = {}
    try:
        for cycle in range(cycles):
            log = tmp_path / f"cycle-{cycle:03d}.jsonl"
            hooks: list[dict[str, Any]] = []
            if cycle % 2:
                method, match, n = KILL_POINTS[(cycle // 2) % len(KILL_POINTS)]
                when = "before" if (cycle // 2) % 2 == 0 else "after"
                if (cycle // (2 * len(KILL_POINTS))) % 2:
                    when = "after" if when == "before" else "before"
                hooks = [{"target": method, "match": match, "n": n, "when": when, "action": "kill"}]
            cfg = {
                "url": target.url,
                "options": target.storage_options,
                "log": str(log),
                "seed": seed * 1000 + cycle,
                "hooks": hooks,
            }
            zygote.stdin.write(json.dumps(cfg) + "\n")
            zygote.stdin.flush()
            tag, pid_text = zygote.stdout.readline().split()
            assert tag == "pid"
            pid = int(pid_text)
            # Random-delay cycles are killed by this timer; hooked cycles kill themselves, with
            # the timer as a backstop when the hooked call never comes.
            delay = rng.uniform(*delays) if not hooks else 4.0
            timer = threading.Timer(delay, _kill, (pid,))
            timer.start()
            _, reaped, status_text = zygote.stdout.readline().split()
            timer.cancel()
            assert int(reaped) == pid
            status = int(status_text)
            if not (os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL):
                failures.append(f"cycle {cycle}: child ended with status {status}: {read_log(log)[-1:]}")
                continue
            stats.add("s3 kills run")
            fired = _events(log, "hook")
            if fired:
                point = f"{fired[0]['target']} {fired[0]['match']}#{fired[0]['n']} {fired[0]['when']}"
                hit[point] = hit.get(point, 0) + 1
            problems = check_after_kill(target, log, model, follower)
            if problems:
                failures.append(f"cycle {cycle} (hooks {hooks}): " + "; ".join(problems))
            else:
                stats.add("s3 kills survived")
    finally:
        follower.close()
        zygote.stdin.close()
        zygote.wait(timeout=30)
    stats.put("s3 kill points hit", hit)
    assert not failures, "\n".join(failures[:10])


def test_sigkill_during_upload_and_publish(store: S3Target, tmp_path: Path, seed: int) -> None:
    _kill_cycles(store, tmp_path, seed, KILLS, delays=(0.2, 1.2))


@pytest.mark.slow
def test_sigkill_many_seeds(store: S3Target, tmp_path: Path, seed: int) -> None:
    """Every kill point both before and after its call, later random kills: the same checks."""
    _kill_cycles(store, tmp_path, seed + 1, 4 * len(KILL_POINTS), delays=(0.2, 2.0))


@pytest.mark.parametrize(
    ("method", "match", "when"),
    [
        ("put_file", "catalog/", "before"),  # the first checkpoint
        ("put_file", "catalog/", "after"),
        ("put_if_absent", VERSIONS, "before"),  # version 1
        ("put_if_absent", VERSIONS, "after"),
        ("put", "_latest", "before"),
    ],
)
def test_sigkill_while_creating_the_store(
    store: S3Target, child: Any, tmp_path: Path, method: str, match: str, when: str
) -> None:
    """A writer killed while it creates the store: the store then exists whole or not at all."""
    log = tmp_path / "create.jsonl"
    hook = {"target": method, "match": match, "n": 1, "when": when, "action": "kill"}
    cfg = {"url": store.url, "options": store.storage_options, "log": str(log), "seed": 1, "hooks": [hook]}
    proc = child("crash", {**cfg, "hook_open": True})
    assert proc.wait(timeout=120) == -signal.SIGKILL
    assert _events(log, "hook"), "the hook never fired"
    created = any(n.startswith(VERSIONS) for n in bucket_objects(store))
    assert created == (method == "put" or (method == "put_if_absent" and when == "after"))
    if not created:
        with pytest.raises(StoreNotFound):
            _open(store, create=False)
    with _open(store, dim=DIM, segment_records=4) as engine:
        assert engine.version == 1
        assert len(engine) == 0
        _add(engine, {"a": 1, "b": 1})
        assert engine.version == 2
        engine.cleanup(older_than=0, keep_last=1, grace=0)
        assert engine.verify().ok
    present, needed = bucket_objects(store), referenced(store)
    assert present == needed, {"unreferenced": sorted(present - needed), "missing": sorted(needed - present)}
    with _open(store, create=False) as engine:
        assert {rec.id: (rec.text, rec.metadata) for rec in engine.iter_records()} == {
            i: (text_for(i, 1), meta_for(i, 1)) for i in ("a", "b")
        }
    stats.add("s3 kills run")
    stats.add("s3 kills survived")


def test_opening_while_another_writer_creates_the_store(store: S3Target, child: Any, tmp_path: Path) -> None:
    """Two processes create one store at once: both end up on one store, nothing refused."""
    log = tmp_path / "creator.jsonl"
    pause = {
        "target": "put_if_absent",
        "match": VERSIONS,
        "n": 1,
        "when": "before",
        "action": "sleep",
        "seconds": 2,
    }
    cfg = {"url": store.url, "options": store.storage_options, "log": str(log), "seed": 3, "ops": 2}
    creator = child("crash", {**cfg, "hooks": [pause], "hook_open": True})
    _wait_for(lambda: any(n.startswith("catalog/") for n in bucket_objects(store)), 120, "the checkpoint")
    try:
        with _open(store, dim=DIM, segment_records=4) as engine:
            _add(engine, {"mine": 1})
    finally:
        assert creator.wait(timeout=120) == 0
    assert not _events(log, "error")
    with _open(store, create=False) as engine:
        listed = [v["version"] for v in engine.versions()]
        ids = set(engine.ids())
    assert listed == list(range(1, len(listed) + 1))
    acked = {i for e in _events(log, "ack") if e["op"] == "add" for i in e["recs"]}
    assert {"mine"} | acked <= ids


# -- a handle whose version cleanup removed ----------------------------------------------------


def test_a_handle_whose_version_was_cleaned_up_catches_up(store: S3Target) -> None:
    with _open(store, dim=DIM) as stale, _open(store) as writer:  # version 1, empty
        _add(writer, {"x": 1})
        _add(writer, {"y": 1})  # versions 2 and 3
        assert writer.cleanup(older_than=0, keep_last=1, grace=0)["versions_removed"] == [1, 2]
        assert stale.refresh() == writer.version == 3
        assert sorted(stale.ids()) == ["x", "y"]


def test_a_write_through_a_handle_whose_version_was_cleaned_up_is_kept(store: S3Target) -> None:
    with _open(store, dim=DIM) as stale, _open(store) as writer:
        _add(writer, {"x": 1})
        _add(writer, {"y": 1})
        writer.cleanup(older_than=0, keep_last=1, grace=0)  # removes versions 1 and 2
        try:
            _add(stale, {"z": 1})
        except MemvidError:  # refusing is fine; an acknowledged write must be kept
            acknowledged = False
        else:
            acknowledged = True
    with _open(store, create=False) as fresh:
        numbers = [v["version"] for v in fresh.versions()]
        ids = sorted(fresh.ids())
    assert numbers[0] >= 3, f"a removed version number was made again: {numbers}"
    assert ids == (["x", "y", "z"] if acknowledged else ["x", "y"]), (acknowledged, ids)


# -- a reader during commits -----------------------------------------------------------------


def test_reader_never_sees_a_partial_commit(store: S3Target, child: Any, tmp_path: Path, seed: int) -> None:
    with _open(store, dim=DIM, segment_records=4) as engine:  # versions 1 and 2
        _add(engine, {f"s{i}": 1 for i in range(5)})
    done = tmp_path / "done"
    reader_log, writer_log = tmp_path / "reader.jsonl", tmp_path / "writer.jsonl"
    universe = [f"s{i}" for i in range(5)] + [f"w-{k:04d}" for k in range(3 * 20)]
    reader = child(
        "reader",
        {
            "url": store.url,
            "options": store.storage_options,
            "log": str(reader_log),
            "universe": universe,
            "done": str(done),
            "min_rounds": 3,
        },
    )
    _wait_for(lambda: bool(_events(reader_log, "snap")), 120, "the reader's first read")
    slow = [
        {"target": t, "n": None, "when": "after", "action": "sleep", "seconds": 0.04}
        for t in ("put_file", "put")
    ]
    (tmp_path / "go").touch()
    writer = child(
        "racer",
        {
            "url": store.url,
            "options": store.storage_options,
            "log": str(writer_log),
            "seed": seed,
            "prefix": "w-",
            "ops": 20,
            "go": str(tmp_path / "go"),
            "hooks": slow,
        },
        stdout=subprocess.DEVNULL,
    )
    assert writer.wait(timeout=240) == 0
    done.touch()
    assert reader.wait(timeout=120) == 0
    errors = _events(writer_log, "error") + _events(reader_log, "error")
    assert not errors, errors[0]["traceback"]

    with _open(store, create=False) as engine:
        listed = [v["version"] for v in engine.versions()]
    published: dict[int, tuple[int, str]] = {}
    for number in listed:
        content, dig, problems = read_version(store, number)
        assert not problems, problems
        published[number] = (len(content), dig)
    assert listed == list(range(1, len(listed) + 1))
    by_digest = {dig: n for n, (_, dig) in published.items()}
    counts = {count for count, _ in published.values()}
    wrong: list[str] = []
    seen: set[int] = set()
    for e in _events(reader_log, "snap"):
        if e["after"] != e["version"] or (e["len"], e["digest"]) != published.get(e["version"]):
            wrong.append(f"refreshed handle at version {e['version']}: {e} != {published.get(e['version'])}")
        if e["n"] != e["len"]:
            wrong.append(f"len() {e['len']} but {e['n']} records read: {e}")
        seen.add(e["version"])
    gets = _events(reader_log, "get")
    for e in gets:
        if e["digest"] not in by_digest:
            wrong.append(f"one get() returned {e['n']} records that no published version holds")
    for e in _events(reader_log, "len"):
        if e["n"] not in counts:
            wrong.append(f"len() {e['n']} is the count of no published version {sorted(counts)}")
    stats.add("s3 reader reads checked", len(gets) + len(seen))
    stats.put("s3 reader: versions seen / published", f"{len(seen)} / {len(listed)}")
    assert not wrong, "\n".join(wrong[:10])
    assert len(seen) >= 2, f"the reader saw only versions {sorted(seen)}: the test proved nothing"
