//! Contract v2 §7: subscriber extracts of schema version 2 (biometrics and
//! the owner's answer through VNeID), the reasons NO_BIOMETRIC and
//! OWNER_DENIED for carriers, a version-1 extract read as if both were
//! null, and the manifest's version as the JSON integers 1 and 2 only.

use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;

use crate::common::{identity, subscribers, Person, Sub, Tree};

const D: &str = "2026-11-21";
const P1: Person = ("001090000001", None, "Nguyễn Văn An", "1990-01-02", None);

/// `rows` with the two version-2 columns appended.
fn with_v2(rows: &[Sub], v2: &[(Option<bool>, Option<&str>)]) -> RecordBatch {
    let base = subscribers(rows);
    let mut fields: Vec<Field> = base
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("biometric_verified", DataType::Boolean, true));
    fields.push(Field::new("owner_confirmation", DataType::Utf8, true));
    let mut cols: Vec<ArrayRef> = base.columns().to_vec();
    cols.push(Arc::new(BooleanArray::from(
        v2.iter().map(|r| r.0).collect::<Vec<_>>(),
    )));
    cols.push(Arc::new(StringArray::from(
        v2.iter().map(|r| r.1).collect::<Vec<_>>(),
    )));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
}

fn version(t: &Tree, source: &str, v: serde_json::Value) {
    let mut m = t.manifest("subscribers", source, D);
    m["schema_version"] = v;
    t.set_manifest("subscribers", source, D, &m);
}

/// A row's two version-2 values: biometric_verified, owner_confirmation.
type V2 = (Option<bool>, Option<&'static str>);

fn rows() -> (Vec<Sub<'static>>, Vec<V2>) {
    let ok = Sub::ok;
    let subs = vec![
        ok("0912100001", &P1),
        ok("0912100002", &P1),
        ok("0912100003", &P1),
        Sub {
            id_number: Some("001090999999"),
            ..ok("0912100004", &P1)
        },
        Sub {
            subscriber_type: Some("foreigner"),
            id_type: Some("PASSPORT"),
            ..ok("0912100005", &P1)
        },
        ok("0912100006", &P1),
        ok("0912100007", &P1),
    ];
    let v2 = vec![
        (Some(false), None),             // resolved, face not matched: NO_BIOMETRIC
        (None, None),                    // not checked, not asked: clean
        (Some(true), Some("denied")),    // the owner says it is not theirs
        (Some(false), Some(" Denied ")), // unresolved: OWNER_DENIED only
        (Some(false), Some("denied")),   // out of scope: nothing
        (Some(true), Some("maybe")),     // not a contract value: row reject
        (Some(true), Some("CONFIRMED")), // clean
    ];
    (subs, v2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_2_extracts_carry_biometrics_and_the_owners_answer() {
    let t = Tree::new();
    t.upload(
        "identity",
        "NATIONAL",
        D,
        &[("part-0.parquet", identity(&[P1]))],
    );
    let (subs, v2) = rows();
    t.upload(
        "subscribers",
        "VVV",
        D,
        &[("part-0.parquet", with_v2(&subs, &v2))],
    );
    version(&t, "VVV", 2.into());
    // Version 1 with columns of those names: extra columns, ignored.
    let renumbered: Vec<String> = (1..=subs.len()).map(|i| format!("0913100{i:03}")).collect();
    let old: Vec<Sub> = subs
        .iter()
        .zip(&renumbered)
        .map(|(s, m)| Sub {
            msisdn: Some(m.as_str()),
            ..s.clone()
        })
        .collect();
    let old_v2: Vec<(Option<bool>, Option<&str>)> =
        v2.iter().map(|_| (Some(false), Some("denied"))).collect();
    t.upload(
        "subscribers",
        "OLD",
        D,
        &[("part-0.parquet", with_v2(&old, &old_v2))],
    );
    let record = t.run(D).await.unwrap();
    assert!(
        record
            .ingest
            .decided
            .iter()
            .all(|d| d.decision.status == "accepted"),
        "{:?}",
        record.ingest.decided
    );
    let f = t.flags("subscribers", "VVV", D);
    let has = |k: &str, r: &str| f.get(k).is_some_and(|v| v.iter().any(|x| x == r));
    assert!(has("84912100001", "NO_BIOMETRIC"), "{f:?}");
    assert!(!f.contains_key("84912100002"), "{f:?}");
    assert!(has("84912100003", "OWNER_DENIED") && !has("84912100003", "NO_BIOMETRIC"));
    assert!(has("84912100004", "OWNER_DENIED") && has("84912100004", "ID_NOT_FOUND"));
    assert!(
        !has("84912100004", "NO_BIOMETRIC"),
        "unresolved rows are not checked for it"
    );
    assert!(!f.contains_key("84912100005"), "out of scope: {f:?}");
    assert!(
        !f.contains_key("84912100006"),
        "a row reject is not reported: {f:?}"
    );
    assert!(!f.contains_key("84912100007"), "{f:?}");
    let m = t.metrics("carriers", D);
    assert_eq!(m["VVV"]["flags_by_reason"]["NO_BIOMETRIC"], 1);
    assert_eq!(m["VVV"]["flags_by_reason"]["OWNER_DENIED"], 2);
    assert_eq!(m["VVV"]["rows_rejected"], 1);
    // Version 1: the same-named columns change nothing.
    assert_eq!(m["OLD"]["flags_by_reason"]["NO_BIOMETRIC"], 0);
    assert_eq!(m["OLD"]["flags_by_reason"]["OWNER_DENIED"], 0);
    let rejects = crate::common::read_parquet(
        &t.path()
            .join(format!("reports/rejects/date={D}/rejects.parquet")),
    );
    let text = arrow::util::pretty::pretty_format_batches(&rejects)
        .unwrap()
        .to_string();
    assert!(
        text.contains("owner_confirmation") && text.contains("INVALID_VALUE"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_is_the_json_integer_1_or_2_and_version_2_needs_both_columns() {
    let t = Tree::new();
    t.upload(
        "identity",
        "NATIONAL",
        D,
        &[("part-0.parquet", identity(&[P1]))],
    );
    let one = [Sub::ok("0912200001", &P1)];
    for (source, v) in [
        ("STR", serde_json::json!("2")),
        ("FLT", serde_json::json!(2.0)),
        ("BOO", serde_json::json!(true)),
        ("THR", serde_json::json!(3)),
        ("MIS", serde_json::json!(2)),
    ] {
        t.upload(
            "subscribers",
            source,
            D,
            &[("part-0.parquet", subscribers(&one))],
        );
        version(&t, source, v);
    }
    let record = t.run(D).await.unwrap();
    let reason = |s: &str| {
        record
            .ingest
            .decided
            .iter()
            .find(|d| d.key.source == s)
            .map(|d| (d.decision.status.to_string(), d.decision.reason.clone()))
            .unwrap()
    };
    for s in ["STR", "FLT", "BOO", "THR"] {
        let (status, why) = reason(s);
        assert_eq!(status, "rejected", "{s}");
        assert!(
            why.contains("schema_version") || why.contains("invalid type"),
            "{s}: {why}"
        );
    }
    let (status, why) = reason("MIS");
    assert_eq!(status, "rejected");
    assert!(why.contains("missing column biometric_verified"), "{why}");
}

#[tokio::test]
async fn check_says_which_version_a_file_is() {
    let dir = tempfile::tempdir().unwrap();
    let (subs, v2) = rows();
    let p2 = dir.path().join("v2.parquet");
    std::fs::write(&p2, crate::common::parquet_bytes(&with_v2(&subs, &v2))).unwrap();
    let p1 = dir.path().join("v1.parquet");
    std::fs::write(&p1, crate::common::parquet_bytes(&subscribers(&subs))).unwrap();
    let sub = junkrecon::schema::Extract::Subscribers;
    let c2 = junkrecon::ingest::check_local(&p2, sub).await.unwrap();
    assert_eq!(c2.schema_version, 2);
    assert_eq!(c2.upload_rejected, None);
    assert_eq!(c2.row_rejects.len(), 1, "{:?}", c2.row_rejects);
    assert_eq!(c2.row_rejects[0].2, "owner_confirmation");
    let c1 = junkrecon::ingest::check_local(&p1, sub).await.unwrap();
    assert_eq!(c1.schema_version, 1);
    assert!(c1.row_rejects.is_empty());
}
