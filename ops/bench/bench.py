#!/usr/bin/env python3
"""junkrecon benchmark: generated countries of 1M and 10M persons (cached),
the full nightly run (ingest + reconcile + publish) for day 1 and day 2, a
re-run of day 2 (nothing changed), with and without a memory limit, and the
same work done by DuckDB over the same Parquet files (ops/bench/duckdb_night.py).
Prints a Markdown report (ops/bench/RESULTS.md holds the last one).

    ops/bench/run.sh                      # installs duckdb, builds, runs 1M and 10M
    ops/bench/bench.py --sizes 1000000    # just one size (binary must be built)
    ops/bench/bench.py --sizes 30000000 --configs limit --skip-duckdb --no-rerun
                                          # past the 4 GiB limit: peak RSS stays near it
    ops/bench/bench.py --sizes 10000000 --configs limit --skip-duckdb --sweep-mb 2048,1024
                                          # the same night under smaller pools

Peak RSS is the child's own maximum resident set (wait4), wall time is
measured around the process; junkrecon's per-stage times come from its run record.
"""
import argparse, glob, json, os, platform, shutil, subprocess, sys, time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BIN = os.environ.get("JUNKRECON_BENCH_BIN", os.path.join(REPO, "target", "release", "junkrecon"))
D1, D2, D3 = "2026-11-20", "2026-11-21", "2026-11-22"
# The senders that upload again on the partial night (D3); the others and the
# registry send nothing new, so their latest extracts stay in use.
PARTIAL = ("carrier=VIETTEL", "carrier=GMOBILE", "bank=VCB", "bank=ACB")


def measure(cmd, env=None):
    import tempfile
    with tempfile.TemporaryFile() as so, tempfile.TemporaryFile() as se:
        t = time.time()
        p = subprocess.Popen(cmd, stdout=so, stderr=se, env=env)
        _, status, usage = os.wait4(p.pid, 0)
        so.seek(0)
        se.seek(0)
        out, err = so.read().decode(), se.read().decode()
    if status != 0:
        raise RuntimeError(f"failed ({status}): {' '.join(cmd)}: {err.strip().splitlines()[-1] if err.strip() else ''}")
    return time.time() - t, usage.ru_maxrss / 1024.0, out


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
    """Makes the uploads of `date` appear in root's landing/ (symlinked folders,
    manifests included), as the senders' nightly uploads would."""
    for folder in glob.glob(os.path.join(src, "landing", "**", f"date={date}"), recursive=True):
        rel = os.path.relpath(folder, src)
        dest = os.path.join(root, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        if not os.path.exists(dest):
            os.symlink(folder, dest)


def land_again(root, src, date, new_date, senders):
    """Some senders upload their `date` extract again as of `new_date`: the
    same Parquet files (symlinked) under a new manifest. Their ingest is real
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
                os.symlink(os.path.join(folder, f), os.path.join(dest, f))


def junkrecon_night(root, date, config, engine=None):
    cmd = [BIN, "run", "--data", root, "--as-of", date] + (["--config", config] if config else [])
    if engine:
        cmd += ["--engine", engine]
    try:
        secs, rss, _ = measure(cmd)
    except RuntimeError as e:
        return {"error": str(e)}
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
    return {"wall_s": secs, "peak_rss_mb": rss, "stages": stages, "counts": counts, "rows": rows, "joins": joins}


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


def stop_cluster(procs):
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()


def duckdb_night(src, date, out, limit_mb):
    """DuckDB reads the same files; extracts dated after `date` are ignored by
    its selection, as junkrecon's, so the full tree can be given."""
    cmd = [sys.executable, os.path.join(HERE, "duckdb_night.py"), src, date, out, "--threads", str(os.cpu_count())]
    if limit_mb:
        cmd += ["--memory-limit-mb", str(limit_mb)]
    shutil.rmtree(out, ignore_errors=True)
    secs, rss, text = measure(cmd)
    r = json.loads(text.strip().splitlines()[-1])
    r.update({"wall_s": secs, "peak_rss_mb": rss})
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="1000000,10000000")
    ap.add_argument("--cache", default=os.environ.get("JUNKRECON_BENCH_DIR", "/tmp/junkrecon-bench"))
    ap.add_argument("--limit-mb", type=int, default=4096)
    ap.add_argument("--skip-duckdb", action="store_true")
    ap.add_argument("--configs", default="unbounded,limit", help="which junkrecon configurations to run: unbounded, limit, cluster (a scheduler and two executors on this machine; peak RSS is the coordinator's)")
    ap.add_argument("--no-rerun", action="store_true", help="skip the no-change re-run of day 2")
    ap.add_argument("--no-partial", action="store_true", help="skip day 3, where only some senders upload")
    ap.add_argument("--sweep-mb", default="", help="extra limits (MiB) for a no-change night on the limited root, e.g. 2048,1024")
    a = ap.parse_args()
    os.makedirs(a.cache, exist_ok=True)
    limit_cfg = os.path.join(a.cache, "limit.toml")
    open(limit_cfg, "w").write(f"memory_limit_mb = {a.limit_mb}\nspill_dir = \"{a.cache}/spill\"\n")
    os.makedirs(os.path.join(a.cache, "spill"), exist_ok=True)
    lines = ["# junkrecon benchmark results", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, "
             f"{round(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30)} GiB RAM, {platform.platform()}.",
             f"Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. Reproduce: `ops/bench/run.sh`.", ""]
    for n in [int(x) for x in a.sizes.split(",")]:
        src, gen = generate(a.cache, n)
        lines += [f"## {n:,} persons", "", f"Generation (2 days): {gen['seconds']:.1f} s, peak RSS {gen['peak_rss_mb']:.0f} MiB.", ""]
        results = {}
        configs = [c for c in (("unbounded", None), (f"limit {a.limit_mb} MiB", limit_cfg), ("cluster", None)) if c[0].split()[0] in a.configs.split(",")]
        for label, cfg in configs:
            root = fresh_root(a.cache, n, label.split()[0])
            engine, procs = start_cluster(root, a.cache) if label == "cluster" else (None, [])
            land(root, src, D1)
            nights = {"day 1": junkrecon_night(root, D1, cfg, engine)}
            land(root, src, D2)
            nights["day 2"] = junkrecon_night(root, D2, cfg, engine)
            if not a.no_rerun:
                nights["day 2 again (no change)"] = junkrecon_night(root, D2, cfg, engine)
            if not a.no_partial:
                land_again(root, src, D2, D3, PARTIAL)
                senders = len(glob.glob(os.path.join(src, "landing", "subscribers", "carrier=*"))) + len(glob.glob(os.path.join(src, "landing", "accounts", "bank=*")))
                nights[f"day 3: {len(PARTIAL)} of {senders} senders upload"] = junkrecon_night(root, D3, cfg, engine)
            stop_cluster(procs)
            if cfg:
                for mb in [int(x) for x in a.sweep_mb.split(",") if x]:
                    sweep = os.path.join(a.cache, f"limit-{mb}.toml")
                    open(sweep, "w").write(f"memory_limit_mb = {mb}\nspill_dir = \"{a.cache}/spill\"\n")
                    nights[f"day 2 again, limit {mb} MiB"] = junkrecon_night(root, D2, sweep)
            results[label] = nights
        lines += ["| junkrecon night | memory | rows | ingest s | reconcile s | publish s | total wall s | rows/s | peak RSS MiB | joins |", "|---|---|---|---|---|---|---|---|---|---|"]
        for label, nights in results.items():
            for night, r in nights.items():
                if "error" in r:
                    lines.append(f"| {night} | {label} | failed: {r['error'][-200:]} | | | | | | | |")
                    continue
                s = r["stages"]
                memory = f"limit {night.split('limit ')[1]}" if ", limit " in night else label
                lines.append(f"| {night} | {memory} | {r['rows']:,} | {s.get('ingest', 0):.1f} | {s.get('reconcile', 0):.1f} | {s.get('publish', 0):.1f} | {r['wall_s']:.1f} | {r['rows'] / r['wall_s']:,.0f} | {r['peak_rss_mb']:.0f} | {r['joins']} |")
        lines.append("")
        if not a.skip_duckdb:
            lines += ["| DuckDB night | memory | ingest s | reconcile+publish s | total wall s | peak RSS MiB | junkrecon/DuckDB (wall) | same flag counts |", "|---|---|---|---|---|---|---|---|"]
            for label, limit in (("unbounded", None), (f"limit {a.limit_mb} MiB", a.limit_mb)):
                if label not in results:
                    continue
                for night, date in (("day 1", D1), ("day 2", D2)):
                    try:
                        d = duckdb_night(src, date, os.path.join(a.cache, f"duck-p{n}"), limit)
                    except RuntimeError as e:
                        lines.append(f"| {night} | {label} | failed: {str(e)[-200:]} | | | | | |")
                        continue
                    j = results[label][night]
                    if "error" in j:
                        lines.append(f"| {night} | {label} | {d['ingest_s']:.1f} | {d['reconcile_publish_s']:.1f} | {d['wall_s']:.1f} | {d['peak_rss_mb']:.0f} | junkrecon failed | - |")
                        continue
                    same = d["counts"] == j["counts"]
                    lines.append(f"| {night} | {label} | {d['ingest_s']:.1f} | {d['reconcile_publish_s']:.1f} | {d['wall_s']:.1f} | {d['peak_rss_mb']:.0f} | {j['wall_s'] / d['wall_s']:.2f} | {'yes' if same else 'NO: ' + json.dumps(d['counts']) + ' vs ' + json.dumps(j['counts'])} |")
            lines.append("")
        print("\n".join(lines), flush=True)
    text = "\n".join(lines) + "\n"
    open(os.path.join(a.cache, "RESULTS.md"), "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
