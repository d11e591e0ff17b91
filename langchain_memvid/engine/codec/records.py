"""Records: validation and the byte layout of a record entry inside a compressed pack.

A record is an id, a text and a JSON metadata dict. Validation happens before anything is written,
so a bad record fails the whole call and nothing of it is stored.

>>> rec = Record("a", "héllo 👋", {"page": 1, "tags": ["x"]})
>>> unpack_entries(pack_entries([encode_record(rec)])) == [rec]
True
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_memvid.engine.errors import CorruptData, InvalidArgument, InvalidRecord, LimitExceeded

MAX_ID_BYTES = 4096
MAX_TEXT_BYTES = 1 << 30  # 1 GiB: far beyond any document chunk, small enough to refuse crafted sizes
MAX_METADATA_BYTES = 16 << 20
MAX_METADATA_DEPTH = 32  # nested dicts/lists, the metadata dict itself included, accepted at write
# What a read accepts: 0.1 wrote any depth JSON allowed, and records within this stay readable,
# while copying them (``copy.deepcopy``, about two frames a level) stays far from the recursion limit.
MAX_STORED_METADATA_DEPTH = 256

_COUNT = struct.Struct(">I")
_ENTRY = struct.Struct(">III")  # id length, metadata length, text length


@dataclass(frozen=True)
class Record:
    """One stored item: a unique id, any Unicode text and a JSON-compatible metadata dict."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EncodedRecord:
    """A validated record as the UTF-8 bytes that go into a pack."""

    id: str
    id_bytes: bytes
    metadata_json: str
    text_bytes: bytes

    @property
    def entry_size(self) -> int:
        """Bytes this record takes inside an uncompressed pack.

        Twelve bytes of lengths, then the id, the metadata JSON and the text, all UTF-8:

        >>> encode_record(Record("é", "hi", {})).entry_size  # 12 + 2 + len("{}") + 2
        18
        """
        return _ENTRY.size + len(self.id_bytes) + len(self.metadata_json.encode()) + len(self.text_bytes)


def nesting_exceeds(value: Any, limit: int) -> bool:
    """Say whether ``value`` nests dicts and lists (or tuples) more than ``limit`` levels deep.

    Iterative, so it never raises RecursionError, and a reference cycle counts as too deep.

    >>> nesting_exceeds({"a": [1, {"b": 2}]}, 3), nesting_exceeds({"a": [1, {"b": 2}]}, 2)
    (False, True)
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (Mapping, list, tuple)))
    return False


def _check_json(value: Any, where: str) -> None:
    """Refuse anything that would not come back from JSON as the same value and type."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{where} is {value!r}; JSON has no NaN or infinity. Store it as a string or None."
            raise TypeError(msg)
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"{where} has the key {key!r} of type {type(key).__name__}; JSON keys are strings."
                raise TypeError(msg)
            _check_json(item, f"{where}[{key!r}]")
        return
    msg = (
        f"{where} is a {type(value).__name__} ({value!r:.80}), which JSON cannot store exactly; "
        "use str, int, float, bool, None, list or dict."
    )
    raise TypeError(msg)


def metadata_to_json(metadata: Mapping[str, Any], record_id: str = "?") -> str:
    """Serialise metadata canonically, refusing values that would not round-trip.

    Canonical: keys sorted, no spaces, non-ASCII kept as is. Values JSON would change (a tuple,
    NaN, a non-string key) are refused rather than silently altered.

    >>> metadata_to_json({"b": [1, 2.5], "a": "ü", "c": None})
    '{"a":"ü","b":[1,2.5],"c":null}'
    >>> metadata_to_json({"when": float("nan")}, "r1")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.InvalidRecord: Record 'r1': metadata['when'] is nan; JSON has no NaN...

    Raises:
        InvalidRecord: the metadata is not a dict of JSON values.
    """
    if not isinstance(metadata, Mapping):
        msg = f"Record {record_id!r}: metadata must be a dict, got {type(metadata).__name__}."
        raise InvalidRecord(msg)
    if nesting_exceeds(metadata, MAX_METADATA_DEPTH):
        msg = (
            f"Record {record_id!r}: metadata is nested more than {MAX_METADATA_DEPTH} levels deep "
            "(dicts and lists), or contains itself (a reference cycle); flatten it."
        )
        raise InvalidRecord(msg)
    try:
        _check_json(dict(metadata), "metadata")
        text = json.dumps(dict(metadata), ensure_ascii=False, separators=(",", ":"), sort_keys=True)
        text.encode("utf-8")
    except RecursionError as e:
        msg = f"Record {record_id!r}: metadata is nested too deeply or contains itself (a reference cycle)."
        raise InvalidRecord(msg) from e
    except (TypeError, ValueError) as e:  # ValueError: lone surrogates, ints too long for str()
        msg = f"Record {record_id!r}: {e}"
        raise InvalidRecord(msg) from e
    if len(text) > MAX_METADATA_BYTES:
        msg = (
            f"Record {record_id!r}: metadata is {len(text)} bytes as JSON; the limit is {MAX_METADATA_BYTES}."
        )
        raise InvalidRecord(msg)
    return text


def encode_record(record: Record) -> EncodedRecord:
    """Validate a record and encode it to UTF-8.

    >>> enc = encode_record(Record("a", "héllo", {"n": 1}))
    >>> enc.metadata_json, enc.text_bytes.decode(), len(enc.text_bytes)  # "é" is 2 bytes in UTF-8
    ('{"n":1}', 'héllo', 6)
    >>> encode_record(Record("", "text"))
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.InvalidRecord: Record id must be a non-empty string, got ''.

    Raises:
        InvalidRecord: with the record id, when id, text or metadata cannot be stored exactly.
    """
    rid = record.id
    if not isinstance(rid, str) or not rid:
        msg = f"Record id must be a non-empty string, got {rid!r}."
        raise InvalidRecord(msg)
    try:
        id_bytes = rid.encode("utf-8")
    except UnicodeEncodeError as e:
        msg = f"Record id {rid!r} is not valid Unicode (lone surrogate at {e.start})."
        raise InvalidRecord(msg) from e
    if len(id_bytes) > MAX_ID_BYTES:
        msg = f"Record id {rid[:40]!r}... is {len(id_bytes)} bytes; the limit is {MAX_ID_BYTES}."
        raise InvalidRecord(msg)
    if not isinstance(record.text, str):
        msg = f"Record {rid!r}: text must be a str, got {type(record.text).__name__}."
        raise InvalidRecord(msg)
    try:
        text_bytes = record.text.encode("utf-8")
    except UnicodeEncodeError as e:
        msg = (
            f"Record {rid!r}: text is not valid Unicode (lone surrogate {record.text[e.start]!r} "
            f"at character {e.start}); fix the text, e.g. decode its source with errors='replace'."
        )
        raise InvalidRecord(msg) from e
    if len(text_bytes) > MAX_TEXT_BYTES:
        msg = f"Record {rid!r}: text is {len(text_bytes)} bytes; the limit is {MAX_TEXT_BYTES}."
        raise InvalidRecord(msg)
    return EncodedRecord(rid, id_bytes, metadata_to_json(record.metadata, rid), text_bytes)


def pack_entries(records: Sequence[EncodedRecord]) -> bytes:
    """Concatenate records into an uncompressed pack: a count, then (lengths, id, metadata, text)."""
    parts = [_COUNT.pack(len(records))]
    for rec in records:
        meta = rec.metadata_json.encode("utf-8")
        parts.append(_ENTRY.pack(len(rec.id_bytes), len(meta), len(rec.text_bytes)))
        parts += [rec.id_bytes, meta, rec.text_bytes]
    return b"".join(parts)


def unpack_entries(data: bytes) -> list[Record]:
    """Parse an uncompressed pack back into records.

    Raises:
        CorruptData: the bytes are not a well-formed pack.
    """
    pack = PackReader(data)
    return [pack.record(i) for i in range(len(pack))]


class PackReader:
    """An uncompressed pack whose records are decoded only when asked for.

    A search hit needs one record of a pack of a dozen or more: the entry table (lengths only) is
    checked once, and only the requested record's id, metadata and text are decoded.
    """

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.entries = self._table()

    def __len__(self) -> int:
        return len(self.entries)

    def _table(self) -> list[tuple[int, int, int, int]]:
        view = self.data
        try:
            (count,) = _COUNT.unpack_from(view, 0)
            if count > len(view):
                msg = f"Record pack claims {count} records in {len(view)} bytes."
                raise LimitExceeded(msg)
            pos, table = _COUNT.size, []
            for _ in range(count):
                id_len, meta_len, text_len = _ENTRY.unpack_from(view, pos)
                pos += _ENTRY.size
                table.append((pos, id_len, meta_len, text_len))
                pos += id_len + meta_len + text_len
                if pos > len(view):
                    msg = f"Record entry runs past the end of its pack ({pos} > {len(view)})."
                    raise CorruptData(msg)
        except struct.error as e:
            msg = f"Malformed record pack ({len(view)} bytes): {e}"
            raise CorruptData(msg) from e
        if pos != len(view):
            msg = f"Record pack has {len(view) - pos} trailing bytes."
            raise CorruptData(msg)
        return table

    def record_id(self, slot: int) -> str:
        """The id at ``slot`` (cheap: the text is not decoded)."""
        pos, id_len, _, _ = self.entries[slot]
        try:
            return bytes(self.data[pos : pos + id_len]).decode("utf-8")
        except UnicodeDecodeError as e:
            msg = f"Record id at slot {slot} of its pack is not UTF-8."
            raise CorruptData(msg) from e

    def record(self, slot: int) -> Record:
        """Decode the record at ``slot``.

        Raises:
            CorruptData: its id, metadata or text is not well-formed.
        """
        pos, id_len, meta_len, text_len = self.entries[slot]
        view = self.data
        rid = self.record_id(slot)
        try:
            pos += id_len
            metadata = json.loads(bytes(view[pos : pos + meta_len]).decode("utf-8"))
            pos += meta_len
            text = bytes(view[pos : pos + text_len]).decode("utf-8")
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
            msg = f"Record {rid!r}: malformed entry in its pack ({e})."
            raise CorruptData(msg) from e
        if not isinstance(metadata, dict):
            msg = f"Record {rid!r}: stored metadata is not a JSON object."
            raise CorruptData(msg)
        if nesting_exceeds(metadata, MAX_STORED_METADATA_DEPTH):
            # Refused so that callers copying it cannot recurse without end.
            msg = f"Record {rid!r}: stored metadata is nested more than {MAX_STORED_METADATA_DEPTH} levels deep."
            raise CorruptData(msg)
        return Record(rid, text, metadata)


def id_list(ids: Any, method: str | None = None) -> list[Any]:
    """``ids`` as a list; a bare string (which would iterate as characters) is refused.

    ``method`` names the call in the message (the LangChain face passes its verb).

    >>> id_list(("a", "b"))
    ['a', 'b']
    >>> id_list("b1", "delete")
    Traceback (most recent call last):
    ...
    langchain_memvid.engine.errors.InvalidArgument: delete() takes a list of ids, not a single string; pass ['b1'].
    """
    where = f"{method}() takes" if method else "Pass"
    if isinstance(ids, (str, bytes, bytearray)):
        msg = f"{where} a list of ids, not a single string; pass [{ids!r:.60}]."
        raise InvalidArgument(msg)
    try:
        return list(ids)
    except TypeError as e:
        what = f"{method}() takes a list of ids" if method else "ids must be a list of strings"
        msg = f"{what}, got {type(ids).__name__}."
        raise InvalidArgument(msg) from e


def encode_batch(records: Any, vectors: Any) -> tuple[list[EncodedRecord], list[Any]]:
    """Check one ``add`` call's input and encode it; the last of duplicate ids wins.

    Returns the encoded records and their vectors, each id once, in the order of its last occurrence.

    Raises:
        InvalidArgument: not a list of records, or not one vector per record.
        InvalidRecord: an item is not a ``Record`` or cannot be stored.
    """
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        msg = f"records must be a list of Record, got {type(records).__name__}."
        raise InvalidArgument(msg)
    if len(records) == 0:
        return [], []
    for n, rec in enumerate(records):
        if not isinstance(rec, Record):
            msg = f"records[{n}] is a {type(rec).__name__}, not a Record(id, text, metadata)."
            raise InvalidRecord(msg)
    try:
        vector_list = list(vectors)
    except TypeError as e:
        msg = f"vectors must be a list or array with one vector per record, got {type(vectors).__name__}."
        raise InvalidArgument(msg) from e
    if len(vector_list) != len(records):
        msg = f"Got {len(records)} records and {len(vector_list)} vectors; pass one vector per record."
        raise InvalidArgument(msg)
    last = {r.id if isinstance(r.id, str) else None: i for i, r in enumerate(records)}
    keep = [i for i, r in enumerate(records) if last.get(r.id if isinstance(r.id, str) else None) == i]
    return [encode_record(records[i]) for i in keep], [vector_list[i] for i in keep]
