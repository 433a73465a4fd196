//! Store faults, crashes and stalls on the commit path: a night is never
//! published over an upload the store failed to read, a holder that lost its
//! lease commits nothing, a failed re-publication leaves the previous night
//! published, no state the store can reach stops later nights, and no stray
//! file survives the next run.

use crate::common::night;
use std::sync::Arc;
use std::time::Duration;

use junkrecon::lease::{Acquire, Lease};
use junkrecon::run::RunMeta;
use junkrecon::store::Root;

use crate::common::flaky::Flaky;
use crate::common::Tree;

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";

/// The sample with VIETTEL's night-2 upload held back until night 1 ran
/// (ingest decides every complete upload it finds, whatever its date).
async fn night_one_without_viettel_d2() -> Tree {
    let t = Tree::sample();
    let d2 = t.path().join(Tree::folder("subscribers", "VIETTEL", D2));
    let aside = t.path().join("aside");
    std::fs::rename(&d2, &aside).unwrap();
    t.run(D1).await.unwrap();
    std::fs::rename(&aside, &d2).unwrap();
    t
}

/// The publication invariant: the marker's every file exists with its sha256.
pub fn assert_marker_agrees(t: &Tree, date: &str) {
    let p = t
        .path()
        .join(format!("metrics/date={date}/_PUBLISHED.json"));
    let Ok(bytes) = std::fs::read(&p) else {
        return;
    };
    let published: junkrecon::publish::Published = serde_json::from_slice(&bytes).unwrap();
    let on_disk: std::collections::BTreeMap<String, String> = ["reports", "metrics"]
        .iter()
        .flat_map(|s| t.hashes(s))
        .collect();
    for f in &published.files {
        assert_eq!(on_disk.get(&f.path), Some(&f.sha256), "{date}: {}", f.path);
    }
}

/// No `name#N` leftover of an interrupted local write outside `landing/`.
pub fn assert_no_strays(t: &Tree) {
    let mut strays = vec![];
    for sub in [
        "catalog",
        "curated",
        "metrics",
        "publications",
        "reports",
        "runs",
        "work",
    ] {
        let dir = t.path().join(sub);
        if dir.exists() {
            crate::common::walk(&dir, &mut |p| {
                let name = p.file_name().unwrap().to_string_lossy();
                if name
                    .rsplit_once('#')
                    .is_some_and(|(_, n)| n.bytes().all(|b| b.is_ascii_digit()))
                {
                    strays.push(p.display().to_string());
                }
            });
        }
    }
    assert!(strays.is_empty(), "{strays:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_while_reading_an_upload_fails_the_night_instead_of_publishing_it_stale() {
    let t = night_one_without_viettel_d2().await;
    let night1 = t.hashes("reports");
    let file = format!("{}/", Tree::folder("subscribers", "VIETTEL", D2));
    // Manifests read fine; the upload's data files fail twice, then the store is back.
    let flaky = Arc::new(Flaky::reads_fail_first(
        t.root().store(),
        &format!("{file}part"),
        2,
    ));
    let root = Root::from_store(flaky.clone(), "flaky");
    let err = junkrecon::run::run(&root, night(D2), &Default::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("not published") && err.contains("subscribers/VIETTEL/2026-11-21"),
        "{err}"
    );
    assert!(!t
        .path()
        .join(format!("metrics/date={D2}/_PUBLISHED.json"))
        .exists());
    assert_eq!(
        t.hashes("reports"),
        night1,
        "nothing published over the undecided upload"
    );
    // It is visible while pending: the ledger and `status` show the attempts and the error.
    let status = junkrecon::run::status_text(&t.root(), None).await.unwrap();
    let line = status
        .lines()
        .find(|l| l.contains("VIETTEL") && l.contains(D2))
        .unwrap();
    assert!(
        line.contains("pending (attempt 1 of 5)") && line.contains("injected"),
        "{line}"
    );
    // The next attempt fails once more, the one after reads it and publishes.
    assert!(junkrecon::run::run(&root, night(D2), &Default::default())
        .await
        .is_err());
    let record = junkrecon::run::run(&root, night(D2), &Default::default())
        .await
        .unwrap();
    assert!(record
        .ingest
        .decided
        .iter()
        .any(|d| d.key.source == "VIETTEL" && d.decision.status == "accepted"));
    let clean = Tree::sample();
    clean.run(D1).await.unwrap();
    clean.run(D2).await.unwrap();
    assert_eq!(t.hashes("reports").len(), clean.hashes("reports").len());
    for (k, v) in clean
        .hashes("reports")
        .iter()
        .filter(|(k, _)| !k.contains("dashboard"))
    {
        assert_eq!(t.hashes("reports").get(k), Some(v), "{k}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_keeps_failing_is_rejected_after_the_last_attempt() {
    let t = night_one_without_viettel_d2().await;
    let file = format!("{}/part", Tree::folder("subscribers", "VIETTEL", D2));
    let flaky = Arc::new(Flaky::reads_fail_first(t.root().store(), &file, usize::MAX));
    let root = Root::from_store(flaky, "flaky");
    for _ in 1..junkrecon::catalog::MAX_ATTEMPTS {
        assert!(junkrecon::run::run(&root, night(D2), &Default::default())
            .await
            .is_err());
    }
    let record = junkrecon::run::run(&root, night(D2), &Default::default())
        .await
        .unwrap();
    let d = record
        .ingest
        .decided
        .iter()
        .find(|d| d.key.source == "VIETTEL")
        .unwrap();
    assert_eq!(d.decision.status, "rejected");
    assert!(
        d.decision
            .reason
            .contains("could not be read in 5 attempts"),
        "{}",
        d.decision.reason
    );
    assert_eq!(t.metrics("carriers", D2)["VIETTEL"]["extract_as_of"], D1);
}

async fn take(root: &Root, who: &str, ttl: Duration) -> Lease {
    match Lease::try_acquire(root, who, "nightly", ttl).await.unwrap() {
        Acquire::Taken(l) => l,
        Acquire::Busy(h) => panic!("busy: {}", h.describe()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_holder_resumed_after_a_takeover_commits_nothing() {
    let t = Tree::sample();
    let root = t.root();
    t.run(D1).await.unwrap();
    let ttl = Duration::from_millis(900);
    // A takes the lease and stalls (no renewals) past its lifetime.
    let a = take(&root, "a", ttl).await;
    a.stop_renewing();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    // B takes over and publishes the night.
    let b = take(&root, "b", Duration::from_secs(60)).await;
    let published = junkrecon::run::run_as(
        &root,
        night(D2),
        &Default::default(),
        &RunMeta::manual(night(D2)),
        &b.fence(),
    )
    .await
    .unwrap();
    b.release().await.unwrap();
    let marker =
        std::fs::read(t.path().join(format!("metrics/date={D2}/_PUBLISHED.json"))).unwrap();
    let reports = t.hashes("reports");
    // A resumes: its run must stop before it moves anything.
    let err = junkrecon::run::run_as(
        &root,
        night(D2),
        &Default::default(),
        &RunMeta::manual(night(D2)),
        &a.fence(),
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("lease"), "{err}");
    assert_eq!(
        std::fs::read(t.path().join(format!("metrics/date={D2}/_PUBLISHED.json"))).unwrap(),
        marker
    );
    assert_eq!(t.hashes("reports"), reports);
    let current = junkrecon::publish::read_current(&root, night(D2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(current.run_id, published.run_id);
    // Later nights still run.
    t.run("2026-11-22").await.unwrap();
    assert_marker_agrees(&t, D2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_to_a_vanished_publication_does_not_stop_later_nights() {
    let t = Tree::sample();
    t.run(D1).await.unwrap();
    let p = junkrecon::publish::read_current(&t.root(), night(D1))
        .await
        .unwrap()
        .unwrap();
    std::fs::remove_dir_all(
        t.path()
            .join(format!("publications/date={D1}/run={}", p.run_id)),
    )
    .unwrap();
    t.run(D2).await.expect("a later night runs");
    t.run(D1).await.expect("the night itself can be run again");
    assert_marker_agrees(&t, D1);
    assert_marker_agrees(&t, D2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_re_publication_leaves_the_previous_night_published() {
    let t = Tree::sample();
    t.run(D1).await.unwrap();
    let marker =
        std::fs::read(t.path().join(format!("metrics/date={D1}/_PUBLISHED.json"))).unwrap();
    let before = t.hashes("reports");
    // A correction arrives; re-publishing fails part-way through the contract's paths.
    let m = t.manifest("subscribers", "VIETTEL", D1);
    let mut m2 = m.clone();
    let mut files = m["files"].as_array().unwrap().clone();
    files.truncate(1);
    m2["files"] = files.into();
    t.set_manifest("subscribers", "VIETTEL", D1, &m2);
    // reports/ unwritable, or failing for a moment: the previous night stays
    // published, byte for byte.
    let local = t.root().store();
    let faults: [(&str, Flaky); 2] = [
        (
            "unwritable",
            Flaky::dies_after(local.clone(), "reports/", 0),
        ),
        ("blip", Flaky::fails_first(local.clone(), "reports/", 1)),
    ];
    for (what, flaky) in faults {
        let root = Root::from_store(Arc::new(flaky), what);
        assert!(junkrecon::run::run(&root, night(D1), &Default::default())
            .await
            .is_err());
        let now = std::fs::read(t.path().join(format!("metrics/date={D1}/_PUBLISHED.json")))
            .unwrap_or_else(|_| panic!("{what}: the previous night stays published"));
        assert_eq!(now, marker, "{what}");
        assert_marker_agrees(&t, D1);
        assert_eq!(t.hashes("reports"), before, "{what}");
    }
    // A store that dies part-way and stays dead cannot be restored through:
    // the night is then not published, never published with files that disagree.
    for budget in [1, 3] {
        let root = Root::from_store(
            Arc::new(Flaky::dies_after(local.clone(), "reports/", budget)),
            "dying",
        );
        assert!(junkrecon::run::run(&root, night(D1), &Default::default())
            .await
            .is_err());
        assert_marker_agrees(&t, D1);
    }
    t.run(D1).await.unwrap();
    assert_ne!(
        std::fs::read(t.path().join(format!("metrics/date={D1}/_PUBLISHED.json"))).unwrap(),
        marker
    );
    assert_marker_agrees(&t, D1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leftovers_of_interrupted_writes_are_removed_by_the_next_run() {
    let t = Tree::sample();
    t.run(D1).await.unwrap();
    let p = junkrecon::publish::read_current(&t.root(), night(D1))
        .await
        .unwrap()
        .unwrap();
    for stray in [
        format!("reports/subscribers/carrier=VIETTEL/date={D1}/flags.csv#0"),
        format!("metrics/date={D1}/_PUBLISHED.json#3"),
        format!(
            "publications/date={D1}/run={}/reports/x.parquet#1",
            p.run_id
        ),
        "work/dead-run/resolved/part-0.parquet#1".to_string(),
        "catalog/uploads/subscribers/VIETTEL/2026-11-20.json#12".to_string(),
    ] {
        let path = t.path().join(&stray);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"half written").unwrap();
    }
    // A sender's own file with a `#` in landing/ is never touched.
    let own = t.path().join(format!(
        "{}/notes#1",
        Tree::folder("subscribers", "VIETTEL", D1)
    ));
    std::fs::write(&own, b"sender's").unwrap();
    t.run(D2).await.unwrap();
    assert_no_strays(&t);
    assert!(own.exists());
}
