#!/usr/bin/env bash
# One-command benchmark: installs DuckDB, builds junkrecon in release mode,
# generates (and caches) 1M- and 10M-person countries, measures both engines.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check duckdb pyarrow
cargo build --release
python3 ops/bench/bench.py "$@"
