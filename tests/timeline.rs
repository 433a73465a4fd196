//! Contract v2 over many nights (§7–§10), against the independent Python
//! reference (`tests/reference/contract.py --plan`): a generated country
//! whose uploads arrive night by night, with short enforcement settings, a
//! night left unpublished, and a held upload released between nights. Every
//! flag, clock, required action, overdue row, delta and metric of every
//! night equals the reference's, and the tree exercises what the issue lists
//! (every action, an overdue row of each kind, a restarted clock, a clock
//! across nights without an upload, NEW/RESOLVED/GONE, the three kinds of
//! held upload, one released later).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

use arrow::array::{Array, BooleanArray, Date32Array, Int32Array, StringArray};
use junkrecon::config::Config;
use junkrecon::generate::{generate, GenerateOptions};
use junkrecon::manifest::UploadKey;
use junkrecon::schema::Extract;
use serde_json::{json, Value};

use crate::common::{copy_dir, read_parquet, Tree};

/// The nights run, in order: 2026-11-25 is never run (no publication).
const NIGHTS: [&str; 6] = [
    "2026-11-20",
    "2026-11-21",
    "2026-11-22",
    "2026-11-23",
    "2026-11-24",
    "2026-11-26",
];

/// GMOBILE's shrunk upload of day 3 is released before night 2026-11-24,
/// on which GMOBILE sends nothing: that night uses it.
const RELEASE: (&str, &str, &str) = ("subscribers", "GMOBILE", "2026-11-23");
const RELEASED_BEFORE: &str = "2026-11-24";

fn short() -> Config {
    Config::from_toml(
        "[enforcement]\nlock_one_way_after_days = 1\nlock_two_way_after_days = 2\nterminate_after_days = 3\nsuspend_after_days = 2\n",
    )
    .unwrap()
}

fn plan() -> Value {
    json!({
        "enforcement": {"lock_one_way_after_days": 1, "lock_two_way_after_days": 2,
                        "terminate_after_days": 3, "suspend_after_days": 2},
        "landing": "by_night",
        "releases": {RELEASED_BEFORE: [[RELEASE.0, RELEASE.1, RELEASE.2]]},
    })
}

/// Copies the uploads dated on or before `night` from the senders' tree.
fn arrive(senders: &Path, root: &Path, night: &str) {
    let mut dirs = vec![];
    crate::common::walk(&senders.join("landing"), &mut |p| {
        if let Some(dir) = p.parent() {
            dirs.push(dir.to_path_buf());
        }
    });
    dirs.sort();
    dirs.dedup();
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let date = name.strip_prefix("date=").unwrap();
        let to = root.join(dir.strip_prefix(senders).unwrap());
        if date <= night && !to.exists() {
            copy_dir(&dir, &to);
        }
    }
}

fn strings(b: &arrow::record_batch::RecordBatch, c: &str) -> StringArray {
    arrow::compute::cast(
        b.column_by_name(c).unwrap(),
        &arrow::datatypes::DataType::Utf8,
    )
    .unwrap()
    .as_any()
    .downcast_ref::<StringArray>()
    .unwrap()
    .clone()
}

fn iso(days: i32) -> String {
    (chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(days as i64))
        .to_string()
}

/// One report's clock per key, in the reference's shape; all rows of a key
/// share it (asserted).
fn timeline(t: &Tree, extract: &str, source: &str, date: &str) -> BTreeMap<String, Value> {
    let (dir, key) = match extract {
        "subscribers" => ("carrier", "msisdn"),
        _ => ("bank", "account_number"),
    };
    let p = t.path().join(format!(
        "reports/{extract}/{dir}={source}/date={date}/flags.parquet"
    ));
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    let mut overdue: BTreeMap<String, Vec<bool>> = BTreeMap::new();
    for b in read_parquet(&p) {
        let keys = strings(&b, key);
        let first = b.column_by_name("first_flagged_on").unwrap();
        let first = first.as_any().downcast_ref::<Date32Array>().unwrap();
        let days = b.column_by_name("days_flagged").unwrap();
        let days = days.as_any().downcast_ref::<Int32Array>().unwrap();
        let action = strings(&b, "required_action");
        let next = b.column_by_name("next_action_on").unwrap();
        let next = next.as_any().downcast_ref::<Date32Array>().unwrap();
        let late = b.column_by_name("overdue").unwrap();
        let late = late.as_any().downcast_ref::<BooleanArray>().unwrap();
        for i in 0..b.num_rows() {
            let k = keys.value(i).to_string();
            let clock = json!({
                "first_flagged_on": iso(first.value(i)),
                "days_flagged": days.value(i),
                "required_action": action.value(i),
                "next_action_on": (!next.is_null(i)).then(|| iso(next.value(i))),
            });
            if let Some(before) = out.insert(k.clone(), clock.clone()) {
                assert_eq!(
                    before, clock,
                    "{date} {source} {k}: rows of a key share its clock"
                );
            }
            overdue.entry(k).or_default().push(late.value(i));
        }
    }
    for (k, mut v) in overdue {
        v.sort();
        out.get_mut(&k).unwrap()["overdue"] = json!(v);
    }
    out
}

fn delta(t: &Tree, extract: &str, source: &str, date: &str) -> Vec<(String, String)> {
    let (dir, key) = match extract {
        "subscribers" => ("carrier", "msisdn"),
        _ => ("bank", "account_number"),
    };
    let p = t.path().join(format!(
        "reports/{extract}/{dir}={source}/date={date}/delta.parquet"
    ));
    let mut out = vec![];
    for b in read_parquet(&p) {
        assert_eq!(b.num_columns(), 2, "delta.parquet has exactly two columns");
        let (keys, change) = (strings(&b, key), strings(&b, "change"));
        for i in 0..b.num_rows() {
            out.push((keys.value(i).to_string(), change.value(i).to_string()));
        }
    }
    out
}

/// Held and not released uploads from the ledger: [extract, source, as_of, lost, reference keys].
async fn held(t: &Tree) -> Vec<Value> {
    let mut out = vec![];
    for e in Extract::ALL {
        for l in junkrecon::catalog::all_ledgers(&t.root(), e).await.unwrap() {
            if let Some(d) = l.held() {
                let h = d.hold.as_ref().unwrap();
                out.push(json!([
                    e.to_string(),
                    l.key.source,
                    l.key.as_of,
                    h.lost_keys,
                    h.reference_keys
                ]));
            }
        }
    }
    out.sort_by_key(|v| v.to_string());
    out
}

fn reference(senders: &Path) -> Value {
    let plan_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(plan_file.path(), plan().to_string()).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/contract.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(senders)
        .args(NIGHTS)
        .arg("--plan")
        .arg(plan_file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// What the tree must exercise, counted over every night's metrics and reports.
#[derive(Default)]
struct Seen {
    actions: BTreeSet<String>,
    overdue_actions: BTreeSet<String>,
    changes: BTreeSet<String>,
    restarted: bool,
    compliance: bool,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_nights_match_the_reference() {
    let senders = Tree::new();
    let opts = GenerateOptions {
        persons: 3000,
        days: 7,
        seed: 11,
        v2: true,
        chunk: 1000,
        rows_per_file: 2500,
        ..Default::default()
    };
    generate(&senders.root(), &opts).await.unwrap();
    let t = Tree::new();
    let cfg = short();
    let mut clocks: BTreeMap<(String, String), Vec<(String, String)>> = BTreeMap::new();
    let mut seen = Seen::default();
    play_nights(senders.path(), &t, &cfg).await;
    for night in NIGHTS {
        for (extract, kind) in [("subscribers", "carriers"), ("accounts", "banks")] {
            for (source, m) in t.metrics(kind, night) {
                for (a, n) in m["required_action"].as_object().unwrap() {
                    if n.as_u64().unwrap() > 0 {
                        seen.actions.insert(a.clone());
                    }
                }
                seen.compliance |= !m["compliance_pct"].is_null();
                for (k, c) in timeline(&t, extract, &source, night) {
                    if c["overdue"].as_array().unwrap().contains(&json!(true)) {
                        seen.overdue_actions
                            .insert(c["required_action"].as_str().unwrap().to_string());
                    }
                    let first = c["first_flagged_on"].as_str().unwrap().to_string();
                    let history = clocks.entry((source.clone(), k)).or_default();
                    // A key flagged again after a night unflagged starts a new clock.
                    if history.last().is_some_and(|(_, f)| *f != first) && first == night {
                        seen.restarted = true;
                    }
                    history.push((night.to_string(), first));
                }
                for (_, change) in delta(&t, extract, &source, night) {
                    seen.changes.insert(change);
                }
            }
        }
    }
    let all = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    assert_eq!(
        seen.actions,
        all(&[
            "LOCK_ONE_WAY",
            "LOCK_TWO_WAY",
            "NOTIFY",
            "SUSPEND",
            "TERMINATE"
        ])
    );
    assert_eq!(
        seen.overdue_actions,
        all(&["LOCK_ONE_WAY", "LOCK_TWO_WAY", "SUSPEND", "TERMINATE"])
    );
    assert_eq!(seen.changes, all(&["GONE", "NEW", "RESOLVED"]));
    assert!(seen.compliance, "some action was due");
    assert!(
        seen.restarted,
        "a key fixed and flagged again starts a new clock"
    );

    // The held uploads: VIETNAMOBILE's all-rejected one, the registry's
    // shrunk snapshot (GMOBILE's was released).
    let held_now = held(&t).await;
    let names: Vec<(String, String)> = held_now
        .iter()
        .map(|h| (h[1].as_str().unwrap().into(), h[2].as_str().unwrap().into()))
        .collect();
    assert_eq!(
        names,
        [
            ("NATIONAL".to_string(), "2026-11-24".to_string()),
            ("VIETNAMOBILE".to_string(), "2026-11-22".to_string())
        ]
    );
    let gm = t.metrics("carriers", "2026-11-24");
    assert_eq!(
        gm["GMOBILE"]["extract_as_of"], "2026-11-23",
        "released, then used"
    );
    assert_eq!(
        t.metrics("carriers", "2026-11-22")["VIETNAMOBILE"]["held_as_of"],
        "2026-11-22"
    );
    // A clock runs across nights with no upload (GMOBILE on the 24th and
    // the 26th) and across the unpublished 25th.
    let days_gm = timeline(&t, "subscribers", "GMOBILE", "2026-11-26");
    assert!(
        days_gm
            .values()
            .any(|c| c["days_flagged"].as_i64() == Some(6)),
        "{days_gm:?}"
    );

    // A re-run of the last night is byte-identical, delta lists and clocks included.
    let last = NIGHTS[5];
    let night_files = |t: &Tree| {
        let mut h = t.hashes("reports");
        h.extend(t.hashes("metrics"));
        h.retain(|k, _| {
            k.contains(&format!("date={last}/"))
                && !k.ends_with("_PUBLISHED.json")
                && !k.ends_with("sources.json")
                && !k.contains("dashboard")
        });
        h
    };
    let before = night_files(&t);
    assert!(before.keys().any(|k| k.ends_with("delta.parquet")));
    t.run_with(last, &cfg).await.unwrap();
    assert_eq!(night_files(&t), before);

    if !crate::generated::reference_available() {
        eprintln!("python3 with pyarrow not found: reference comparison skipped (CI sets JUNKRECON_REFERENCE=1)");
        return;
    }
    let r = reference(senders.path());
    assert_nights(&t, &r).await;
}

/// Every night's flags, clocks, deltas and metrics, and the uploads held at
/// the end, equal the reference's `r`.
async fn assert_nights(t: &Tree, r: &Value) {
    for night in NIGHTS {
        let exp = &r[night];
        for (extract, kind) in [("subscribers", "carriers"), ("accounts", "banks")] {
            for (source, flags) in exp[extract].as_object().unwrap() {
                let want: BTreeMap<String, Vec<String>> =
                    serde_json::from_value(flags.clone()).unwrap();
                assert_eq!(t.flags(extract, source, night), want, "{night} {source}");
                let want: BTreeMap<String, Value> =
                    serde_json::from_value(exp["timeline"][extract][source].clone()).unwrap();
                assert_eq!(
                    timeline(t, extract, source, night),
                    want,
                    "{night} {source}"
                );
                let want: Vec<(String, String)> =
                    serde_json::from_value(exp["delta"][extract][source].clone()).unwrap();
                assert_eq!(delta(t, extract, source, night), want, "{night} {source}");
            }
            let got = t.metrics(kind, night);
            let want = exp["metrics"][kind].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{night} {kind}");
            for m in want {
                assert_eq!(&got[m["source"].as_str().unwrap()], m, "{night} {kind}");
            }
        }
    }
    assert_eq!(json!(held(t).await), r[NIGHTS[5]]["held"]);
}

/// Plays the senders and the operator: before each night, the uploads dated
/// up to it arrive, and the planned release is made; then the night runs.
async fn play_nights(senders: &Path, t: &Tree, cfg: &Config) {
    for night in NIGHTS {
        arrive(senders, t.path(), night);
        if night == RELEASED_BEFORE {
            let key = UploadKey {
                extract: Extract::parse(RELEASE.0).unwrap(),
                source: RELEASE.1.into(),
                as_of: RELEASE.2.parse().unwrap(),
            };
            junkrecon::run::release(&t.root(), &key, "checked with GMOBILE", "test", cfg)
                .await
                .unwrap();
        }
        t.run_with(night, cfg).await.unwrap();
    }
}
