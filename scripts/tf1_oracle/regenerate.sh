#!/usr/bin/env bash
# Regenerate the TF 1.15 oracle fixtures (tests/tf1_oracle/), then run the reverse check (a checkpoint our
# StockTwits app writes must load in TF 1.15 and predict the same). Not run in CI: it needs a TF 1.15 venv.
#
#   scripts/tf1_oracle/regenerate.sh [--tf1-python PATH] [app ...]
#
# TF 1.15's Python: --tf1-python PATH, else $TF1_PYTHON (see tests/tf1_oracle/README.md to make that venv).
# The package's Python (TF 2) for the reverse check's TF 2 side: $PYTHON, else `python` on PATH.
# With no app, every app's fixtures are regenerated; the reverse check runs when stocktwits is among them.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

tf1_python="${TF1_PYTHON:-}"
if [ "${1:-}" = "--tf1-python" ]; then
  tf1_python="${2:?--tf1-python needs a path}"
  shift 2
fi
if [ -z "$tf1_python" ]; then
  echo "usage: $0 [--tf1-python PATH] [app ...]  (or set TF1_PYTHON to the Python of a TF 1.15 venv)" >&2
  exit 2
fi
python="${PYTHON:-python}"

echo "== fixtures (TF 1.15: $tf1_python)"
(cd "$repo" && "$tf1_python" "$here/make_fixtures.py" "$@")

reverse=no
if [ $# -eq 0 ]; then
  reverse=yes
fi
for app in "$@"; do
  if [ "$app" = stocktwits ]; then
    reverse=yes
  fi
done
if [ "$reverse" = yes ]; then
  out="$(mktemp -d)"
  trap 'rm -rf "$out"' EXIT
  echo "== reverse check, TF 2 side: our app trains and saves ($python)"
  (cd "$repo" && "$python" "$here/write_ours.py" "$out")
  echo "== reverse check, TF 1.15 side: restore our checkpoint by name, compare predictions"
  (cd "$repo" && "$tf1_python" "$here/check_ours.py" "$out")
fi
echo "== done; now run the oracle tests with the package's Python: python -m pytest -q tests/test_oracle_*.py"
