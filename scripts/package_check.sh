#!/usr/bin/env bash
# Check the package a user would install, not the source tree: build the wheel and the sdist
# (the wheel from the sdist, so the sdist is complete), `twine check` both, install the wheel with
# the offline-model extra into a fresh virtual environment, and from a folder outside the repo
# use the installed copy: the Python API (add, search, byte-exact read back, delete, reopen),
# `lcmemvid --version`, and the quick start (`lcmemvid ingest` of examples/data, then
# `lcmemvid search` with the packaged model, offline). Prints one summary line; exits non-zero
# on any failure. Run by scripts/test.sh after pytest; alone it needs the .venv of setup.sh.
#
#   bash scripts/package_check.sh
#   PACKAGE_CHECK_KEEP=1 bash scripts/package_check.sh   # keep the build and venv, print where
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

[ -x .venv/bin/python ] || bash scripts/setup.sh
. .venv/bin/activate
unset PYTHONPATH
export PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
pip_install() { "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }; }
step() { printf '== %s (%ss)\n' "$1" "$((SECONDS - started))"; }

read -r dist version < <(python - <<'PY'
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(project["name"], project["version"])
PY
)
[ -n "${version:-}" ] || { echo "could not read the name and version from pyproject.toml" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/package-check.XXXXXX")
if [ -n "${PACKAGE_CHECK_KEEP:-}" ]; then
  trap 'echo "kept: $work"' EXIT
else
  trap 'rm -rf "$work"' EXIT
fi

step "build sdist and wheel of $dist $version"
python -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
wheel=$(echo "$work"/dist/*.whl)
sdist=$(echo "$work"/dist/*.tar.gz)
[ -f "$wheel" ] && [ -f "$sdist" ] || { echo "expected one wheel and one sdist in $work/dist" >&2; exit 1; }

step "twine check"
twine check --strict "$wheel" "$sdist"

step "fresh venv: torch (CPU), then the wheel with [offline-model]"
python -m venv "$work/venv"
vpy=$work/venv/bin/python
# --no-compile: byte-compiling torch and transformers costs more than the whole smoke test.
pip_install "$vpy" -m pip install -q --no-compile "torch==2.13.0"
pip_install "$vpy" -m pip install -q --no-compile "$dist[offline-model] @ file://$wheel"

step "smoke test of the installed wheel"
mkdir "$work/run"
cd "$work/run"  # outside the repo: only the installed copy can be imported
"$vpy" - "$work/venv" "$repo" "$dist" "$version" <<'PY'
import importlib.metadata as md
import sys
from pathlib import Path

venv, repo, dist, version = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve(), sys.argv[3], sys.argv[4]

import langchain_memvid
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_memvid import MemvidVectorStore

where = Path(langchain_memvid.__file__).resolve()
assert where.is_relative_to(venv), f"imported from {where}, not from the fresh venv {venv}"
assert not where.is_relative_to(repo), f"imported from the source tree: {where}"
assert "site-packages" in where.parts, where
assert md.version(dist) == version, (md.version(dist), version)
files = {str(f) for f in md.files(dist) or []}
assert "langchain_memvid/__init__.py" in files and "langchain_memvid/py.typed" in files, sorted(files)[:10]

texts = [
    "The QR code was invented in 1994 at Denso Wave.",
    "Reed-Solomon codes repair damaged symbols.",
    "Ünïcödé, tabs\tand\nnewlines, emoji 🎞️ and trailing spaces   ",
]
metadatas = [{"source": "a.txt", "n": 1}, {"source": "b.txt", "n": 2}, {"source": "c.txt", "n": 3}]
ids = ["qr", "rs", "uni"]
emb = DeterministicFakeEmbedding(size=32)
path = Path("store")
with MemvidVectorStore(path, emb) as store:
    assert store.add_texts(texts, metadatas=metadatas, ids=ids) == ids
    hits = store.similarity_search(texts[1], k=1)
    assert [d.id for d in hits] == ["rs"], hits
    got = {d.id: d for d in store.get_by_ids(ids)}
    for i, t, m in zip(ids, texts, metadatas):
        assert got[i].page_content.encode() == t.encode(), (i, got[i].page_content)
        assert got[i].metadata == m, (i, got[i].metadata)
    assert store.delete(["rs"])
with MemvidVectorStore(path, emb) as store:  # reopen
    assert len(store) == 2, len(store)
    assert store.get_by_ids(["rs"]) == []
    assert [d.page_content for d in store.get_by_ids(["qr", "uni"])] == [texts[0], texts[2]]
    assert store.similarity_search(texts[2], k=1)[0].id == "uni"
print(f"api ok: {dist} {version} from {where.parent}")
PY

step "lcmemvid --version"
out=$("$work/venv/bin/lcmemvid" --version)
echo "$out"
# click resolves the version from the distribution named in cli.py: a wrong name fails above.
[ "$out" = "lcmemvid ($dist) $version" ] || { echo "unexpected --version output: $out" >&2; exit 1; }

step "quick start: lcmemvid ingest examples/data, lcmemvid search (packaged model, offline)"
cp -r "$repo/examples/data" data
# Progress bars go to the log, shown only on failure.
"$work/venv/bin/lcmemvid" ingest store-cli data 2>"$work/cli.log" || { cat "$work/cli.log"; exit 1; }
"$work/venv/bin/lcmemvid" search store-cli "Who invented the QR code, and why?" -k 2 --json \
  >search.json 2>"$work/cli.log" || { cat "$work/cli.log"; exit 1; }
"$vpy" - <<'PY'
import json

hits = json.load(open("search.json"))["hits"]
assert len(hits) == 2, hits
top = hits[0]
assert top["source"] == "data/qr_code_history.pdf", top["source"]
print(f"search ok: [1] {top['where']}  score {top['score']:.4f}")
PY

wheel_kib=$(($(stat -c %s "$wheel") / 1024))
sdist_kib=$(($(stat -c %s "$sdist") / 1024))
echo "package check passed: $dist $version, wheel ${wheel_kib} KiB + sdist ${sdist_kib} KiB, twine ok, fresh-venv install, API + CLI smoke ok in $((SECONDS - started)) s"
