"""Deterministic records and helpers shared by the reliability tests and their child processes.

Every record's text, metadata and vector is a pure function of its id and version, so any process
can check that what it read is exactly what some committed write stored - never a mix.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np

DIM = 8
REPO = Path(__file__).resolve().parents[2]
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "eta",
    "theta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "omicron",
    "pi",
    "rho",
]


def _seed(rid: str, version: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{rid}\x00{version}".encode()).digest()[:8], "big")


def text_for(rid: str, version: int) -> str:
    """The text a record has at a version: ``id:version:`` then filler words (0-40 of them)."""
    rng = random.Random(_seed(rid, version))
    filler = " ".join(rng.choice(WORDS) for _ in range(rng.randrange(41)))
    return f"{rid}:{version}:{filler}"


def meta_for(rid: str, version: int) -> dict[str, Any]:
    """The metadata a record has at a version."""
    return {"id": rid, "v": version, "even": version % 2 == 0}


def vector_for(rid: str, version: int) -> np.ndarray:
    """A unit vector seeded from id and version (distinct records are far apart)."""
    vec = np.random.default_rng(_seed(rid, version)).standard_normal(DIM).astype(np.float32)
    return vec / np.linalg.norm(vec)


def parse(text: str) -> tuple[str, int]:
    """(id, version) from a text written by ``text_for``; raises ValueError on anything else."""
    rid, version, _ = text.split(":", 2)
    if text != text_for(rid, int(version)):
        msg = f"text of {rid!r} is not text_for({rid!r}, {version}): {text[:80]!r}"
        raise ValueError(msg)
    return rid, int(version)


def check_record(rec: Any) -> int:
    """The version of a record read back; raises ValueError if text or metadata is wrong."""
    rid, version = parse(rec.text)
    if rid != rec.id or rec.metadata != meta_for(rid, version):
        msg = f"record {rec.id!r} holds text of {rid!r} v{version} and metadata {rec.metadata!r}"
        raise ValueError(msg)
    return version


def log_line(fd: int, obj: dict[str, Any]) -> None:
    """Append one JSON line to an O_APPEND log in one write, then fsync it."""
    os.write(fd, (json.dumps(obj, sort_keys=True) + "\n").encode())
    os.fsync(fd)


def read_log(path: Path) -> list[dict[str, Any]]:
    """Complete JSON lines of a log (a torn last line, if any, is ignored)."""
    if not path.exists():
        return []
    data = path.read_text()
    lines = data.split("\n")
    return [json.loads(line) for line in lines[:-1] if line]
