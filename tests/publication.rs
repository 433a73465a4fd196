//! Atomic publication: a publisher that dies between objects leaves the
//! previous publication fully readable, and the next run completes the night.
//! Also: no run modifies or deletes anything under `landing/`.

use crate::common::night;
use std::sync::Arc;

use crate::common::flaky::Flaky;
use crate::common::Tree;
use junkrecon::store::Root;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_killed_between_objects_leaves_previous_publication_whole() {
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    t.run("2026-11-21").await.unwrap();
    let published = t.hashes("reports");
    let marker = std::fs::read(t.path().join("metrics/date=2026-11-21/_PUBLISHED.json")).unwrap();
    // Change night 2's input (a correction), so a re-publication differs.
    let m = t.manifest("subscribers", "VIETTEL", "2026-11-21");
    let mut files = m["files"].as_array().unwrap().clone();
    files.truncate(1);
    let mut m2 = m.clone();
    m2["files"] = files.into();
    t.set_manifest("subscribers", "VIETTEL", "2026-11-21", &m2);

    // The correction halves VIETTEL's extract: the volume guard would hold
    // it (§8); this test is about publication, so it lets it through.
    let mut cfg = junkrecon::config::Config::default();
    cfg.guard.max_shrink_pct = 100.0;
    let local = t.root().store();
    for budget in [0, 3, 25] {
        for prefix in ["publications/", "reports/", "metrics/"] {
            let dying = Arc::new(Flaky::dies_after(local.clone(), prefix, budget));
            let root = Root::from_store(dying, "dying");
            let err = junkrecon::run::run(&root, night("2026-11-21"), &cfg).await;
            if err.is_ok() {
                continue; // budget large enough for this prefix: nothing died
            }
            // Readers of the contract paths see either the old night whole or "not published".
            let now = std::fs::read(t.path().join("metrics/date=2026-11-21/_PUBLISHED.json")).ok();
            if let Some(now) = &now {
                let p: junkrecon::publish::Published = serde_json::from_slice(now).unwrap();
                let on_disk = t.hashes("reports");
                for f in p.files.iter().filter(|f| f.path.starts_with("reports/")) {
                    assert_eq!(
                        on_disk.get(&f.path),
                        Some(&f.sha256),
                        "marker names {} with another content",
                        f.path
                    );
                }
            }
            // Night 1 is never touched by a night-2 run.
            assert!(t
                .path()
                .join("metrics/date=2026-11-20/_PUBLISHED.json")
                .exists());
        }
    }
    // A normal re-run completes the night, with the corrected input.
    t.run_with("2026-11-21", &cfg).await.unwrap();
    let after = std::fs::read(t.path().join("metrics/date=2026-11-21/_PUBLISHED.json")).unwrap();
    assert_ne!(after, marker);
    let p: junkrecon::publish::Published = serde_json::from_slice(&after).unwrap();
    let on_disk = t.hashes("reports");
    for f in p.files.iter().filter(|f| f.path.starts_with("reports/")) {
        assert_eq!(on_disk.get(&f.path), Some(&f.sha256), "{}", f.path);
    }
    assert_ne!(t.hashes("reports"), published);
    // Only the committed run's staging is kept.
    let keep = format!("publications/date=2026-11-21/run={}/", p.run_id);
    let left: Vec<String> = t
        .hashes("publications/date=2026-11-21")
        .into_keys()
        .collect();
    assert!(
        left.iter()
            .all(|k| k.starts_with(&keep) || k.ends_with("CURRENT.json")),
        "{left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_night_is_completed_by_the_next_run() {
    let t = Tree::sample();
    t.run("2026-11-20").await.unwrap();
    let good = t.hashes("reports");
    // Die while mirroring to the contract paths: the pointer is already swung.
    // (`--recompute`: nothing changed, so a plain re-run would keep night 1.)
    let dying = Arc::new(Flaky::dies_after(t.root().store(), "reports/", 2));
    let root = Root::from_store(dying, "dying");
    assert!(
        crate::common::run_recomputing(&root, "2026-11-20", &Default::default())
            .await
            .is_err()
    );
    assert!(
        !t.path()
            .join("metrics/date=2026-11-20/_PUBLISHED.json")
            .exists(),
        "a half-mirrored night is not published"
    );
    // The next run (for any date) completes it first.
    t.run("2026-11-21").await.unwrap();
    assert!(t
        .path()
        .join("metrics/date=2026-11-20/_PUBLISHED.json")
        .exists());
    let now = t.hashes("reports");
    // Night 1's files are whole again (the newest-night page now shows night 2).
    for (k, v) in good.iter().filter(|(k, _)| k.contains("date=2026-11-20")) {
        assert_eq!(now.get(k), Some(v), "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_work_folder_of_a_stopped_run_is_removed_by_the_next_run() {
    let t = Tree::sample();
    // A run killed mid-night leaves its intermediate tables behind.
    let dead = t
        .path()
        .join("work/2026-11-20_20261129T000000Z_dead/resolved/person_bucket=1");
    std::fs::create_dir_all(&dead).unwrap();
    std::fs::write(dead.join("part-0.parquet"), b"left behind").unwrap();
    let record = t.run("2026-11-20").await.unwrap();
    assert!(record.published_files > 0);
    assert!(
        !t.path()
            .join("work/2026-11-20_20261129T000000Z_dead")
            .exists(),
        "stale work removed"
    );
    // The run removes its own folder at the end, as before: nothing is left.
    let left: Vec<_> = std::fs::read_dir(t.path().join("work"))
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}
