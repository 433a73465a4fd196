//! The night on Apache Ballista (issue 16): the same reports and metrics,
//! byte for byte, as the local engine. In-process: a standalone Ballista
//! (scheduler and executor inside the test) on the contract's sample.

use std::collections::BTreeMap;

use junkrecon::config::{Config, Engine};

use crate::common::{night, Tree};
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

/// A generated country (every reason, faults, corrections) against the
/// Python reference on a standalone Ballista, and byte for byte as locally.
#[test]
fn a_generated_country_on_a_standalone_cluster_matches_the_reference_and_local() {
    runtime().block_on(async {
        let local = crate::generated::country_matches_the_reference(&Config::default()).await;
        let cluster = Config {
            engine: Engine::Standalone,
            ..Config::default()
        };
        let on_cluster = crate::generated::country_matches_the_reference(&cluster).await;
        let (a, b) = (outputs(&local), outputs(&on_cluster));
        assert!(a.len() > 10, "{a:?}");
        assert_eq!(differing(&a, &b), Vec::<String>::new());
    });
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

/// A child process killed when the test ends, whatever happens.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `junkrecon ARGS` with the test's S3 settings in a config file.
fn junkrecon(dir: &std::path::Path, name: &str, args: &[String]) -> Child {
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_junkrecon"))
        .args(args)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Child(child)
}

/// A scheduler and two executors on loopback ports, over `data`.
struct Cluster {
    engine: Engine,
    executors: Vec<Child>,
    _scheduler: Child,
    logs: tempfile::TempDir,
}

/// `executors` executors under a scheduler started with `scheduler_flags`.
async fn start_cluster(
    data: &str,
    endpoint: &str,
    executors: usize,
    scheduler_flags: &[&str],
) -> Cluster {
    let logs = tempfile::tempdir().unwrap();
    let config = logs.path().join("junkrecon.toml");
    std::fs::write(
        &config,
        format!("[s3]\nendpoint = \"{endpoint}\"\nregion = \"us-east-1\"\nallow_http = true\n"),
    )
    .unwrap();
    let common = |v: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = v.iter().map(|s| s.to_string()).collect();
        a.extend([
            "--data".into(),
            data.into(),
            "--config".into(),
            config.display().to_string(),
        ]);
        a
    };
    let port = free_port();
    let port_text = port.to_string();
    let mut flags = vec!["scheduler", "--port", &port_text];
    flags.extend(scheduler_flags);
    let scheduler = junkrecon(logs.path(), "scheduler", &common(&flags));
    wait_for_port(port).await;
    let mut started = vec![];
    for i in 0..executors {
        let work = logs.path().join(format!("executor-{i}"));
        std::fs::create_dir_all(&work).unwrap();
        started.push(junkrecon(
            logs.path(),
            &format!("executor-{i}"),
            &common(&[
                "executor",
                "--scheduler",
                &format!("127.0.0.1:{port}"),
                "--port",
                &free_port().to_string(),
                "--grpc-port",
                &free_port().to_string(),
                "--work-dir",
                &work.display().to_string(),
                "--concurrent-tasks",
                "2",
                "--heartbeat-secs",
                "2",
            ]),
        ));
    }
    // Every executor registered (its first heartbeat).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    Cluster {
        engine: format!("df://127.0.0.1:{port}").parse().unwrap(),
        executors: started,
        _scheduler: scheduler,
        logs,
    }
}

async fn wait_for_port(port: u16) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("nothing listens on port {port}");
}

/// The sample's two nights, run locally on one S3 root and on a real
/// scheduler with two executors on another: identical outputs. Then an
/// executor is killed with SIGKILL in the middle of a re-run of night 2:
/// the night completes on the other executor, or fails cleanly and a
/// re-run publishes the same outputs; night 1 stays as it was.
#[test]
fn two_nights_on_a_scheduler_and_two_executors_on_s3_match_local() {
    runtime().block_on(on_real_processes());
}

async fn on_real_processes() {
    use crate::s3::{config, download, fresh_root, s3_env, upload_sample};
    let Some(env) = s3_env() else { return };
    let cfg = config(&env.endpoint);
    let local_root = fresh_root(&env, &cfg, "cluster-local");
    let cluster_root = fresh_root(&env, &cfg, "cluster");
    let spec = cluster_root.display().to_string();
    upload_sample(&local_root).await;
    upload_sample(&cluster_root).await;
    // A job stuck after the kill below is cancelled within a minute, so the
    // night fails cleanly instead of waiting forever.
    let flags = ["--executor-timeout-secs", "6", "--job-timeout-secs", "60"];
    let cluster = start_cluster(&spec, &env.endpoint, 2, &flags).await;
    let on_cluster = Config {
        engine: cluster.engine.clone(),
        ..cfg.clone()
    };
    for d in ["2026-11-20", "2026-11-21"] {
        junkrecon::run::run(&local_root, night(d), &cfg)
            .await
            .unwrap();
        let r = junkrecon::run::run(&cluster_root, night(d), &on_cluster).await;
        if let Err(e) = r {
            panic!("{d} on the cluster: {e}\n{}", logs(&cluster));
        }
    }
    let local = download(&local_root).await;
    let remote = download(&cluster_root).await;
    crate::golden::assert_matches_expected(&remote);
    let want = outputs(&local);
    assert_eq!(differing(&want, &outputs(&remote)), Vec::<String>::new());

    // SIGKILL one executor a moment into a re-run of night 2.
    let mut cluster = cluster;
    let night1: BTreeMap<String, String> = want
        .iter()
        .filter(|(k, _)| k.contains("2026-11-20"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let rerun = {
        let (root, cfg) = (cluster_root.clone(), on_cluster.clone());
        // --recompute: nothing changed, so a plain re-run would keep night 2.
        tokio::spawn(async move { crate::common::run_recomputing(&root, "2026-11-21", &cfg).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let victim = cluster.executors.pop().unwrap();
    let pid = victim.0.id() as i32;
    // SAFETY: a plain kill(2) of our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    drop(victim);
    let first = tokio::time::timeout(std::time::Duration::from_secs(300), rerun)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the night neither finished nor failed within 5 min\n{}",
                logs(&cluster)
            )
        })
        .unwrap();
    if let Ok(record) = &first {
        assert_eq!(
            record.kept_publication_of, None,
            "the re-run computed nothing"
        );
    }
    if let Err(e) = &first {
        eprintln!("the night failed when its executor died (re-run follows): {e}");
        crate::common::run_recomputing(&cluster_root, "2026-11-21", &on_cluster)
            .await
            .unwrap_or_else(|e| panic!("re-run on one executor: {e}\n{}", logs(&cluster)));
    }
    let after = outputs(&download(&cluster_root).await);
    assert_eq!(differing(&want, &after), Vec::<String>::new());
    for (k, v) in &night1 {
        assert_eq!(after.get(k), Some(v), "{k}: night 1 changed");
    }
}

/// The processes' logs, for a failure message.
fn logs(c: &Cluster) -> String {
    let mut out = String::new();
    for e in std::fs::read_dir(c.logs.path()).unwrap().flatten() {
        if e.path().extension().is_some_and(|x| x == "log") {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            let tail: Vec<&str> = text.lines().rev().take(15).collect();
            out.push_str(&format!("--- {}\n", e.path().display()));
            for l in tail.into_iter().rev() {
                out.push_str(l);
                out.push('\n');
            }
        }
    }
    out
}

/// A job that cannot progress (here: a scheduler with no executor at all)
/// is cancelled by the scheduler after --job-timeout-secs, and the night
/// fails in one line naming the engine and the query instead of waiting
/// forever; nothing is published.
#[test]
fn a_job_past_the_schedulers_time_limit_is_cancelled_and_the_night_fails() {
    runtime().block_on(async {
        use crate::s3::{config, fresh_root, s3_env, upload_sample};
        let Some(env) = s3_env() else { return };
        let cfg = config(&env.endpoint);
        let root = fresh_root(&env, &cfg, "job-timeout");
        upload_sample(&root).await;
        let flags = ["--job-timeout-secs", "3"];
        let cluster = start_cluster(root.display(), &env.endpoint, 0, &flags).await;
        let on_cluster = Config {
            engine: cluster.engine.clone(),
            ..cfg.clone()
        };
        let started = std::time::Instant::now();
        let night = junkrecon::run::run(&root, night("2026-11-20"), &on_cluster);
        let e = tokio::time::timeout(std::time::Duration::from_secs(120), night)
            .await
            .unwrap_or_else(|_| panic!("the night was not failed\n{}", logs(&cluster)))
            .expect_err("a night without executors cannot succeed")
            .to_string();
        assert!(
            e.contains(&format!("engine {}", cluster.engine))
                && e.contains(": query ")
                && e.contains("Cancelled")
                && !e.contains('\n'),
            "{e}"
        );
        assert!(
            started.elapsed() >= std::time::Duration::from_secs(3),
            "{e}"
        );
        let log = std::fs::read_to_string(cluster.logs.path().join("scheduler.log")).unwrap();
        assert!(
            log.contains("cancelling a job that ran past --job-timeout-secs"),
            "{log}"
        );
        let tree = crate::s3::download(&root).await;
        assert!(tree.hashes("reports").is_empty());
    });
}
