#!/usr/bin/env bash
# One-command benchmark: installs DuckDB, builds junkrecon in release mode,
# generates (and caches) 1M- and 10M-person countries, measures junkrecon and
# its peer (../shared/bench/duck_recon.py) night by night, and puts the run on
# top of ops/bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m pip install --quiet --disable-pip-version-check duckdb pyarrow
cargo build --release
python3 ops/bench/bench.py --write-results "$@"
