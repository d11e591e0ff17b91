#!/usr/bin/env bash
# The README's first command: set everything up on a fresh machine (scripts/setup.sh), then build
# a store from the sample library in examples/data and use it with the `lcmemvid` command line:
# ingest, info, search, verify, look at a frame, and ask. Offline: the embedding model is the
# packaged all-MiniLM-L6-v2. `ask` answers with the chat model named in MEMVID_CHAT_MODEL (for
# example "ollama:llama3"); without one it prints the passages it would give the model.
#
#   bash scripts/demo.sh                 # store in out/demo-store, rebuilt on every run
#   DEMO_STORE=/tmp/s bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
. .venv/bin/activate
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1

STORE=${DEMO_STORE:-out/demo-store}
FRAME=${DEMO_FRAME:-out/demo-frame.png}
rm -rf "$STORE"
mkdir -p "$(dirname "$STORE")" "$(dirname "$FRAME")"

# Print a command (quoted so it can be pasted back), then run it.
bold=""; plain=""
if [ -t 1 ]; then bold=$'\033[1m'; plain=$'\033[0m'; fi
run() {
  local shown=() arg
  for arg in "$@"; do
    if [[ $arg =~ ^[A-Za-z0-9_./:=+-]+$ ]]; then shown+=("$arg"); else shown+=("'${arg//\'/\'\\\'\'}'"); fi
  done
  printf '\n%s$ %s%s\n' "$bold" "${shown[*]}" "$plain"
  "$@"
}

run lcmemvid ingest "$STORE" examples/data
run lcmemvid info "$STORE"
run lcmemvid search "$STORE" "Who invented the QR code, and why?" -k 2
run lcmemvid search "$STORE" "How do video codecs save space?" -k 2 \
  --filter '{"source": {"$in": ["examples/data/video_compression.epub", "examples/data/moving_pictures.epub"]}}'
run lcmemvid verify "$STORE"
id=$(lcmemvid search "$STORE" "error correction in QR codes" -k 1 --json |
  python -c 'import json, sys; print(json.load(sys.stdin)["hits"][0]["id"])')
run lcmemvid frame "$STORE" --id "$id" -o "$FRAME" --scale 4
run lcmemvid ask "$STORE" "Why can a damaged QR code still be read?" -k 3

printf '\nDone. The store is in %s; try: . .venv/bin/activate && lcmemvid --help\n' "$STORE"
