#!/usr/bin/env bash
# Set up (if needed) and run the whole test suite, lint and type checks, with the network off;
# then build the wheel and smoke-test it in a fresh venv (scripts/package_check.sh, 1.5-3 min;
# SKIP_PACKAGE_CHECK=1 skips it, e.g. when running a few tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
ruff check langchain_memvid tests benchmarks examples
mypy
# The package check first, so that pytest's summary is the last line of the run.
[ -n "${SKIP_PACKAGE_CHECK:-}" ] || bash scripts/package_check.sh
pytest --disable-socket --allow-unix-socket -q "$@"
