"""The web app of `lcmemvid serve`: one page and the JSON API behind it, on Starlette and uvicorn.

It only translates: a request's parameters go to `StoreView` (api.py) as text, its answers come
back as JSON or PNG, and its `BadRequest` becomes a 4xx with `{"error": message}`. Starlette and
uvicorn (the `web` extra) are imported inside the functions that use them, so this module loads
without them and says what to install when they are missing.

Safe by default: the app only reads; it answers only requests addressed to the host it listens on
(a page elsewhere cannot reach it by DNS rebinding); every response forbids inline scripts and
foreign resources (Content-Security-Policy), and the one POST, starting a verify, must be JSON, so
another site's form cannot trigger it.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
import time
import webbrowser
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_memvid.engine import MemvidError
from langchain_memvid.web.api import BadRequest, StoreView

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

    from langchain_memvid.vectorstores import MemvidVectorStore

__all__ = [
    "DEFAULT_PORT",
    "LOCAL_HOSTS",
    "CannotListen",
    "RunningServer",
    "WebStackMissing",
    "create_app",
    "require_web_stack",
    "serve",
    "start_server",
]

DEFAULT_PORT = 8765
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
"""Host names the app answers by default: this machine only."""
ANY_ADDRESS = ("0.0.0.0", "::", "")  # listening on every interface: only when asked for
STATIC = Path(__file__).parent / "static"
VERIFY_BODY_MAX = 1024  # bytes: the body is {"cross_check": true} or less
PAGE_FILES = {
    "page.js": "text/javascript; charset=utf-8",
    "page.css": "text/css; charset=utf-8",
}
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        b"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
ASGIApp = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Awaitable[None]
]


class WebStackMissing(ImportError):
    """Starlette or uvicorn, which the web page runs on, is not installed (the `web` extra)."""


class CannotListen(OSError):
    """The server could not listen on the address and port asked for (in use, not this machine's)."""


def require_web_stack(modules: Sequence[str] = ("starlette", "uvicorn")) -> None:
    """Check that the web stack is installed, without importing it.

    Raises:
        WebStackMissing: one of `modules` is missing; the message gives the install command.
    """
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        msg = (
            f"The web page needs {' and '.join(missing)}, which are not installed: "
            'pip install "langchain-qrvideo[web]"'
        )
        raise WebStackMissing(msg)


def create_app(
    store: MemvidVectorStore | StoreView, *, allowed_hosts: Sequence[str] | None = LOCAL_HOSTS
) -> Starlette:
    """The Starlette app serving the page and its JSON API for an open store.

    Args:
        store: The open store (the caller closes it), or a `StoreView` of it.
        allowed_hosts: Host names (the `Host` header, without port) the app answers; others get
            400. None answers any (for a server listening on every interface).

    Raises:
        WebStackMissing: Starlette is not installed.
    """
    require_web_stack(("starlette",))
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    view = store if isinstance(store, StoreView) else StoreView(store)
    page = (STATIC / "index.html").read_bytes()
    assets = {name: ((STATIC / name).read_bytes(), kind) for name, kind in PAGE_FILES.items()}
    no_cache = {"cache-control": "no-cache"}

    def error(status: int, message: str) -> Response:
        return JSONResponse({"error": message}, status_code=status, headers=no_cache)

    def api(handler: Callable[[Request], Any]) -> Callable[[Request], Response]:
        """A sync handler returning JSON-able data; runs in Starlette's thread pool."""

        def endpoint(request: Request) -> Response:
            try:
                data = handler(request)
            except BadRequest as e:
                return error(e.status, str(e))
            if isinstance(data, Response):
                return data
            return JSONResponse(data, headers=no_cache)

        return endpoint

    def index(request: Request) -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=no_cache)

    def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            return error(404, f"No file {request.path_params['name']!r} here.")
        return Response(found[0], media_type=found[1], headers=no_cache)

    def search(request: Request) -> Any:
        q = request.query_params
        return view.search(q.get("q"), q.get("k"), q.get("mode"), q.get("filter"))

    def records(request: Request) -> Any:
        q = request.query_params
        return view.records(q.get("offset"), q.get("limit"), q.get("source"))

    def record(request: Request) -> Any:
        return view.record(request.path_params["record_id"])

    def frame(request: Request) -> Any:
        png = view.frame_png(
            request.path_params["segment"], request.path_params["frame"], request.query_params.get("scale")
        )
        # A segment's files never change once written (an update writes a new segment).
        return Response(png, media_type="image/png", headers={"cache-control": "private, max-age=3600"})

    async def verify(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse(view.verify_status(), headers=no_cache)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            msg = 'POST /api/verify takes a JSON body, e.g. {"cross_check": true}, sent as application/json.'
            return error(415, msg)
        length = request.headers.get("content-length", "0")
        if not length.isdigit() or int(length) > VERIFY_BODY_MAX:
            return error(413, f"The body of POST /api/verify is {VERIFY_BODY_MAX} bytes at most.")
        body = await request.body()
        try:
            options = json.loads(body or b"{}")
        except (ValueError, RecursionError):
            return error(400, "The body of POST /api/verify is not valid JSON.")
        cross = options.get("cross_check", True) if isinstance(options, dict) else None
        if not isinstance(cross, bool):
            return error(400, 'The body must be a JSON object such as {"cross_check": true}.')
        from starlette.concurrency import run_in_threadpool

        return JSONResponse(await run_in_threadpool(view.start_verify, cross), status_code=202)

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            return error(404, f"Nothing at {request.url.path}; docs/web.md lists the API.")
        if exc.status_code == 405:
            header = {k.lower(): v for k, v in (exc.headers or {}).items()}.get("allow", "GET")
            order = ["GET", "HEAD", "POST"]  # Starlette lists them from a set: say them in one order
            methods = sorted(
                {m.strip() for m in header.split(",") if m.strip()},
                key=lambda m: (order.index(m) if m in order else len(order), m),
            )
            allowed = ", ".join(methods)
            return error(405, f"{request.method} is not allowed on {request.url.path}; it answers {allowed}.")
        return error(exc.status_code, str(exc.detail))

    def server_error(request: Request, exc: Exception) -> Response:
        # The trace goes to the server's log (Starlette re-raises after this), never to the client.
        if isinstance(exc, MemvidError):
            return error(500, f"The store could not answer: {exc}")
        return error(500, f"Internal error ({type(exc).__name__}); the server's log has the details.")

    get = ["GET"]
    routes = [
        Route("/", index, methods=get),
        Route("/static/{name}", asset, methods=get),
        Route("/api/stats", api(lambda r: view.stats()), methods=get),
        Route("/api/search", api(search), methods=get),
        Route("/api/sources", api(lambda r: view.sources()), methods=get),
        Route("/api/records", api(records), methods=get),
        Route("/api/records/{record_id:path}", api(record), methods=get),
        Route("/api/frames/{segment}/{frame}.png", api(frame), methods=get),
        Route("/api/verify", verify, methods=["GET", "POST"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={HTTPException: http_error, Exception: server_error},
    )
    app.add_middleware(_Guard, allowed_hosts=allowed_hosts)
    return app


class _Guard:
    """ASGI middleware: refuse foreign `Host` headers (DNS rebinding), add security headers."""

    def __init__(self, app: ASGIApp, allowed_hosts: Sequence[str] | None) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        host = _host_name(dict(scope.get("headers", [])).get(b"host", b"").decode("latin-1"))
        if self.allowed is not None and host not in self.allowed:
            body = json.dumps(
                {
                    "error": f"This server answers requests for {', '.join(sorted(self.allowed))}, "
                    f"not {host or '(no Host header)'!r}. To serve other names, listen on every "
                    "interface (--host 0.0.0.0)."
                }
            ).encode()
            await send_with_headers(
                {
                    "type": "http.response.start",
                    "status": 400,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_with_headers)


def _host_name(header: str) -> str:
    """The host of a `Host` header, without port or IPv6 brackets.

    >>> _host_name("127.0.0.1:8765"), _host_name("[::1]:8765"), _host_name("LocalHost")
    ('127.0.0.1', '::1', 'localhost')
    """
    header = header.strip().lower()
    if header.startswith("["):
        return header[1 : header.find("]")] if "]" in header else header
    return header.split(":", 1)[0]


# -- serving -------------------------------------------------------------------------------


@dataclass
class RunningServer:
    """A server running in a background thread; `stop()` (or leaving a `with` block) ends it."""

    url: str
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the server to finish its requests and stop, and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(
    store: MemvidVectorStore,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    open_browser: bool = False,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the page for `store` until interrupted (Ctrl+C).

    Args:
        store: The open store; the caller closes it afterwards.
        host: Address to listen on; `0.0.0.0` or `::` listen on every interface.
        port: Port to listen on; 0 picks a free one.
        open_browser: Open the page in the default web browser once listening.
        on_ready: Called with the page's address once the server listens.

    Raises:
        WebStackMissing: Starlette or uvicorn is not installed.
        CannotListen: The address or port cannot be used.
    """
    server, sock, url = _prepare(store, host, port)
    if on_ready is not None:
        on_ready(url)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(_browsable(url, host),)).start()
    server.run(sockets=[sock])


def start_server(
    store: MemvidVectorStore | StoreView, *, host: str = "127.0.0.1", port: int = 0
) -> RunningServer:
    """Serve the page for `store` from a background thread (tests, benchmarks, notebooks).

    Returns:
        The running server; its `url` is the page's address (port 0 picks a free port).

    Raises:
        WebStackMissing: Starlette or uvicorn is not installed.
        CannotListen: The address or port cannot be used.
        RuntimeError: The server did not start within 30 seconds.
    """
    server, sock, url = _prepare(store, host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="memvid-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            msg = f"The web server for {url} did not start."
            raise RuntimeError(msg)
        time.sleep(0.01)
    return RunningServer(url, server, thread)


def _prepare(
    store: MemvidVectorStore | StoreView, host: str, port: int
) -> tuple[uvicorn.Server, socket.socket, str]:
    require_web_stack()
    import uvicorn

    allowed = None if host in ANY_ADDRESS else (*LOCAL_HOSTS, _host_name(host))
    app = create_app(store, allowed_hosts=allowed)
    sock = _listen(host, port)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    name = f"[{host}]" if ":" in host else host
    return uvicorn.Server(config), sock, f"http://{name}:{sock.getsockname()[1]}/"


def _listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port), for uvicorn to serve."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off only on sockets that say TCP, and
    # with it on, a response written in two parts waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)  # connections made as soon as the address is printed wait for uvicorn
    except OSError as e:
        sock.close()
        msg = f"Cannot listen on {host}:{port} ({e.strerror or e}); choose another --port (0 picks a free one) or --host."
        raise CannotListen(msg) from e
    return sock


def _browsable(url: str, host: str) -> str:
    """The address to open in a browser: this machine's loopback when listening everywhere."""
    if host in ANY_ADDRESS:
        port = url.rsplit(":", 1)[1]
        return f"http://127.0.0.1:{port}"
    return url
