#!/usr/bin/env python3
"""The physical floor of one full night on this machine: what merely reading
the night's input and writing its outputs costs, with no joins, no
normalisation and no validation rules.

    ops/bench/floor.py ROOT DATE OUT [--threads 2]

ROOT is a root where junkrecon has published night DATE. Three timed passes:

  sha256   every file of every upload dated DATE (the manifests' lists), read
           from disk and hashed, `threads` files at a time;
  decode   the same files decoded whole (every column) by pyarrow;
  write    the night's published outputs (reports/**/date=DATE/*.parquet and
           their flags.csv) written again into OUT, zstd Parquet and CSV with
           the same rows; they are read into memory before the clock starts.

Prints one JSON line: files, bytes, rows, hash_s, decode_s, write_s. A tool
that hashed while decoding would read each file once; the floor adds the
passes, so it is a floor for a tool that keeps them apart, as junkrecon and
the peer both do.
"""
import argparse, concurrent.futures as cf, glob, hashlib, json, os, time

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq


def inputs(root, date):
    files = []
    for manifest in sorted(glob.glob(os.path.join(root, "landing", "**", f"date={date}", "_MANIFEST.json"), recursive=True)):
        folder = os.path.dirname(manifest)
        files += [os.path.join(folder, f["name"]) for f in json.load(open(manifest))["files"]]
    return files


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("root")
    ap.add_argument("date")
    ap.add_argument("out")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    pa.set_cpu_count(a.threads)
    pa.set_io_thread_count(a.threads)
    files = inputs(a.root, a.date)
    if not files:
        raise SystemExit(f"floor: no upload dated {a.date} under {a.root}/landing")

    t = time.time()
    with cf.ThreadPoolExecutor(a.threads) as pool:
        list(pool.map(sha256, files))
    hash_s = time.time() - t

    t = time.time()
    rows = sum(pq.read_table(f).num_rows for f in files)
    decode_s = time.time() - t

    outputs = sorted(glob.glob(os.path.join(a.root, "reports", "**", f"date={a.date}", "*.parquet"), recursive=True))
    if not outputs:
        raise SystemExit(f"floor: night {a.date} is not published under {a.root}")
    tables = [(os.path.relpath(f, a.root), pq.read_table(f), os.path.exists(f[:-len(".parquet")] + ".csv")) for f in outputs]
    t = time.time()
    for rel, table, csv in tables:
        dest = os.path.join(a.out, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        pq.write_table(table, dest, compression="zstd")
        if csv:
            flat = table.set_column(table.schema.get_field_index("reasons"), "reasons",
                                    pc.binary_join(table["reasons"], ";")) if "reasons" in table.column_names else table
            with open(dest[:-len(".parquet")] + ".csv", "wb") as fh:
                fh.write(b"\xef\xbb\xbf")
                pcsv.write_csv(flat, fh)
    write_s = time.time() - t

    print(json.dumps({"files": len(files), "bytes": sum(os.path.getsize(f) for f in files), "rows": rows,
                      "hash_s": round(hash_s, 2), "decode_s": round(decode_s, 2), "write_s": round(write_s, 2)}))


if __name__ == "__main__":
    main()
