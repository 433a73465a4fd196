//! The contract's sample: every flag and every metric of both nights equals
//! `expected.json`, and the rejected uploads are the ones it names.

use std::collections::BTreeMap;

use crate::common::{sample_dir, walk, Tree};

fn expected() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(sample_dir().join("expected.json")).unwrap()).unwrap()
}

/// Every flag and metric of every night of the sample, read from `tree`'s reports.
pub fn assert_matches_expected(tree: &Tree) {
    for (date, exp) in expected().as_object().unwrap() {
        assert_night(tree, date, exp);
    }
}

fn assert_night(tree: &Tree, date: &str, exp: &serde_json::Value) {
    for (extract, kind) in [("subscribers", "carriers"), ("accounts", "banks")] {
        for (source, flags) in exp[extract].as_object().unwrap() {
            let want: BTreeMap<String, Vec<String>> =
                serde_json::from_value(flags.clone()).unwrap();
            assert_eq!(
                tree.flags(extract, source, date),
                want,
                "{date} {extract} {source}"
            );
        }
        let got = tree.metrics(kind, date);
        let want = exp["metrics"][kind].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{date} {kind}: sources");
        for m in want {
            let source = m["source"].as_str().unwrap();
            let mut m = m.clone();
            if kind == "carriers" {
                // Contract v2 §7: carriers' flags_by_reason gains two keys,
                // always present; the sample is of version 1, so both are 0.
                for code in ["NO_BIOMETRIC", "OWNER_DENIED"] {
                    m["flags_by_reason"][code] = 0.into();
                }
            }
            // Contract v2 §8–§10 add fields the version-1 sample does not
            // name; they are present, and the rest equals the sample's.
            let mut got = got[source].clone();
            for k in [
                "gone",
                "required_action",
                "overdue",
                "compliance_pct",
                "held_as_of",
            ] {
                assert!(
                    got.as_object_mut().unwrap().remove(k).is_some(),
                    "{date} {kind} {source}: no {k}"
                );
            }
            assert_eq!(got, m, "{date} {kind} {source}");
        }
    }
}

/// The latest decision of every rejected landing folder: (extract, source, as_of, reason).
fn rejections(tree: &Tree) -> Vec<(String, String, String, String)> {
    let mut v = vec![];
    for e in ["identity", "subscribers", "accounts"] {
        let dir = tree.path().join("catalog/uploads").join(e);
        if !dir.exists() {
            continue;
        }
        walk(&dir, &mut |p| {
            let l: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            let last = l["decisions"].as_array().unwrap().last().unwrap().clone();
            if last["status"] == "rejected" {
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                v.push((
                    s("extract"),
                    s("source"),
                    s("as_of"),
                    last["reason"].as_str().unwrap().to_string(),
                ));
            }
        });
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_matches_expected_for_both_dates() {
    let expected = expected();
    let tree = Tree::sample();
    let landing_before = tree.hashes("landing");
    let mut dates: Vec<&String> = expected.as_object().unwrap().keys().collect();
    dates.sort();
    assert_eq!(dates.len(), 2);
    for date in dates {
        let record = tree.run(date).await.unwrap();
        assert_eq!(record.status, "succeeded");
        let exp = &expected[date];
        assert_night(&tree, date, exp);
        // Every rejection the sample names is recorded with its specific reason.
        let got = rejections(&tree);
        let want = exp["rejected"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{got:?}");
        for w in want {
            let w: Vec<&str> = w
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            let r = got
                .iter()
                .find(|r| r.0 == w[0] && r.1 == w[1] && r.2 == w[2])
                .unwrap_or_else(|| panic!("no rejection recorded for {w:?}"));
            for word in w[3].split(' ') {
                assert!(
                    r.3.contains(word),
                    "reason {:?} should mention {word:?}",
                    r.3
                );
            }
        }
    }
    assert_eq!(
        tree.hashes("landing"),
        landing_before,
        "landing/ must never change"
    );
}

/// The codecs of the curated files (data and rejects) under a local tree.
fn curated_codecs(tree: &Tree) -> std::collections::BTreeSet<String> {
    let mut codecs = std::collections::BTreeSet::new();
    walk(&tree.path().join("curated"), &mut |p| {
        if p.extension().is_some_and(|e| e == "parquet") {
            let file = bytes::Bytes::from(std::fs::read(p).unwrap());
            codecs.extend(crate::common::parquet_codecs(file));
        }
    });
    codecs
}

/// Reports and metrics, without the publication markers (which name the
/// run) and sources.json (which holds when each upload was decided).
fn outputs(tree: &Tree) -> BTreeMap<String, String> {
    let mut h = tree.hashes("reports");
    h.extend(tree.hashes("metrics"));
    h.retain(|k, _| !k.contains("_PUBLISHED") && !k.ends_with("sources.json"));
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curated_compression_is_uncompressed_on_a_local_root_and_never_changes_an_output() {
    use junkrecon::config::{Config, CuratedCompression};
    let mut seen = vec![];
    for (setting, codec) in [
        (CuratedCompression::Auto, "UNCOMPRESSED"),
        (CuratedCompression::Snappy, "SNAPPY"),
        (CuratedCompression::Zstd, "ZSTD(ZstdLevel(1))"),
    ] {
        let tree = Tree::sample();
        let cfg = Config {
            curated_compression: setting,
            ..Config::default()
        };
        for date in ["2026-11-20", "2026-11-21"] {
            tree.run_with(date, &cfg).await.unwrap();
        }
        let want = std::collections::BTreeSet::from([codec.to_string()]);
        assert_eq!(curated_codecs(&tree), want, "{setting:?}");
        assert_matches_expected(&tree);
        seen.push(outputs(&tree));
    }
    assert!(!seen[0].is_empty());
    for o in &seen[1..] {
        let differ: Vec<&String> = o.keys().filter(|k| o.get(*k) != seen[0].get(*k)).collect();
        assert!(
            differ.is_empty() && o.len() == seen[0].len(),
            "outputs differ by codec: {differ:?}"
        );
    }
}
