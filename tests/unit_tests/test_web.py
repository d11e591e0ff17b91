"""The web page's JSON API (`lcmemvid serve`), through Starlette's test client: no socket, no browser.

The store is web_store.py's: a few topic documents, a record spanning several frames, an id that
needs escaping, fillers to browse and a hostile document. The real browser is test_web_browser.py.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from langchain_memvid import MemvidVectorStore, web
from langchain_memvid import engine as engine_module
from langchain_memvid.cli import cli
from langchain_memvid.engine import CorruptData, InvalidArgument
from langchain_memvid.web import StoreView, create_app, search_with_mode

from .web_store import FILLERS, HOSTILE_META, HOSTILE_TEXT, ODD_ID, build_store, documents

RECORDS = len(documents())


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MemvidVectorStore]:
    vs = build_store(tmp_path_factory.mktemp("web") / "store")
    try:
        yield vs
    finally:
        vs.close()


@pytest.fixture(scope="module")
def client(store: MemvidVectorStore) -> TestClient:
    # The app answers local host names only: the client must address 127.0.0.1, not "testserver".
    return TestClient(create_app(store), base_url="http://127.0.0.1")


def error_of(response: Any, status: int) -> str:
    """The `error` message of a refused request, after checking it is JSON and no traceback."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    message = response.json()["error"]
    assert isinstance(message, str)
    assert message
    return message


# -- the page and its files ------------------------------------------------------------------------


def test_page_and_its_files_are_served_with_a_strict_policy(client: TestClient) -> None:
    page = client.get("/", params={"q": "qr", "k": "3"})  # a search link serves the same page
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<script src="/static/page.js" defer></script>' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    js = client.get("/static/page.js")
    assert js.status_code == 200
    assert js.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/page.css").headers["content-type"].startswith("text/css")
    for name in ["index.html", "..%2Fapp.py", "nope.js"]:
        error_of(client.get(f"/static/{name}"), 404)


def test_page_script_never_writes_markup() -> None:
    # Text reaches the page through textContent only; none of these may ever appear.
    source = (Path(web.__file__).parent / "static" / "page.js").read_text(encoding="utf-8")
    for sink in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"]:
        assert sink not in source, sink
    page = (Path(web.__file__).parent / "static" / "index.html").read_text(encoding="utf-8")
    assert "<script>" not in page  # no inline script: the policy would block it anyway
    assert " on" + "click=" not in page


# -- /api/stats ------------------------------------------------------------------------------------


def test_stats_give_the_figures_versions_and_modes(client: TestClient, store: MemvidVectorStore) -> None:
    stats = client.get("/api/stats").json()
    assert stats["store"] == "store"  # the folder's name, not its path on this machine
    assert stats["records"] == RECORDS
    assert stats["video_bytes"] > 0
    assert stats["video_to_text"] == pytest.approx(stats["video_bytes"] / stats["text_bytes"])
    assert stats["model"] == "TopicEmbedding"
    assert stats["profile"] == "lossless"
    assert stats["index_type"]
    assert stats["versions"]["format"] >= 1
    assert stats["versions"]["commits"] >= 1
    assert stats["modes"][0] == "vector"
    assert stats["modes"] == ["vector", "lexical", "hybrid"]
    assert stats["limits"]["k"] == 100


# -- /api/search -----------------------------------------------------------------------------------


def test_search_ranks_hits_with_their_place_in_the_video(client: TestClient) -> None:
    result = client.get("/api/search", params={"q": "QR damage", "k": "2"}).json()
    assert result["mode"] == "vector"
    assert result["k"] == 2
    assert "cosine" in result["scores"]
    hits = result["hits"]
    assert [h["id"] for h in hits] == ["qr-damage", "qr-history"]
    assert [h["rank"] for h in hits] == [1, 2]
    assert hits[0]["score"] >= hits[1]["score"]
    top = hits[0]
    assert top["where"] == "qr.pdf, p. 2"
    assert top["page"] == "2"
    assert top["text"].startswith("A QR code survives damage")
    place = top["location"]
    assert place["segment"].startswith("segments/")
    assert place["segment"].endswith(".mov")
    assert place["frame"] >= 1
    assert place["timestamp"] > 0
    name = place["segment"].removeprefix("segments/").removesuffix(".mov")
    assert top["frame_url"] == f"/api/frames/{name}/{place['frame']}.png"


def test_search_with_a_filter(client: TestClient) -> None:
    result = client.get(
        "/api/search",
        params={"q": "video film", "k": "10", "filter": '{"source": {"$in": ["notes/film.txt"]}}'},
    ).json()
    assert [h["id"] for h in result["hits"]] == ["film-archive"]
    assert result["filter"] == {"source": {"$in": ["notes/film.txt"]}}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, "q is required"),
        ({"q": "   "}, "q is required"),
        ({"q": "x" * 2001}, "the most is 2,000"),
        ({"q": "qr", "k": "0"}, "k must be an integer from 1 to 100; got '0'"),
        ({"q": "qr", "k": "101"}, "k must be an integer from 1 to 100"),
        ({"q": "qr", "k": "four"}, "k must be an integer"),
        ({"q": "qr", "k": "-3"}, "k must be an integer"),
        ({"q": "qr", "mode": "telepathy"}, "mode must be one of vector"),
        ({"q": "qr", "filter": "{source: 1}"}, "filter: not valid JSON"),
        ({"q": "qr", "filter": '["a"]'}, "filter: must be a JSON object"),
        ({"q": "qr", "filter": '{"a": {"$near": 1}}'}, "filter: unknown filter operator '$near'"),
        ({"q": "qr", "filter": "[" * 5000}, "filter: nested too deeply"),
    ],
)
def test_bad_search_parameters_get_400_with_a_message(
    client: TestClient, params: dict[str, str], expected: str
) -> None:
    assert expected in error_of(client.get("/api/search", params=params), 400)


def test_unknown_mode_message_names_the_allowed_modes(client: TestClient) -> None:
    message = error_of(client.get("/api/search", params={"q": "qr", "mode": "telepathy"}), 400)
    allowed = "vector, lexical, hybrid"
    assert message == f"mode must be one of {allowed}; got 'telepathy'."


class VectorOnly:
    """The store without lexical and hybrid search, as before they existed."""

    def __init__(self, store: MemvidVectorStore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in ("lexical_search_with_score", "hybrid_search_with_score"):
            raise AttributeError(name)
        return getattr(self._store, name)


def test_modes_are_offered_only_when_the_store_has_them(store: MemvidVectorStore) -> None:
    client = TestClient(create_app(StoreView(VectorOnly(store))), base_url="http://127.0.0.1")
    assert client.get("/api/stats").json()["modes"] == ["vector"]
    for mode in ["lexical", "hybrid"]:
        message = error_of(client.get("/api/search", params={"q": "qr", "mode": mode}), 400)
        assert message == f"mode must be one of vector; got '{mode}'."
    assert client.get("/api/search", params={"q": "qr", "mode": "vector"}).status_code == 200


def test_one_dispatch_from_mode_to_method() -> None:
    calls = []

    class Fake:
        def similarity_search_with_score(self, query: str, k: int = 4, filter: Any = None) -> list[Any]:
            calls.append(("vector", query, k, filter))
            return []

        def lexical_search_with_score(self, query: str, k: int = 4, filter: Any = None) -> list[Any]:
            calls.append(("lexical", query, k, filter))
            return []

    search_with_mode(Fake(), "vector", "q1", 3, None)
    search_with_mode(Fake(), "lexical", "q2", 5, {"a": 1})
    assert calls == [("vector", "q1", 3, None), ("lexical", "q2", 5, {"a": 1})]
    with pytest.raises(InvalidArgument, match=r"mode must be one of vector, lexical; got 'hybrid'"):
        search_with_mode(Fake(), "hybrid", "q", 1, None)


def test_lexical_and_hybrid_modes(client: TestClient) -> None:
    lexical = client.get("/api/search", params={"q": "Reed-Solomon", "k": "3", "mode": "lexical"}).json()
    assert lexical["mode"] == "lexical"
    assert lexical["hits"][0]["id"] == "qr-damage"
    assert lexical["hits"][0]["location"]["segment"].startswith("segments/")
    assert "BM25" in lexical["scores"]
    hybrid = client.get(
        "/api/search",
        params={"q": "Reed-Solomon damage", "k": "3", "mode": "hybrid", "filter": '{"page": 1}'},
    ).json()
    assert [h["id"] for h in hybrid["hits"]] == ["qr-damage"]
    assert hybrid["hits"][0]["score"] > 0


@pytest.mark.skipif(not hasattr(engine_module, "LexiconMissing"), reason="no lexical index in this engine")
def test_a_store_without_lexicon_gets_409(store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = engine_module.LexiconMissing

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise missing("Segments 1-2 have no lexical index; run build-lexicon.")

    view = StoreView(store)
    monkeypatch.setattr(store, "lexical_search_with_score", refuse)
    client = TestClient(create_app(view), base_url="http://127.0.0.1")
    assert "build-lexicon" in error_of(client.get("/api/search", params={"q": "qr", "mode": "lexical"}), 409)


# -- /api/records ----------------------------------------------------------------------------------


def test_a_record_with_its_frame_and_neighbours(client: TestClient) -> None:
    record = client.get("/api/records/video-codecs").json()
    assert record["id"] == "video-codecs"
    assert record["where"] == "video.epub, Digital video"
    assert record["metadata"]["chapter"] == "Digital video"
    assert record["text"].startswith("Video codecs")
    place = record["location"]
    assert record["frame_url"].endswith(f"/{place['frame']}.png")
    strip = record["strip"]
    frames = [f["frame"] for f in strip]
    assert frames == list(range(frames[0], frames[-1] + 1))
    assert place["frame"] in frames
    assert [f["frame"] for f in strip if f["holds_record"]] == [place["frame"]]
    assert 0 <= frames[0] <= frames[-1] < record["segment_frames"]


def test_a_record_spanning_frames_marks_them_all(client: TestClient) -> None:
    record = client.get("/api/records/long-record").json()
    place = record["location"]
    assert place["frame_count"] >= 2
    own = [f["frame"] for f in record["strip"] if f["holds_record"]]
    assert own == list(range(place["frame"], place["frame"] + place["frame_count"]))


def test_record_ids_travel_escaped(client: TestClient) -> None:
    record = client.get("/api/records/" + quote(ODD_ID, safe="")).json()
    assert record["id"] == ODD_ID


def test_unknown_and_empty_record_ids(client: TestClient) -> None:
    assert (
        error_of(client.get("/api/records/no-such-id"), 404)
        == "No record with id 'no-such-id' in this store."
    )
    assert "id is required" in error_of(client.get("/api/records/"), 400)


def test_browse_pages_cover_every_record_once(client: TestClient) -> None:
    seen = []
    offset = 0
    while True:
        page = client.get("/api/records", params={"offset": str(offset), "limit": "10"}).json()
        assert page["total"] == RECORDS
        seen += [r["id"] for r in page["records"]]
        assert [r["rank"] for r in page["records"]] == list(
            range(offset + 1, offset + len(page["records"]) + 1)
        )
        if not page["records"]:
            break
        offset += 10
    assert sorted(seen) == sorted(d.id for d in documents() if d.id)


def test_browse_by_source_and_list_sources(client: TestClient) -> None:
    page = client.get("/api/records", params={"source": "filler.txt", "limit": "100"}).json()
    assert page["total"] == FILLERS
    assert {r["source"] for r in page["records"]} == {"filler.txt"}
    assert client.get("/api/records", params={"source": "nowhere.txt"}).json()["total"] == 0
    sources = client.get("/api/sources").json()
    assert {"source": "filler.txt", "records": FILLERS} in sources["sources"]
    assert sources["unsourced"] == 1  # the odd id has no metadata
    assert [s["source"] for s in sources["sources"]] == sorted(s["source"] for s in sources["sources"])


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"offset": "-1"}, "offset must be an integer of at least 0"),
        ({"limit": "0"}, "limit must be an integer from 1 to 100"),
        ({"limit": "1000"}, "limit must be an integer from 1 to 100"),
        ({"offset": "1.5"}, "offset must be an integer"),
    ],
)
def test_bad_browse_parameters_get_400(client: TestClient, params: dict[str, str], expected: str) -> None:
    assert expected in error_of(client.get("/api/records", params=params), 400)


def test_hostile_markup_comes_back_as_data(client: TestClient) -> None:
    record = client.get("/api/records/hostile")
    assert record.headers["content-type"] == "application/json"
    assert record.json()["text"] == HOSTILE_TEXT
    assert record.json()["metadata"] == HOSTILE_META
    hits = client.get("/api/search", params={"q": "hostile", "k": "1"}).json()["hits"]
    assert hits[0]["text"] == HOSTILE_TEXT


# -- /api/frames -----------------------------------------------------------------------------------


def test_frame_png_is_the_stored_frame(client: TestClient, store: MemvidVectorStore) -> None:
    place = store.locate(["qr-history"])["qr-history"]
    name = place.segment.removeprefix("segments/").removesuffix(".mov")
    response = client.get(f"/api/frames/{name}/{place.frame}.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = cv2.imdecode(np.frombuffer(response.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(image, store.engine.frame_image(name, place.frame))
    # The name as `locate` gives the file works too, and `scale` enlarges each module.
    big = client.get(f"/api/frames/{name}.mov/{place.frame}.png", params={"scale": "3"})
    enlarged = cv2.imdecode(np.frombuffer(big.content, np.uint8), cv2.IMREAD_GRAYSCALE)
    assert enlarged.shape == (image.shape[0] * 3, image.shape[1] * 3)


def test_frame_requests_never_leave_the_store(client: TestClient, store: MemvidVectorStore) -> None:
    real = store.locate(["qr-history"])["qr-history"].segment.removeprefix("segments/").removesuffix(".mov")
    # A file that looks like a segment but that the catalog does not list is never served.
    planted = store.path / "segments" / "00000099-deadbeef.mov"
    planted.write_bytes((store.path / "segments" / f"{real}.mov").read_bytes())
    outside = store.path.parent / "secret.mov"
    outside.write_bytes(b"secret")
    try:
        for segment in [
            "00000099-deadbeef",
            "...",
            "catalog.sqlite",
            "segments",
            real[:8],
            real.upper(),
            "%00",
        ]:
            assert "No segment" in error_of(client.get(f"/api/frames/{segment}/1.png"), 404), segment
        for path in [
            "/api/frames/../secret/0.png",  # the client may resolve "..": then nothing matches
            "/api/frames/%2E%2E/0.png",
            "/api/frames/..%2Fsecret/0.png",
            "/api/frames/%2Fetc%2Fpasswd/0.png",
            f"/api/frames/{real}/..%2F..%2Fsecret.png",
        ]:
            response = client.get(path)
            assert response.status_code in (400, 404), path
            assert response.headers["content-type"] == "application/json"
    finally:
        planted.unlink()
        outside.unlink()


@pytest.mark.parametrize(
    ("frame", "query", "status", "expected"),
    [
        ("9999", "", 404, "has frames 0.."),
        ("-1", "", 400, "frame must be an integer of at least 0"),
        ("one", "", 400, "frame must be an integer"),
        ("1", "?scale=0", 400, "scale must be an integer from 1 to 8"),
        ("1", "?scale=9", 400, "scale must be an integer from 1 to 8"),
    ],
)
def test_bad_frame_parameters(
    client: TestClient, store: MemvidVectorStore, frame: str, query: str, status: int, expected: str
) -> None:
    name = store.locate(["qr-history"])["qr-history"].segment.removeprefix("segments/").removesuffix(".mov")
    assert expected in error_of(client.get(f"/api/frames/{name}/{frame}.png{query}"), status)


# -- verify ----------------------------------------------------------------------------------------


def test_verify_runs_in_the_background_and_reports(client: TestClient) -> None:
    assert client.get("/api/verify").json()["state"] in ("idle", "done")
    started = client.post("/api/verify", json={"cross_check": False})
    assert started.status_code == 202
    assert started.json()["state"] in ("running", "done")
    assert started.json()["frames"] > 0
    deadline = time.monotonic() + 60
    status = started.json()
    while status["state"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        status = client.get("/api/verify").json()
    assert status["state"] == "done", status
    result = status["result"]
    assert result["ok"] is True
    assert result["records_checked"] == RECORDS
    assert result["frames_checked"] == status["frames"]
    assert result["frames_cross_checked"] == 0
    assert result["problems"] == []


def test_verify_takes_json_only(client: TestClient) -> None:
    # A form on another site can post text/plain without asking; JSON needs a preflight it cannot pass.
    assert "application/json" in error_of(client.post("/api/verify", content=b"{}"), 415)
    assert "application/json" in error_of(
        client.post("/api/verify", content=b"cross_check=1", headers={"content-type": "text/plain"}), 415
    )
    assert "cross_check" in error_of(client.post("/api/verify", json={"cross_check": "yes"}), 400)
    assert "not valid JSON" in error_of(
        client.post("/api/verify", content=b"{", headers={"content-type": "application/json"}), 400
    )
    assert "1024 bytes at most" in error_of(client.post("/api/verify", json={"pad": "x" * 2000}), 413)


# -- safety and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"])
def test_local_host_names_are_answered(client: TestClient, host: str) -> None:
    assert client.get("/api/stats", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", ""])
def test_other_host_names_are_refused(client: TestClient, host: str) -> None:
    # A page on another site that rebinds its name to 127.0.0.1 sends its own name as Host.
    message = error_of(client.get("/api/stats", headers={"host": host}), 400)
    assert "--host 0.0.0.0" in message


def test_any_host_when_listening_everywhere(store: MemvidVectorStore) -> None:
    client = TestClient(create_app(store, allowed_hosts=None), base_url="http://box.example")
    assert client.get("/api/stats").status_code == 200


def test_unknown_paths_and_methods_get_json_errors(client: TestClient) -> None:
    assert "docs/web.md" in error_of(client.get("/api/nothing"), 404)
    assert error_of(client.post("/api/search", params={"q": "qr"}), 405).startswith(
        "POST is not allowed on /api/search; it answers GET"
    )
    error_of(client.delete("/api/records/qr-history"), 405)
    error_of(client.put("/api/records/qr-history", json={}), 405)


def test_store_failures_are_500_with_a_message_and_no_trace(
    store: MemvidVectorStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(create_app(store), base_url="http://127.0.0.1", raise_server_exceptions=False)

    def damaged(ids: Any) -> Any:
        raise CorruptData("Frame 3 of segments/x.mov fails its CRC-32; run `verify`.")

    monkeypatch.setattr(store, "get_by_ids", damaged)
    message = error_of(client.get("/api/records/qr-history"), 500)
    assert message == "The store could not answer: Frame 3 of segments/x.mov fails its CRC-32; run `verify`."

    def broken(ids: Any) -> Any:
        raise RuntimeError("/secret/path in a message")

    monkeypatch.setattr(store, "get_by_ids", broken)
    message = error_of(client.get("/api/records/qr-history"), 500)
    assert message == "Internal error (RuntimeError); the server's log has the details."


# -- the web stack and the command -----------------------------------------------------------------


def test_without_the_web_extra_the_install_command_is_named(
    monkeypatch: pytest.MonkeyPatch, store: MemvidVectorStore
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a)
    )
    with pytest.raises(web.WebStackMissing, match=r'needs uvicorn.*pip install "langchain-qrvideo\[web\]"'):
        web.start_server(store)
    result = CliRunner().invoke(cli, ["serve", str(store.path)])
    assert result.exit_code == 1
    assert 'pip install "langchain-qrvideo[web]"' in result.output


def test_serve_command_opens_the_store_and_serves_it(
    monkeypatch: pytest.MonkeyPatch, store: MemvidVectorStore
) -> None:
    seen: dict[str, Any] = {}

    def fake_serve(vstore: Any, **options: Any) -> None:
        seen.update(options, store=vstore)
        options["on_ready"]("http://127.0.0.1:4321/")

    class Opened:
        def __enter__(self) -> MemvidVectorStore:
            return store

        def __exit__(self, *exc: object) -> None:
            seen["closed"] = True

    monkeypatch.setattr("langchain_memvid.cli.open_store", lambda path, model: Opened())
    monkeypatch.setattr(web, "serve", fake_serve)
    result = CliRunner().invoke(cli, ["serve", str(store.path), "--port", "0", "--open"])
    assert result.exit_code == 0, result.output
    assert "http://127.0.0.1:4321/" in result.output
    assert "read-only" in result.output
    assert seen["store"] is store
    assert seen["closed"] is True
    assert (seen["host"], seen["port"], seen["open_browser"]) == ("127.0.0.1", 0, True)


def test_serve_refuses_a_bad_port() -> None:
    result = CliRunner().invoke(cli, ["serve", "somewhere", "--port", "70000"])
    assert result.exit_code == 2
    assert "70000" in result.output
