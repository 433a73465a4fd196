#!/usr/bin/env python3
"""Independent reference implementation of CONTRACT.md (version 2: flags,
metrics, the enforcement timeline, delta lists and held uploads), written from
the contract text without looking at junkrecon's SQL. Used to cross-check
junkrecon on generated trees it has never seen:

    python3 tests/reference/contract.py ROOT DATE [DATE...] [--plan PLAN.json] > expected.json

The nights are run in the order given. PLAN (optional) is a JSON object:
  "enforcement": the [enforcement] settings (defaults 15/30/60 and 30),
  "guard":       the [guard] settings (defaults 10 and 1),
  "landing":     "all" (default: every upload is in the landing tree before
                 the first night) or "by_night" (an upload arrives just
                 before the night of its own as_of),
  "releases":    {"DATE": [[extract, source, as_of], ...]}: held uploads an
                 operator releases just before that night.
Output has the shape of the sample's expected.json, plus per night
"timeline" (per source and key: first_flagged_on, days_flagged,
required_action, next_action_on, and each row's overdue, sorted), "delta"
(per source: [key, change] sorted) and "held" (the uploads held so far and
not released: [extract, source, as_of, lost_keys, reference_keys]).
Needs pyarrow. Slow and in-memory: for test-sized trees only.
"""
import hashlib, json, os, re, sys, unicodedata
from datetime import date, timedelta
import pyarrow.parquet as pq

PROVINCES = set("""001 002 004 006 008 010 011 012 014 015 017 019 020 022 024 025 026 027 030
031 033 034 035 036 037 038 040 042 044 045 046 048 049 051 052 054 056 058
060 062 064 066 067 068 070 072 074 075 077 079 080 082 083 084 086 087 089
091 092 093 094 095 096""".split())
# Unicode White_Space, exactly (contract section 3).
WS = "".join(c for c in "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
SRC = re.compile(r"^[A-Z0-9_]{2,16}$")
# Contract v2 §7 adds NO_BIOMETRIC and OWNER_DENIED for carriers.
SUB_REASONS = ["DECEASED", "DOB_MISMATCH", "DUPLICATE_MSISDN", "ID_NOT_FOUND", "LEGACY_ID", "MALFORMED_ID", "MISSING_ID", "NAME_MISMATCH", "NO_BIOMETRIC", "OVER_LIMIT", "OWNER_DENIED"]
ACC_REASONS = ["DECEASED", "DOB_MISMATCH", "DUPLICATE_ACCOUNT", "ID_NOT_FOUND", "LEGACY_ID", "MALFORMED_ID", "MISSING_ID", "NAME_MISMATCH", "NO_BIOMETRIC", "OTP_PHONE_MISMATCH", "OTP_PHONE_MISSING"]
COLS = {
    "identity": {"person_id": "s", "legacy_id": "s", "full_name": "s", "date_of_birth": "d", "sex": "s", "deceased_on": "d"},
    "subscribers": {"msisdn": "s", "subscriber_type": "s", "id_type": "s", "id_number": "s", "full_name": "s", "date_of_birth": "d", "activated_on": "d", "status": "s"},
    "accounts": {"account_number": "s", "holder_type": "s", "id_type": "s", "id_number": "s", "full_name": "s", "date_of_birth": "d", "otp_msisdn": "s", "opened_on": "d", "biometric_verified": "b", "status": "s"},
}
# Section 7: the two columns a version-2 subscriber extract adds.
V2_SUB_COLS = {"biometric_verified": "b", "owner_confirmation": "s"}
ACTIONS = {"subscribers": ["NOTIFY", "LOCK_ONE_WAY", "LOCK_TWO_WAY", "TERMINATE"], "accounts": ["NOTIFY", "SUSPEND"]}


def clean(v):
    if v is None:
        return None
    v = v.strip(WS)
    return v or None


def phone(v):
    v = clean(v)
    if v is None:
        return None
    v = "".join(c for c in v if c not in WS and c not in ".-")
    if v.startswith("+84"):
        v = "84" + v[3:]
    elif len(v) == 10 and v[0] == "0":
        v = "84" + v[1:]
    return v if re.fullmatch(r"84[0-9]{9}", v, re.ASCII) else None


def fold(n):
    s = "".join(c for c in unicodedata.normalize("NFD", n) if not unicodedata.category(c).startswith("M"))
    s = s.replace("Đ", "D").replace("đ", "d").upper()
    return " ".join(w for w in re.split("[" + re.escape(WS) + "]+", s) if w)


def type_ok(kind, t):
    import pyarrow as pa
    if kind == "s":
        return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t) or (pa.types.is_dictionary(t) and pa.types.is_string(t.value_type))
    if kind == "d":
        return pa.types.is_date32(t) or pa.types.is_timestamp(t)
    return pa.types.is_boolean(t)


def to_date(v):
    if v is None:
        return None
    return v.date() if hasattr(v, "date") and not isinstance(v, date) else v


def load(root, extract, source, d):
    """Returns (rows, None) or (None, reason)."""
    folder = {"identity": f"landing/identity/date={d}", "subscribers": f"landing/subscribers/carrier={source}/date={d}", "accounts": f"landing/accounts/bank={source}/date={d}"}[extract]
    mpath = os.path.join(root, folder, "_MANIFEST.json")
    if not os.path.exists(mpath):
        return None, None
    try:
        m = json.load(open(mpath))
    except Exception:
        return None, "bad manifest"
    if m.get("extract") != extract or m.get("source") != source or m.get("as_of") != d:
        return None, "manifest disagrees with path"
    version = m.get("schema_version")
    if type(version) is not int or version not in (1, 2) or not m.get("files"):
        return None, "bad manifest"
    cols = dict(COLS[extract])
    if extract == "subscribers" and version == 2:
        cols.update(V2_SUB_COLS)
    rows = []
    for f in m["files"]:
        p = os.path.join(root, folder, f["name"])
        if not os.path.exists(p):
            return None, "missing " + f["name"]
        if hashlib.sha256(open(p, "rb").read()).hexdigest() != f["sha256"].lower():
            return None, "checksum " + f["name"]
        try:
            t = pq.read_table(p)
        except Exception:
            return None, "unreadable " + f["name"]
        if t.num_rows != f["rows"]:
            return None, "row count " + f["name"]
        for c, k in cols.items():
            if c not in t.column_names:
                return None, "missing column " + c
            if not type_ok(k, t.schema.field(c).type):
                return None, "wrong type " + c
        for i, r in enumerate(t.select(list(cols)).to_pylist()):
            r = {c: (to_date(v) if cols[c] == "d" else v) for c, v in r.items()}
            if extract == "subscribers" and version == 1:
                r["biometric_verified"] = r["owner_confirmation"] = None
            r["_file"], r["_row"] = f["name"], i + 1
            rows.append(r)
    if not rows:
        return None, "no rows"
    if extract == "identity":
        seen, legacy = set(), set()
        for r in rows:
            for c in ("person_id", "full_name", "sex"):
                if clean(r[c]) is None:
                    return None, "null " + c
            if r["date_of_birth"] is None:
                return None, "null date_of_birth"
            pid, lid = clean(r["person_id"]), clean(r["legacy_id"])
            if pid in seen or (lid is not None and lid in legacy):
                return None, "duplicate id"
            seen.add(pid)
            if lid is not None:
                legacy.add(lid)
    return rows, None


def uploads(root):
    out = []  # (extract, source, date)
    for d in sorted(os.listdir(os.path.join(root, "landing/identity"))) if os.path.isdir(os.path.join(root, "landing/identity")) else []:
        if d.startswith("date="):
            out.append(("identity", "NATIONAL", d[5:]))
    for extract, pre in (("subscribers", "carrier="), ("accounts", "bank=")):
        base = os.path.join(root, "landing", extract)
        if not os.path.isdir(base):
            continue
        for s in sorted(os.listdir(base)):
            if not s.startswith(pre) or not SRC.match(s[len(pre):]):
                continue
            for d in sorted(os.listdir(os.path.join(base, s))):
                if d.startswith("date="):
                    out.append((extract, s[len(pre):], d[5:]))
    return out


def main():
    args = sys.argv[1:]
    plan = {}
    if "--plan" in args:
        i = args.index("--plan")
        plan = json.load(open(args[i + 1]))
        del args[i:i + 2]
    root, dates = args[0], args[1:]
    settings = {"lock_one_way_after_days": 15, "lock_two_way_after_days": 30, "terminate_after_days": 60, "suspend_after_days": 30}
    settings.update(plan.get("enforcement", {}))
    guard = {"max_shrink_pct": 10, "identity_max_shrink_pct": 1}
    guard.update(plan.get("guard", {}))
    by_night = plan.get("landing", "all") == "by_night"
    releases = plan.get("releases", {})
    state = {"uploads": {}, "rejected": [], "decided": set(), "published": []}
    # uploads: (extract, source, as_of) -> {"rows": rows, "held": None | (lost, ref_keys), "released": bool}
    all_uploads = uploads(root)
    result = {}
    for n, D in enumerate(dates):
        for u in releases.get(D, []):
            up = state["uploads"].get(tuple(u))
            if up is None or up["held"] is None or up["released"]:
                raise SystemExit(f"plan releases {u} before {D}, but it is not held")
            up["released"] = True
        visible = [u for u in all_uploads if u not in state["decided"] and (u[2] <= D if by_night else True)]
        decide(root, visible, state, guard, settings)
        result[D] = run(D, state, settings)
    json.dump(result, sys.stdout, indent=0, sort_keys=True, ensure_ascii=False)


def usable(up):
    return up["held"] is None or up["released"]


def decide(root, visible, state, guard, settings):
    """Validates newly arrived uploads; a valid one may be held (section 8),
    decided in as_of order per source against the reference and the newest
    published night's report as they are now."""
    for u in sorted(visible):
        state["decided"].add(u)
        rows, why = load(root, *u)
        if rows is None:
            if why:
                state["rejected"].append(list(u) + [why])
            continue
        extract, source, as_of = u
        older = [k for k, up in state["uploads"].items() if k[0] == extract and k[1] == source and k[2] < as_of and usable(up)]
        held = None
        if older:
            ref = state["uploads"][max(older)]
            ref_keys = accepted_keys(extract, ref["rows"])
            now = accepted_keys(extract, rows)
            flagged = set()
            if extract != "identity" and state["published"]:
                # The keys flagged in the source's report of the newest published night.
                flagged = set(state["published"][-1][1].get((extract, source), {}))
            lost = len(ref_keys - now - flagged)
            allowed = guard["identity_max_shrink_pct" if extract == "identity" else "max_shrink_pct"]
            if not now or lost > len(ref_keys) * allowed / 100:
                held = (lost, len(ref_keys))
        state["uploads"][u] = {"rows": rows, "held": held, "released": False}


def accepted_keys(extract, rows):
    if extract == "identity":
        return {clean(r["person_id"]) for r in rows}
    kind = "S" if extract == "subscribers" else "A"
    return {r["key"] for r in prep(rows, kind)[0]}


def newest(state, extract, D):
    best = {}
    for (e, s, d), up in state["uploads"].items():
        if e == extract and d <= D and usable(up) and (s not in best or d > best[s][0]):
            best[s] = (d, up["rows"])
    return best


def held_as_of(state, extract, source, used, D):
    held = [d for (e, s, d), up in state["uploads"].items() if e == extract and s == source and used < d <= D and not usable(up)]
    return max(held) if held else None


def prep(rows, kind):
    good, rej = [], 0
    for r in rows:
        if kind == "S":
            key = phone(r["msisdn"])
            if key is None:
                rej += 1; continue
            typ, st = (clean(r["subscriber_type"]) or "").lower(), (clean(r["status"]) or "").lower()
            if typ not in ("individual", "foreigner", "organization") or st not in ("active", "blocked_one_way", "blocked_two_way") or r["activated_on"] is None:
                rej += 1; continue
            oc = clean(r["owner_confirmation"])
            oc = oc.lower() if oc is not None else None
            if oc is not None and oc not in ("confirmed", "denied", "pending"):
                rej += 1; continue
        else:
            key = clean(r["account_number"])
            if key is None:
                rej += 1; continue
            typ, st = (clean(r["holder_type"]) or "").lower(), (clean(r["status"]) or "").lower()
            if typ not in ("individual", "foreigner", "organization") or st not in ("active", "suspended") or r["opened_on"] is None or r["biometric_verified"] is None:
                rej += 1; continue
            oc = None
        good.append(dict(r, key=key, typ=typ, st=st, oc=oc, reasons=set(), person=None))
    return good, rej


def pct(a, b):
    return None if b == 0 else round(100 * a / b, 2)


def run(D, state, settings):
    published, rejected = state["published"], state["rejected"]
    Dd = date.fromisoformat(D)
    ident = newest(state, "identity", D)["NATIONAL"][1]
    by_pid = {clean(r["person_id"]): r for r in ident}
    by_legacy = {clean(r["legacy_id"]): r for r in ident if clean(r["legacy_id"]) is not None}
    subs_src, accs_src = newest(state, "subscribers", D), newest(state, "accounts", D)

    def resolve(r):
        if r["typ"] != "individual":
            return
        it, num = clean(r["id_type"]), clean(r["id_number"])
        it = it.upper() if it else None
        if it is None or num is None:
            r["reasons"].add("MISSING_ID"); return
        ok = False
        if it == "CCCD":
            ok = bool(re.fullmatch("[0-9]{12}", num, re.ASCII)) and num[:3] in PROVINCES and num[3] in "0123" and (1900 if num[3] in "01" else 2000) + int(num[4:6]) <= Dd.year
        elif it == "CMND":
            ok = bool(re.fullmatch("[0-9]{9}", num, re.ASCII))
        if not ok:
            r["reasons"].add("MALFORMED_ID"); return
        p = by_pid.get(num) if it == "CCCD" else by_legacy.get(num)
        if p is None:
            r["reasons"].add("ID_NOT_FOUND"); return
        r["person"] = clean(p["person_id"])
        if it == "CMND":
            r["reasons"].add("LEGACY_ID")
        n = clean(r["full_name"])
        if n is None or fold(n) != fold(clean(p["full_name"])):
            r["reasons"].add("NAME_MISMATCH")
        if r["date_of_birth"] is None or r["date_of_birth"] != p["date_of_birth"]:
            r["reasons"].add("DOB_MISMATCH")
        if p["deceased_on"] is not None and p["deceased_on"] <= Dd:
            r["reasons"].add("DECEASED")
        if "msisdn" in r and r["biometric_verified"] is False:
            r["reasons"].add("NO_BIOMETRIC")

    subs, accs, rej_count = {}, {}, {}
    for s, (d, rows) in subs_src.items():
        subs[s], rej_count[("S", s)] = prep(rows, "S")
    for s, (d, rows) in accs_src.items():
        accs[s], rej_count[("A", s)] = prep(rows, "A")
    for rows in list(subs.values()) + list(accs.values()):
        for r in rows:
            resolve(r)
    for rows in subs.values():
        for r in rows:
            if r["typ"] == "individual" and r["oc"] == "denied":
                r["reasons"].add("OWNER_DENIED")
    allsubs = [(s, r) for s, rows in subs.items() for r in rows]
    cnt = {}
    for s, r in allsubs:
        cnt[r["key"]] = cnt.get(r["key"], 0) + 1
    per_person = {}
    for s, r in allsubs:
        if cnt[r["key"]] > 1:
            r["reasons"].add("DUPLICATE_MSISDN")
        if r["person"] is not None:
            per_person.setdefault(r["person"], []).append((r["activated_on"], s, r["key"], r["_file"], r["_row"], id(r), r))
    for lst in per_person.values():
        lst.sort(key=lambda x: x[:5])
        for x in lst[10:]:
            x[-1]["reasons"].add("OVER_LIMIT")
    phones = {(r["key"], r["person"]) for s, r in allsubs if r["person"] is not None}
    for s, rows in accs.items():
        c = {}
        for r in rows:
            c[r["key"]] = c.get(r["key"], 0) + 1
        for r in rows:
            if c[r["key"]] > 1:
                r["reasons"].add("DUPLICATE_ACCOUNT")
            if r["person"] is None:
                continue
            raw = clean(r["otp_msisdn"])
            if raw is None:
                r["reasons"].add("OTP_PHONE_MISSING")
            elif (phone(raw), r["person"]) not in phones:
                r["reasons"].add("OTP_PHONE_MISMATCH")
            if not r["biometric_verified"]:
                r["reasons"].add("NO_BIOMETRIC")
    out = {"subscribers": {}, "accounts": {}, "metrics": {"carriers": [], "banks": []},
           "rejected": sorted(rejected), "timeline": {"subscribers": {}, "accounts": {}},
           "delta": {"subscribers": {}, "accounts": {}},
           "held": sorted([list(k) + list(up["held"]) for k, up in state["uploads"].items() if not usable(up)])}
    now_clock = {}
    for kind, srcs, meta, reasons, blocked, mk in (("subscribers", subs, subs_src, SUB_REASONS, ("blocked_one_way", "blocked_two_way"), "carriers"), ("accounts", accs, accs_src, ACC_REASONS, ("suspended",), "banks")):
        for s in sorted(srcs):
            rows = srcs[s]
            flags = {}
            for r in rows:
                if r["reasons"]:
                    flags.setdefault(r["key"], set()).update(r["reasons"])
            out[kind][s] = {k: sorted(v) for k, v in flags.items()}
            keys = set(flags)
            prev = [p for p in published if p[0] < D and (kind, s) in p[1]]
            prev_clock = prev[-1][1][(kind, s)] if prev else {}
            prev_keys = set(prev_clock)
            base_keys = set(prev[0][1][(kind, s)]) if prev else keys
            # Section 9: a key flagged in the previous report keeps its clock.
            clock = {k: prev_clock.get(k, Dd) for k in keys}
            now_clock[(kind, s)] = clock
            timeline, actions, overdue, due = {}, {a: 0 for a in ACTIONS[kind]}, 0, 0
            for k in keys:
                first = clock[k]
                days = (Dd - first).days
                action, nxt = required(kind, days, settings)
                rows_of_k = [r for r in rows if r["key"] == k and r["reasons"]]
                late = sorted(is_overdue(action, r["st"]) for r in rows_of_k)
                timeline[k] = {"first_flagged_on": first.isoformat(), "days_flagged": days, "required_action": action,
                               "next_action_on": (first + timedelta(days=nxt)).isoformat() if nxt is not None else None,
                               "overdue": late}
                actions[action] += len(rows_of_k)
                overdue += sum(late)
                if action != "NOTIFY":
                    due += len(rows_of_k)
            out["timeline"][kind][s] = timeline
            present = {r["key"] for r in rows}
            delta = [[k, "NEW"] for k in keys - prev_keys]
            delta += [[k, "RESOLVED" if k in present else "GONE"] for k in prev_keys - keys]
            out["delta"][kind][s] = sorted(delta, key=lambda x: (x[1], x[0]))
            total = len(rows)
            oos = sum(1 for r in rows if r["typ"] != "individual")
            clean_rows = sum(1 for r in rows if r["typ"] == "individual" and not r["reasons"])
            bf = len(base_keys)
            rsb = len(base_keys - keys)
            out["metrics"][mk].append({
                "as_of": D, "source": s, "extract_as_of": meta[s][0], "total": total,
                "rows_rejected": rej_count[(kind[0].upper(), s)], "out_of_scope": oos,
                "flagged": sum(1 for r in rows if r["reasons"]), "clean": clean_rows,
                "clean_pct": pct(clean_rows, total - oos),
                "flags_by_reason": {x: sum(1 for r in rows if x in r["reasons"]) for x in reasons},
                "flagged_blocked": sum(1 for r in rows if r["reasons"] and r["st"] in blocked),
                "newly_flagged": len(keys - prev_keys), "resolved": len(prev_keys - keys),
                "baseline_flagged": bf, "resolved_since_baseline": rsb,
                "cleanup_progress_pct": pct(rsb, bf),
                "gone": len(prev_keys - keys - present),
                "required_action": actions, "overdue": overdue,
                "compliance_pct": pct(due - overdue, due),
                "held_as_of": held_as_of(state, kind, s, meta[s][0], D),
            })
    published[:] = [p for p in published if p[0] != D] + [(D, now_clock)]
    published.sort(key=lambda p: p[0])
    return out


def required(kind, days, st):
    """Section 9: the action due after `days` and the day count of the next one."""
    if kind == "accounts":
        return ("SUSPEND", None) if days >= st["suspend_after_days"] else ("NOTIFY", st["suspend_after_days"])
    one, two, end = st["lock_one_way_after_days"], st["lock_two_way_after_days"], st["terminate_after_days"]
    if days >= end:
        return "TERMINATE", None
    if days >= two:
        return "LOCK_TWO_WAY", end
    if days >= one:
        return "LOCK_ONE_WAY", two
    return "NOTIFY", one


def is_overdue(action, status):
    return {"LOCK_ONE_WAY": status == "active", "LOCK_TWO_WAY": status in ("active", "blocked_one_way"),
            "TERMINATE": True, "SUSPEND": status == "active"}.get(action, False)


if __name__ == "__main__":
    main()
