//! The night on Apache Ballista (issue 16): the same reports and metrics,
//! byte for byte, as the local engine. In-process: a standalone Ballista
//! (scheduler and executor inside the test) on the contract's sample.

use std::collections::BTreeMap;

use junkrecon::config::{Config, Engine};

use crate::common::Tree;
use crate::golden::assert_matches_expected;

/// Every published report and metrics file of a tree, by path, but the
/// publication markers (they name the run and its time).
fn outputs(t: &Tree) -> BTreeMap<String, String> {
    let mut h = t.hashes("reports");
    h.extend(t.hashes("metrics"));
    h.retain(|path, _| !path.ends_with("_PUBLISHED.json"));
    // sources.json says when each rejected upload was decided: ingest's
    // clock, not the engine's work.
    for (path, hash) in h.iter_mut().filter(|(p, _)| p.ends_with("sources.json")) {
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(t.path().join(path)).unwrap()).unwrap();
        without_decision_times(&mut v);
        *hash = v.to_string();
    }
    h
}

fn without_decision_times(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.remove("decided_at");
            m.values_mut().for_each(without_decision_times);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_decision_times),
        _ => {}
    }
}

/// The paths whose bytes differ between two trees' outputs.
fn differing(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> Vec<String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect()
}

async fn both_nights(cfg: &Config) -> Tree {
    let t = Tree::sample();
    for d in ["2026-11-20", "2026-11-21"] {
        t.run_with(d, cfg).await.unwrap();
    }
    t
}

/// A runtime like the binary's (deep plans need large stacks on a cluster).
fn runtime() -> tokio::runtime::Runtime {
    if let Ok(f) = std::env::var("JUNKRECON_TEST_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(f).try_init();
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(junkrecon::engine::WORKER_STACK_BYTES)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_sample_on_a_standalone_cluster_is_byte_identical_to_local() {
    runtime().block_on(sample_on_standalone());
}

async fn sample_on_standalone() {
    let local = both_nights(&Config::default()).await;
    let cluster = Config {
        engine: Engine::Standalone,
        ..Config::default()
    };
    let on_cluster = both_nights(&cluster).await;
    assert_matches_expected(&on_cluster);
    let (a, b) = (outputs(&local), outputs(&on_cluster));
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(differing(&a, &b), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_scheduler_fails_the_night_in_one_line() {
    let t = Tree::sample();
    // A port nothing listens on: bind one, then let it go.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = Config {
        engine: format!("df://127.0.0.1:{port}").parse().unwrap(),
        ..Config::default()
    };
    let e = t
        .run_with("2026-11-20", &cfg)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("engine df://127.0.0.1:{port}"))
            && e.contains("scheduler cannot be reached")
            && !e.contains('\n'),
        "{e}"
    );
    // Nothing was published.
    assert!(!t.path().join("publications").exists() || t.hashes("reports").is_empty());
}
