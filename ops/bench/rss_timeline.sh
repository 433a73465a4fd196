#!/usr/bin/env bash
# Memory profile of one command: samples its resident set every 0.5 s, next to
# its own log (run with RUST_LOG=junkrecon=info to get a timestamped line per
# materialised step), so the step holding the peak can be read off.
#
#   RUST_LOG=junkrecon=info ops/bench/rss_timeline.sh /tmp/night -- \
#       target/release/junkrecon run --data ROOT --as-of 2026-11-21 --config limit.toml
#   sort -k2 -n /tmp/night.rss | tail -1        # peak (KiB) and when
#   grep materialised /tmp/night.err            # when each step ended
#
# Writes PREFIX.rss (time, VmRSS KiB), PREFIX.out, PREFIX.err.
set -u
prefix=$1; shift
[ "${1:-}" = "--" ] && shift
"$@" 2> "$prefix.err" > "$prefix.out" &
pid=$!
: > "$prefix.rss"
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null)
  echo "$(date -u +%H:%M:%S.%N | cut -c1-10) ${rss:-0}" >> "$prefix.rss"
  sleep 0.5
done
wait "$pid"
status=$?
echo "exit $status" >> "$prefix.rss"
exit "$status"
