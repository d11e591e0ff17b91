"""What is live: one SQLite file, its rows checked and its errors translated (see catalog.py)."""

from langchain_memvid.engine.catalog.catalog import Catalog
from langchain_memvid.engine.catalog.rows import RecordRow, SegmentRow, check_name

__all__ = ["Catalog", "RecordRow", "SegmentRow", "check_name"]
