//! Every upload-rejection cause of §1 gives its specific reason, leaves the
//! files untouched and the source's previous extract in use.

use std::sync::Arc;

use arrow::array::{ArrayRef, LargeStringArray, StringArray, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use arrow::record_batch::RecordBatch;

use crate::common::{identity, subscribers, Person, Sub, Tree};

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";
const P1: Person = (
    "001090000001",
    Some("123456789"),
    "Nguyễn Văn An",
    "1990-01-02",
    None,
);
const P2: Person = ("079300000002", None, "Trần Thị Bình", "2000-05-05", None);

fn good_rows() -> RecordBatch {
    subscribers(&[
        Sub::ok("0912000001", &P1),
        Sub::ok("0912000002", &P2),
        Sub {
            full_name: None,
            ..Sub::ok("0912000003", &P2)
        },
    ])
}

/// Night 1 accepted for AAA; night 2's AAA upload made by `bad`.
async fn night_two(bad: impl FnOnce(&Tree)) -> (Tree, junkrecon::run::RunRecord) {
    let t = Tree::new();
    for d in [D1, D2] {
        t.upload(
            "identity",
            "NATIONAL",
            d,
            &[("part-0.parquet", identity(&[P1, P2]))],
        );
    }
    t.upload("subscribers", "AAA", D1, &[("part-0.parquet", good_rows())]);
    t.run(D1).await.unwrap();
    bad(&t);
    let before = t.hashes("landing");
    let record = t.run(D2).await.unwrap();
    assert_eq!(t.hashes("landing"), before, "landing/ must never change");
    (t, record)
}

fn rejection(record: &junkrecon::run::RunRecord, label: &str) -> String {
    let d = record
        .ingest
        .decided
        .iter()
        .find(|d| d.key.label() == label)
        .unwrap_or_else(|| panic!("no decision for {label}: {:?}", record.ingest));
    assert_eq!(d.decision.status, "rejected", "{label}");
    d.decision.reason.clone()
}

async fn assert_rejected(bad: impl FnOnce(&Tree), want: &str) {
    let (t, record) = night_two(bad).await;
    let reason = rejection(&record, &format!("subscribers/AAA/{D2}"));
    assert!(
        reason.contains(want),
        "reason {reason:?} should contain {want:?}"
    );
    let m = t.metrics("carriers", D2);
    assert_eq!(
        m["AAA"]["extract_as_of"], D1,
        "previous extract stays in use"
    );
    assert_eq!(m["AAA"]["total"], 3);
}

fn edit_manifest(t: &Tree, f: impl FnOnce(&mut serde_json::Value)) {
    let mut m = t.manifest("subscribers", "AAA", D2);
    f(&mut m);
    t.set_manifest("subscribers", "AAA", D2, &m);
}

fn upload_good(t: &Tree) {
    t.upload("subscribers", "AAA", D2, &[("part-0.parquet", good_rows())]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifest_disagreeing_with_its_path() {
    for (field, value) in [
        ("extract", "accounts"),
        ("source", "BBB"),
        ("as_of", "2026-11-19"),
    ] {
        let want = format!("{field} is \"{value}\", the folder says");
        assert_rejected(
            |t| {
                upload_good(t);
                edit_manifest(t, |m| m[field] = value.into());
            },
            &want,
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_file_checksum_and_row_count() {
    assert_rejected(
        |t| {
            upload_good(t);
            edit_manifest(t, |m| {
                let mut extra = m["files"][0].clone();
                extra["name"] = "part-1.parquet".into();
                m["files"].as_array_mut().unwrap().push(extra);
            });
        },
        "part-1.parquet is listed in the manifest but missing",
    )
    .await;
    assert_rejected(
        |t| {
            upload_good(t);
            edit_manifest(t, |m| m["files"][0]["sha256"] = "ab".repeat(32).into());
        },
        "part-0.parquet: sha256 is ",
    )
    .await;
    assert_rejected(
        |t| {
            upload_good(t);
            edit_manifest(t, |m| m["files"][0]["rows"] = 4.into());
        },
        "part-0.parquet: holds 3 rows, manifest says 4",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_parquet() {
    assert_rejected(
        |t| {
            upload_good(t);
            let p = t
                .path()
                .join(Tree::folder("subscribers", "AAA", D2))
                .join("part-0.parquet");
            let garbage = b"PAR1 this is not parquet at all PAR1".to_vec();
            std::fs::write(&p, &garbage).unwrap();
            edit_manifest(t, |m| {
                use sha2::Digest;
                m["files"][0]["sha256"] = hex::encode(sha2::Sha256::digest(&garbage)).into();
            });
        },
        "unreadable part-0.parquet",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_column_and_wrong_type() {
    assert_rejected(
        |t| {
            let b = good_rows();
            let keep: Vec<usize> = (0..b.num_columns())
                .filter(|&i| b.schema().field(i).name() != "status")
                .collect();
            t.upload(
                "subscribers",
                "AAA",
                D2,
                &[("part-0.parquet", b.project(&keep).unwrap())],
            );
        },
        "part-0.parquet: missing column status",
    )
    .await;
    assert_rejected(
        |t| {
            let b = good_rows();
            let i = b.schema().index_of("date_of_birth").unwrap();
            let mut fields: Vec<Field> = b
                .schema()
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields[i] = Field::new("date_of_birth", DataType::Utf8, true);
            let mut cols: Vec<ArrayRef> = b.columns().to_vec();
            cols[i] = Arc::new(StringArray::from(vec!["1990-01-02"; 3]));
            let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
            t.upload("subscribers", "AAA", D2, &[("part-0.parquet", b)]);
        },
        "part-0.parquet: column date_of_birth is Utf8, contract says Date32",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_without_rows_is_rejected() {
    assert_rejected(
        |t| {
            t.upload(
                "subscribers",
                "AAA",
                D2,
                &[("part-0.parquet", subscribers(&[]))],
            )
        },
        "no rows",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_repeats_and_nulls_reject_the_snapshot() {
    let cases: [(&[Person], &str); 3] = [
        (&[P1, P2, ("001090000001", None, "X", "1990-01-01", None)], "column person_id: 1 value(s) appear more than once (e.g. part-0.parquet row 1 and part-0.parquet row 3)"),
        (&[P1, ("079300000002", Some("123456789"), "X", "1990-01-01", None)], "column legacy_id: 1 value(s)"),
        (&[P1, (" ", None, "X", "1990-01-01", None)], "part-0.parquet row 2: column person_id is null"),
    ];
    for (rows, want) in cases {
        let t = Tree::new();
        t.upload(
            "identity",
            "NATIONAL",
            D1,
            &[("part-0.parquet", identity(&[P1, P2]))],
        );
        t.upload("subscribers", "AAA", D1, &[("part-0.parquet", good_rows())]);
        t.run(D1).await.unwrap();
        t.upload(
            "identity",
            "NATIONAL",
            D2,
            &[("part-0.parquet", identity(rows))],
        );
        let record = t.run(D2).await.unwrap();
        let reason = rejection(&record, &format!("identity/NATIONAL/{D2}"));
        assert!(reason.contains(want), "{reason:?} should contain {want:?}");
        assert!(
            !reason.contains("001090000001") && !reason.contains("123456789"),
            "no ID in a reason: {reason}"
        );
        assert_eq!(
            record.inputs.unwrap().identity.as_of,
            D1,
            "previous snapshot stays in use"
        );
    }
}

/// The duplicate check groups a value of digits as a number (its length
/// and value) and any other value as text: values that read as the same
/// number, or as the same digits once a character is dropped, are different
/// values; a value really repeated, of digits or not, still rejects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_values_alike_as_numbers_are_not_repeats() {
    let person = |id| (id, None, "X", "1990-01-01", None);
    let alike = [
        "123",
        "0123",
        "00123",
        "+123",
        "-123",
        "12a3",
        "12 3",
        "\u{661}\u{662}\u{663}",
        "12345678901234567",
        "012345678901234567",
        "123456789012345678",
        "9999999999999999999",
        "99999999999999999999",
    ];
    let mut legacy: Vec<Person> = ["123456789", "0123456789", "00123456789"]
        .iter()
        .zip(["900000000001", "900000000002", "900000000003"])
        .map(|(l, id)| (id, Some(*l), "X", "1990-01-01", None))
        .collect();
    let decide = |t: &Tree, date: &'static str, rows: &[Person]| {
        t.upload(
            "identity",
            "NATIONAL",
            date,
            &[("part-0.parquet", identity(rows))],
        );
        t.upload(
            "subscribers",
            "AAA",
            date,
            &[("part-0.parquet", good_rows())],
        );
    };
    let status = |record: &junkrecon::run::RunRecord, date: &str| {
        let label = format!("identity/NATIONAL/{date}");
        let d = record
            .ingest
            .decided
            .iter()
            .find(|d| d.key.label() == label);
        let d = d.unwrap_or_else(|| panic!("no decision for {label}"));
        (d.decision.status, d.decision.reason.clone())
    };
    let mut rows: Vec<Person> = alike.iter().map(|id| person(*id)).collect();
    rows.append(&mut legacy);
    for repeated in ["0123", "12a3", "0123456789"] {
        // Night 1: every value differs, the snapshot is accepted.
        let t = Tree::new();
        decide(&t, D1, &rows);
        let record = t.run(D1).await.unwrap();
        assert_eq!(
            status(&record, D1).0,
            "accepted",
            "{:?}",
            status(&record, D1)
        );
        // Night 2: the same values and one really repeated.
        let mut again = rows.clone();
        match repeated.len() {
            10 => again.push(("900000000004", Some(repeated), "X", "1990-01-01", None)),
            _ => again.push(person(repeated)),
        }
        decide(&t, D2, &again);
        let (status, reason) = status(&t.run(D2).await.unwrap(), D2);
        assert_eq!(status, "rejected", "{repeated}: {reason}");
        assert!(
            reason.contains("1 value(s) appear more than once"),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn folders_that_are_not_sources_are_not_followed() {
    let (t, record) = night_two(|t| {
        t.upload("subscribers", "aaa", D2, &[("part-0.parquet", good_rows())]);
        t.upload(
            "subscribers",
            "AAA-2",
            D2,
            &[("part-0.parquet", good_rows())],
        );
        let stray = t
            .path()
            .join("landing/subscribers/carrier=AAA/date=yesterday");
        std::fs::create_dir_all(&stray).unwrap();
        std::fs::write(stray.join("x.parquet"), b"x").unwrap();
        let partial = t.path().join(Tree::folder("subscribers", "BBB", D2));
        std::fs::create_dir_all(&partial).unwrap();
        std::fs::write(partial.join("part-0.parquet"), b"still uploading").unwrap();
    })
    .await;
    let ignored: Vec<String> = record
        .ingest
        .ignored
        .iter()
        .map(|i| format!("{} {}", i.path, i.reason))
        .collect();
    assert!(
        ignored
            .iter()
            .any(|i| i.starts_with("landing/subscribers/carrier=aaa/ ")
                && i.contains("^[A-Z0-9_]{2,16}$")),
        "{ignored:?}"
    );
    assert!(
        ignored
            .iter()
            .any(|i| i.starts_with("landing/subscribers/carrier=AAA-2/ ")),
        "{ignored:?}"
    );
    assert!(
        ignored
            .iter()
            .any(|i| i.contains("date=yesterday") && i.contains("not date=YYYY-MM-DD")),
        "{ignored:?}"
    );
    assert_eq!(
        record.ingest.in_progress,
        vec![format!("landing/subscribers/carrier=BBB/date={D2}/")]
    );
    let m = t.metrics("carriers", D2);
    assert_eq!(m.keys().collect::<Vec<_>>(), ["AAA"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrected_upload_replaces_the_first_and_a_rejected_one_does_not() {
    let (t, _) = night_two(upload_good).await;
    assert_eq!(t.metrics("carriers", D2)["AAA"]["flagged"], 1);
    // Correction: same date, new files and manifest; the newest manifest wins.
    // It keeps one of three numbers: the volume guard (§8, tests/holds.rs)
    // would hold it, so this test lets every shrink through.
    let mut cfg = junkrecon::config::Config::default();
    cfg.guard.max_shrink_pct = 100.0;
    t.upload(
        "subscribers",
        "AAA",
        D2,
        &[("part-0.parquet", subscribers(&[Sub::ok("0912000001", &P1)]))],
    );
    t.run_with(D2, &cfg).await.unwrap();
    let m = t.metrics("carriers", D2);
    assert_eq!(
        (m["AAA"]["total"].as_u64(), m["AAA"]["flagged"].as_u64()),
        (Some(1), Some(0))
    );
    // A broken correction is rejected; the accepted version of that date stays.
    edit_manifest(&t, |m| m["files"][0]["rows"] = 7.into());
    let record = t.run_with(D2, &cfg).await.unwrap();
    rejection(&record, &format!("subscribers/AAA/{D2}"));
    assert_eq!(t.metrics("carriers", D2)["AAA"]["total"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_accepted_types_and_extra_columns() {
    // LargeUtf8 msisdn, a Timestamp with a zone for activated_on (the date in
    // that zone), and an extra column are all accepted.
    let (t, record) = night_two(|t| {
        let b = good_rows();
        let mut fields: Vec<Field> = b
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        let mut cols: Vec<ArrayRef> = b.columns().to_vec();
        fields[0] = Field::new("msisdn", DataType::LargeUtf8, true);
        cols[0] = Arc::new(LargeStringArray::from(vec![
            "0912000001",
            "0912000002",
            "0912000003",
        ]));
        let i = b.schema().index_of("activated_on").unwrap();
        fields[i] = Field::new(
            "activated_on",
            DataType::Timestamp(TimeUnit::Millisecond, Some("+07:00".into())),
            true,
        );
        // 2026-11-20T20:00:00Z is 2026-11-21 03:00 in Vietnam.
        cols[i] = Arc::new(
            TimestampMillisecondArray::from(vec![1_795_204_800_000i64; 3]).with_timezone("+07:00"),
        );
        fields.push(Field::new("branch", DataType::Utf8, true));
        cols.push(Arc::new(StringArray::from(vec!["HN"; 3])));
        let b = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap();
        t.upload("subscribers", "AAA", D2, &[("part-0.parquet", b)]);
    })
    .await;
    assert_eq!(
        record.ingest.decided[0].decision.status, "accepted",
        "{:?}",
        record.ingest.decided[0].decision.reason
    );
    assert_eq!(t.metrics("carriers", D2)["AAA"]["extract_as_of"], D2);
    let csv = std::fs::read_to_string(t.path().join(format!(
        "reports/subscribers/carrier=AAA/date={D2}/flags.csv"
    )))
    .unwrap();
    assert!(
        csv.contains("84912000003,NAME_MISMATCH,individual,active,2026-11-21,"),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identity_snapshot_means_no_run() {
    let t = Tree::new();
    t.upload("subscribers", "AAA", D1, &[("part-0.parquet", good_rows())]);
    let err = t.run(D1).await.unwrap_err();
    assert!(matches!(err, junkrecon::Error::CannotRun(_)));
    assert!(
        err.to_string().contains("no accepted identity snapshot"),
        "{err}"
    );
    assert!(!t
        .path()
        .join(format!("metrics/date={D1}/_PUBLISHED.json"))
        .exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_can_check_files_before_uploading() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.parquet");
    let rows = subscribers(&[
        Sub::ok("0912000001", &P1),
        Sub {
            msisdn: Some("12"),
            ..Sub::ok("x", &P1)
        },
        Sub {
            status: Some("gone"),
            ..Sub::ok("0912000003", &P1)
        },
    ]);
    std::fs::write(&good, crate::common::parquet_bytes(&rows)).unwrap();
    let c = junkrecon::ingest::check_local(&good, junkrecon::schema::Extract::Subscribers)
        .await
        .unwrap();
    assert_eq!(c.upload_rejected, None);
    assert_eq!(c.rows, 3);
    assert_eq!(
        c.row_rejects,
        vec![
            (2, "INVALID_MSISDN".to_string(), "msisdn".to_string()),
            (3, "INVALID_VALUE".to_string(), "status".to_string())
        ]
    );
    let c = junkrecon::ingest::check_local(&good, junkrecon::schema::Extract::Accounts)
        .await
        .unwrap();
    assert_eq!(
        c.upload_rejected.as_deref(),
        Some("good.parquet: missing column account_number")
    );
}

/// The run's table, `sources.json` and the dashboard count a source's
/// rejected uploads by one rule: a rejection superseded by a later accepted
/// extract no longer counts, one newer than the extract in use does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reader_counts_rejected_uploads_alike() {
    let t = Tree::sample();
    let spoil = |source: &str, date: &str| {
        let mut m = t.manifest("subscribers", source, date);
        m["files"][0]["sha256"] = "0".repeat(64).into();
        t.set_manifest("subscribers", source, date, &m);
    };
    spoil("VIETTEL", "2026-11-20"); // superseded on night 2 by an accepted upload
    spoil("VINAPHONE", "2026-11-21"); // newer than the extract in use on night 2
    t.run("2026-11-20").await.unwrap();
    let record = t.run("2026-11-21").await.unwrap();
    let published: Vec<junkrecon::sources::SourceStatus> = serde_json::from_slice(
        &std::fs::read(t.path().join("metrics/date=2026-11-21/sources.json")).unwrap(),
    )
    .unwrap();
    for (source, want) in [("VIETTEL", 0), ("VINAPHONE", 1), ("MOBIFONE", 0)] {
        let row = record.summary.iter().find(|r| r.source == source).unwrap();
        let status = published.iter().find(|s| s.source == source).unwrap();
        assert_eq!(row.rejected_uploads, want, "{source}: the run's table");
        assert_eq!(
            status.rejected_uploads.len() as u64,
            want,
            "{source}: sources.json"
        );
    }
}
