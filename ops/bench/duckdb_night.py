#!/usr/bin/env python3
"""The same nightly work as `junkrecon run`, done by DuckDB over the same
landing Parquet files, for the benchmark's comparison (ops/bench/bench.py).

    duckdb_night.py LANDING_ROOT DATE OUT_DIR [--memory-limit-mb N] [--threads N]

Stage "ingest": read every extract used for DATE, normalise (trim, phones,
folded names, codes) and write curated Parquet, as junkrecon's ingest does.
Stage "reconcile+publish": the contract's rules over the curated data, then
one flags Parquet per source and the per-source counts.
Prints one JSON line: per-stage seconds and the flag counts by reason, which
the benchmark checks against junkrecon's metrics (same work, same answer).
Sha256 checks and manifest validation are done too, as junkrecon does them.
"""
import hashlib, json, os, sys, time

import duckdb

WS = r"[\t\n\x{0b}\x{0c}\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}]"
PROV = "'001','002','004','006','008','010','011','012','014','015','017','019','020','022','024','025','026','027','030','031','033','034','035','036','037','038','040','042','044','045','046','048','049','051','052','054','056','058','060','062','064','066','067','068','070','072','074','075','077','079','080','082','083','084','086','087','089','091','092','093','094','095','096'"


def clean(col):
    return f"nullif(regexp_replace({col}, '^{WS}+|{WS}+$', '', 'g'), '')"


def phone(col):
    c = f"regexp_replace({clean(col)}, '{WS}|[.-]', '', 'g')"
    c = f"(CASE WHEN {c} LIKE '+84%' THEN '84' || substr({c}, 4) WHEN length({c}) = 10 AND {c} LIKE '0%' THEN '84' || substr({c}, 2) ELSE {c} END)"
    return f"(CASE WHEN regexp_full_match({c}, '84[0-9]{{9}}') THEN {c} END)"


def fold(col):
    c = f"upper(replace(replace(strip_accents(nfc_normalize({clean(col)})), 'Đ', 'D'), 'đ', 'd'))"
    return f"trim(regexp_replace({c}, '{WS}+', ' ', 'g'))"


def chosen(root, kind, date):
    """Newest accepted (valid manifest, checksums) extract per source with as_of <= date."""
    base = os.path.join(root, "landing", kind)
    out = {}
    if not os.path.isdir(base):
        return out
    sources = [("NATIONAL", base)] if kind == "identity" else [
        (d.split("=", 1)[1], os.path.join(base, d)) for d in sorted(os.listdir(base)) if "=" in d]
    for src, sdir in sources:
        for d in sorted(os.listdir(sdir), reverse=True):
            as_of = d[5:]
            if as_of > date:
                continue
            m = os.path.join(sdir, d, "_MANIFEST.json")
            if not os.path.exists(m):
                continue
            man = json.load(open(m))
            files = [os.path.join(sdir, d, f["name"]) for f in man["files"]]
            ok = all(os.path.exists(p) and sha256(p) == f["sha256"] for p, f in zip(files, man["files"]))
            if ok and valid_schema(files, kind):
                out[src] = (as_of, files)
                break
    return out


def sha256(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


REQUIRED = {"identity": ["person_id", "legacy_id", "full_name", "date_of_birth", "sex", "deceased_on"],
            "subscribers": ["msisdn", "subscriber_type", "id_type", "id_number", "full_name", "date_of_birth", "activated_on", "status"],
            "accounts": ["account_number", "holder_type", "id_type", "id_number", "full_name", "date_of_birth", "otp_msisdn", "opened_on", "biometric_verified", "status"]}


def valid_schema(files, kind):
    try:
        for f in files:
            cols = {r[0] for r in duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{f}')").fetchall()}
            if not set(REQUIRED[kind]) <= cols:
                return False
        return True
    except Exception:
        return False


def files_sql(files):
    return "[" + ",".join(f"'{f}'" for f in files) + "]"


def main():
    root, date, out = sys.argv[1], sys.argv[2], sys.argv[3]
    args = dict(zip(sys.argv[4::2], sys.argv[5::2]))
    con = duckdb.connect()
    con.execute(f"SET threads={int(args.get('--threads', os.cpu_count()))}")
    if args.get("--memory-limit-mb"):
        con.execute(f"SET memory_limit='{int(args['--memory-limit-mb'])}MB'")
    con.execute(f"SET temp_directory='{out}/tmp'")
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    ident = chosen(root, "identity", date)["NATIONAL"]
    subs = chosen(root, "subscribers", date)
    accs = chosen(root, "accounts", date)
    con.execute(f"""COPY (SELECT {clean('person_id')} AS person_id, {clean('legacy_id')} AS legacy_id,
        {fold('full_name')} AS name_key, CAST(date_of_birth AS DATE) AS date_of_birth, CAST(deceased_on AS DATE) AS deceased_on
        FROM read_parquet({files_sql(ident[1])})) TO '{out}/identity.parquet' (FORMAT parquet)""")
    dups = con.execute(f"SELECT count(*) FROM (SELECT person_id FROM '{out}/identity.parquet' GROUP BY 1 HAVING count(*) > 1)").fetchone()[0]
    assert dups == 0
    parts = []
    for src, (as_of, files) in sorted(subs.items()):
        parts.append(f"""SELECT '{src}' AS source, file_row_number AS row_id, {phone('msisdn')} AS key,
            lower({clean('subscriber_type')}) AS holder_type, upper({clean('id_type')}) AS id_type, {clean('id_number')} AS id_number,
            {fold('full_name')} AS name_key, CAST(date_of_birth AS DATE) AS date_of_birth, CAST(activated_on AS DATE) AS since,
            lower({clean('status')}) AS status, NULL::BOOLEAN AS otp_present, NULL::VARCHAR AS otp_msisdn, NULL::BOOLEAN AS biometric_verified
            FROM read_parquet({files_sql(files)}, file_row_number=true)""")
    con.execute(f"""COPY (SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE key IS NOT NULL
        AND holder_type IN ('individual','foreigner','organization') AND status IN ('active','blocked_one_way','blocked_two_way') AND since IS NOT NULL)
        TO '{out}/subscribers.parquet' (FORMAT parquet)""")
    parts = []
    for src, (as_of, files) in sorted(accs.items()):
        parts.append(f"""SELECT '{src}' AS source, file_row_number AS row_id, {clean('account_number')} AS key,
            lower({clean('holder_type')}) AS holder_type, upper({clean('id_type')}) AS id_type, {clean('id_number')} AS id_number,
            {fold('full_name')} AS name_key, CAST(date_of_birth AS DATE) AS date_of_birth, CAST(opened_on AS DATE) AS since,
            lower({clean('status')}) AS status, {clean('otp_msisdn')} IS NOT NULL AS otp_present, {phone('otp_msisdn')} AS otp_msisdn, biometric_verified
            FROM read_parquet({files_sql(files)}, file_row_number=true)""")
    con.execute(f"""COPY (SELECT * FROM ({' UNION ALL '.join(parts)}) WHERE key IS NOT NULL
        AND holder_type IN ('individual','foreigner','organization') AND status IN ('active','suspended') AND since IS NOT NULL AND biometric_verified IS NOT NULL)
        TO '{out}/accounts.parquet' (FORMAT parquet)""")
    t1 = time.time()
    year = date[:4]
    con.execute(f"""CREATE TEMP TABLE resolved AS
    WITH h AS (
      SELECT 'S' AS kind, * FROM '{out}/subscribers.parquet' UNION ALL SELECT 'A' AS kind, * FROM '{out}/accounts.parquet'),
    c AS (
      SELECT h.*, holder_type = 'individual' AS in_scope,
        (holder_type = 'individual' AND (id_type IS NULL OR id_number IS NULL)) AS missing_id,
        (holder_type = 'individual' AND id_type IS NOT NULL AND id_number IS NOT NULL AND NOT (CASE id_type
          WHEN 'CCCD' THEN regexp_full_match(id_number, '[0-9]{{12}}') AND substr(id_number,1,3) IN ({PROV})
            AND substr(id_number,4,1) IN ('0','1','2','3')
            AND (CASE WHEN substr(id_number,4,1) IN ('0','1') THEN '19' ELSE '20' END || substr(id_number,5,2)) <= '{year}'
          WHEN 'CMND' THEN regexp_full_match(id_number, '[0-9]{{9}}') ELSE false END)) AS malformed_id
      FROM h),
    k AS (
      SELECT 'CCCD' AS key_type, person_id AS key_value, person_id, name_key, date_of_birth, deceased_on FROM '{out}/identity.parquet'
      UNION ALL SELECT 'CMND', legacy_id, person_id, name_key, date_of_birth, deceased_on FROM '{out}/identity.parquet' WHERE legacy_id IS NOT NULL)
    SELECT c.kind, c.source, c.row_id, c.key, c.holder_type, c.status, c.since, c.otp_present, c.otp_msisdn, c.biometric_verified,
      c.in_scope, c.missing_id, c.malformed_id,
      (c.lookup_type IS NOT NULL AND k.person_id IS NULL) AS id_not_found, k.person_id,
      (k.person_id IS NOT NULL AND c.id_type = 'CMND') AS legacy_id,
      (k.person_id IS NOT NULL AND (c.name_key IS NULL OR c.name_key <> k.name_key)) AS name_mismatch,
      (k.person_id IS NOT NULL AND (c.date_of_birth IS NULL OR c.date_of_birth <> k.date_of_birth)) AS dob_mismatch,
      (k.person_id IS NOT NULL AND k.deceased_on IS NOT NULL AND k.deceased_on <= DATE '{date}') AS deceased
    FROM (SELECT *, CASE WHEN in_scope AND NOT missing_id AND NOT malformed_id THEN id_type END AS lookup_type FROM c) c
    LEFT JOIN k ON k.key_type = c.lookup_type AND k.key_value = c.id_number""")
    con.execute("""CREATE TEMP TABLE sub_flags AS SELECT *,
        (person_id IS NOT NULL AND row_number() OVER (PARTITION BY person_id ORDER BY since, source, key, row_id) > 10) AS over_limit,
        count(*) OVER (PARTITION BY key) > 1 AS duplicate_msisdn
      FROM resolved WHERE kind = 'S'""")
    con.execute("""CREATE TEMP TABLE acc_flags AS SELECT a.*,
        count(*) OVER (PARTITION BY a.source, a.key) > 1 AS duplicate_account,
        (a.person_id IS NOT NULL AND NOT a.otp_present) AS otp_phone_missing,
        (a.person_id IS NOT NULL AND a.otp_present AND p.person_id IS NULL) AS otp_phone_mismatch,
        (a.person_id IS NOT NULL AND NOT a.biometric_verified) AS no_biometric
      FROM (SELECT * FROM resolved WHERE kind = 'A') a
      LEFT JOIN (SELECT DISTINCT key AS msisdn, person_id FROM resolved WHERE kind = 'S' AND person_id IS NOT NULL) p
        ON p.msisdn = a.otp_msisdn AND p.person_id = a.person_id""")
    sub_reasons = ["deceased", "dob_mismatch", "duplicate_msisdn", "id_not_found", "legacy_id", "malformed_id", "missing_id", "name_mismatch", "over_limit"]
    acc_reasons = ["deceased", "dob_mismatch", "duplicate_account", "id_not_found", "legacy_id", "malformed_id", "missing_id", "name_mismatch", "no_biometric", "otp_phone_mismatch", "otp_phone_missing"]
    counts = {}
    for table, reasons, kind in (("sub_flags", sub_reasons, "subscribers"), ("acc_flags", acc_reasons, "accounts")):
        expr = "concat_ws(';', " + ", ".join(f"CASE WHEN {r} THEN '{r.upper()}' END" for r in reasons) + ")"
        con.execute(f"CREATE TEMP TABLE {table}_r AS SELECT *, nullif({expr}, '') AS reasons FROM {table}")
        for (src,) in con.execute(f"SELECT DISTINCT source FROM {table}_r ORDER BY 1").fetchall():
            con.execute(f"""COPY (SELECT key, string_split(reasons, ';') AS reasons, holder_type, status, since
                FROM {table}_r WHERE source = '{src}' AND reasons IS NOT NULL ORDER BY key, row_id)
                TO '{out}/{kind}_{src}_flags.parquet' (FORMAT parquet)""")
        sums = ", ".join(f"sum({r}::INT)" for r in reasons)
        row = con.execute(f"SELECT count(*) FILTER (WHERE reasons IS NOT NULL), {sums} FROM {table}_r").fetchone()
        counts[kind] = dict(zip(["flagged"] + [r.upper() for r in reasons], [int(x or 0) for x in row]))
    t2 = time.time()
    print(json.dumps({"ingest_s": t1 - t0, "reconcile_publish_s": t2 - t1, "total_s": t2 - t0, "counts": counts}))


if __name__ == "__main__":
    main()
