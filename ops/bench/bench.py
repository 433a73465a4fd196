#!/usr/bin/env python3
"""junkrecon benchmark: generated countries of 1M and 10M persons (cached),
the full nightly run (ingest + reconcile + publish) for day 1 and day 2, a
re-run of day 2 (nothing changed), a day 3 where some senders upload, with
and without a memory limit and on a Ballista cluster on this machine; beside
each junkrecon night the same night by the peer, ../shared/bench/duck_recon.py
(an independent DuckDB implementation of contract v1, 2 threads, the same 4 GB
limit where junkrecon has one) on the same files, with every v1 metric
compared; and the physical floor of a full night (ops/bench/floor.py).
Prints a Markdown report (ops/bench/RESULTS.md holds the last one).

    ops/bench/run.sh                      # installs duckdb, builds, runs 1M and 10M
    ops/bench/bench.py --sizes 1000000    # just one size (binary must be built)
    ops/bench/bench.py --sizes 30000000 --configs limit --skip-peer --no-rerun
                                          # past the 4 GiB limit: peak RSS stays near it
    ops/bench/bench.py --sizes 10000000 --configs limit --skip-peer --sweep-mb 2048,1024
                                          # the same night under smaller pools

Each junkrecon night is followed at once by the peer's same night (they
alternate, so the machine's drift hits both alike); with --rounds N every
night is measured N times on fresh roots and the best wall time of each tool
is kept. Peak RSS is the child's own maximum resident set (wait4), wall time
is measured around the process, CPU is user + sys; junkrecon's per-stage
times come from its run record, the peer's from its stderr.
"""
import argparse, glob, json, os, platform, shlex, shutil, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("JUNKRECON_BENCH_BIN", os.path.join(REPO, "target", "release", "junkrecon"))
PEER = os.environ.get("JUNKRECON_BENCH_PEER", os.path.join(os.path.dirname(REPO), "shared", "bench", "duck_recon.py"))
D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"
# The senders that upload again on the partial night (D3); the others and the
# registry send nothing new, so their latest extracts stay in use.
PARTIAL = ("carrier=VIETTEL", "carrier=GMOBILE", "bank=VCB", "bank=ACB")


def measure(cmd, env=None, with_stderr=False):
    """(wall s, peak RSS MiB, stdout[, stderr]); the CPU time (user + sys)
    of the last call is in LAST_CPU_S."""
    import tempfile
    global LAST_CPU_S
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t = time.time()
        p = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        # A night that hangs (a cluster job waiting forever) must not stop the run.
        import threading
        killer = threading.Timer(TIMEOUT_S, p.kill)
        killer.start()
        _, status, usage = os.wait4(p.pid, 0)
        killer.cancel()
        so.seek(0)
        se.seek(0)
        out, err = so.read().decode(), se.read().decode()
    if status != 0:
        raise RuntimeError(f"failed ({status}): {' '.join(cmd)}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    LAST_CPU_S = usage.ru_utime + usage.ru_stime
    return (time.time() - t, usage.ru_maxrss / 1024.0, out) + ((err,) if with_stderr else ())


LAST_CPU_S = 0.0
TIMEOUT_S = 3600


def generate(cache, n):
    src = os.path.join(cache, f"p{n}")
    done = os.path.join(src, ".complete")
    if not os.path.exists(done):
        shutil.rmtree(src, ignore_errors=True)
        os.makedirs(src)
        secs, rss, _ = measure([BIN, "generate", "--out", src, "--persons", str(n), "--days", "2", "--seed", "1"])
        json.dump({"seconds": secs, "peak_rss_mb": rss}, open(done, "w"))
    return src, json.load(open(done))


def fresh_root(cache, n, label):
    root = os.path.join(cache, f"p{n}-{label}")
    shutil.rmtree(root, ignore_errors=True)
    os.makedirs(root)
    return root


def land(root, src, date):
    """Makes the uploads of `date` appear in root's landing/ (manifests
    included), as the senders' nightly uploads would: real folders of hard
    links to the generated files (junkrecon follows no symbolic link under
    landing/, and a hard link is a regular file that costs no copy)."""
    for folder in glob.glob(os.path.join(src, "landing", "**", f"date={date}"), recursive=True):
        dest = os.path.join(root, os.path.relpath(folder, src))
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(folder):
            if not os.path.exists(os.path.join(dest, f)):
                os.link(os.path.join(folder, f), os.path.join(dest, f))


def land_again(root, src, date, new_date, senders):
    """Some senders upload their `date` extract again as of `new_date`: the
    same Parquet files (hard links) under a new manifest. Their ingest is real
    work (checksums, validation, normalisation); the other sources' is not."""
    for folder in glob.glob(os.path.join(src, "landing", "*", "*", f"date={date}")):
        if os.path.basename(os.path.dirname(folder)) not in senders:
            continue
        dest = os.path.join(root, os.path.relpath(os.path.dirname(folder), src), f"date={new_date}")
        os.makedirs(dest, exist_ok=True)
        for f in os.listdir(folder):
            if f == "_MANIFEST.json":
                manifest = json.load(open(os.path.join(folder, f)))
                manifest["as_of"] = new_date
                json.dump(manifest, open(os.path.join(dest, f), "w"), indent=2)
            elif not os.path.exists(os.path.join(dest, f)):
                os.link(os.path.join(folder, f), os.path.join(dest, f))


def junkrecon_night(root, date, config, engine=None, force=False):
    cmd = [BIN, "run", "--data", root, "--as-of", date] + (["--config", config] if config else [])
    if force:
        cmd += ["--recompute"]
    if engine:
        cmd += ["--engine", engine]
    try:
        secs, rss, _ = measure(cmd)
    except RuntimeError as e:
        return {"error": str(e)}
    cpu = LAST_CPU_S
    rec = sorted(glob.glob(os.path.join(root, "runs", f"date={date}", "*.json")), key=os.path.getmtime)[-1]
    rec = json.load(open(rec))
    stages = {s["stage"]: s["seconds"] for s in rec["stages"]}
    counts = {}
    for kind, f in (("subscribers", "carriers"), ("accounts", "banks")):
        metrics = json.load(open(os.path.join(root, "metrics", f"date={date}", f + ".json")))
        c = {"flagged": sum(m["flagged"] for m in metrics)}
        for m in metrics:
            for r, v in m["flags_by_reason"].items():
                c[r] = c.get(r, 0) + v
        counts[kind] = c
    rows = sum(m["total"] + m["rows_rejected"] for f in ("carriers", "banks") for m in json.load(open(os.path.join(root, "metrics", f"date={date}", f + ".json"))))
    def why(p):
        return " (re-planned)" if p.get("replanned") else " (as the previous run)" if p.get("from_previous_run") else ""
    sort_merge = [p["table"] + why(p) for p in rec.get("reconcile_steps", []) if p["joins"] != "hash"]
    joins = "hash" if not sort_merge else "sort-merge: " + ", ".join(sort_merge)
    buckets = max((p.get("buckets", 1) for p in rec.get("reconcile_steps", [])), default=1)
    if buckets > 1:
        joins += f", {buckets} key buckets"
    return {"wall_s": secs, "cpu_s": cpu, "peak_rss_mb": rss, "stages": stages, "counts": counts, "rows": rows,
            "joins": joins, "metrics": v1_metrics(root, date), "kept": rec.get("kept_publication_of") is not None}


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_cluster(root, cache, executors=2):
    """One `junkrecon scheduler` and `executors` executors on loopback ports,
    over `root` (the cluster mode: the cluster's overhead on one machine;
    it cannot show a speed-up on its cores). Returns (engine URL, processes)."""
    logs = os.path.join(cache, "cluster-logs")
    os.makedirs(logs, exist_ok=True)
    port = free_port()
    procs = [subprocess.Popen([BIN, "scheduler", "--data", root, "--port", str(port)],
                              stdout=open(os.path.join(logs, "scheduler.log"), "w"), stderr=subprocess.STDOUT)]
    time.sleep(2)
    cores = max(1, (os.cpu_count() or 2) // executors)
    for i in range(executors):
        work = os.path.join(cache, f"shuffle-{i}")
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        procs.append(subprocess.Popen(
            [BIN, "executor", "--data", root, "--scheduler", f"127.0.0.1:{port}",
             "--port", str(free_port()), "--grpc-port", str(free_port()), "--work-dir", work,
             "--concurrent-tasks", str(cores)],
            stdout=open(os.path.join(logs, f"executor-{i}.log"), "w"), stderr=subprocess.STDOUT))
    time.sleep(3)
    return f"df://127.0.0.1:{port}", procs


def shuffle_bytes(cache):
    """Bytes under the executors' work dirs (their shuffle files)."""
    total = 0
    for work in glob.glob(os.path.join(cache, "shuffle-*")):
        for folder, _, files in os.walk(work):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files if os.path.isfile(os.path.join(folder, f)))
    return total


def stop_cluster(procs):
    """Stops the cluster; returns each process's peak RSS in MiB
    (scheduler first)."""
    for p in procs:
        p.terminate()
    peaks = []
    for p in procs:
        deadline = time.time() + 30
        while True:
            pid, _, usage = os.wait4(p.pid, os.WNOHANG)
            if pid:
                peaks.append(usage.ru_maxrss / 1024.0)
                p.returncode = 0
                break
            if time.time() > deadline:
                p.kill()
            time.sleep(0.2)
    return peaks


def peer_night(root, date, out, limit_mb):
    """The peer, ../shared/bench/duck_recon.py (an independent DuckDB
    implementation of contract v1), run for one night as its own process on
    the same landing tree, publishing into `out` (which keeps its earlier
    nights, as junkrecon's root does). It re-reads every extract the night
    uses, since it keeps no curated store: that is its night."""
    cmd = [sys.executable, PEER, root, out, date, "--threads", str(os.cpu_count()),
           "--temp-dir", out + ".spill"]
    if limit_mb:
        cmd += ["--memory-limit", f"{limit_mb}MiB"]
    secs, rss, _, err = measure(cmd, with_stderr=True)
    line = next(l for l in reversed(err.splitlines()) if l.startswith(f"[{date}]"))
    stages = {k: float(v.rstrip("s")) for k, v in (kv.split("=") for kv in line.split()[1:]) if v.endswith("s")}
    return {"wall_s": secs, "cpu_s": LAST_CPU_S, "peak_rss_mb": rss, "stages": stages,
            "metrics": v1_metrics(out, date)}


# The version-1 fields of carriers.json / banks.json (§6): what the peer
# publishes, compared with junkrecon's field by field.
V1_FIELDS = ("as_of", "source", "extract_as_of", "total", "rows_rejected", "out_of_scope", "flagged", "clean",
             "clean_pct", "flagged_blocked", "newly_flagged", "resolved", "baseline_flagged",
             "resolved_since_baseline", "cleanup_progress_pct")


def v1_metrics(root, date):
    """{group/source: v1 fields and flags_by_reason} of one published night."""
    out = {}
    for group in ("carriers", "banks"):
        for m in json.load(open(os.path.join(root, "metrics", f"date={date}", group + ".json"))):
            out[f"{group}/{m['source']}"] = {**{k: m.get(k) for k in V1_FIELDS}, "flags_by_reason": m["flags_by_reason"]}
    return out


def same_metrics(peer, ours):
    """'yes', or the first difference: every v1 field and every reason the
    peer counts must be equal; a reason only junkrecon lists (v2's
    NO_BIOMETRIC / OWNER_DENIED on a carrier) must be 0."""
    if sorted(peer) != sorted(ours):
        return f"NO: sources {sorted(peer)} vs {sorted(ours)}"
    for src in sorted(peer):
        p, o = peer[src], ours[src]
        for k in V1_FIELDS:
            if p[k] != o[k]:
                return f"NO: {src} {k} {p[k]} vs {o[k]}"
        for r in sorted(set(p["flags_by_reason"]) | set(o["flags_by_reason"])):
            if p["flags_by_reason"].get(r, 0) != o["flags_by_reason"].get(r, 0):
                return f"NO: {src} {r} {p['flags_by_reason'].get(r, 0)} vs {o['flags_by_reason'].get(r, 0)}"
    return "yes"


def floor_night(root, date, out):
    """The physical floor of a full night (ops/bench/floor.py)."""
    shutil.rmtree(out, ignore_errors=True)
    _, _, text = measure([sys.executable, os.path.join(HERE, "floor.py"), root, date, out,
                          "--threads", str(os.cpu_count())])
    shutil.rmtree(out, ignore_errors=True)
    return json.loads(text.strip().splitlines()[-1])


def one_round(a, n, src, label, cfg, limit_mb, rnd):
    """Every night of one configuration on a fresh root, each followed by
    the peer's same night. Returns ({night: {"junkrecon", "peer"}}, the
    cluster processes' peak RSS)."""
    kind = label.split()[0]
    root = fresh_root(a.cache, n, f"{kind}-r{rnd}")
    peer_out = root + "-peer"
    shutil.rmtree(peer_out, ignore_errors=True)
    shutil.rmtree(peer_out + ".spill", ignore_errors=True)
    with_peer = not a.skip_peer and kind != "cluster"
    engine, procs = start_cluster(root, a.cache) if kind == "cluster" else (None, [])
    nights = {}

    def night(name, date, force=False):
        before = shuffle_bytes(a.cache) if engine else 0
        ours = junkrecon_night(root, date, cfg, engine, force)
        if engine and "error" not in ours:
            ours["shuffle_mb"] = (shuffle_bytes(a.cache) - before) / 2**20
        peer = None
        if with_peer:
            try:
                peer = peer_night(root, date, peer_out, limit_mb)
            except (RuntimeError, StopIteration) as e:
                peer = {"error": str(e)}
        nights[name] = {"junkrecon": ours, "peer": peer}

    land(root, src, D1)
    night("day 1", D1)
    land(root, src, D2)
    night("day 2", D2)
    if not a.no_rerun:
        night(NO_CHANGE, D2)
        night(RECOMPUTED, D2, force=True)
    if not a.no_partial:
        land_again(root, src, D2, D3, PARTIAL)
        senders = len(glob.glob(os.path.join(src, "landing", "subscribers", "carrier=*"))) + len(glob.glob(os.path.join(src, "landing", "accounts", "bank=*")))
        night(f"day 3: {len(PARTIAL)} of {senders} senders upload", D3)
    peaks = stop_cluster(procs)
    if cfg:
        for mb in [int(x) for x in a.sweep_mb.split(",") if x]:
            sweep = os.path.join(a.cache, f"limit-{mb}.toml")
            open(sweep, "w").write(f"memory_limit_mb = {mb}\nspill_dir = \"{a.cache}/spill\"\n")
            nights[f"day 2 again, limit {mb} MiB"] = {"junkrecon": junkrecon_night(root, D2, sweep, force=True), "peer": None}
    return nights, peaks


NO_CHANGE = "day 2 again (no change)"
RECOMPUTED = "day 2 again, computed again (`--recompute`)"


def best(runs, tool):
    """The run with the least wall time among those that did not fail."""
    ok = [r[tool] for r in runs if r[tool] and "error" not in r[tool]]
    return min(ok, key=lambda r: r["wall_s"]) if ok else next((r[tool] for r in runs if r[tool]), None)


def table(results):
    lines = ["| night | memory | rows | junkrecon ingest / reconcile / publish s | junkrecon wall s | CPU s | peak RSS MiB | joins "
             "| DuckDB validate+ingest / reconcile / publish s | DuckDB wall s | CPU s | peak RSS MiB | junkrecon/DuckDB (wall) | same v1 metrics |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for label, (nights, _) in results.items():
        for night, r in nights.items():
            j, p = r["junkrecon"], r["peer"]
            memory = f"limit {night.split('limit ')[1]}" if ", limit " in night else label
            if "error" in j:
                cells = [f"failed: {j['error'][-200:]}", "", "", "", "", ""]
            else:
                s = j["stages"]
                reused = " (publication kept)" if j.get("kept") else ""
                shuffle = f", shuffle {j['shuffle_mb']:,.0f} MiB" if "shuffle_mb" in j else ""
                cells = [f"{j['rows']:,}", f"{s.get('ingest', 0):.1f} / {s.get('reconcile', 0):.1f} / {s.get('publish', 0):.1f}{reused}{shuffle}",
                         f"{j['wall_s']:.1f}", f"{j['cpu_s']:.1f}", f"{j['peak_rss_mb']:.0f}", j["joins"]]
            if p is None:
                cells += ["-"] * 6
            elif "error" in p:
                cells += [f"failed: {p['error'][-200:]}", "", "", "", "", ""]
            else:
                s = p["stages"]
                ratio = f"**{j['wall_s'] / p['wall_s']:.2f}**" if "error" not in j else "-"
                same = same_metrics(p["metrics"], j["metrics"]) if "error" not in j else "-"
                cells += [f"{s.get('validate', 0) + s.get('ingest', 0):.1f} / {s.get('reconcile', 0):.1f} / {s.get('publish', 0):.1f}",
                          f"{p['wall_s']:.1f}", f"{p['cpu_s']:.1f}", f"{p['peak_rss_mb']:.0f}", ratio, same]
            lines.append(f"| {night} | {memory} | " + " | ".join(cells) + " |")
    lines.append("")
    for label, (nights, peaks) in results.items():
        full = nights.get("day 2", {})
        for rerun, what in ((NO_CHANGE, "the no-change night"), (RECOMPUTED, "day 2 computed again")):
            for tool, name in (("junkrecon", "junkrecon"), ("peer", "DuckDB")):
                f, g = full.get(tool), nights.get(rerun, {}).get(tool)
                if f and g and "error" not in f and "error" not in g:
                    lines.append(f"- {label}, {name}: {what} costs {g['wall_s'] / f['wall_s']:.0%} of day 2 ({g['wall_s']:.1f} s against {f['wall_s']:.1f} s).")
        if peaks:
            lines.append(f"- {label}: peak RSS of the scheduler {peaks[0]:.0f} MiB, of the executors " + ", ".join(f"{x:.0f}" for x in peaks[1:]) + " MiB (the table's is the coordinating `junkrecon run`).")
    lines.append("")
    return lines


def same_as_first(results):
    """Every configuration's nights against the first one's, v1 metric by
    v1 metric (the cluster's outputs are meant to be the local engine's)."""
    labels = list(results)
    if len(labels) < 2:
        return []
    first = results[labels[0]][0]
    lines = []
    for label in labels[1:]:
        verdicts = []
        for night, r in results[label][0].items():
            a, b = first.get(night, {}).get("junkrecon"), r["junkrecon"]
            if a and b and "error" not in a and "error" not in b:
                verdicts.append(f"{night}: {same_metrics(a['metrics'], b['metrics'])}")
        lines.append(f"- {label} against {labels[0]}, same v1 metrics: " + "; ".join(verdicts) + ".")
    return lines + [""]


def floor_lines(root, out):
    lines = ["Physical floor (ops/bench/floor.py, 2 threads): every input file of the night hashed (sha256) and decoded "
             "(every column, pyarrow), and the night's published Parquet and CSV reports written again (zstd, as published).", "",
             "| night | input files | input MiB | input rows | sha256 s | decode s | write outputs s | floor s |", "|---|---|---|---|---|---|---|---|"]
    for night, date in (("day 1", D1), ("day 2", D2)):
        f = floor_night(root, date, out)
        lines.append(f"| {night} | {f['files']} | {f['bytes'] / 2**20:,.0f} | {f['rows']:,} | {f['hash_s']:.1f} | {f['decode_s']:.1f} | {f['write_s']:.1f} | {f['hash_s'] + f['decode_s'] + f['write_s']:.1f} |")
    return lines + [""]


# Where a night's CPU goes: perf's samples of one full night, by kind of work.
PROFILE_KINDS = (
    # First match wins: junkrecon's normalisation before the SQL functions
    # (both touch Unicode), compressors before the Parquet codecs.
    ("normalisation at ingest (junkrecon's own: NFC, folding, case, trimming)", r"junkrecon::normalize|unicode_normalization|to_lowercase|to_uppercase|trim_matches|char::methods"),
    ("decompression (snappy, LZ4, zstd)", r"decompress|ZSTD_decompress"),
    ("compression (snappy, LZ4, zstd)", r"snap::compress|compress::compress|ZSTD_compress"),
    ("Parquet decode", r"parquet::arrow::(buffer|array_reader|record_reader)|ByteArrayDecoder|parquet::encodings::decoding|parquet::column::reader"),
    ("Parquet encode (dictionaries included)", r"arrow_writer|parquet::encodings::encoding|parquet::column::writer|parquet::file::writer|parquet::util::interner"),
    ("memory copies and fills", r"__memmove|__memcpy|__memset|copy_nonoverlapping"),
    ("hash joins", r"joins::|join_hash_map"),
    ("hashing, GROUP BY, DISTINCT", r"hash_utils|binary_map|group_values|hashbrown|aggregates::|ahash"),
    ("comparisons (memcmp)", r"__memcmp"),
    ("take / filter / interleave / concat", r"arrow_select"),
    ("SQL string and date functions, casts, regex", r"datafusion_functions|arrow_cast|regex|arrow_string"),
    ("sha256", r"sha2::|sha256"),
    ("allocator", r"malloc|_int_free|unlink_chunk|cfree|realloc"),
    ("kernel (I/O, page faults, scheduling)", r"^\[k\]"),
)


def perf_works():
    try:
        return subprocess.run(["perf", "stat", "-e", "task-clock", "true"], capture_output=True).returncode == 0
    except OSError:
        return False


def profile_night(cache, n, src, cfg):
    """A full day-1 night on a fresh root under `perf record` (user and
    kernel samples at 499 Hz); returns [(kind, share)] and the night's wall time."""
    import re
    root = fresh_root(cache, n, "profile")
    land(root, src, D1)
    data = os.path.join(cache, f"perf-p{n}.data")
    cmd = ["perf", "record", "-F", "499", "-o", data, "--", BIN, "run", "--data", root, "--as-of", D1] + (["--config", cfg] if cfg else [])
    secs, _, _ = measure(cmd)
    shutil.rmtree(root, ignore_errors=True)
    shares, top = perf_shares(data)
    return shares, top, secs


def perf_shares(data):
    """([(kind, share)], [(symbol, share)] of the 15 hottest) of a perf.data file."""
    import re
    report = subprocess.run(["perf", "report", "-i", data, "--no-children", "--sort", "symbol", "--stdio"],
                            capture_output=True, text=True).stdout
    shares, top = {}, []
    for line in report.splitlines():
        m = re.match(r"\s*([0-9.]+)%\s+(\[[.k]\])\s+(.*)", line)
        if not m:
            continue
        share, where = float(m.group(1)), m.group(2)
        symbol = re.sub(r"(\s+-)*\s*$", "", m.group(3))
        text = f"{where} {symbol}" if where == "[k]" else symbol
        kind = next((k for k, rx in PROFILE_KINDS if re.search(rx, text if rx.startswith("^") else symbol)), "other")
        shares[kind] = shares.get(kind, 0.0) + share
        top.append((symbol[:90].strip(), share))
    return sorted(shares.items(), key=lambda kv: -kv[1]), top[:15]


def profile_lines(cache, n, src, cfg):
    if not perf_works():
        return ["(No profile: `perf` is not usable on this machine.)", ""]
    shares, top, secs = profile_night(cache, n, src, cfg)
    lines = [f"Where a full night's CPU went: `perf record -F 499` of day 1 at {n:,} persons on a fresh root "
             f"({secs:.1f} s under perf), samples by kind of work (symbols of the release binary):", "",
             "| kind of work | share of samples |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} % |" for k, v in shares]
    lines += ["", "The 15 hottest symbols: " + "; ".join(f"`{sym}` {v:.1f} %" for sym, v in top) + "."]
    return lines + [""]


def extrapolation_lines(small, big, n_small, n_big):
    """RESULTS' paper extrapolation to a national night (100M persons) on
    N executors of K cores, from the measured per-stage costs of the two
    sizes (local engine, no memory limit) and the cluster's measured
    overhead and shuffle volume at the bigger size."""
    def night(results, label, name="day 2"):
        r = results.get(label, ({}, []))[0].get(name, {}).get("junkrecon")
        return r if r and "error" not in r else None
    local = "unbounded" if night(small, "unbounded") and night(big, "unbounded") else next(iter(big))
    local_s, local_b = night(small, local), night(big, local)
    cluster_b = night(big, "cluster")
    if not (local_s and local_b and cluster_b):
        return ["(No extrapolation: it needs day 2 of both sizes on the local engine and of the bigger size on the cluster.)", ""]
    rows_s, rows_b = local_s["rows"], local_b["rows"]
    scale = 100_000_000 / n_big
    rows_n = rows_b * scale
    import math
    def stage(r, s):
        return r["stages"].get(s, 0.0)
    def exponent(s):
        a, b = stage(local_s, s), stage(local_b, s)
        return math.log(b / a) / math.log(rows_b / rows_s) if a > 0 and b > 0 else 1.0
    ing, rec, pub = (stage(local_b, s) * scale ** max(1.0, exponent(s)) for s in ("ingest", "reconcile", "publish"))
    work_b = stage(local_b, "reconcile") + stage(local_b, "publish")
    over_b = stage(cluster_b, "reconcile") + stage(cluster_b, "publish") - work_b
    shuffle_n = cluster_b.get("shuffle_mb", 0.0) * scale
    lines = [f"### Paper extrapolation: a national night (100M persons, ≈ {rows_n / 1e6:,.0f}M rows) on N executors of K cores", "",
             f"From this run's day 2 (local engine, {local}): {n_small:,} persons ingest / reconcile / publish "
             f"{stage(local_s, 'ingest'):.1f} / {stage(local_s, 'reconcile'):.1f} / {stage(local_s, 'publish'):.1f} s, "
             f"{n_big:,} persons {stage(local_b, 'ingest'):.1f} / {stage(local_b, 'reconcile'):.1f} / {stage(local_b, 'publish'):.1f} s "
             f"(growth exponents in rows {exponent('ingest'):.2f} / {exponent('reconcile'):.2f} / {exponent('publish'):.2f}; "
             f"a stage growing slower than linearly is taken as linear). On this machine, one 2-core box: "
             f"ingest {ing:,.0f} s, reconcile {rec:,.0f} s, publish {pub:,.0f} s, {(ing + rec + pub) / 60:,.0f} min.", "",
             f"The cluster at {n_big:,} persons (one scheduler, two 1-task executors on the same 2 cores) took "
             f"{stage(cluster_b, 'reconcile') + stage(cluster_b, 'publish'):.1f} s for reconcile + publish against "
             f"{work_b:.1f} s locally: {over_b:+.1f} s of scheduling, serialisation and shuffle, with "
             f"{cluster_b.get('shuffle_mb', 0.0):,.0f} MiB of shuffle files (× {scale:.0f} at 100M: {shuffle_n / 1024:,.1f} GiB).", "",
             "Assumptions: ingest stays on the coordinating process (it decides uploads and writes the ledger) and "
             "speeds up with its cores up to one upload per core; reconcile + publish CPU work divides evenly over the "
             "executors' N × K cores (an upper bound: skew and the final single-partition sorts of the reports do not); "
             "the cluster's overhead grows with the shuffle volume (× the row factor) and divides over the executors; "
             "the shuffle crosses a 10 Gbit/s network once (1.25 GB/s, all executors together); "
             "the store (S3) reads and writes at the network's speed. Coordinator: 8 cores.", "",
             "| executors N × cores K | ingest s | reconcile + publish s | shuffle transfer s | night, min |", "|---|---|---|---|---|"]
    for n_exec, k in ((2, 8), (4, 8), (8, 8), (4, 16), (8, 16), (16, 16)):
        ingest = ing * 2 / 8
        compute = (rec + pub) * 2 / (n_exec * k) + max(0.0, over_b) * scale * 2 / (n_exec * k)
        transfer = shuffle_n * 2**20 / 1.25e9
        lines.append(f"| {n_exec} × {k} | {ingest:,.0f} | {compute:,.0f} | {transfer:,.0f} | {(ingest + compute + transfer) / 60:,.1f} |")
    return lines + [""]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--cache", default=os.environ.get("JUNKRECON_BENCH_DIR", "/tmp/junkrecon-bench"))
    ap.add_argument("--limit-mb", type=int, default=4096)
    ap.add_argument("--skip-peer", action="store_true", help="junkrecon only (no DuckDB nights)")
    ap.add_argument("--skip-floor", action="store_true")
    ap.add_argument("--rounds", type=int, default=1, help="measure every night this many times (fresh roots), keep each tool's best")
    ap.add_argument("--configs", default="unbounded,limit,cluster", help="which junkrecon configurations to run: unbounded, limit, cluster (a scheduler and two executors on this machine; peak RSS is the coordinator's)")
    ap.add_argument("--no-rerun", action="store_true", help="skip the no-change re-run of day 2")
    ap.add_argument("--no-partial", action="store_true", help="skip day 3, where only some senders upload")
    ap.add_argument("--sweep-mb", default="", help="extra limits (MiB) for a re-run of day 2 on the limited root, e.g. 2048,1024")
    ap.add_argument("--write-results", action="store_true", help="put this run on top of ops/bench/RESULTS.md (earlier runs stay below)")
    ap.add_argument("--profile-sizes", default="1000000", help="sizes whose day 1 is also run under perf (empty: none)")
    ap.add_argument("--title", default="", help="a line saying what was measured, put under the run's date")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    limit_cfg = os.path.join(a.cache, "limit.toml")
    open(limit_cfg, "w").write(f"memory_limit_mb = {a.limit_mb}\nspill_dir = \"{a.cache}/spill\"\n")
    os.makedirs(os.path.join(a.cache, "spill"), exist_ok=True)
    peer_version = subprocess.run([sys.executable, "-c", "import duckdb; print(duckdb.__version__)"], capture_output=True, text=True).stdout.strip()
    lines = ["# junkrecon benchmark results", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, {platform.platform()}.",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Reproduce: `ops/bench/run.sh {shlex.join(x for x in sys.argv[1:] if x != '--write-results')}`.".replace(" `.", "`."),
             f"Peer: `{os.path.relpath(PEER, REPO)}` on DuckDB {peer_version}, {os.cpu_count()} threads; junkrecon `{os.path.relpath(BIN, REPO)}`, best of {a.rounds} round(s).",
             a.title, ""]
    by_size = {}
    for n in [int(x) for x in a.sizes.split(",")]:
        src, gen = generate(a.cache, n)
        lines += [f"## {n:,} persons", "", f"Generation (2 days): {gen['seconds']:.1f} s, peak RSS {gen['peak_rss_mb']:.0f} MiB.", ""]
        results = {}
        configs = [c for c in (("unbounded", None, None), (f"limit {a.limit_mb} MiB", limit_cfg, a.limit_mb), ("cluster", None, None))
                   if c[0].split()[0] in a.configs.split(",")]
        for label, cfg, limit_mb in configs:
            rounds = [one_round(a, n, src, label, cfg, limit_mb, r) for r in range(a.rounds)]
            nights = {night: {"junkrecon": best([r[0][night] for r in rounds], "junkrecon"),
                              "peer": best([r[0][night] for r in rounds], "peer")} for night in rounds[0][0]}
            results[label] = (nights, rounds[-1][1])
            print("\n".join(table({label: results[label]})), flush=True)
        lines += table(results)
        lines += same_as_first(results)
        if not a.skip_floor and results:
            first = next(iter(configs))[0].split()[0]
            lines += floor_lines(os.path.join(a.cache, f"p{n}-{first}-r{a.rounds - 1}"), os.path.join(a.cache, "floor-out"))
        if n in [int(x) for x in a.profile_sizes.split(",") if x]:
            lines += profile_lines(a.cache, n, src, next(iter(configs))[1] if configs else None)
        by_size[n] = results
        print("\n".join(lines), flush=True)
    sizes = sorted(by_size)
    if len(sizes) >= 2:
        lines += extrapolation_lines(by_size[sizes[0]], by_size[sizes[-1]], sizes[0], sizes[-1])
    text = "\n".join(lines) + "\n"
    open(os.path.join(a.cache, "RESULTS.md"), "w").write(text)
    if a.write_results:
        # This run on top; what the file held before stays below it, one
        # heading level down, so earlier figures the runbook cites remain.
        path = os.path.join(HERE, "RESULTS.md")
        old = open(path).read().splitlines() if os.path.exists(path) else []
        if old and old[0].startswith("# "):
            old = old[1:]
        earlier = [("#" + l if l.startswith("#") else l) for l in old]
        open(path, "w").write(text + "\n## Earlier runs (as recorded then)\n" + "\n".join(earlier).rstrip() + "\n")
    print(text)


if __name__ == "__main__":
    main()
