#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and type checks, with the network off.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check langchain_memvid tests benchmarks examples
mypy
pytest --disable-socket --allow-unix-socket -q "$@"
