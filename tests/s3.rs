//! The pipeline on a real S3-compatible server (moto, started by `.ci/run`).
//! Set JUNKRECON_S3_ENDPOINT (e.g. http://127.0.0.1:5000) and
//! JUNKRECON_S3_BUCKET (an existing bucket); CI also sets
//! JUNKRECON_REQUIRE_S3=1 so that a missing server fails instead of skipping.

use crate::common::night;
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

pub(crate) struct S3Env {
    pub(crate) endpoint: String,
    pub(crate) bucket: String,
}

pub(crate) fn s3_env() -> Option<S3Env> {
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

pub(crate) fn config(endpoint: &str) -> Config {
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

pub(crate) fn unique_prefix(name: &str) -> String {
    format!(
        "{name}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// An empty root under a unique prefix of the test bucket.
pub(crate) fn fresh_root(env: &S3Env, cfg: &Config, name: &str) -> Root {
    let spec = format!("s3://{}/{}", env.bucket, unique_prefix(name));
    Root::open_with(&spec, &cfg.s3).unwrap()
}

/// Uploads the sample's landing tree, as senders would.
pub(crate) async fn upload_sample(root: &Root) {
    let root = &root.as_sender();
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
pub(crate) async fn download(root: &Root) -> Tree {
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
        let record = junkrecon::run::run(&root, night(date), cfg).await.unwrap();
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
    // `curated_compression = "auto"`: snappy on an object store.
    let mut codecs = std::collections::BTreeSet::new();
    for (key, _) in listing(&root, "curated/").await {
        if key.ends_with(".parquet") {
            codecs.extend(crate::common::parquet_codecs(root.get(&key).await.unwrap()));
        }
    }
    assert_eq!(
        codecs,
        std::collections::BTreeSet::from(["SNAPPY".to_string()])
    );
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
    junkrecon::run::run(&root, night("2026-11-20"), &cfg)
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
    assert!(
        err.contains("NoSuchBucket"),
        "the S3 error code is kept: {err}"
    );
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

/// What the store does to requests while an outage lasts.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Every request is answered 503 SlowDown.
    Refuse,
    /// Every connection is closed without an answer (a partition, a restart).
    Drop,
    /// Every request is held this long before it is forwarded.
    Delay(std::time::Duration),
}

/// An outage in front of the server: it starts `lead` after the first
/// connection and lasts `length`. When it starts, connections in use are cut
/// (Refuse, Drop); while it lasts, new ones meet the fault.
struct Outage {
    fault: Fault,
    lead: std::time::Duration,
    length: std::time::Duration,
    first: std::sync::OnceLock<std::time::Instant>,
    met: AtomicUsize,
}

impl Outage {
    fn active(&self) -> bool {
        let since = self.first.get_or_init(std::time::Instant::now).elapsed();
        since >= self.lead && since < self.lead + self.length
    }
}

/// Forwards bytes from `from` to `to`; during an outage cuts the connection
/// (returns) or holds each chunk, as the fault says.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    outage: Arc<Outage>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            r = from.read(&mut buf) => match r { Ok(0) | Err(_) => return, Ok(n) => n },
            // An outage that starts while the connection idles cuts it too.
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)), if !matches!(outage.fault, Fault::Delay(_)) => {
                if outage.active() { return; }
                continue;
            }
        };
        if outage.active() {
            outage.met.fetch_add(1, Ordering::SeqCst);
            match outage.fault {
                Fault::Delay(d) => tokio::time::sleep(d).await,
                Fault::Refuse | Fault::Drop => return,
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

async fn outage_proxy(upstream: String, outage: Arc<Outage>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let up = upstream.trim_start_matches("http://").to_string();
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let (outage, up) = (outage.clone(), up.clone());
            tokio::spawn(async move {
                if outage.active() && !matches!(outage.fault, Fault::Delay(_)) {
                    outage.met.fetch_add(1, Ordering::SeqCst);
                    let _ = read_request(&mut client).await;
                    if let Fault::Refuse = outage.fault {
                        let body =
                            "<Error><Code>SlowDown</Code><Message>injected</Message></Error>";
                        let resp = format!("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                        let _ = client.write_all(resp.as_bytes()).await;
                    }
                    return;
                }
                let Ok(server) = tokio::net::TcpStream::connect(&up).await else {
                    return;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                let up_task = tokio::spawn(pump(cr, sw, outage.clone()));
                pump(sr, cw, outage).await;
                up_task.abort();
            });
        }
    });
    format!("http://{addr}")
}

/// A night whose store refuses, drops or slows every request for a while
/// (JUNKRECON_OUTAGE_SECS, 8 s by default) in the middle of the run is
/// published exactly as without the outage: the requests are retried until
/// the store is back. The longest outage a night survives is set by
/// `s3.retry_timeout_secs` (measured with this test, see the runbook).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_night_survives_a_store_outage_of_each_kind() {
    let Some(env) = s3_env() else { return };
    let secs: u64 = std::env::var("JUNKRECON_OUTAGE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let length = std::time::Duration::from_secs(secs);
    let clean = Tree::sample();
    clean.run("2026-11-20").await.unwrap();
    let want = clean.hashes("reports");
    for fault in [
        Fault::Refuse,
        Fault::Drop,
        Fault::Delay(std::time::Duration::from_millis(400)),
    ] {
        let outage = Arc::new(Outage {
            fault,
            lead: std::time::Duration::from_millis(700),
            length,
            first: Default::default(),
            met: AtomicUsize::new(0),
        });
        let proxy = outage_proxy(env.endpoint.clone(), outage.clone()).await;
        // The production retry settings: how long an outage they ride out
        // is what this test measures.
        let mut cfg = config(&proxy);
        cfg.s3.max_retries = S3Settings::default().max_retries;
        cfg.s3.retry_timeout_secs = S3Settings::default().retry_timeout_secs;
        let spec = format!("s3://{}/{}", env.bucket, unique_prefix("outage"));
        let root = Root::open_with(&spec, &cfg.s3).unwrap();
        // Uploaded past the proxy: the outage is the night's, not the senders'.
        let direct = Root::open_with(&spec, &config(&env.endpoint).s3).unwrap();
        upload_sample(&direct).await;
        let t0 = std::time::Instant::now();
        let _ = outage.active(); // the outage's clock starts with the night
        junkrecon::run::run(&root, night("2026-11-20"), &cfg)
            .await
            .unwrap_or_else(|e| panic!("{fault:?} for {secs} s: {e}"));
        let took = t0.elapsed();
        assert!(
            outage.met.load(Ordering::SeqCst) > 0,
            "{fault:?}: the night ran into the outage"
        );
        if !matches!(fault, Fault::Delay(_)) {
            assert!(
                took > outage.lead + length,
                "{fault:?}: the night waited out the outage ({took:?})"
            );
        }
        eprintln!(
            "{fault:?} for {secs} s: night published in {took:?}, {} requests met the fault",
            outage.met.load(Ordering::SeqCst)
        );
        assert_eq!(download(&direct).await.hashes("reports"), want, "{fault:?}");
    }
}

/// Puts an object under a key the SDK would never write (an empty, `.` or
/// `..` segment, a control character), with a plain unsigned request as a
/// careless sender's tool might; moto stores the key as sent.
async fn put_raw(endpoint: &str, bucket: &str, key: &str) {
    let host = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(host).await.unwrap();
    let req = format!(
        "PUT /{bucket}/{key} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{key}: {answer:.200}");
}

/// Keys the store cannot represent as paths, under `landing/`: each is
/// recorded as ignored with its reason and the night is published for
/// every source, equal to a night without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_the_store_cannot_represent_are_ignored_and_the_night_goes_on() {
    let Some(env) = s3_env() else { return };
    let cfg = config(&env.endpoint);
    let prefix = unique_prefix("oddkeys");
    let root = Root::open_with(&format!("s3://{}/{prefix}", env.bucket), &cfg.s3).unwrap();
    upload_sample(&root).await;
    let before = listing(&root, "landing/").await;
    for odd in [
        "landing/subscribers/carrier=AA//date=2026-11-20/x.parquet",
        "landing/subscribers/carrier=BB/./date=2026-11-20/x.parquet",
        "landing/subscribers/carrier=CC/../date=2026-11-20/x.parquet",
        "landing/subscribers/carrier=DD/da%01te/x.parquet",
        "landing/accounts/bank=VCB/date=2026-11-20%1B[31m/x.parquet",
        "landing/identity//date=2026-11-20/_MANIFEST.json",
        // Beside every carrier's folder, and sharing VIETTEL's spelling.
        "landing/subscribers//x.parquet",
        "landing/subscribers/carrier=VIET%01TEL/date=2026-11-20/x.parquet",
        "landing/subscribers/carrier=VIETTEL/date=2026-11-2%01/x.parquet",
    ] {
        put_raw(&env.endpoint, &env.bucket, &format!("{prefix}/{odd}")).await;
    }
    let record = junkrecon::run::run(&root, night("2026-11-20"), &cfg)
        .await
        .unwrap();
    assert!(
        !record.ingest.ignored.is_empty(),
        "the odd keys are recorded as ignored"
    );
    for i in &record.ingest.ignored {
        eprintln!("ignored: {} ({})", i.path, i.reason);
        assert!(
            !i.reason.is_empty() && !i.path.chars().any(char::is_control),
            "{i:?}"
        );
    }
    let clean = Tree::sample();
    clean.run("2026-11-20").await.unwrap();
    assert_eq!(
        download(&root).await.hashes("reports"),
        clean.hashes("reports")
    );
    for (k, (size, etag)) in &before {
        let now = root.store().head(&Path::from(k.as_str())).await.unwrap();
        assert_eq!((now.size, &now.e_tag), (*size, etag), "{k} unchanged");
    }
}
