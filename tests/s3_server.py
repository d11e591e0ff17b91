"""A local S3 for tests: moto's server mode on 127.0.0.1, one per session, reset for every test.

Use it from a test module::

    from tests.s3_server import S3Target

    pytest_plugins = ["tests.s3_server"]  # registers the fixtures below
    pytestmark = pytest.mark.allow_hosts(["127.0.0.1"])

    def test_something(s3_bucket: S3Target) -> None:
        url, storage_options = s3_bucket          # "s3://memvid-test/store", options for s3fs

The suite runs with ``--disable-socket --allow-unix-socket`` (pytest-socket). A module that uses
these fixtures allows TCP to 127.0.0.1 only, with pytest-socket's ``allow_hosts`` marker (like
tests/unit_tests/test_ray_ingest.py; ``enable_socket`` would switch every restriction off). The
server binds port 0, so the kernel picks a free port. ``s3_bucket`` empties moto
(``POST /moto-api/reset``) and creates the bucket, so tests never see each other's objects.

Two things are added around moto's WSGI app, both for the tests' sake:

- every request is recorded (method, path, query, ``Range`` and ``If-None-Match`` headers), so a
  test can show what went over the wire: one ranged GET per ``read_range``, the conditional
  header on ``put_if_absent``;
- requests are handled one at a time. Moto checks ``If-None-Match: *`` and then stores the
  object in two steps (moto/s3/responses.py ``put_object``), so two racing requests could both
  pass the check; real S3 decides atomically. Serialising gives the tests S3's atomicity, which
  is what the store's code relies on and what the race tests must be able to rely on.

Test modules import names from here before ``pytest_plugins`` registers it, too late for pytest
to rewrite its asserts; this marker says so and keeps pytest from warning: PYTEST_DONT_REWRITE
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import pytest
from moto.server import ThreadedMotoServer

BUCKET = "memvid-test"
KEY, SECRET, REGION = "testing", "testing", "us-east-1"


@dataclass(frozen=True)
class Request:
    """One HTTP request the server answered."""

    method: str
    path: str
    query: str
    range: str | None
    if_none_match: str | None


class _Serialised:
    """WSGI middleware: one request at a time, each recorded before it is handled."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.requests: list[Request] = []

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        with self.lock:
            self.requests.append(
                Request(
                    method=environ["REQUEST_METHOD"],
                    path=environ.get("PATH_INFO", ""),
                    query=environ.get("QUERY_STRING", ""),
                    range=environ.get("HTTP_RANGE"),
                    if_none_match=environ.get("HTTP_IF_NONE_MATCH"),
                )
            )
            # The body is read inside the lock: a streamed response must not interleave either.
            return list(self.app(environ, start_response))


class MotoS3(ThreadedMotoServer):
    """``ThreadedMotoServer`` whose app is wrapped in ``_Serialised``."""

    def __init__(self) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.wrapper: _Serialised | None = None

    def _server_entry(self) -> None:
        # ThreadedMotoServer._server_entry, with the app wrapped (moto 5.x builds it here).
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.wrapper = _Serialised(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(
            self._ip_address, self._port, self.wrapper, True, request_handler=MotoRequestHandler
        )
        self._server_ready_event.set()
        self._server.serve_forever()

    @property
    def endpoint(self) -> str:
        host, port = self.get_host_and_port()
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[Request]:
        """Requests since the last ``reset`` (S3 calls only, not moto's own API)."""
        assert self.wrapper is not None
        return [r for r in self.wrapper.requests if not r.path.startswith("/moto-api")]

    def reset_log(self) -> None:
        """Forget the requests recorded so far."""
        assert self.wrapper is not None
        self.wrapper.requests.clear()

    def reset(self) -> None:
        """Forget every bucket and object (moto's reset API), and the request log."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 200, resp.status
        assert self.wrapper is not None
        self.wrapper.requests.clear()

    def create_bucket(self, name: str = BUCKET) -> None:
        """A bucket, made with boto3 (not with the code under test)."""
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            region_name=REGION,
        )
        client.create_bucket(Bucket=name)
        if self.wrapper is not None:
            self.wrapper.requests.clear()

    def storage_options(self) -> dict[str, Any]:
        """What s3fs needs to talk to this server and nothing else."""
        return {
            "endpoint_url": self.endpoint,
            "key": KEY,
            "secret": SECRET,
            "client_kwargs": {"region_name": REGION},
        }


class S3Target(NamedTuple):
    """A store root in the test bucket and the storage options that reach it."""

    url: str
    storage_options: dict[str, Any]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoS3]:
    """moto's S3 on 127.0.0.1 (a free port), for the whole session."""
    pytest.importorskip("s3fs", reason="the s3 extra is not installed: pip install -e '.[test,s3]'")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    server = MotoS3()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_bucket(moto_server: MotoS3) -> Iterator[S3Target]:
    """An empty moto with the test bucket; yields ``(url, storage_options)`` for ``s3://``."""
    moto_server.reset()
    moto_server.create_bucket()
    try:
        yield S3Target(f"s3://{BUCKET}/store", moto_server.storage_options())
    finally:
        moto_server.reset()


def describe(requests: Iterable[Request]) -> str:
    """Requests as JSON lines, for assertion messages."""
    return "\n".join(json.dumps(r.__dict__) for r in requests)
