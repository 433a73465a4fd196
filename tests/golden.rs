//! The contract's sample: every flag and every metric of both nights equals
//! `expected.json`, and the rejected uploads are the ones it names.

use crate::common::{sample_dir, Tree};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_matches_expected_for_both_dates() {
    let expected: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sample_dir().join("expected.json")).unwrap())
            .unwrap();
    let tree = Tree::sample();
    let landing_before = tree.hashes("landing");
    let mut dates: Vec<&String> = expected.as_object().unwrap().keys().collect();
    dates.sort();
    assert_eq!(dates.len(), 2);
    for date in dates {
        let record = tree.run(date).await.unwrap();
        let exp = &expected[date];
        for (extract, kind) in [("subscribers", "carriers"), ("accounts", "banks")] {
            let sources = exp[extract].as_object().unwrap();
            for (source, flags) in sources {
                let got = tree.flags(extract, source, date);
                let want: std::collections::BTreeMap<String, Vec<String>> =
                    serde_json::from_value(flags.clone()).unwrap();
                assert_eq!(got, want, "{date} {extract} {source}");
            }
            let got = tree.metrics(kind, date);
            let want = exp["metrics"][kind].as_array().unwrap();
            assert_eq!(got.len(), want.len(), "{date} {kind}: sources");
            for m in want {
                let source = m["source"].as_str().unwrap();
                assert_eq!(&got[source], m, "{date} {kind} {source}");
            }
        }
        // Every rejection the sample names is recorded with its specific reason.
        let ledger_reasons: Vec<(String, String, String, String)> = ["subscribers", "accounts"]
            .iter()
            .flat_map(|e| {
                let dir = tree.path().join("catalog/uploads").join(e);
                let mut v = vec![];
                if dir.exists() {
                    crate::common::walk(&dir, &mut |p| {
                        let l: serde_json::Value =
                            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
                        let last = l["decisions"].as_array().unwrap().last().unwrap().clone();
                        if last["status"] == "rejected" {
                            v.push((
                                l["extract"].as_str().unwrap().to_string(),
                                l["source"].as_str().unwrap().to_string(),
                                l["as_of"].as_str().unwrap().to_string(),
                                last["reason"].as_str().unwrap().to_string(),
                            ));
                        }
                    });
                }
                v
            })
            .collect();
        let want = exp["rejected"].as_array().unwrap();
        assert_eq!(ledger_reasons.len(), want.len(), "{ledger_reasons:?}");
        for w in want {
            let (e, s, d, why) = (
                w[0].as_str().unwrap(),
                w[1].as_str().unwrap(),
                w[2].as_str().unwrap(),
                w[3].as_str().unwrap(),
            );
            let got = ledger_reasons
                .iter()
                .find(|r| r.0 == e && r.1 == s && r.2 == d)
                .unwrap_or_else(|| panic!("no rejection recorded for {e}/{s}/{d}"));
            for word in why.split(' ') {
                assert!(
                    got.3.contains(word),
                    "reason {:?} should mention {word:?}",
                    got.3
                );
            }
        }
        assert_eq!(record.status, "succeeded");
    }
    assert_eq!(
        tree.hashes("landing"),
        landing_before,
        "landing/ must never change"
    );
}
