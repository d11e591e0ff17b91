"""IVF indexes built on a Ray cluster: trained once here, filled per segment on the workers, merged here.

FAISS's recipe for indexes too big for one machine, as autofaiss runs it on Spark: the driver
trains the quantizer once on a sample (``Engine.index_build``), one Ray task per segment adds that
segment's vectors to a copy of the trained index and writes its inverted lists into the store's
``tmp/`` (``engine.fill_index_part``), and the driver merges the parts list by list on disk into
the store's index snapshot. A worker holds one segment's vectors; the driver holds the training
sample and one list of codes at a time, never every vector.

:func:`ingest_on_ray` calls :func:`index_after_ingest` at its end, so an ingest into an IVF store
builds its index this way; :func:`build_index_on_ray` (``lcmemvid build-index --ray``) rebuilds
an existing store's. docs/ray.md tells the whole story.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_memvid.distributed import _joined, require_ray

if TYPE_CHECKING:
    from langchain_memvid.engine import Engine

__all__ = ["build_index_on_ray", "index_after_ingest"]

IN_FLIGHT_PER_CPU = 2
"""Fill tasks submitted per cluster CPU at once: the cluster stays busy, the driver's queue small."""


def build_index_on_ray(
    store: str | Path,
    index: str | None = None,
    index_options: Mapping[str, Any] | None = None,
    *,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Build (or switch to) a store's IVF index on a Ray cluster, as ``build_index`` would in one process.

    The store folder must be visible at the same absolute path to every worker (docs/ray.md).

    Example:
        ```python
        from langchain_memvid.distributed_index import build_index_on_ray

        info = build_index_on_ray("/shared/library", "ivf", {"nlist": 4096})
        print(info["vectors_in_main"], info["snapshot"]["bytes"])
        ```

    Args:
        store: The store's folder.
        index: The index to build, as for ``build_index``: ``"ivf"``, ``"ivfpq"`` or a FAISS
            factory string with an IVF in it. None: the store's own.
        index_options: Its build options (``nlist``, ``m``, ``nbits``...).
        ray_address: The cluster to join. None: the one this process joined, else
            ``RAY_ADDRESS``, else a new local one (shut down at the end).

    Returns:
        The ``index`` part of the store's ``stats()``.

    Raises:
        RayMissing: Ray is not installed.
        StoreNotFound: there is no store at ``store``.
        InvalidArgument: not an IVF index, no vectors, or too few to train.
    """
    from langchain_memvid.engine import Engine, InvalidArgument
    from langchain_memvid.engine.versions import is_versioned

    if is_versioned(store):
        msg = f"build_index_on_ray fills index parts in the store's folder, which every node must see; {store} is a store in object storage. Build its index with `lcmemvid build-index` (no --ray)."
        raise InvalidArgument(msg)
    ray = require_ray()
    with ExitStack() as stack:
        stack.enter_context(_joined(ray, ray_address))
        # Lists memory-mapped: after the commit the driver serves the new snapshot without reading it in.
        engine = stack.enter_context(
            Engine(Path(store).absolute(), create=False, index_options={"mmap": True})
        )
        _build(ray, engine, index, index_options)
        return dict(engine.stats()["index"])


def index_after_ingest(ray: Any, engine: Engine) -> None:
    """Build the approximate index an ingest left to the end (``Engine.bulk(defer_index=True)``).

    As a plain ingest would have by now: nothing below the index's ``min_vectors`` (exact search
    serves); an existing snapshot kept while the vectors added since are no more than it holds
    (the rule every write follows: readers add the rest from the segment files); otherwise the
    index built again, an IVF one on the cluster, any other type (HNSW, LSH, fast-scan IVF) in
    this process.
    """
    from langchain_memvid.engine import InvalidArgument
    from langchain_memvid.engine.search.index_spec import IndexSpec

    spec = IndexSpec.from_meta(engine.settings.get("index"))
    n = len(engine)
    if spec.kind == "flat" or n < spec.min_vectors:
        return
    snap = engine.settings.get("index_snapshot")
    saved = int(snap.get("ntotal", 0)) if isinstance(snap, dict) else 0
    if saved and n - saved <= saved:
        return
    try:
        _build(ray, engine, None, None)
    except InvalidArgument:  # not an index that merges list by list
        engine.build_index()


def _build(ray: Any, engine: Engine, index: str | None, index_options: Mapping[str, Any] | None) -> None:
    """Train here, fill on the workers (each task retried by Ray if its worker dies), merge and commit here."""
    from langchain_memvid.engine import fill_index_part

    with engine.index_build(index, index_options) as build:
        template = ray.put(build.template)
        task = ray.remote(num_cpus=1, max_retries=3)(fill_index_part)
        limit = max(2, int(ray.cluster_resources().get("CPU", 1)) * IN_FLIGHT_PER_CPU)
        waiting = deque(build.jobs())
        running: list[Any] = []
        parts = []
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    running.append(task.remote(waiting.popleft(), template))
                done, running = ray.wait(running, num_returns=1)
                parts.extend(ray.get(done))
        except BaseException:
            # Stop the fills still running before the block deletes the part files they write.
            with suppress(Exception):
                for ref in running:
                    ray.cancel(ref)
                ray.wait(running, num_returns=len(running), timeout=60)
            raise
        build.commit(parts)
