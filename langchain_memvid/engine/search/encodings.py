"""The vector encodings a store can keep (docs/format.md section 4.3), and what each can hold.

Kept apart from the files that use them so that the command line can list them without loading
FAISS or NumPy.
"""

from __future__ import annotations

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


__all__ = ["DEFAULT_ENCODING", "ENCODINGS", "check_encoding"]
