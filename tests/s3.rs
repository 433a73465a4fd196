//! The pipeline on a real S3-compatible server (moto, started by `.ci/run`).
//! Set JUNKRECON_S3_ENDPOINT (e.g. http://127.0.0.1:5000) and
//! JUNKRECON_S3_BUCKET (an existing bucket); CI also sets
//! JUNKRECON_REQUIRE_S3=1 so that a missing server fails instead of skipping.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{sample_dir, walk, Tree};
use junkrecon::config::{Config, S3Settings};
use junkrecon::store::Root;

struct S3Env {
    endpoint: String,
    bucket: String,
}

fn s3_env() -> Option<S3Env> {
    let endpoint = std::env::var("JUNKRECON_S3_ENDPOINT").ok();
    let bucket = std::env::var("JUNKRECON_S3_BUCKET").ok();
    match (endpoint, bucket) {
        (Some(endpoint), Some(bucket)) => {
            // moto accepts any key; the SDK needs some.
            for (k, v) in [
                ("AWS_ACCESS_KEY_ID", "test"),
                ("AWS_SECRET_ACCESS_KEY", "test"),
                ("AWS_REGION", "us-east-1"),
            ] {
                if std::env::var_os(k).is_none() {
                    // SAFETY: set once before any store is built; tests read, never remove.
                    unsafe { std::env::set_var(k, v) };
                }
            }
            Some(S3Env { endpoint, bucket })
        }
        _ => {
            assert!(
                std::env::var("JUNKRECON_REQUIRE_S3").as_deref() != Ok("1"),
                "JUNKRECON_REQUIRE_S3=1 but no S3 endpoint/bucket given"
            );
            eprintln!("no S3 server configured (JUNKRECON_S3_ENDPOINT): S3 test skipped; .ci/run starts one");
            None
        }
    }
}

fn config(endpoint: &str) -> Config {
    Config {
        s3: S3Settings {
            endpoint: endpoint.to_string(),
            region: "us-east-1".into(),
            allow_http: true,
            max_retries: 8,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn unique_prefix(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// An empty root under a unique prefix of the test bucket.
fn fresh_root(env: &S3Env, cfg: &Config, name: &str) -> Root {
    let spec = format!("s3://{}/{}", env.bucket, unique_prefix(name));
    Root::open_with(&spec, &cfg.s3).unwrap()
}

/// Uploads the sample's landing tree, as senders would.
async fn upload_sample(root: &Root) {
    let base = sample_dir();
    let mut files = vec![];
    walk(&base.join("landing"), &mut |p| files.push(p.to_path_buf()));
    for p in files {
        let key = p.strip_prefix(&base).unwrap().to_string_lossy().to_string();
        root.store()
            .put(&Path::from(key.as_str()), std::fs::read(&p).unwrap().into())
            .await
            .unwrap();
    }
}

async fn listing(root: &Root, prefix: &str) -> BTreeMap<String, (u64, Option<String>)> {
    let p = Path::from(prefix);
    root.store()
        .list(Some(&p))
        .try_collect::<Vec<_>>()
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.location.to_string(), (m.size, m.e_tag)))
        .collect()
}

/// Copies everything under reports/ and metrics/ to a local tree.
async fn download(root: &Root) -> Tree {
    let t = Tree::new();
    for prefix in ["reports/", "metrics/"] {
        for (key, _) in listing(root, prefix).await {
            let bytes = root.get(&key).await.unwrap();
            let dest = t.path().join(&key);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(dest, bytes).unwrap();
        }
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_sample_on_s3() {
    let Some(env) = s3_env() else { return };
    let cfg = config(&env.endpoint);
    let root = fresh_root(&env, &cfg, "golden");
    root.probe().await.unwrap();
    upload_sample(&root).await;
    let before = listing(&root, "landing/").await;
    // The re-run of night 2 swings an existing pointer (conditional update on
    // S3), and splits its joins into key buckets (partitioned tables on S3).
    let split = Config {
        key_buckets: 3,
        ..cfg.clone()
    };
    for (date, cfg) in [
        ("2026-11-20", &cfg),
        ("2026-11-21", &cfg),
        ("2026-11-21", &split),
    ] {
        let record = junkrecon::run::run(&root, date, cfg).await.unwrap();
        let buckets = record.reconcile_steps.iter().map(|p| p.buckets).max();
        assert_eq!(buckets, Some(cfg.key_buckets.max(1) as usize));
    }
    assert_eq!(
        listing(&root, "landing/").await,
        before,
        "no object under landing/ is modified or deleted"
    );
    let local = download(&root).await;
    crate::golden::assert_matches_expected(&local);
}

/// A proxy in front of the server that answers the first `failures` requests
/// with 503 Slow Down, then forwards everything.
async fn flaky_proxy(upstream: String, failures: usize) -> (String, Arc<AtomicUsize>) {
    answering_proxy(upstream, failures, "503 Service Unavailable", "SlowDown").await
}

/// A proxy that answers the first `failures` requests with `status` and an S3
/// error `code`, then forwards everything to `upstream`.
async fn answering_proxy(
    upstream: String,
    failures: usize,
    status: &'static str,
    code: &'static str,
) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let left = Arc::new(AtomicUsize::new(failures));
    let failed = Arc::new(AtomicUsize::new(0));
    let up = upstream.trim_start_matches("http://").to_string();
    let failed_out = failed.clone();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let (left, failed, up) = (left.clone(), failed.clone(), up.clone());
            tokio::spawn(async move {
                if left.load(Ordering::SeqCst) > 0 {
                    left.fetch_sub(1, Ordering::SeqCst);
                    failed.fetch_add(1, Ordering::SeqCst);
                    let _ = read_request(&mut client).await;
                    let body =
                        format!("<Error><Code>{code}</Code><Message>injected</Message></Error>");
                    let resp = format!("HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = client.write_all(resp.as_bytes()).await;
                    return;
                }
                let mut server = tokio::net::TcpStream::connect(&up).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (format!("http://{addr}"), failed_out)
}

/// Reads one HTTP request (headers and a Content-Length body).
async fn read_request(s: &mut tokio::net::TcpStream) -> std::io::Result<()> {
    let mut buf = vec![];
    let mut chunk = [0u8; 8192];
    loop {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap_or(0))
                .unwrap_or(0);
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await?;
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            return Ok(());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_are_retried() {
    let Some(env) = s3_env() else { return };
    let (proxy, failed) = flaky_proxy(env.endpoint.clone(), 6).await;
    let cfg = config(&proxy);
    let root = fresh_root(&env, &cfg, "flaky");
    upload_sample(&root).await;
    junkrecon::run::run(&root, "2026-11-20", &cfg)
        .await
        .unwrap();
    assert_eq!(
        failed.load(Ordering::SeqCst),
        6,
        "the injected failures happened"
    );
    assert!(root
        .get_opt("metrics/date=2026-11-20/_PUBLISHED.json")
        .await
        .unwrap()
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_bucket_is_one_clear_line() {
    let Some(env) = s3_env() else { return };
    let cfg = config(&env.endpoint);
    let root = Root::open_with("s3://no-such-bucket-junkrecon/x", &cfg.s3).unwrap();
    let err = root.probe().await.unwrap_err().to_string();
    assert!(
        err.starts_with("root s3://no-such-bucket-junkrecon/x: cannot list landing/"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    assert!(!err.contains("test"), "no credential in the message: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_are_one_clear_line() {
    let Some(env) = s3_env() else { return };
    // moto accepts any key, so the server's answer to a wrong key (403
    // InvalidAccessKeyId) is given by a proxy in front of it.
    let (proxy, _) = answering_proxy(
        env.endpoint.clone(),
        usize::MAX,
        "403 Forbidden",
        "InvalidAccessKeyId",
    )
    .await;
    let cfg = config(&proxy);
    let spec = format!("s3://{}/x", env.bucket);
    let root = Root::open_with(&spec, &cfg.s3).unwrap();
    let err = root.probe().await.unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("root {spec}: cannot list landing/")),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    assert!(
        !err.contains("AWS_SECRET") && !err.contains("test:"),
        "no credential in the message: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_admits_one_holder_on_s3() {
    use junkrecon::lease::{Acquire, Lease};
    let Some(env) = s3_env() else { return };
    let cfg = config(&env.endpoint);
    let root = fresh_root(&env, &cfg, "lease");
    let ttl = std::time::Duration::from_secs(30);
    // Two contenders at once: the create-if-absent put lets exactly one win.
    let (a, b) = tokio::join!(
        Lease::try_acquire(&root, "a", "poll", ttl),
        Lease::try_acquire(&root, "b", "poll", ttl)
    );
    let mut won: Vec<Lease> = [a.unwrap(), b.unwrap()]
        .into_iter()
        .filter_map(|x| match x {
            Acquire::Taken(l) => Some(l),
            Acquire::Busy(_) => None,
        })
        .collect();
    assert_eq!(won.len(), 1, "exactly one holder");
    let held = won.pop().unwrap();
    assert!(matches!(
        Lease::try_acquire(&root, "c", "nightly", ttl)
            .await
            .unwrap(),
        Acquire::Busy(_)
    ));
    held.release().await.unwrap();
    match Lease::try_acquire(&root, "c", "nightly", ttl)
        .await
        .unwrap()
    {
        Acquire::Taken(l) => l.release().await.unwrap(),
        Acquire::Busy(h) => panic!("released lease still held by {}", h.holder),
    }
}
