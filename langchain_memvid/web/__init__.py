"""`lcmemvid serve`: a local, read-only web page to search a store and look at its frames.

`create_app(store)` is the Starlette app (the page at `/`, its JSON API under `/api/`);
`serve(store)` runs it with uvicorn until Ctrl+C, and `start_server(store)` in a background
thread. docs/web.md describes the page and the API. Starlette and uvicorn come with the `web`
extra; importing this package does not need them.
"""

from __future__ import annotations

from langchain_memvid.web.api import MODES, BadRequest, NotFound, StoreView, available_modes, search_with_mode
from langchain_memvid.web.app import (
    DEFAULT_PORT,
    LOCAL_HOSTS,
    CannotListen,
    RunningServer,
    WebStackMissing,
    create_app,
    require_web_stack,
    serve,
    start_server,
)

__all__ = [
    "create_app",
    "serve",
    "start_server",
    "RunningServer",
    "StoreView",
    "MODES",
    "available_modes",
    "search_with_mode",
    "DEFAULT_PORT",
    "LOCAL_HOSTS",
    "BadRequest",
    "NotFound",
    "CannotListen",
    "WebStackMissing",
    "require_web_stack",
]
