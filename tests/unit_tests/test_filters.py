"""Tests for the metadata filter compiler (langchain_memvid.engine.search.filters)."""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_memvid.engine.errors import InvalidArgument, MemvidError
from langchain_memvid.engine.search import filters
from langchain_memvid.engine.search.filters import SUPPORTED_OPERATORS, compile_filter


def matches(flt: Any, metadata: Mapping[str, Any]) -> bool:
    predicate = compile_filter(flt)
    assert predicate is not None
    result = predicate(metadata)
    assert isinstance(result, bool)
    return result


DOC = {
    "year": 2001,
    "score": 0.75,
    "title": "Dune",
    "draft": False,
    "note": None,
    "tags": ["sf", "classic"],
    "author": {"name": "Frank", "born": 1920},
}


# --------------------------------------------------------------------------- basics


def test_none_means_no_filter() -> None:
    assert compile_filter(None) is None


def test_empty_filter_matches_everything() -> None:
    assert matches({}, DOC)
    assert matches({}, {})


def test_supported_operators_is_a_tuple_of_operators() -> None:
    assert isinstance(SUPPORTED_OPERATORS, tuple)
    assert all(isinstance(op, str) and op.startswith("$") for op in SUPPORTED_OPERATORS)
    for op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin"):
        assert op in SUPPORTED_OPERATORS
    for op in ("$exists", "$contains", "$and", "$or", "$not"):
        assert op in SUPPORTED_OPERATORS


def test_does_not_import_langchain() -> None:
    tree = ast.parse(Path(filters.__file__).read_text(encoding="utf-8"))
    imported: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.append(node.module)
    assert imported
    assert not [name for name in imported if name.split(".")[0].startswith("langchain_core")]
    assert not [name for name in imported if name.split(".")[0] == "langchain"]


# --------------------------------------------------------------------------- operators


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        # implicit equality
        ({"year": 2001}, True),
        ({"year": 2002}, False),
        ({"title": "Dune"}, True),
        ({"title": "dune"}, False),
        ({"note": None}, True),
        ({"draft": False}, True),
        ({"draft": True}, False),
        ({"year": 2001, "title": "Dune"}, True),
        ({"year": 2001, "title": "Emma"}, False),
        # $eq / $ne
        ({"year": {"$eq": 2001}}, True),
        ({"year": {"$eq": 1999}}, False),
        ({"year": {"$ne": 1999}}, True),
        ({"year": {"$ne": 2001}}, False),
        ({"note": {"$ne": None}}, False),
        ({"title": {"$ne": "Dune"}}, False),
        # ordering on numbers
        ({"year": {"$gt": 2000}}, True),
        ({"year": {"$gt": 2001}}, False),
        ({"year": {"$gte": 2001}}, True),
        ({"year": {"$gte": 2002}}, False),
        ({"year": {"$lt": 2002}}, True),
        ({"year": {"$lt": 2001}}, False),
        ({"year": {"$lte": 2001}}, True),
        ({"year": {"$lte": 2000}}, False),
        ({"score": {"$gt": 0.5}}, True),
        ({"score": {"$lt": 0.5}}, False),
        # ordering on strings
        ({"title": {"$gt": "Alpha"}}, True),
        ({"title": {"$gt": "Zeta"}}, False),
        ({"title": {"$lte": "Dune"}}, True),
        ({"title": {"$lt": "Dune"}}, False),
        # range: operators in one dict are AND-ed
        ({"year": {"$gte": 2000, "$lt": 2010}}, True),
        ({"year": {"$gte": 2000, "$lt": 2001}}, False),
        # $in / $nin
        ({"year": {"$in": [1999, 2001]}}, True),
        ({"year": {"$in": [1999, 2000]}}, False),
        ({"year": {"$in": []}}, False),
        ({"title": {"$in": ("Dune", "Emma")}}, True),
        ({"note": {"$in": [None]}}, True),
        ({"draft": {"$in": [False]}}, True),
        ({"draft": {"$in": [0]}}, False),
        ({"year": {"$nin": [1999, 2000]}}, True),
        ({"year": {"$nin": [2001]}}, False),
        ({"year": {"$nin": []}}, True),
        # $exists
        ({"year": {"$exists": True}}, True),
        ({"note": {"$exists": True}}, True),  # a None value is present
        ({"nope": {"$exists": True}}, False),
        ({"nope": {"$exists": False}}, True),
        ({"year": {"$exists": False}}, False),
        # $contains
        ({"tags": {"$contains": "sf"}}, True),
        ({"tags": {"$contains": "romance"}}, False),
        ({"title": {"$contains": "Du"}}, False),  # not a substring test
        ({"year": {"$contains": 2001}}, False),
        ({"author": {"$contains": "name"}}, False),
    ],
)
def test_operator(flt: dict[str, Any], expected: bool) -> None:
    assert matches(flt, DOC) is expected


def test_contains_uses_strict_equality() -> None:
    assert matches({"v": {"$contains": 1}}, {"v": [1.0, "x"]})
    assert not matches({"v": {"$contains": 1}}, {"v": [True, "1"]})
    assert matches({"v": {"$contains": True}}, {"v": [True]})
    assert matches({"v": {"$contains": ["a"]}}, {"v": [["a"], ["b"]]})
    assert matches({"v": {"$contains": None}}, {"v": [None]})
    assert not matches({"v": {"$contains": "a"}}, {"v": []})


def test_in_with_many_candidates_and_unhashable_ones() -> None:
    ids = [f"id-{i}" for i in range(1000)]
    assert matches({"id": {"$in": ids}}, {"id": "id-999"})
    assert not matches({"id": {"$in": ids}}, {"id": "id-1000"})
    assert matches({"v": {"$in": [[1, 2], {"a": 1}]}}, {"v": [1, 2]})
    assert matches({"v": {"$in": [[1, 2], {"a": 1}]}}, {"v": {"a": 1.0}})
    assert not matches({"v": {"$in": [[1, 2], {"a": 1}]}}, {"v": [2, 1]})
    assert not matches({"v": {"$in": [[1, 2]]}}, {"v": 1})


# --------------------------------------------------------------------------- missing fields


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        (1, False),
        (None, False),
        ({"$eq": None}, False),
        ({"$eq": 1}, False),
        ({"$ne": 1}, True),
        ({"$ne": None}, True),
        ({"$gt": 0}, False),
        ({"$gte": 0}, False),
        ({"$lt": 0}, False),
        ({"$lte": 0}, False),
        ({"$gt": ""}, False),
        ({"$in": [None, 0, ""]}, False),
        ({"$nin": [None, 0, ""]}, True),
        ({"$exists": True}, False),
        ({"$exists": False}, True),
        ({"$contains": None}, False),
    ],
)
def test_missing_field(condition: Any, expected: bool) -> None:
    assert matches({"missing": condition}, DOC) is expected
    assert matches({"missing": condition}, {}) is expected


def test_missing_field_excluded_with_exists() -> None:
    flt = {"lang": {"$ne": "en", "$exists": True}}
    assert matches(flt, {"lang": "fr"})
    assert not matches(flt, {"lang": "en"})
    assert not matches(flt, {})


# --------------------------------------------------------------------------- type mixing


@pytest.mark.parametrize(
    ("flt", "metadata", "expected"),
    [
        # bool is not int
        ({"v": 1}, {"v": True}, False),
        ({"v": True}, {"v": 1}, False),
        ({"v": 0}, {"v": False}, False),
        ({"v": False}, {"v": 0}, False),
        ({"v": {"$ne": 1}}, {"v": True}, True),
        ({"v": {"$in": [1]}}, {"v": True}, False),
        ({"v": {"$in": [True]}}, {"v": 1}, False),
        ({"v": {"$in": [True]}}, {"v": 1.0}, False),
        ({"v": {"$nin": [1]}}, {"v": True}, True),
        ({"v": {"$gt": 0}}, {"v": True}, False),
        ({"v": {"$lt": 2}}, {"v": True}, False),
        ({"v": {"$gte": 1}}, {"v": True}, False),
        ({"v": True}, {"v": True}, True),
        # int and float compare numerically
        ({"v": 1}, {"v": 1.0}, True),
        ({"v": 1.0}, {"v": 1}, True),
        ({"v": {"$in": [1]}}, {"v": 1.0}, True),
        ({"v": {"$in": [1.0]}}, {"v": 1}, True),
        ({"v": {"$nin": [1.0]}}, {"v": 1}, False),
        ({"v": {"$gte": 1}}, {"v": 1.0}, True),
        ({"v": {"$gt": 1}}, {"v": 1.5}, True),
        ({"v": {"$lt": 1.5}}, {"v": 1}, True),
        ({"v": {"$ne": 2.0}}, {"v": 2}, False),
        # str vs int: never equal, never ordered, no exception
        ({"v": "1"}, {"v": 1}, False),
        ({"v": 1}, {"v": "1"}, False),
        ({"v": {"$gt": 0}}, {"v": "5"}, False),
        ({"v": {"$lt": "z"}}, {"v": 5}, False),
        ({"v": {"$gte": "a"}}, {"v": None}, False),
        ({"v": {"$lte": 5}}, {"v": None}, False),
        ({"v": {"$gt": 0}}, {"v": [1]}, False),
        ({"v": {"$gt": 0}}, {"v": {"a": 1}}, False),
        ({"v": {"$ne": "1"}}, {"v": 1}, True),
        ({"v": {"$in": ["1"]}}, {"v": 1}, False),
        # None only equals None
        ({"v": None}, {"v": 0}, False),
        ({"v": None}, {"v": ""}, False),
        ({"v": None}, {"v": False}, False),
        ({"v": 0}, {"v": None}, False),
        # NaN equals and orders nothing
        ({"v": math.nan}, {"v": math.nan}, False),
        ({"v": {"$in": [math.nan]}}, {"v": math.nan}, False),
        ({"v": {"$gt": 0}}, {"v": math.nan}, False),
        ({"v": {"$lt": 0}}, {"v": math.nan}, False),
        ({"v": {"$ne": 1}}, {"v": math.nan}, True),
    ],
)
def test_type_mixing(flt: dict[str, Any], metadata: dict[str, Any], expected: bool) -> None:
    assert matches(flt, metadata) is expected


def test_same_nan_object_is_still_not_in() -> None:
    nan = float("nan")
    assert not matches({"v": {"$in": [nan]}}, {"v": nan})
    assert not matches({"v": nan}, {"v": nan})


# --------------------------------------------------------------------------- lists and dicts


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"tags": ["sf", "classic"]}, True),
        ({"tags": ("sf", "classic")}, True),
        ({"tags": ["classic", "sf"]}, False),
        ({"tags": ["sf"]}, False),
        ({"tags": "sf"}, False),  # whole-list equality, not membership
        ({"tags": {"$eq": "sf"}}, False),
        ({"tags": {"$ne": "sf"}}, True),
        ({"tags": {"$in": ["sf", "classic"]}}, False),
        ({"tags": {"$in": [["sf", "classic"]]}}, True),
        ({"author": {"name": "Frank", "born": 1920}}, True),
        ({"author": {"born": 1920.0, "name": "Frank"}}, True),
        ({"author": {"name": "Frank"}}, False),  # whole-dict equality
        ({"author": {"$eq": {"name": "Frank", "born": 1920}}}, True),
        ({"author": {}}, False),
    ],
)
def test_list_and_dict_values(flt: dict[str, Any], expected: bool) -> None:
    assert matches(flt, DOC) is expected


def test_nested_list_equality_is_strict() -> None:
    assert matches({"v": [1, [2.0, True]]}, {"v": [1.0, [2, True]]})
    assert not matches({"v": [1, [2.0, True]]}, {"v": [1.0, [2, 1]]})
    assert matches({"v": []}, {"v": []})
    assert matches({"v": {}}, {"v": {}})
    assert not matches({"v": []}, {"v": {}})


def test_explicit_eq_compares_dollar_keys_literally() -> None:
    literal = {"a": {"$gt": 1}}
    assert matches({"v": {"$eq": literal}}, {"v": {"a": {"$gt": 1}}})
    assert not matches({"v": {"$eq": literal}}, {"v": {"a": 5}})


# --------------------------------------------------------------------------- dotted paths


NESTED = {
    "author": {"name": "Ada", "address": {"city": "London"}},
    "a.b": "literal",
    "a": {"b": "nested"},
    "x.y": {"z": 1},
    "list": [{"k": 1}],
    "scalar": 5,
}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"author.name": "Ada"}, True),
        ({"author.name": "Bob"}, False),
        ({"author.address.city": "London"}, True),
        ({"author.address.city": {"$in": ["Paris", "London"]}}, True),
        ({"author.address.zip": {"$exists": False}}, True),
        ({"author.address.zip": {"$exists": True}}, False),
        ({"author.missing.deeper": {"$ne": 1}}, True),
        ({"author.name.first": {"$exists": True}}, False),  # str is not traversed
        ({"a.b": "literal"}, True),  # the literal dotted key wins
        ({"a.b": "nested"}, False),
        ({"x.y.z": 1}, True),  # literal prefix "x.y" then nested "z"
        ({"list.0.k": {"$exists": True}}, False),  # no list indexing
        ({"list.k": {"$exists": True}}, False),
        ({"scalar.x": {"$exists": True}}, False),
        ({"author.": {"$exists": True}}, False),
        ({".author": {"$exists": True}}, False),
    ],
)
def test_dotted_paths(flt: dict[str, Any], expected: bool) -> None:
    assert matches(flt, NESTED) is expected


def test_dotted_path_falls_back_when_literal_prefix_is_not_a_dict() -> None:
    # "a.b" exists literally but is a string, so "a.b.c" must be looked up via "a" -> "b.c".
    metadata = {"a.b": "literal", "a": {"b.c": 7}}
    assert matches({"a.b.c": 7}, metadata)
    metadata2 = {"a": {"b": 1}, "a.b": {"c": 2}}
    assert matches({"a.b.c": 2}, metadata2)


# --------------------------------------------------------------------------- logical operators


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"$and": [{"year": 2001}, {"title": "Dune"}]}, True),
        ({"$and": [{"year": 2001}, {"title": "Emma"}]}, False),
        ({"$and": ({"year": 2001},)}, True),
        ({"$or": [{"year": 1999}, {"title": "Dune"}]}, True),
        ({"$or": [{"year": 1999}, {"title": "Emma"}]}, False),
        ({"$not": {"year": 2001}}, False),
        ({"$not": {"year": 1999}}, True),
        ({"$not": {}}, False),
        ({"$not": {"$not": {"year": 2001}}}, True),
        (
            {
                "$or": [
                    {"$and": [{"year": {"$lt": 2000}}, {"draft": True}]},
                    {"$and": [{"tags": {"$contains": "sf"}}, {"$not": {"score": {"$lt": 0.5}}}]},
                ]
            },
            True,
        ),
        (
            {
                "$and": [
                    {"$or": [{"year": 1999}, {"year": 2000}]},
                    {"title": "Dune"},
                ]
            },
            False,
        ),
        # logical operators combine with sibling field conditions (AND)
        ({"title": "Dune", "$or": [{"year": 1}, {"year": 2001}]}, True),
        ({"title": "Emma", "$or": [{"year": 1}, {"year": 2001}]}, False),
        ({"$and": [{"year": 2001}], "$or": [{"year": 1}], "$not": {"x": 1}}, False),
        # callables inside logical operators
        ({"$or": [lambda m: m["year"] > 3000, {"title": "Dune"}]}, True),
        ({"$not": lambda m: m["year"] == 2001}, False),
    ],
)
def test_logical(flt: dict[str, Any], expected: bool) -> None:
    assert matches(flt, DOC) is expected


def test_or_short_circuits() -> None:
    def boom(metadata: Mapping[str, Any]) -> bool:
        raise AssertionError("should not be evaluated")

    assert matches({"$or": [{"year": 2001}, boom]}, DOC)
    assert not matches({"$and": [{"year": 1}, boom]}, DOC)


# --------------------------------------------------------------------------- callables


def test_callable_filter() -> None:
    seen: list[Mapping[str, Any]] = []

    def recent(metadata: Mapping[str, Any]) -> bool:
        seen.append(metadata)
        return metadata.get("year", 0) > 2000

    predicate = compile_filter(recent)
    assert predicate is not None
    assert predicate(DOC) is True
    assert predicate({"year": 1990}) is False
    assert seen[0] is DOC


def test_callable_result_is_coerced_to_bool() -> None:
    assert matches(lambda m: m.get("tags"), DOC) is True
    assert matches(lambda m: m.get("missing"), DOC) is False
    assert matches(lambda m: 0, DOC) is False


def test_callable_that_raises_becomes_invalid_argument() -> None:
    def broken(metadata: Mapping[str, Any]) -> bool:
        return bool(metadata["nope"] > 1)

    predicate = compile_filter(broken)
    assert predicate is not None
    with pytest.raises(InvalidArgument, match=r"filter callable .*broken raised KeyError") as info:
        predicate(DOC)
    assert isinstance(info.value.__cause__, KeyError)
    assert isinstance(info.value, MemvidError)
    assert isinstance(info.value, ValueError)


def test_callable_whose_result_cannot_be_bool_becomes_invalid_argument() -> None:
    class Ambiguous:
        def __bool__(self) -> bool:
            raise TypeError("truth value is ambiguous")

    with pytest.raises(InvalidArgument, match="ambiguous") as info:
        matches(lambda m: Ambiguous(), DOC)
    assert isinstance(info.value.__cause__, TypeError)


def test_callable_inside_logical_operator_that_raises() -> None:
    predicate = compile_filter({"$and": [{"year": 2001}, lambda m: 1 / 0]})
    assert predicate is not None
    with pytest.raises(InvalidArgument, match="ZeroDivisionError") as info:
        predicate(DOC)
    assert isinstance(info.value.__cause__, ZeroDivisionError)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("op", ["$regex", "$foo", "$In", "$EQ", "$", "$where"])
def test_unknown_field_operator(op: str) -> None:
    with pytest.raises(InvalidArgument, match="unknown filter operator") as info:
        compile_filter({"year": {op: 1}})
    message = str(info.value)
    assert repr(op) in message
    for supported in SUPPORTED_OPERATORS:
        assert supported in message


def test_unknown_operator_suggests_right_case() -> None:
    with pytest.raises(InvalidArgument, match=r"did you mean '\$in'\?"):
        compile_filter({"year": {"$In": [1]}})


@pytest.mark.parametrize("op", ["$regex", "$nor", "$OR"])
def test_unknown_top_level_operator(op: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"unknown filter operator '\{op}'.*\$and, \$or"):
        compile_filter({op: [{"a": 1}]})


def test_unknown_operator_inside_nested_logical_is_reported_at_compile_time() -> None:
    flt = {"$or": [{"a": 1}, {"$and": [{"b": {"$regex": "x"}}]}]}
    with pytest.raises(InvalidArgument, match=r"'\$regex' at filter\['\$or'\]\[1\]\['\$and'\]\[0\]"):
        compile_filter(flt)


@pytest.mark.parametrize("op", ["$and", "$or"])
@pytest.mark.parametrize("operand", [{"a": 1}, "a", None, 1])
def test_and_or_need_a_list(op: str, operand: Any) -> None:
    with pytest.raises(InvalidArgument, match=rf"\{op} .*needs a non-empty list of filters"):
        compile_filter({op: operand})


@pytest.mark.parametrize("op", ["$and", "$or"])
def test_and_or_reject_empty_list(op: str) -> None:
    with pytest.raises(InvalidArgument, match=r"needs a non-empty list of filters, got \[\]"):
        compile_filter({op: []})


@pytest.mark.parametrize("bad", [1, "year", None, [{"a": 1}]])
def test_sub_filter_must_be_dict_or_callable(bad: Any) -> None:
    with pytest.raises(InvalidArgument, match="must be a dict or a callable"):
        compile_filter({"$and": [{"a": 1}, bad]})
    with pytest.raises(InvalidArgument, match="must be a dict or a callable"):
        compile_filter({"$not": bad})


def test_logical_operator_inside_field_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match=r"\$not is a logical operator"):
        compile_filter({"year": {"$not": {"$gt": 1}}})
    with pytest.raises(InvalidArgument, match=r"\$or is a logical operator"):
        compile_filter({"year": {"$or": [1, 2]}})


def test_field_operator_at_top_level_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match=r"\$in is a field operator"):
        compile_filter({"$in": [1, 2]})


def test_operator_dict_mixing_operators_and_plain_keys() -> None:
    with pytest.raises(InvalidArgument, match=r"mixes operators \['\$gt'\] with plain keys \['x'\]"):
        compile_filter({"year": {"$gt": 1, "x": 2}})


def test_implicit_literal_holding_operators_is_rejected() -> None:
    with pytest.raises(InvalidArgument, match=r"holds the key '\$ne'.*dotted keys"):
        compile_filter({"author": {"name": {"$ne": "Ada"}}})
    with pytest.raises(InvalidArgument, match=r"holds the key '\$gt'"):
        compile_filter({"v": [{"$gt": 1}]})


@pytest.mark.parametrize(
    "flt",
    [
        {1: "a"},
        {("a", "b"): 1},
        {"year": {1: 2}},
        {"year": {"$gt": 1, 2: 3}},
        {"$and": [{None: 1}]},
        {"$not": {b"a": 1}},
    ],
)
def test_non_str_keys(flt: Any) -> None:
    with pytest.raises(InvalidArgument, match="filter keys must be strings"):
        compile_filter(flt)


@pytest.mark.parametrize("flt", [1, "year == 1", [{"a": 1}], ("a", 1), 2.5, True, b"x"])
def test_filter_must_be_dict_or_callable(flt: Any) -> None:
    with pytest.raises(InvalidArgument, match="a filter must be a dict or a callable"):
        compile_filter(flt)


@pytest.mark.parametrize("op", ["$in", "$nin"])
@pytest.mark.parametrize("operand", ["abc", 1, None, {"a": 1}, {1, 2}, True])
def test_in_nin_need_a_list(op: str, operand: Any) -> None:
    with pytest.raises(InvalidArgument, match=rf"\{op} at .*needs a list of values"):
        compile_filter({"year": {op: operand}})


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
@pytest.mark.parametrize("operand", [None, True, False, [1], {"a": 1}])
def test_ordering_needs_number_or_string(op: str, operand: Any) -> None:
    with pytest.raises(InvalidArgument, match=rf"\{op} at .*needs a number or a string"):
        compile_filter({"year": {op: operand}})


@pytest.mark.parametrize("operand", [1, 0, "yes", None])
def test_exists_needs_a_bool(operand: Any) -> None:
    with pytest.raises(InvalidArgument, match=r"\$exists at .*needs True or False"):
        compile_filter({"year": {"$exists": operand}})


def test_invalid_argument_is_a_value_error() -> None:
    with pytest.raises(ValueError, match=r"\$regex"):
        compile_filter({"year": {"$regex": "x"}})


# --------------------------------------------------------------------------- property test

KEYS = ("a", "b", "c")

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([-1.5, 0.0, 1.0, 2.0, 2.5, math.nan]),
    st.sampled_from(["", "a", "b", "1", "ab"]),
)
values = st.one_of(scalars, st.lists(scalars, max_size=3))
metadata_strategy = st.dictionaries(st.sampled_from(KEYS), values, max_size=3)

orderable = st.one_of(
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([-1.5, 0.0, 1.0, 2.5]),
    st.sampled_from(["", "a", "b", "1"]),
)
condition_strategy = st.one_of(
    values,  # implicit equality
    st.tuples(st.sampled_from(["$eq", "$ne", "$contains"]), values).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), orderable).map(lambda t: {t[0]: t[1]}),
    st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(values, max_size=3)).map(lambda t: {t[0]: t[1]}),
    st.booleans().map(lambda b: {"$exists": b}),
)
field_filter = st.dictionaries(st.sampled_from(KEYS), condition_strategy, min_size=1, max_size=2)
filter_strategy = st.recursive(
    field_filter,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=3).map(lambda fs: {"$and": fs}),
        st.lists(children, min_size=1, max_size=3).map(lambda fs: {"$or": fs}),
        children.map(lambda f: {"$not": f}),
    ),
    max_leaves=6,
)


def ref_equal(a: Any, b: Any) -> bool:
    """Plain restatement of the documented equality rules."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if type(a) in (int, float) and type(b) in (int, float):
        return a == b
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(ref_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


REF_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt,
    "$gte": operator.ge,
    "$lt": operator.lt,
    "$lte": operator.le,
}


def ref_number(x: Any) -> bool:
    return type(x) in (int, float)


def ref_condition(present: bool, value: Any, condition: Any) -> bool:
    if not (isinstance(condition, dict) and condition):
        return present and ref_equal(value, condition)
    result = True
    for op, operand in condition.items():
        if op == "$eq":
            ok = present and ref_equal(value, operand)
        elif op == "$ne":
            ok = not (present and ref_equal(value, operand))
        elif op in REF_ORDER:
            comparable = (ref_number(value) and ref_number(operand)) or (
                type(value) is str and type(operand) is str
            )
            ok = present and comparable and REF_ORDER[op](value, operand)
        elif op == "$in":
            ok = present and any(ref_equal(value, c) for c in operand)
        elif op == "$nin":
            ok = not (present and any(ref_equal(value, c) for c in operand))
        elif op == "$exists":
            ok = present == operand
        elif op == "$contains":
            ok = present and type(value) is list and any(ref_equal(v, operand) for v in value)
        else:
            raise AssertionError(op)
        result = result and ok
    return result


def ref_eval(flt: dict[str, Any], metadata: dict[str, Any]) -> bool:
    result = True
    for key, cond in flt.items():
        if key == "$and":
            ok = all(ref_eval(f, metadata) for f in cond)
        elif key == "$or":
            ok = any(ref_eval(f, metadata) for f in cond)
        elif key == "$not":
            ok = not ref_eval(cond, metadata)
        else:
            ok = ref_condition(key in metadata, metadata.get(key), cond)
        result = result and ok
    return result


@settings(max_examples=600, deadline=None)
@given(flt=filter_strategy, metadata=metadata_strategy)
def test_matches_reference_evaluator(flt: dict[str, Any], metadata: dict[str, Any]) -> None:
    predicate = compile_filter(flt)
    assert predicate is not None
    assert predicate(metadata) is ref_eval(flt, metadata)
