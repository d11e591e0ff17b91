"""Stores at a URL on the command line: where a store is, which version to read, and its history.

`store_argument` and `read_store_argument` are how every `lcmemvid` command takes its STORE: a
folder or a URL (`s3://bucket/prefix`, `gs://`, `az://`, `memory://`, `file://`), with repeatable
`--storage-option KEY=VALUE` for fsspec, and (reading commands) `--version N` / `--as-of TIME` to
read an old version of a versioned store. The command receives one `StoreRef`.

The commands of versioned stores live here too: `log` (the history), `cleanup` (remove old
versions) and `migrate` (copy a folder into a new versioned store). `cli.py` adds them to the
`lcmemvid` group (`COMMANDS`); this module does not import it, so it can lend it the options.
"""

# ruff: noqa: D301 - click's "\b" (keep the next paragraph unwrapped) must be a real backspace.

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from langchain_memvid.engine.versions import remote_location

if TYPE_CHECKING:
    from langchain_memvid.engine import Engine

__all__ = [
    "COMMANDS",
    "StoreRef",
    "parse_duration",
    "parse_storage_option",
    "parse_time",
    "read_store_argument",
    "store_argument",
]

F = TypeVar("F", bound=Callable[..., Any])

VERSIONED = "a versioned store (at a URL, or a folder made by `lcmemvid migrate`)"

STORAGE_OPTION_HELP = (
    "an fsspec option, e.g. endpoint_url=http://localhost:9000 or anon=true "
    "(true/false become booleans, digits integers); repeatable. The usual environment variables "
    "(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_PROFILE, "
    "GOOGLE_APPLICATION_CREDENTIALS, AZURE_STORAGE_CONNECTION_STRING...) keep working: s3fs, gcsfs "
    "and adlfs read them."
)

DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


# -- parsing -------------------------------------------------------------------------------------


def parse_storage_option(text: str) -> tuple[str, Any]:
    """One ``KEY=VALUE``: true/false become booleans, digits an int, anything else stays a string.

    >>> parse_storage_option("anon=true"), parse_storage_option("max_concurrency=8")
    (('anon', True), ('max_concurrency', 8))
    >>> parse_storage_option("endpoint_url=http://127.0.0.1:9000")
    ('endpoint_url', 'http://127.0.0.1:9000')

    Raises:
        click.BadParameter: not ``KEY=VALUE`` (a usage error naming the item).
    """
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        msg = f"{text!r} is not KEY=VALUE (e.g. endpoint_url=http://localhost:9000)."
        raise click.BadParameter(msg, param_hint="'--storage-option'")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    if value.isascii() and value.isdigit():
        return key, int(value)
    return key, value


def parse_time(text: str) -> float:
    """A Unix time from ISO 8601 (UTC when no zone is given) or from a number of seconds.

    >>> parse_time("2026-12-03T10:00:00Z"), parse_time("2026-12-03T11:00:00+01:00")
    (1796292000.0, 1796292000.0)
    >>> parse_time("1796292000")
    1796292000.0

    Raises:
        click.BadParameter: neither (a usage error).
    """
    value = text.strip()
    try:
        return float(value)
    except ValueError:
        pass
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        msg = (
            f"{text!r} is not a time: use ISO 8601 (2026-12-03T10:00:00Z; no zone means UTC) or a Unix time."
        )
        raise click.BadParameter(msg, param_hint="'--as-of'") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def parse_duration(text: str, option: str = "'--older-than'") -> float:
    """Seconds from ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or a plain number of seconds (``0``).

    >>> parse_duration("7d"), parse_duration("1.5h"), parse_duration("0")
    (604800.0, 5400.0, 0.0)

    Raises:
        click.BadParameter: not a duration (a usage error).
    """
    match = _DURATION.match(text)
    if match is None:
        msg = f"{text!r} is not a duration: a number and a unit (s, m, h, d, w), e.g. 7d, 12h, 30m, or 0."
        raise click.BadParameter(msg, param_hint=option)
    return float(match.group(1)) * DURATION_UNITS[match.group(2).lower()]


def utc_text(unix_time: float) -> str:
    """A Unix time as ISO 8601 in UTC to the second, as `--as-of` takes it.

    >>> utc_text(1796292000.7)
    '2026-12-03T10:00:00Z'
    """
    return datetime.fromtimestamp(unix_time, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def number_ranges(numbers: Iterable[int]) -> str:
    """Version numbers, runs shortened: ``number_ranges([1, 2, 3, 7]) == '1-3, 7'``."""
    runs: list[list[int]] = []
    for n in sorted(numbers):
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs) or "none"


def _storage_options(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> dict[str, Any] | None:
    return dict(parse_storage_option(item) for item in value) or None


def _as_of(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    return None if value is None else parse_time(value)


# -- STORE ---------------------------------------------------------------------------------------


class StoreLocation(click.ParamType):
    """STORE: a URL stays a string; anything else is a folder path (a Path; a file is refused)."""

    name = "store"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str | Path:
        """A URL as given, or the folder as a Path."""
        if isinstance(value, Path):
            return value
        text = os.fspath(value)
        if "://" in text:
            return text
        folder: Path = click.Path(file_okay=False, path_type=Path).convert(text, param, ctx)
        return folder


@dataclass(frozen=True)
class StoreRef:
    """Where a command's store is and how to open it: location, fsspec options, version to read."""

    location: str | Path
    storage_options: dict[str, Any] | None = None
    version: int | None = None
    as_of: float | None = None

    def __str__(self) -> str:
        return str(self.location)

    @property
    def versioned(self) -> bool:
        """A versioned store (format 3): a URL, or a folder holding ``_versions/``.

        A ``file://`` URL of a format-1/2 folder is not one, as the engine decides.
        """
        return remote_location(self.location, None, versioned_args=False) is not None

    @property
    def is_url(self) -> bool:
        """Given as a URL (a bucket, `memory://`, `file://`) rather than as a folder path."""
        return isinstance(self.location, str)

    def open_options(self) -> dict[str, Any]:
        """The keywords that open this store as asked: ``storage_options``, ``version``, ``as_of``."""
        return {"storage_options": self.storage_options, "version": self.version, "as_of": self.as_of}

    def check(self) -> None:
        """Refuse what a format-1/2 folder cannot take, in the command line's words."""
        if self.version is not None and self.as_of is not None:
            msg = "Pass --version or --as-of, not both."
            raise click.UsageError(msg)
        if self.versioned:
            return
        if self.version is not None or self.as_of is not None:
            msg = f"--version and --as-of read old versions of {VERSIONED}; {self} is a format-1/2 store folder, which keeps no versions."
            raise click.ClickException(msg)
        if self.storage_options:
            msg = f"--storage-option is for stores at a URL (s3://, gs://, az://, memory://, file://); {self} is a local folder."
            raise click.ClickException(msg)

    def folder(self, what: str) -> Path:
        """The store's folder, for `what` (a command) that works on a local format-1/2 folder only.

        Raises:
            click.ClickException: the store is a versioned one, in a bucket or a folder.
        """
        if self.versioned:
            msg = f"{what} works on a local format-1/2 store folder; {self} is {VERSIONED}, whose versions never change in place."
            raise click.ClickException(msg)
        return Path(self.location)

    def engine(self) -> Engine:
        """The existing store's engine, without loading an embedding model."""
        from langchain_memvid.engine import Engine

        return Engine(self.location, create=False, **self.open_options())

    def require_versioned(self, command: str) -> None:
        """Refuse a format-1/2 folder for `command`, which works on versioned stores only."""
        if not self.versioned:
            msg = f"`lcmemvid {command}` works on {VERSIONED}; {self} is a format-1/2 store folder, which keeps no versions."
            raise click.ClickException(msg)


def _store_argument(func: Callable[..., Any], *, versions: bool) -> Callable[..., Any]:
    """Add STORE and its options to `func`, which then receives `store` as one `StoreRef`."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        store = StoreRef(
            kwargs.pop("store"),
            kwargs.pop("storage_options"),
            kwargs.pop("version", None),
            kwargs.pop("as_of", None),
        )
        store.check()
        return func(*args, store=store, **kwargs)

    # click lists the options in the reverse order of this list: these go last, before --help.
    params: list[click.Parameter] = wrapper.__dict__.setdefault("__click_params__", [])
    extra: list[click.Parameter] = [
        click.Option(
            ["--storage-option", "storage_options"],
            metavar="KEY=VALUE",
            multiple=True,
            callback=_storage_options,
            help="For a store at a URL: " + STORAGE_OPTION_HELP,
        )
    ]
    if versions:
        extra += [
            click.Option(
                ["--as-of", "as_of"],
                metavar="TIME",
                callback=_as_of,
                help="Read the newest version created at or before TIME: ISO 8601 (2026-12-03T10:00:00Z; "
                "no zone means UTC) or a Unix time. Read-only; versioned stores only.",
            ),
            click.Option(
                ["--version", "version"],
                metavar="N",
                type=click.IntRange(min=1),
                help="Read version N, as `lcmemvid log` lists them. Read-only; versioned stores only.",
            ),
        ]
    params[:0] = extra
    return click.argument("store", type=StoreLocation())(wrapper)


def store_argument(func: F) -> F:
    """STORE (a folder or a URL) and `--storage-option`; the command gets `store: StoreRef`."""
    return _store_argument(func, versions=False)  # type: ignore[return-value]


def read_store_argument(func: F) -> F:
    """`store_argument` plus `--version` and `--as-of`, for commands that only read."""
    return _store_argument(func, versions=True)  # type: ignore[return-value]


def _json_option(func: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")(func)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


# -- commands ------------------------------------------------------------------------------------


@click.command("log")
@store_argument
@_json_option
def log(store: StoreRef, as_json: bool) -> None:
    """List the versions of STORE, newest first: number, time (UTC), operation and summary.

    Every commit to a versioned store (at a URL, or a folder made by `migrate`) is a new
    version. The reading commands (`search`, `ask`, `info`, `verify`, `export`, `frame`,
    `serve`) read an old one with --version N, or with --as-of TIME (the newest created at or
    before TIME). `cleanup` removes old versions.

    \b
    Example:
        lcmemvid log s3://my-bucket/library
        lcmemvid log s3://my-bucket/library --storage-option endpoint_url=http://localhost:9000 --json
    """
    store.require_versioned("log")
    with store.engine() as engine:
        current = engine.version
        found = engine.versions()
    rows = [{**v, "created_utc": utc_text(v["created"])} for v in reversed(found)]
    if as_json:
        _echo_json({"store": str(store), "current": current, "versions": rows})
        return
    width = max(len("VERSION"), *(len(str(r["version"])) for r in rows)) if rows else len("VERSION")
    operation = max(len("OPERATION"), *(len(r["operation"]) for r in rows)) if rows else len("OPERATION")
    click.echo(f"{'VERSION':>{width}}  {'CREATED (UTC)':<20}  {'OPERATION':<{operation}}  SUMMARY")
    for r in rows:
        click.echo(
            f"{r['version']:>{width}}  {r['created_utc']:<20}  {r['operation']:<{operation}}  {r['summary']}"
        )


@click.command("cleanup")
@store_argument
@click.option(
    "--older-than",
    metavar="DURATION",
    default="7d",
    show_default=True,
    help="Remove versions older than this (e.g. 7d, 12h, 30m, 0), except those --keep-last keeps.",
)
@click.option(
    "--keep-last",
    metavar="N",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Always keep the newest N versions, however old.",
)
@click.option(
    "--grace",
    metavar="DURATION",
    default=None,
    help="Delete an object no kept version names only once it is older than this, so open readers "
    "and unfinished writes are safe. Default: --older-than, at least 1h.",
)
@_json_option
def cleanup(store: StoreRef, older_than: str, keep_last: int, grace: str | None, as_json: bool) -> None:
    """Remove old versions of STORE and the objects only they use, so the bucket stops growing.

    Keeps the newest version, the last --keep-last, and every version younger than
    --older-than; the versions removed can no longer be read (`log` lists those kept).

    \b
    Example:
        lcmemvid cleanup s3://my-bucket/library
        lcmemvid cleanup s3://my-bucket/library --older-than 12h --keep-last 3 --json
    """
    age = parse_duration(older_than, "'--older-than'")
    wait = None if grace is None else parse_duration(grace, "'--grace'")
    store.require_versioned("cleanup")
    with store.engine() as engine:
        report = engine.cleanup(older_than=age, keep_last=keep_last, grace=wait)
    if as_json:
        _echo_json({"store": str(store), **report})
        return
    from langchain_memvid.cli import _size

    removed, kept = report["versions_removed"], report["versions_kept"]
    click.echo(
        f"Removed {_plural(len(removed), 'version')}"
        + (f" ({number_ranges(removed)})" if removed else "")
        + f" and {_plural(report['objects_removed'], 'object')} ({_size(report['bytes_removed'])}) "
        f"from {store}; kept {_plural(len(kept), 'version')} ({number_ranges(kept)})."
    )


@click.command("migrate")
@click.argument("source", metavar="SOURCE_FOLDER", type=click.Path(file_okay=False, path_type=Path))
@click.argument("destination", metavar="DEST_URL")
@click.option(
    "--storage-option",
    "storage_options",
    metavar="KEY=VALUE",
    multiple=True,
    callback=_storage_options,
    help="For DEST_URL: " + STORAGE_OPTION_HELP,
)
@_json_option
def migrate(source: Path, destination: str, storage_options: dict[str, Any] | None, as_json: bool) -> None:
    """Copy the store folder SOURCE_FOLDER into a new versioned store at DEST_URL.

    SOURCE_FOLDER is checked first (as `verify` does; a damaged store is refused) and stays as
    it is. DEST_URL must not hold a store yet; the copy is its version 1. Use it to move a
    store into a bucket, or to give a local store a history (DEST_URL may be a new folder).

    \b
    Example:
        lcmemvid migrate ./store s3://my-bucket/library
        lcmemvid migrate ./store s3://my-bucket/library --storage-option endpoint_url=http://localhost:9000
    """
    from langchain_memvid.engine import Engine

    with Engine(source, create=False) as engine:
        records = len(engine)
        version = engine.migrate(destination, storage_options)
    if as_json:
        _echo_json(
            {"source": str(source), "destination": destination, "version": version, "records": records}
        )
        return
    click.echo(
        f"Migrated {_plural(records, 'record')} from {source} to {destination}, as version {version}. "
        f"{source} is unchanged; open the store at {destination} from now on."
    )


COMMANDS: list[click.Command] = [log, cleanup, migrate]
"""The commands `cli.py` adds to `lcmemvid`, in this order."""
