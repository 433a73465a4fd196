//! `kill -9` at random points of night 1, night 2 and a re-run with a
//! corrected upload, with a reader polling the contract's paths all along.
//! After every kill the publication invariant holds (wherever
//! `_PUBLISHED.json` exists, every file it lists exists with that sha256);
//! after each night is finally run to the end, its outputs equal a clean
//! run's and no stray file remains; the reader never accepts a marker whose
//! files disagree with it.

use crate::common::night as date;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};

use crate::common::Tree;
use crate::faults::{assert_marker_agrees, assert_no_strays};

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";

/// The settings of these tests: the correction below drops half of
/// VIETTEL's rows, which the volume guard (§8) would hold; these tests are
/// about crashes, so the guard lets every shrink through.
const SETTINGS: &str = "[guard]\nmax_shrink_pct = 100\n";

fn settings() -> junkrecon::config::Config {
    junkrecon::config::Config::from_toml(SETTINGS).unwrap()
}

/// A config whose lease lapses 3 s (the shortest allowed) after its holder was killed.
fn config(dir: &Path) -> String {
    let p = dir.join("junkrecon.toml");
    if !p.exists() {
        std::fs::write(&p, format!("{SETTINGS}[serve]\nlease_secs = 3\n")).unwrap();
    }
    p.to_str().unwrap().to_string()
}

/// `junkrecon run` for `date`, waiting up to `wait` seconds for the lease.
fn night(dir: &Path, date: &str, wait: &str) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_junkrecon"));
    c.args(["run", "--data", dir.to_str().unwrap(), "--as-of", date])
        .args(["--wait", wait, "--config", &config(dir)]);
    c
}

fn start(dir: &Path, date: &str) -> std::process::Child {
    night(dir, date, "10")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn run_to_end(dir: &Path, date: &str) {
    let out = night(dir, date, "30").output().unwrap();
    assert!(
        out.status.success(),
        "{date}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The outputs that carry data: reports and carriers/banks metrics (the
/// marker, `sources.json` and the dashboards carry times of decision).
fn data_outputs(t: &Tree) -> BTreeMap<String, String> {
    let mut h = t.hashes("reports");
    h.extend(t.hashes("metrics"));
    h.retain(|k, _| {
        !k.ends_with("_PUBLISHED.json") && !k.ends_with("sources.json") && !k.contains("dashboard")
    });
    h
}

/// The correction re-sent for night 2: VIETTEL drops one of its files.
fn correct(t: &Tree) {
    let mut m = t.manifest("subscribers", "VIETTEL", D2);
    let mut files = m["files"].as_array().unwrap().clone();
    files.truncate(1);
    m["files"] = files.into();
    t.set_manifest("subscribers", "VIETTEL", D2, &m);
}

/// A careful reader: reads the marker, the files it lists, then the marker
/// again; it accepts only a marker that did not change meanwhile. Counts
/// the accepted markers whose files disagreed with it (must stay 0).
fn reader(
    dir: PathBuf,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    wrong: Arc<AtomicUsize>,
) {
    while !stop.load(Ordering::SeqCst) {
        for date in [D1, D2] {
            let marker = dir.join(format!("metrics/date={date}/_PUBLISHED.json"));
            let Ok(first) = std::fs::read(&marker) else {
                continue;
            };
            let Ok(p) = serde_json::from_slice::<junkrecon::publish::Published>(&first) else {
                wrong.fetch_add(1, Ordering::SeqCst); // a marker is written whole or not at all
                continue;
            };
            let agree = p.files.iter().all(|f| {
                std::fs::read(dir.join(&f.path))
                    .is_ok_and(|b| hex::encode(Sha256::digest(b)) == f.sha256)
            });
            if std::fs::read(&marker).ok().as_deref() == Some(first.as_slice()) {
                accepted.fetch_add(1, Ordering::SeqCst);
                if !agree {
                    wrong.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn kill_9_at_random_points_never_breaks_a_publication() {
    let seed: u64 = std::env::var("JUNKRECON_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261202);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let kills_per_night: usize = std::env::var("JUNKRECON_KILLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(11);

    // The clean runs the killed ones must end up equal to.
    let clean = Tree::sample();
    run_to_end(clean.path(), D1);
    let clean_d1 = data_outputs(&clean);
    run_to_end(clean.path(), D2);
    let clean_d2 = data_outputs(&clean);
    correct(&clean);
    let t0 = Instant::now();
    run_to_end(clean.path(), D2);
    let one_run = t0.elapsed();
    eprintln!("one run of the binary: {one_run:?}");
    let clean_fix = data_outputs(&clean);

    let t = Tree::sample();
    let (stop, accepted, wrong) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let poller = {
        let (dir, stop, accepted, wrong) = (
            t.path().to_path_buf(),
            stop.clone(),
            accepted.clone(),
            wrong.clone(),
        );
        std::thread::spawn(move || reader(dir, stop, accepted, wrong))
    };
    let mut kills = 0;
    for (date, fix, want) in [
        (D1, false, &clean_d1),
        (D2, false, &clean_d2),
        (D2, true, &clean_fix),
    ] {
        if fix {
            correct(&t);
        }
        for _ in 0..kills_per_night {
            let mut child = start(t.path(), date);
            let at = rng.gen_range(0..one_run.as_millis() as u64 + 200);
            std::thread::sleep(Duration::from_millis(at));
            let _ = child.kill(); // SIGKILL
            let _ = child.wait();
            kills += 1;
            // Its lease lapses after lease_secs; the next run starts at once after.
            std::thread::sleep(Duration::from_millis(3100));
            // Right after the crash: the invariant holds for every night.
            assert_marker_agrees(&t, D1);
            assert_marker_agrees(&t, D2);
        }
        // The lease of a killed holder lapses (lease_secs), then the night completes.
        run_to_end(t.path(), date);
        assert_eq!(
            &data_outputs(&t),
            want,
            "{date} (correction: {fix}) differs from a clean run"
        );
        assert_marker_agrees(&t, D1);
        assert_marker_agrees(&t, D2);
        assert_no_strays(&t);
    }
    stop.store(true, Ordering::SeqCst);
    poller.join().unwrap();
    eprintln!(
        "seed {seed}: {kills} kills, reader accepted {} markers, {} disagreed",
        accepted.load(Ordering::SeqCst),
        wrong.load(Ordering::SeqCst)
    );
    assert!(kills >= 30);
    assert!(accepted.load(Ordering::SeqCst) > 0);
    assert_eq!(
        wrong.load(Ordering::SeqCst),
        0,
        "the reader accepted a marker whose files disagree"
    );
}

/// A crash injected at every change the commit path makes (each put, copy,
/// hard link and delete under `publications/`, `reports/` and `metrics/`,
/// and the ledger and run records around them), in a re-publication of
/// night 2 over a published night 2: after each, the invariant holds for
/// both nights, and the next run publishes exactly what a clean run does,
/// with no stray file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_at_any_step_of_the_commit_path_is_recovered_exactly() {
    use crate::common::flaky::Dying;
    use junkrecon::store::Root;
    const PATH: [&str; 5] = ["catalog/", "publications/", "reports/", "metrics/", "runs/"];
    // Night 1 and night 2 published, then a correction of night 2 arrives.
    let before = Tree::sample();
    before.run_with(D1, &settings()).await.unwrap();
    before.run_with(D2, &settings()).await.unwrap();
    correct(&before);
    let old_d2 = data_outputs(&before);
    // The clean re-publication, counting its steps.
    let clean = Tree::new();
    crate::common::copy_dir(before.path(), clean.path());
    let counting = Dying::new(clean.root().store(), &PATH, usize::MAX);
    let steps = counting.changes.clone();
    let root = Root::from_store(Arc::new(counting), "counting");
    junkrecon::run::run(&root, date(D2), &settings())
        .await
        .unwrap();
    let steps = steps.load(Ordering::SeqCst);
    let want = data_outputs(&clean);
    assert_ne!(want, old_d2, "the correction changes night 2");
    eprintln!("commit path of a re-publication: {steps} steps");
    assert!(steps > 20, "{steps}");
    for at in 0..steps {
        let t = Tree::new();
        crate::common::copy_dir(before.path(), t.path());
        let dying = Root::from_store(Arc::new(Dying::new(t.root().store(), &PATH, at)), "dying");
        let died = junkrecon::run::run(&dying, date(D2), &settings()).await;
        assert!(died.is_err(), "step {at}: the crash was injected");
        assert_marker_agrees(&t, D1);
        assert_marker_agrees(&t, D2);
        t.run_with(D2, &settings())
            .await
            .unwrap_or_else(|e| panic!("step {at}: the next run fails: {e}"));
        assert_eq!(data_outputs(&t), want, "step {at}");
        assert_marker_agrees(&t, D1);
        assert_marker_agrees(&t, D2);
        assert_no_strays(&t);
    }
}
