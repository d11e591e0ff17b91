"""The vector encodings a store can keep (docs/format.md section 4.3), and what each can hold.

Kept apart from the files that use them so that the command line can list them without loading
FAISS or NumPy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langchain_memvid.engine.errors import InvalidArgument

ENCODINGS = ("float32", "float16", "int8", "binary")
DEFAULT_ENCODING = "int8"  # chosen by measurement: docs/indexes.md, "Vector encodings"


def check_encoding(encoding: str, dim: int | None = None, metric: str | None = None) -> str:
    """Validate a vector encoding for a store of ``dim`` and ``metric`` (when known).

    >>> check_encoding("int8")
    'int8'

    Raises:
        InvalidArgument: not one of ENCODINGS, or binary where it cannot hold the vectors.
    """
    if encoding not in ENCODINGS:
        msg = f"Unknown vector encoding {encoding!r}; choose one of {list(ENCODINGS)}."
        raise InvalidArgument(msg)
    if encoding == "binary" and metric not in (None, "cosine"):
        msg = f"Binary vectors keep only each dimension's sign, which ranks by angle: use them with metric 'cosine', not {metric!r}."
        raise InvalidArgument(msg)
    if encoding == "binary" and dim is not None and dim % 8:
        msg = f"Binary vectors need a dimension that is a multiple of 8; the store's is {dim}."
        raise InvalidArgument(msg)
    return encoding


def recorded_encoding(settings: Mapping[str, Any]) -> str:
    """The encoding a store's settings say new segments use.

    A store from 0.1 records none: it keeps float32, whatever today's default for new stores.

    >>> recorded_encoding({}), recorded_encoding({"vector_encoding": "int8"})
    ('float32', 'int8')
    """
    return str(settings.get("vector_encoding") or "float32")


__all__ = ["DEFAULT_ENCODING", "ENCODINGS", "check_encoding", "recorded_encoding"]
