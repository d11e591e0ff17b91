"""The LangChain face on stores at a URL: MemvidVectorStore, the retrievers and open_store.

Each test runs on ``memory://`` (a fresh name per test) and on S3 (moto, tests/s3_server.py):
documents written through MemvidVectorStore read back, a second handle sees them after
``refresh()``, an old version opens read-only with exactly its texts, and wrong arguments are
refused with an error that says what is wrong.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from langchain_core.embeddings import DeterministicFakeEmbedding

from langchain_memvid import MemvidRetriever, MemvidVectorStore
from langchain_memvid import vectorstores as vectorstores_module
from langchain_memvid.engine import InvalidArgument, ReadOnlyStore, StoreNotFound
from langchain_memvid.querying import open_store
from tests.s3_server import S3Target

pytest_plugins = ["tests.s3_server"]  # the moto_server and s3_bucket fixtures

# moto listens on 127.0.0.1; nothing else may be reached (see tests/s3_server.py).
pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])


@pytest.fixture(autouse=True)
def _object_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the object cache out of ~/.cache."""
    monkeypatch.setenv("LCMEMVID_CACHE", str(tmp_path / "cache"))


@pytest.fixture(params=["memory", "s3"])
def target(request: pytest.FixtureRequest) -> S3Target:
    """A store location that holds nothing yet, with its storage options."""
    if request.param == "s3":
        s3: S3Target = request.getfixturevalue("s3_bucket")
        return s3
    return S3Target(f"memory://face-{uuid.uuid4().hex}", {})


@pytest.fixture
def emb() -> DeterministicFakeEmbedding:
    return DeterministicFakeEmbedding(size=6)


def _open(target: S3Target, emb: DeterministicFakeEmbedding | None, **options: Any) -> MemvidVectorStore:
    return MemvidVectorStore(target.url, emb, storage_options=target.storage_options or None, **options)


def _texts(store: MemvidVectorStore) -> set[str]:
    return {d.page_content for d in store.get_by_ids(store.engine.ids())}


@pytest.fixture
def history(target: S3Target, emb: DeterministicFakeEmbedding) -> dict[int, set[str]]:
    """A store with three versions after its creation: the texts each version holds."""
    seen: dict[int, set[str]] = {}
    with _open(target, emb) as store:
        store.add_texts(["alpha", "beta"], ids=["a", "b"])
        seen[store.version or 0] = {"alpha", "beta"}
        store.add_texts(["gamma"], ids=["c"])
        seen[store.version or 0] = {"alpha", "beta", "gamma"}
        store.delete(["a"])
        seen[store.version or 0] = {"beta", "gamma"}
    return seen


# -- reading and writing ----------------------------------------------------------------------


def test_add_get_delete_and_search_on_a_url(target: S3Target, emb: DeterministicFakeEmbedding) -> None:
    with _open(target, emb) as store:
        assert store.path == target.url  # the caller's string, not Path("s3:/...") nor the work folder
        assert store.read_only is False
        ids = store.add_texts(["foo", "bar", "baz"], [{"n": 1}, {"n": 2}, {"n": 3}], ids=["1", "2", "3"])
        assert ids == ["1", "2", "3"]
        got = store.get_by_ids(["3", "1"])
        assert {(d.id, d.page_content, d.metadata["n"]) for d in got} == {("1", "foo", 1), ("3", "baz", 3)}
        assert [d.page_content for d in store.similarity_search("bar", k=1)] == ["bar"]
        assert [d.id for d in store.similarity_search("foo", k=3, filter={"n": {"$gte": 2}})] != []
        assert store.delete(["2"]) is True
        assert store.get_by_ids(["2"]) == []
        assert len(store) == 2
        assert "bar" not in [d.page_content for d in store.similarity_search("bar", k=3)]
        written = store.version
    # What was committed is in the bucket: a new handle reads it.
    with _open(target, emb) as again:
        assert again.version == written
        assert _texts(again) == {"foo", "baz"}


def test_from_texts_and_retrievers_take_a_url(target: S3Target, emb: DeterministicFakeEmbedding) -> None:
    options = target.storage_options or None
    with MemvidVectorStore.from_texts(
        ["red", "green", "blue"], emb, ids=["r", "g", "b"], path=target.url, storage_options=options
    ) as store:
        assert store.path == target.url
        assert [d.id for d in store.as_retriever(search_kwargs={"k": 1}).invoke("green")] == ["g"]
        version = store.version
        store.add_texts(["cyan"], ids=["c"])
    retriever = MemvidRetriever(path=target.url, embedding=emb, storage_options=options, version=version, k=4)
    try:
        assert retriever.vectorstore.read_only
        assert {d.page_content for d in retriever.invoke("cyan")} == {"red", "green", "blue"}
    finally:
        retriever.vectorstore.close()


def test_a_second_handle_sees_writes_after_refresh(target: S3Target, emb: DeterministicFakeEmbedding) -> None:
    with _open(target, emb) as first:
        first.add_texts(["one"], ids=["1"])
        with _open(target, emb, refresh_interval=3600) as second:
            assert _texts(second) == {"one"}
            first.add_texts(["two"], ids=["2"])
            assert second.version != first.version  # no check for an hour: still the old version
            assert second.refresh() == first.version
            assert second.version == first.version
            assert _texts(second) == {"one", "two"}
            assert [d.page_content for d in second.similarity_search("two", k=1)] == ["two"]
            # ... and the other way round: a write from the second handle reaches the first.
            second.delete(["1"])
            assert first.refresh() == second.version
            assert first.get_by_ids(["1"]) == []


# -- versions ----------------------------------------------------------------------------------


def test_versions_lists_every_operation(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]]
) -> None:
    with _open(target, emb) as store:
        listed = store.versions()
    assert [v["version"] for v in listed] == sorted(v["version"] for v in listed)
    assert [v["operation"] for v in listed] == ["create", "add", "add", "delete"]
    assert [v["version"] for v in listed][1:] == sorted(history)
    assert all(isinstance(v["created"], float) and isinstance(v["summary"], str) for v in listed)


def test_version_opens_exactly_that_version_read_only(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]]
) -> None:
    for number, texts in history.items():
        with _open(target, emb, version=number) as old:
            assert old.version == number
            assert old.read_only is True
            assert _texts(old) == texts
            assert {d.page_content for d in old.similarity_search("alpha", k=10)} == texts
            with pytest.raises(ReadOnlyStore):
                old.add_texts(["late"], ids=["z"])
            with pytest.raises(ReadOnlyStore):
                old.delete(["b"])
            assert _texts(old) == texts
    with _open(target, emb) as store:  # nothing of the refused writes reached the store
        assert _texts(store) == {"beta", "gamma"}
        assert store.version == max(history)


@pytest.mark.parametrize("kind", ["naive", "aware", "float"])
def test_as_of_opens_the_version_of_that_time(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]], kind: str
) -> None:
    with _open(target, emb) as store:
        created = {v["version"]: v["created"] for v in store.versions()}
    numbers = sorted(history)
    for number in numbers[:-1]:
        # Halfway to the next version: inside this version's time, whatever the rounding.
        moment = (created[number] + created[number + 1]) / 2
        as_of: datetime | float
        if kind == "naive":
            as_of = datetime.fromtimestamp(moment)  # local time, as datetime.timestamp() reads it
        elif kind == "aware":
            as_of = datetime.fromtimestamp(moment, tz=timezone(timedelta(hours=-5)))
        else:
            as_of = moment
        with _open(target, emb, as_of=as_of) as old:
            assert old.version == number
            assert old.read_only is True
            assert _texts(old) == history[number]
            with pytest.raises(ReadOnlyStore):
                old.add_texts(["late"])
    with _open(target, emb, as_of=datetime.now(timezone.utc)) as latest:
        assert latest.version == numbers[-1]
        assert latest.read_only is True


def test_the_recorded_model_is_named_by_the_url(
    target: S3Target, emb: DeterministicFakeEmbedding, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening without an embedding: the recorded model is looked up for the URL, not the work folder."""
    MemvidVectorStore.from_texts(
        ["x"], emb, path=target.url, storage_options=target.storage_options or None
    ).close()
    asked: list[Any] = []

    def recorded(path: Any, name: str | None, dim: int | None) -> DeterministicFakeEmbedding:
        asked.append((path, name, dim))
        return emb

    monkeypatch.setattr(vectorstores_module, "recorded_embedding", recorded)
    with open_store(target.url, None, storage_options=target.storage_options or None) as store:
        assert store.embeddings is emb
        assert _texts(store) == {"x"}
    assert asked == [(target.url, "DeterministicFakeEmbedding", 6)]


def test_cleanup_removes_old_versions(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]]
) -> None:
    with _open(target, emb) as store:
        removed = store.cleanup(older_than=timedelta(0), keep_last=1)
        assert isinstance(removed, dict)
        assert [v["version"] for v in store.versions()] == [max(history)]
        assert _texts(store) == {"beta", "gamma"}
    with pytest.raises(StoreNotFound, match=f"no version {min(history)}"):
        _open(target, emb, version=min(history))


# -- wrong arguments ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, -1, "x", "2", 1.0, True])
def test_a_version_that_is_not_a_number_is_refused(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]], version: Any
) -> None:
    with pytest.raises(InvalidArgument, match="version"):
        _open(target, emb, version=version)


@pytest.mark.parametrize("as_of", ["yesterday", float("nan"), True, [1.0]])
def test_an_as_of_that_is_not_a_time_is_refused(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]], as_of: Any
) -> None:
    with pytest.raises(InvalidArgument, match="as_of"):
        _open(target, emb, as_of=as_of)


@pytest.mark.parametrize("with_embedding", [True, False])
def test_a_version_that_does_not_exist_is_named(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]], with_embedding: bool
) -> None:
    missing = max(history) + 10
    with pytest.raises(StoreNotFound, match=f"has no version {missing}"):
        _open(target, emb if with_embedding else None, version=missing)
    with pytest.raises(StoreNotFound, match="no version as old as"):
        _open(target, emb if with_embedding else None, as_of=datetime(2000, 1, 1, tzinfo=timezone.utc))


def test_no_store_at_the_url(target: S3Target, emb: DeterministicFakeEmbedding) -> None:
    with pytest.raises(StoreNotFound, match="pass an embedding"):
        _open(target, None)
    with pytest.raises(StoreNotFound):
        _open(target, emb, version=1)


def test_version_and_as_of_together_are_refused(
    target: S3Target, emb: DeterministicFakeEmbedding, history: dict[int, set[str]]
) -> None:
    with pytest.raises(InvalidArgument, match="not both"):
        _open(target, emb, version=min(history), as_of=time.time())


# -- a local folder stays what it was ----------------------------------------------------------


def test_a_local_folder_keeps_no_versions(tmp_path: Path, emb: DeterministicFakeEmbedding) -> None:
    folder = tmp_path / "store"
    with MemvidVectorStore(str(folder), emb) as store:
        assert store.path == folder  # a Path, as before
        store.add_texts(["local"], ids=["l"])
        assert store.version is None
        assert store.read_only is False
        with pytest.raises(InvalidArgument, match="format-1/2"):
            store.versions()
        with pytest.raises(InvalidArgument, match="format-1/2"):
            store.cleanup()
    assert (folder / "catalog.sqlite").exists()
    with pytest.raises(InvalidArgument, match="format-1/2"):
        MemvidVectorStore(folder, emb, version=1)


def test_storage_options_with_a_local_folder_are_refused(
    tmp_path: Path, emb: DeterministicFakeEmbedding
) -> None:
    options = {"key": "k", "secret": "s"}
    with pytest.raises(InvalidArgument, match="storage_options"):
        MemvidVectorStore(tmp_path / "store", emb, storage_options=options)
    with pytest.raises(InvalidArgument, match="storage_options"):
        open_store(tmp_path / "store", None, storage_options=options)
    with pytest.raises(ValueError, match="storage_options"):  # pydantic wraps it
        MemvidRetriever(path=tmp_path / "store", embedding=emb, storage_options=options)
    assert not (tmp_path / "store").exists()
