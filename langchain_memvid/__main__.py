"""`python -m langchain_memvid`: the same command line as `lcmemvid`."""

from __future__ import annotations

from langchain_memvid.cli import main

if __name__ == "__main__":
    main()
