//! Held uploads (contract §8) at their edges: lost keys counted against the
//! reference without the keys the carrier was told to clean up, an upload
//! with every row rejected, the registry's own threshold, uploads decided
//! together in `as_of` order, a held correction, and the release (recorded,
//! used from the next run; refused, changing nothing, when not held). Also
//! the §9 clock carried over from a report written before contract v2.

use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use junkrecon::config::Config;
use junkrecon::manifest::UploadKey;
use junkrecon::schema::Extract;

use crate::common::{accounts, identity, read_parquet, subscribers, Acc, Person, Sub, Tree};

const P1: Person = ("001090000001", None, "Nguyễn Văn An", "1990-01-02", None);
const P2: Person = ("001085000002", None, "Trần Thị Bình", "1985-05-05", None);
const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";
const D3: &str = "2026-11-22";
const D4: &str = "2026-11-23";

fn msisdn(i: usize) -> String {
    format!("849120{i:05}")
}

/// Rows `clean` (organizations: in the extract, never flagged) and
/// `flagged` (individuals without an ID: MISSING_ID) of carrier AAA.
fn carrier(clean: std::ops::Range<usize>, flagged: std::ops::Range<usize>) -> RecordBatch {
    let numbers: Vec<String> = clean.clone().chain(flagged.clone()).map(msisdn).collect();
    let rows: Vec<Sub> = numbers
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let base = Sub::ok(m, &P1);
            if i < clean.len() {
                Sub {
                    subscriber_type: Some("organization"),
                    ..base
                }
            } else {
                Sub {
                    id_type: None,
                    ..base
                }
            }
        })
        .collect();
    subscribers(&rows)
}

fn up(t: &Tree, source: &str, date: &str, batch: RecordBatch) {
    t.upload("subscribers", source, date, &[("part-0.parquet", batch)]);
}

fn key(extract: Extract, source: &str, as_of: &str) -> UploadKey {
    UploadKey {
        extract,
        source: source.into(),
        as_of: as_of.parse().unwrap(),
    }
}

async fn ledger(t: &Tree, k: &UploadKey) -> junkrecon::catalog::FolderLedger {
    junkrecon::catalog::read_ledger(&t.root(), k)
        .await
        .unwrap()
        .unwrap()
}

/// Runs night 2, whose one decided upload must be held for a reason that
/// starts with `reason`.
async fn assert_held_on_night_2(t: &Tree, reason: &str) {
    let r = t.run(D2).await.unwrap();
    let d = &r.ingest.decided[0].decision;
    assert_eq!(d.status, "held", "{:?}", r.ingest.decided);
    assert!(d.reason.starts_with(reason), "{}", d.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shrunk_upload_is_held_until_released() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1, P2]))]);
    // 20 clean keys and 5 flagged ones.
    up(&t, "AAA", D1, carrier(0..20, 20..25));
    t.run(D1).await.unwrap();
    // Night 2: the 5 flagged keys are gone (terminated, as asked) and 2
    // clean ones: 2 of 25 keys lost, 8% ≤ 10%: accepted.
    up(&t, "AAA", D2, carrier(2..20, 20..20));
    let r2 = t.run(D2).await.unwrap();
    assert_eq!(r2.ingest.decided[0].decision.status, "accepted");
    // Night 3: 2 more clean keys of the 18 gone: 11.11% > 10%: held.
    up(&t, "AAA", D3, carrier(4..20, 20..20));
    let r3 = t.run(D3).await.unwrap();
    let d = &r3.ingest.decided[0].decision;
    assert_eq!(d.status, "held");
    assert_eq!(
        d.reason,
        "2 of 18 keys (11.11%) of the 2026-11-21 extract are missing and were not flagged, more than the 10% allowed"
    );
    let m = &t.metrics("carriers", D3)["AAA"];
    assert_eq!(m["extract_as_of"], D2, "the reference stays in use");
    assert_eq!(m["held_as_of"], D3);
    assert_eq!(m["total"], 18);
    let sources: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join(format!("metrics/date={D3}/sources.json"))).unwrap(),
    )
    .unwrap();
    let held = &sources[0]["held_uploads"][0];
    assert_eq!(held["as_of"], D3);
    assert_eq!(
        held["release"],
        "--extract subscribers --source AAA --as-of 2026-11-22"
    );
    let status = junkrecon::run::status_text(&t.root(), None).await.unwrap();
    assert!(status.contains("Held uploads"), "{status}");
    assert!(
        status.contains("junkrecon release --data ") && status.contains("--as-of 2026-11-22"),
        "{status}"
    );

    // Releasing an upload that is not held fails and changes nothing.
    let accepted = key(Extract::Subscribers, "AAA", D2);
    let before = std::fs::read(
        t.path()
            .join("catalog/uploads/subscribers/AAA/2026-11-21.json"),
    )
    .unwrap();
    let cfg = Config::default();
    let e = junkrecon::run::release(&t.root(), &accepted, "why not", "test", &cfg)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not held"), "{e}");
    let after = std::fs::read(
        t.path()
            .join("catalog/uploads/subscribers/AAA/2026-11-21.json"),
    )
    .unwrap();
    assert_eq!(before, after);

    // Released: recorded with its reason, used from the next run on.
    let k3 = key(Extract::Subscribers, "AAA", D3);
    junkrecon::run::release(&t.root(), &k3, "AAA sold 2 business lines", "ops", &cfg)
        .await
        .unwrap();
    let l = ledger(&t, &k3).await;
    let last = l.decisions.last().unwrap();
    assert_eq!(last.status, "accepted");
    let rel = last.hold.as_ref().unwrap().released.as_ref().unwrap();
    assert_eq!(rel.reason, "AAA sold 2 business lines");
    assert!(!rel.released_at.is_empty());
    t.run(D4).await.unwrap();
    let m = &t.metrics("carriers", D4)["AAA"];
    assert_eq!(m["extract_as_of"], D3);
    assert!(m["held_as_of"].is_null());
    assert_eq!(m["total"], 16);
    // Released twice: no longer held.
    let e = junkrecon::run::release(&t.root(), &k3, "again", "ops", &cfg)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("is not held"), "{e}");
}

/// The guard groups a key of digits as a number (its length and value) and
/// any other key as text: keys that read as the same number, or as the same
/// digits once a character is dropped, stay different keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_that_look_alike_as_numbers_are_counted_as_different_keys() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1]))]);
    let bank = |keys: &[&str]| {
        let rows: Vec<Acc> = keys
            .iter()
            .map(|k| Acc {
                // Organizations: never flagged, so no key may go.
                holder_type: Some("organization"),
                ..Acc::ok(k, &P1, "0912000001")
            })
            .collect();
        accounts(&rows)
    };
    let first = [
        "1",
        "0123",
        "00123",
        "-123",
        "12a3",
        "\u{661}\u{662}\u{663}",
        "012345678901234567",
        "99999999999999999999",
    ];
    // Night 2 keeps "1" only; each other key has a twin here that reads as
    // the same number, or as the same digits.
    let second = [
        "1",
        "123",
        "+123",
        "0000123",
        "12 3",
        "12345678901234567",
        "123456789012345678",
        "9999999999999999999",
    ];
    t.upload("accounts", "BNK", D1, &[("part-0.parquet", bank(&first))]);
    t.run(D1).await.unwrap();
    t.upload("accounts", "BNK", D2, &[("part-0.parquet", bank(&second))]);
    assert_held_on_night_2(&t, "7 of 8 keys (87.50%) of the 2026-11-20 extract").await;
}

/// A carrier's keys are grouped as numbers (queries/15_volume_guard_phones.sql):
/// one number spelled in several ways, or on several rows, is one key, and
/// a flagged key that went is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carriers_keys_are_counted_once_however_spelled() {
    fn line(m: &str, flagged: bool) -> Sub<'_> {
        Sub {
            // An organization is never flagged (for a key of one row); an
            // individual without an ID is (MISSING_ID).
            subscriber_type: Some(if flagged {
                "individual"
            } else {
                "organization"
            }),
            id_type: if flagged { None } else { Some("CCCD") },
            ..Sub::ok(m, &P1)
        }
    }
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1]))]);
    let numbers: Vec<String> = (0..10).map(msisdn).collect();
    // 10 keys on 14 rows: numbers[0] three times (spelled three ways) and
    // numbers[1] three times; both are then flagged DUPLICATE_MSISDN, and
    // numbers[9] MISSING_ID.
    let mut first: Vec<Sub> = vec![
        line("0912000000", false),
        line("+84 912 000 000", false),
        line("84.912.000.001", false),
        line("0912-000-001", false),
    ];
    first.extend(numbers[..9].iter().map(|m| line(m, false)));
    first.push(line(&numbers[9], true));
    up(&t, "AAA", D1, subscribers(&first));
    t.run(D1).await.unwrap();
    // Night 2 keeps numbers[0], [1] and [4..9]: [9] went but was flagged;
    // [2] and [3] are lost: 2 of 10 keys, 20% > 10%.
    let kept = [&numbers[..2], &numbers[4..9]].concat();
    let second: Vec<Sub> = kept.iter().map(|m| line(m, false)).collect();
    up(&t, "AAA", D2, subscribers(&second));
    assert_held_on_night_2(&t, "2 of 10 keys (20.00%) of the 2026-11-20 extract").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_with_every_row_rejected_is_held_and_its_rejects_are_not_published() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1, P2]))]);
    up(&t, "AAA", D1, carrier(0..10, 10..12));
    t.run(D1).await.unwrap();
    let garbled: Vec<Sub> = (0..12)
        .map(|_| Sub {
            msisdn: Some("#N/A"),
            ..Sub::ok("x", &P1)
        })
        .collect();
    up(&t, "AAA", D2, subscribers(&garbled));
    let r = t.run(D2).await.unwrap();
    let d = &r.ingest.decided[0].decision;
    assert_eq!(d.status, "held");
    assert_eq!(
        d.reason,
        "no accepted rows (all 12 rows are row-level rejects); the 2026-11-20 extract stays in use"
    );
    assert_eq!(
        d.rows_rejected, 12,
        "the ledger keeps the row-level rejects"
    );
    let m = &t.metrics("carriers", D2)["AAA"];
    assert_eq!(m["extract_as_of"], D1);
    assert_eq!(m["total"], 12);
    let rejects = read_parquet(
        &t.path()
            .join(format!("reports/rejects/date={D2}/rejects.parquet")),
    );
    assert_eq!(
        rejects.iter().map(|b| b.num_rows()).sum::<usize>(),
        0,
        "a held upload is not used: its rejects are not the night's"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_upload_has_no_reference_and_is_never_held() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1]))]);
    let garbled: Vec<Sub> = (0..3)
        .map(|_| Sub {
            msisdn: Some("#N/A"),
            ..Sub::ok("x", &P1)
        })
        .collect();
    up(&t, "AAA", D1, subscribers(&garbled));
    let r = t.run(D1).await.unwrap();
    assert_eq!(r.ingest.decided[1].decision.status, "accepted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_decided_together_go_in_as_of_order_and_the_registry_has_its_own_limit() {
    let t = Tree::new();
    let people: Vec<(String, String)> = (0..150)
        .map(|i| (format!("001090{i:06}"), format!("Người {i}")))
        .collect();
    let persons: Vec<Person> = people
        .iter()
        .map(|(id, name)| (id.as_str(), None, name.as_str(), "1990-01-02", None))
        .collect();
    t.upload("identity", "", D1, &[("p.parquet", identity(&persons))]);
    // One person of 150 gone: 0.67% ≤ 1%. Two more of 149: 1.34% > 1%.
    t.upload(
        "identity",
        "",
        D2,
        &[("p.parquet", identity(&persons[1..]))],
    );
    t.upload(
        "identity",
        "",
        D3,
        &[("p.parquet", identity(&persons[3..]))],
    );
    // Three uploads of one carrier arrive together: the 2nd loses 5 of 20
    // (held), so the 3rd is compared with the 1st, not with the held one.
    up(&t, "AAA", D1, carrier(0..20, 0..0));
    up(&t, "AAA", D2, carrier(5..20, 0..0));
    up(&t, "AAA", D3, carrier(1..20, 0..0));
    let r = t.run(D3).await.unwrap();
    let status = |extract: &str, as_of: &str| {
        r.ingest
            .decided
            .iter()
            .find(|o| o.key.extract.to_string() == extract && o.key.as_of == as_of)
            .unwrap()
            .decision
            .clone()
    };
    assert_eq!(status("identity", D2).status, "accepted");
    let held = status("identity", D3);
    assert_eq!(held.status, "held");
    assert!(
        held.reason
            .starts_with("2 of 149 keys (1.34%) of the 2026-11-21 extract"),
        "{}",
        held.reason
    );
    assert_eq!(r.inputs.as_ref().unwrap().identity.as_of, D2);
    assert_eq!(status("subscribers", D2).status, "held");
    let third = status("subscribers", D3);
    assert_eq!(third.status, "accepted");
    assert_eq!(third.hold, None);
    // The registry's held snapshot is in sources.json under kind "registry".
    let sources: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join(format!("metrics/date={D3}/sources.json"))).unwrap(),
    )
    .unwrap();
    let registry = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "registry")
        .unwrap();
    assert_eq!(registry["held_uploads"][0]["as_of"], D3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_correction_leaves_the_earlier_version_in_use() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1]))]);
    up(&t, "AAA", D1, carrier(0..20, 0..0));
    up(&t, "AAA", D2, carrier(0..20, 0..0));
    t.run(D2).await.unwrap();
    // A correction of D2 that lost half the keys is decided again: held.
    up(&t, "AAA", D2, carrier(10..20, 0..0));
    let r = t.run(D2).await.unwrap();
    assert_eq!(r.ingest.decided[0].decision.status, "held");
    let m = &t.metrics("carriers", D2)["AAA"];
    assert_eq!(m["extract_as_of"], D2);
    assert_eq!(m["total"], 20, "the accepted version of D2 stays in use");
    let status = junkrecon::run::status_text(&t.root(), None).await.unwrap();
    assert!(status.contains("held (earlier version in use)"), "{status}");
}

#[test]
fn the_release_command_says_what_is_wrong_in_one_line() {
    let t = Tree::new();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_junkrecon"))
        .args(["release", "--data"])
        .arg(t.path())
        .args([
            "--extract",
            "subscribers",
            "--source",
            "AAA",
            "--as-of",
            D1,
            "--reason",
            "checked",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("subscribers/AAA/2026-11-20") && err.contains("nothing to release"),
        "{err}"
    );
}

/// §9: a previous report written under version 1 (no clock columns) counts
/// as if its keys were first flagged on its own night, and the clock runs
/// across a night with no publication.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_without_a_clock_counts_as_first_flagged_on_its_night() {
    let t = Tree::new();
    t.upload("identity", "", D1, &[("p.parquet", identity(&[P1]))]);
    up(&t, "AAA", D1, carrier(0..3, 3..6));
    t.run(D1).await.unwrap();
    // Make night 1's staged report look like one written before v2.
    let mut staged = vec![];
    crate::common::walk(&t.path().join("publications"), &mut |p| {
        if p.ends_with("flags.parquet") {
            staged.push(p.to_path_buf());
        }
    });
    assert_eq!(staged.len(), 1);
    let batches = read_parquet(&staged[0]);
    let keep: Vec<usize> = (0..6).collect();
    let v1: Vec<RecordBatch> = batches.iter().map(|b| b.project(&keep).unwrap()).collect();
    let schema: Arc<arrow::datatypes::Schema> = v1[0].schema();
    let mut buf = vec![];
    let mut w = parquet::arrow::ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    for b in &v1 {
        w.write(b).unwrap();
    }
    w.close().unwrap();
    std::fs::write(&staged[0], buf).unwrap();
    // Night 3 (night 2 never run): keys 3 and 4 still flagged, 6 new.
    up(&t, "AAA", D3, carrier(0..3, 3..7));
    let mut cfg = Config::default();
    cfg.enforcement.lock_one_way_after_days = 2;
    cfg.enforcement.lock_two_way_after_days = 3;
    cfg.enforcement.terminate_after_days = 4;
    t.run_with(D3, &cfg).await.unwrap();
    let csv = std::fs::read_to_string(t.path().join(format!(
        "reports/subscribers/carrier=AAA/date={D3}/flags.csv"
    )))
    .unwrap();
    let line = |i: usize| {
        csv.lines()
            .find(|l| l.starts_with(&msisdn(i)))
            .unwrap()
            .to_string()
    };
    assert!(
        line(3).ends_with(",2026-11-20,2,LOCK_ONE_WAY,2026-11-23,true"),
        "{}",
        line(3)
    );
    assert!(
        line(6).ends_with(",2026-11-22,0,NOTIFY,2026-11-24,false"),
        "{}",
        line(6)
    );
    let m = &t.metrics("carriers", D3)["AAA"];
    assert_eq!(m["required_action"]["LOCK_ONE_WAY"], 3);
    assert_eq!(m["required_action"]["NOTIFY"], 1);
    assert_eq!(m["overdue"], 3);
    assert_eq!(m["compliance_pct"], 0.0);
}
