"""Metadata filters: compile a MongoDB-style filter dict (or a callable) into a predicate.

The storage engine evaluates a filter on every candidate record, so the filter is parsed and
validated once, by :func:`compile_filter`, and every mistake is reported before any record is
read. This module deliberately imports nothing from LangChain.

Filter language
---------------
A filter is a dict whose top-level entries are AND-ed. Each entry is either a field condition
or a logical operator:

* ``{"year": 2020}`` -- a plain value means equality (same as ``{"year": {"$eq": 2020}}``).
* ``{"year": {"$gte": 2000, "$lt": 2010}}`` -- an operator dict; its operators are AND-ed.
* ``{"$and": [f1, f2]}``, ``{"$or": [f1, f2]}`` -- a non-empty list of sub-filters.
* ``{"$not": f}`` -- negates one sub-filter.

Sub-filters of ``$and``, ``$or`` and ``$not`` may also be callables (see below). The empty
filter ``{}`` matches every record.

Field operators: ``$eq $ne $gt $gte $lt $lte $in $nin $exists $contains``
(see :data:`SUPPORTED_OPERATORS`).

Semantics
---------
* **Missing fields** never equal, order, or belong to anything: ``$eq``, ``$gt``, ``$gte``,
  ``$lt``, ``$lte``, ``$in`` and ``$contains`` are False on a missing field. ``$ne`` and
  ``$nin`` are the exact negations of ``$eq`` and ``$in``, so they are True on a missing field
  (as in MongoDB). Use ``{"$exists": True}`` alongside to exclude records without the field.
  A field present with value ``None`` is *not* missing: it equals ``None``.
* **Equality is type-strict, the JSON way.** ``bool`` is not a number (``True != 1``,
  ``False != 0``); ``int`` and ``float`` compare numerically (``1 == 1.0``); a string never
  equals a number. Lists (and tuples) are equal when they have the same length and equal
  items; dicts when they have the same keys and equal values (both recursively strict).
* **Equality against a list-valued field compares the whole list**: ``{"tags": "a"}`` does
  not match ``{"tags": ["a", "b"]}`` (unlike MongoDB). Use ``{"tags": {"$contains": "a"}}``
  for membership. ``$in`` likewise compares the whole field value with each candidate.
* **Ordering** (``$gt $gte $lt $lte``) is defined between two numbers (int/float, never
  bool) and between two strings (code-point order, so ISO-8601 dates sort correctly). Any
  other pairing -- str vs int, bool vs int, None, lists -- is False rather than an error.
  NaN compares False with everything.
* ``$in`` / ``$nin`` take a list (or tuple) of candidates; ``$in: []`` matches nothing and
  ``$nin: []`` matches everything.
* ``$exists`` takes a bool: True when the field is present (any value, None included).
* ``$contains`` is list membership: True when the field is a list (or tuple) holding an item
  equal (strictly, as above) to the operand. A string field never ``$contains`` anything; use
  a callable filter for substring tests.
* **Dotted keys** reach into nested dicts: ``{"author.name": "Ada"}`` matches
  ``{"author": {"name": "Ada"}}``. A key that literally contains the dot wins: the whole key is
  looked up first, then the shortest matching prefix that holds a dict, recursively. Paths do
  not index into lists. Field names cannot start with ``$`` (that prefix marks operators).
* A field value that is a dict without ``$`` keys is a literal to compare for equality
  (``{"author": {"name": "Ada"}}`` requires the whole dict to be equal). Such an implicit
  literal may not contain ``$`` keys at any depth, because that is nearly always a misplaced
  operator (write ``{"author.name": {"$ne": "Ada"}}``); to compare against such a dict on
  purpose, wrap it in an explicit ``$eq``.

Callable filters
----------------
A callable receives the record's metadata mapping (it must not modify it) and its result is
coerced with :func:`bool`. An exception raised inside it is re-raised as
:class:`~langchain_memvid.engine.errors.InvalidArgument` chained to the original, so a broken
filter is reported as the caller's argument error rather than as a storage failure.

Validation
----------
Everything is checked at compile time and reported as ``InvalidArgument``: unknown or
misplaced operators (the message names it and lists the supported ones), ``$and``/``$or``
operands that are not a non-empty list, ``$in``/``$nin`` operands that are not a list,
``$exists`` operands that are not a bool, ordering operands that are not a number or a string,
operator dicts mixing operators with plain keys, non-string keys, filters nested more than
:data:`MAX_FILTER_DEPTH` levels deep, and filters that are neither a dict nor a callable.

Examples:
    >>> match = compile_filter({"year": {"$gte": 2000}, "tags": {"$contains": "ai"}})
    >>> match({"year": 2001, "tags": ["ai", "ml"]})
    True
    >>> match({"year": "2001", "tags": ["ai"]})  # a string is not a number
    False
    >>> compile_filter({"n": 1})({"n": 1.0}), compile_filter({"n": 1})({"n": True})
    (True, False)
    >>> compile_filter({"lang": {"$ne": "en"}})({})  # missing field: $ne is True
    True
"""

from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

from langchain_memvid.engine.codec.records import nesting_exceeds
from langchain_memvid.engine.errors import InvalidArgument

__all__ = ["MAX_FILTER_DEPTH", "SUPPORTED_OPERATORS", "Filter", "Predicate", "compile_filter"]

Predicate: TypeAlias = Callable[[Mapping[str, Any]], bool]
"""A compiled filter: takes a record's metadata, says whether the record matches."""

Filter: TypeAlias = Mapping[str, Any] | Callable[[Mapping[str, Any]], bool]
"""What callers pass: a filter dict or a predicate of their own."""

_FIELD_OPERATORS: tuple[str, ...] = (
    "$eq",
    "$ne",
    "$gt",
    "$gte",
    "$lt",
    "$lte",
    "$in",
    "$nin",
    "$exists",
    "$contains",
)
_LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")

SUPPORTED_OPERATORS: tuple[str, ...] = _FIELD_OPERATORS + _LOGICAL_OPERATORS
"""Every operator a filter dict may use: field operators first, then logical ones."""

MAX_FILTER_DEPTH = 64
"""How deeply a filter may nest dicts and lists (operators and literals alike): compiling and
evaluating recurse once per level, so a deeper filter is refused instead of exhausting the stack."""

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


class _Missing:
    """Sentinel type for a field absent from the metadata (distinct from a ``None`` value)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


def _always_true(metadata: Mapping[str, Any]) -> bool:
    """Match every record; the compiled form of the empty filter ``{}``."""
    return True


# --------------------------------------------------------------------------- value semantics


def _is_number(value: Any) -> bool:
    """Say whether ``value`` is a real number; bools are excluded, as in JSON."""
    if type(value) is int or type(value) is float:
        return True
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _values_equal(a: Any, b: Any) -> bool:
    """Compare two JSON-like values strictly: bool is not int, int equals float, str is str."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if _is_number(a) or _is_number(b):
        return _is_number(a) and _is_number(b) and bool(a == b)
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list | tuple) or isinstance(b, list | tuple):
        return (
            isinstance(a, list | tuple)
            and isinstance(b, list | tuple)
            and len(a) == len(b)
            and all(_values_equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        return (
            isinstance(a, Mapping)
            and isinstance(b, Mapping)
            and a.keys() == b.keys()
            and all(_values_equal(a[key], b[key]) for key in a)
        )
    # Not JSON-like (bytes, dates...): only same-type equality, never an exception.
    try:
        return type(a) is type(b) and bool(a == b)
    except Exception:
        return False


def _orderable(a: Any, b: Any) -> bool:
    """Say whether ``a`` and ``b`` may be ordered: two numbers or two strings."""
    if isinstance(a, str):
        return isinstance(b, str)
    return _is_number(a) and _is_number(b)


# --------------------------------------------------------------------------- field access


def _resolve(metadata: Mapping[str, Any], path: str) -> Any:
    """Find ``path`` in ``metadata``: the literal key first, then dotted nesting.

    Returns:
        The value, or ``_MISSING`` when no interpretation of the path exists.
    """
    if path in metadata:
        return metadata[path]
    start = 0
    while True:
        dot = path.find(".", start)
        if dot < 0:
            return _MISSING
        head = path[:dot]
        if head in metadata:
            inner = metadata[head]
            if isinstance(inner, Mapping):
                found = _resolve(inner, path[dot + 1 :])
                if found is not _MISSING:
                    return found
        start = dot + 1


def _getter(field: str) -> Callable[[Mapping[str, Any]], Any]:
    """Build the accessor for ``field``; plain keys skip the dotted-path search."""
    if "." not in field:
        return lambda metadata: metadata.get(field, _MISSING)
    return lambda metadata: _resolve(metadata, field)


# --------------------------------------------------------------------------- compilation


def _describe_supported() -> str:
    """List the supported operators for error messages."""
    return ", ".join(SUPPORTED_OPERATORS)


def _unknown_operator(op: str, where: str) -> InvalidArgument:
    """Build the error for an unsupported operator, with a hint when only the case is wrong."""
    hint = ""
    for known in SUPPORTED_OPERATORS:
        if known.lower() == op.lower():
            hint = f" (did you mean {known!r}?)"
            break
    return InvalidArgument(
        f"unknown filter operator {op!r} at {where}{hint}; supported operators: {_describe_supported()}"
    )


def _check_str_keys(mapping: Mapping[Any, Any], where: str) -> None:
    """Reject non-string keys: metadata keys are strings, so such a key can never match."""
    for key in mapping:
        if not isinstance(key, str):
            raise InvalidArgument(
                f"filter keys must be strings, got {key!r} ({type(key).__name__}) at {where}"
            )


def _find_operator_key(value: Any) -> str | None:
    """Return the first ``$`` key nested anywhere in a literal value, or None."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if isinstance(key, str) and key.startswith("$"):
                return key
            found = _find_operator_key(inner)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for inner in value:
            found = _find_operator_key(inner)
            if found is not None:
                return found
    return None


def _wrap_callable(fn: Callable[[Mapping[str, Any]], Any]) -> Predicate:
    """Coerce a user callable's result to bool and report its failures as InvalidArgument."""
    name = getattr(fn, "__qualname__", None) or repr(fn)

    def predicate(metadata: Mapping[str, Any]) -> bool:
        try:
            return bool(fn(metadata))
        except Exception as e:
            raise InvalidArgument(f"filter callable {name} raised {type(e).__name__}: {e}") from e

    return predicate


def _all_of(predicates: list[Predicate]) -> Predicate:
    """AND predicates together, skipping the loop for the common single-condition case."""
    if not predicates:
        return _always_true
    if len(predicates) == 1:
        return predicates[0]
    preds = tuple(predicates)
    return lambda metadata: all(p(metadata) for p in preds)


def _any_of(predicates: list[Predicate]) -> Predicate:
    """OR predicates together; the list is never empty (``$or: []`` is rejected)."""
    preds = tuple(predicates)
    return lambda metadata: any(p(metadata) for p in preds)


def _negate(predicate: Predicate) -> Predicate:
    """Invert a predicate, for ``$not``."""
    return lambda metadata: not predicate(metadata)


def _compile_in(candidates: Iterable[Any]) -> Callable[[Any], bool]:
    """Build a membership test over ``candidates`` that keeps the strict equality rules.

    Hashable scalars go into per-kind sets so ``$in`` with many ids stays O(1) per record;
    bools, numbers and strings are kept apart because ``True``, ``1`` and ``1.0`` hash alike.
    """
    bools: set[bool] = set()
    strings: set[str] = set()
    nums: set[Any] = set()
    has_none = False
    others: list[Any] = []
    for c in candidates:
        if isinstance(c, bool):
            bools.add(c)
        elif isinstance(c, str):
            strings.add(c)
        elif _is_number(c):
            if not math.isnan(c):  # NaN equals nothing; keep it out of identity-based lookup
                nums.add(c)
        elif c is None:
            has_none = True
        else:
            others.append(c)

    def is_in(value: Any) -> bool:
        if value is _MISSING:
            return False
        if isinstance(value, bool):
            return value in bools
        if isinstance(value, str):
            return value in strings
        if _is_number(value):
            return not math.isnan(value) and value in nums
        if value is None:
            return has_none
        return any(_values_equal(value, c) for c in others)

    return is_in


def _compile_operator(op: str, operand: Any, field: str, where: str) -> Callable[[Any], bool]:
    """Compile one field operator into a test on the field's value (or ``_MISSING``)."""
    if op == "$eq":
        return lambda v: v is not _MISSING and _values_equal(v, operand)
    if op == "$ne":
        return lambda v: v is _MISSING or not _values_equal(v, operand)
    if op in _ORDERING:
        if not (isinstance(operand, str) or _is_number(operand)):
            raise InvalidArgument(
                f"{op} at {where} needs a number or a string, got {operand!r} ({type(operand).__name__})"
            )
        compare = _ORDERING[op]
        return lambda v: _orderable(v, operand) and bool(compare(v, operand))
    if op in ("$in", "$nin"):
        if not isinstance(operand, list | tuple):
            raise InvalidArgument(
                f"{op} at {where} needs a list of values, got {operand!r} ({type(operand).__name__})"
            )
        is_in = _compile_in(operand)
        if op == "$in":
            return is_in
        return lambda v: not is_in(v)
    if op == "$exists":
        if not isinstance(operand, bool):
            raise InvalidArgument(
                f"$exists at {where} needs True or False, got {operand!r} ({type(operand).__name__})"
            )
        if operand:
            return lambda v: v is not _MISSING
        return lambda v: v is _MISSING
    if op == "$contains":
        return lambda v: isinstance(v, list | tuple) and any(_values_equal(item, operand) for item in v)
    if op in _LOGICAL_OPERATORS:
        raise InvalidArgument(
            f"{op} is a logical operator and cannot be used inside field {field!r} at {where}; "
            f"put it at the top level, e.g. {{{op!r}: ...}} around the field condition"
        )
    raise _unknown_operator(op, where)


def _compile_field(field: str, condition: Any, where: str) -> Predicate:
    """Compile ``{field: condition}`` where condition is a literal or an operator dict."""
    get = _getter(field)
    if isinstance(condition, Mapping) and condition:
        _check_str_keys(condition, where)
        ops = [key for key in condition if key.startswith("$")]
        if ops:
            plain = [key for key in condition if not key.startswith("$")]
            if plain:
                raise InvalidArgument(
                    f"operator dict for field {field!r} at {where} mixes operators {ops} "
                    f"with plain keys {plain}; use dotted keys (e.g. '{field}.{plain[0]}') "
                    "for nested fields, or $eq to compare a whole dict"
                )
            tests = tuple(_compile_operator(op, condition[op], field, f"{where}[{op!r}]") for op in ops)
            if len(tests) == 1:
                test = tests[0]
                return lambda metadata: test(get(metadata))

            def all_tests(metadata: Mapping[str, Any]) -> bool:
                value = get(metadata)
                return all(t(value) for t in tests)

            return all_tests
    nested_op = _find_operator_key(condition)
    if nested_op is not None:
        raise InvalidArgument(
            f"the value for field {field!r} at {where} is a literal but holds the key "
            f"{nested_op!r}; use dotted keys for nested fields (e.g. {{'{field}.sub': "
            f"{{{nested_op!r}: ...}}}}), or wrap the literal in $eq to compare it as is"
        )
    if isinstance(condition, Mapping):
        _check_str_keys(condition, where)
    test = _compile_operator("$eq", condition, field, where)
    return lambda metadata: test(get(metadata))


def _compile_list(op: str, operand: Any, where: str) -> list[Predicate]:
    """Compile the sub-filters of ``$and`` / ``$or``, which must form a non-empty list."""
    if not isinstance(operand, list | tuple):
        raise InvalidArgument(
            f"{op} at {where} needs a non-empty list of filters, got {operand!r} ({type(operand).__name__})"
        )
    if not operand:
        raise InvalidArgument(f"{op} at {where} needs a non-empty list of filters, got []")
    return [_compile(sub, f"{where}[{op!r}][{i}]") for i, sub in enumerate(operand)]


def _compile_mapping(flt: Mapping[Any, Any], where: str) -> Predicate:
    """Compile a filter dict: AND of its field conditions and logical operators."""
    _check_str_keys(flt, where)
    predicates: list[Predicate] = []
    for key, value in flt.items():
        if not key.startswith("$"):
            predicates.append(_compile_field(key, value, f"{where}[{key!r}]"))
        elif key == "$and":
            predicates.append(_all_of(_compile_list(key, value, where)))
        elif key == "$or":
            predicates.append(_any_of(_compile_list(key, value, where)))
        elif key == "$not":
            predicates.append(_negate(_compile(value, f"{where}['$not']")))
        elif key in _FIELD_OPERATORS:
            raise InvalidArgument(
                f"{key} is a field operator and cannot be used at {where} without a field; "
                f"write {{'field': {{{key!r}: ...}}}}"
            )
        else:
            raise _unknown_operator(key, where)
    return _all_of(predicates)


def _compile(flt: Any, where: str) -> Predicate:
    """Compile a filter dict or callable found at ``where`` (used in error messages)."""
    if isinstance(flt, Mapping):
        return _compile_mapping(flt, where)
    if callable(flt):
        return _wrap_callable(flt)
    raise InvalidArgument(f"a filter must be a dict or a callable, got {type(flt).__name__} at {where}")


def compile_filter(flt: Filter | None) -> Predicate | None:
    """Compile a metadata filter once, so each record costs only a predicate call.

    See the module docstring for the full semantics.

    Args:
        flt: A filter dict, a callable taking the metadata mapping, or None.

    Returns:
        A predicate on a record's metadata, or None when ``flt`` is None (no filtering), so
        callers can skip the per-record call entirely.

    Raises:
        InvalidArgument: The filter is malformed (unknown operator, bad operand, wrong type) or
            nested more than ``MAX_FILTER_DEPTH`` levels deep.

    Examples:
        >>> compile_filter(None) is None
        True
        >>> match = compile_filter({"$or": [{"lang": "en"}, {"author.name": "Ada"}]})
        >>> match({"lang": "fr", "author": {"name": "Ada"}}), match({"lang": "fr"})
        (True, False)
        >>> compile_filter({"id": {"$in": ["a", "b"]}})({"id": "b"})
        True
        >>> compile_filter({"id": {"$in": "ab"}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_memvid.engine.errors.InvalidArgument: $in at filter['id']['$in'] needs a list...
        >>> compile_filter({"year": {"$regex": "^19"}})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        langchain_memvid.engine.errors.InvalidArgument: unknown filter operator '$regex' ...
        >>> compile_filter(lambda m: m.get("score", 0) > 0.5)({"score": 0.9})
        True
    """
    if flt is None:
        return None
    if nesting_exceeds(flt, MAX_FILTER_DEPTH):
        raise InvalidArgument(
            f"the filter is nested more than {MAX_FILTER_DEPTH} levels deep (dicts and lists), or "
            "contains itself; flatten it (e.g. one $and or $in list instead of nested ones)"
        )
    return _compile(flt, "filter")
