//! Re-running a date gives byte-identical reports and the same metrics.

use crate::common::Tree;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerun_is_byte_identical() {
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    t.run("2026-11-21").await.unwrap();
    let published = |t: &Tree| {
        let mut h = t.hashes("reports");
        h.extend(
            t.hashes("metrics")
                .into_iter()
                .filter(|(k, _)| !k.ends_with("_PUBLISHED.json")),
        );
        h
    };
    let first = published(&t);
    assert!(first.len() > 30);
    // Re-run the later night, then the earlier one: nothing changes.
    t.run("2026-11-21").await.unwrap();
    t.run("2026-11-20").await.unwrap();
    assert_eq!(published(&t), first);
    // The commit marker lists every file with the sha256 of what is on disk.
    let marker: junkrecon::publish::Published = serde_json::from_slice(
        &std::fs::read(t.path().join("metrics/date=2026-11-21/_PUBLISHED.json")).unwrap(),
    )
    .unwrap();
    for f in &marker.files {
        assert_eq!(first[&f.path], f.sha256, "{}", f.path);
    }
    assert_eq!(
        marker.files.len(),
        first.keys().filter(|k| k.contains("2026-11-21")).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_run_ingests_nothing_again() {
    let t = Tree::sample();
    let first = t.run("2026-11-20").await.unwrap();
    assert_eq!(first.ingest.decided.len(), 19);
    let again = t.run("2026-11-21").await.unwrap();
    assert!(again.ingest.decided.is_empty());
    assert_eq!(again.ingest.already_decided, 19);
    assert_eq!(
        again.ingest.in_progress,
        vec!["landing/subscribers/carrier=VIETNAMOBILE/date=2026-11-21/".to_string()]
    );
}
