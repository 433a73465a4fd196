//! `junkrecon serve` with second-level schedules: polls pick up uploads, the
//! nightly job publishes, failures are retried and recorded, instances never
//! overlap, missed nights are caught up once, and a stop mid-job leaves the
//! previous publication whole. `/metrics` is read with a Prometheus parser
//! and compared with the published metrics JSON.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use junkrecon::config::Config;
use junkrecon::store::Root;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use crate::common::flaky::Flaky;
use crate::common::{copy_dir, sample_dir, Tree};

pub struct Service {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    handle: tokio::task::JoinHandle<junkrecon::Result<()>>,
}

impl Service {
    pub async fn start(root: Root, cfg: Config) -> Service {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(junkrecon::serve::serve_on(listener, root, cfg, async {
            let _ = rx.await;
        }));
        Service {
            addr,
            stop: Some(tx),
            handle,
        }
    }

    /// Stops the service; it must return Ok (exit status 0) within 30 s.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let r = tokio::time::timeout(Duration::from_secs(30), self.handle)
            .await
            .expect("service stops within 30 s")
            .unwrap();
        r.expect("service stops cleanly");
    }

    /// GET `path`: status code and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![];
        s.read_to_end(&mut buf).await.unwrap();
        let text = String::from_utf8(buf).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        (code, body.to_string())
    }
}

/// Schedules that do not fire during a test unless given.
pub fn config(poll: &str, nightly: &str) -> Config {
    let mut c = Config::default();
    c.serve.poll_schedule = poll.into();
    c.serve.nightly_schedule = nightly.into();
    c.serve.catch_up_days = 0;
    c.serve.retry_backoff_secs = 1;
    c.serve.lease_secs = 6;
    c.serve.shutdown_grace_secs = 5;
    c
}

const NEVER: &str = "0 0 0 1 1 * 2099";

/// Waits until `f` holds, checking every 100 ms, for at most `secs`.
pub async fn wait_for(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(
            tokio::time::Instant::now() < end,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The night a cut-off at 04:00 in Vietnam last ran for (the day before its date).
fn last_cut_off_night() -> chrono::NaiveDate {
    let local = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    let cut_off_day = if local.hour() >= 4 {
        local.date_naive()
    } else {
        local.date_naive() - chrono::Days::new(1)
    };
    cut_off_day - chrono::Days::new(1)
}

/// The night the nightly job runs for when it fires now (lag of one day).
fn tonight() -> String {
    let local = Utc::now().with_timezone(&chrono_tz::Asia::Ho_Chi_Minh);
    (local.date_naive() - chrono::Days::new(1)).to_string()
}

fn run_records(dir: &Path, date: &str) -> Vec<serde_json::Value> {
    let d = dir.join(format!("runs/date={date}"));
    let Ok(entries) = std::fs::read_dir(d) else {
        return vec![];
    };
    // Only the records (`<run_id>.json`): a record being written is a
    // staging file beside them (`<run_id>.json#N`, empty or partial) until
    // the store renames it, as the store's own listing skips it.
    let mut out: Vec<serde_json::Value> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
        .collect();
    out.sort_by_key(|r| r["started_at"].as_str().unwrap().to_string());
    out
}

fn published(dir: &Path, date: &str) -> bool {
    dir.join(format!("metrics/date={date}/_PUBLISHED.json"))
        .exists()
}

/// A landing tree with only some of the sample's folders.
fn partial_sample(folders: &[&str]) -> Tree {
    let t = Tree::new();
    for f in folders {
        copy_dir(&sample_dir().join(f), &t.path().join(f));
    }
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_dropped_in_mid_way_is_ingested_on_the_next_poll() {
    let t = partial_sample(&["landing/identity/date=2026-11-20"]);
    let svc = Service::start(t.root(), config("* * * * * *", NEVER)).await;
    let ledger = |s: &str| {
        t.path()
            .join(format!("catalog/uploads/{s}/2026-11-20.json"))
    };
    wait_for("identity ingested", 20, || {
        ledger("identity/NATIONAL").exists()
    })
    .await;
    // A carrier uploads while the service runs: files first, manifest last.
    let folder = "landing/subscribers/carrier=VINAPHONE/date=2026-11-20";
    let dest = t.path().join(folder);
    std::fs::create_dir_all(&dest).unwrap();
    for e in std::fs::read_dir(sample_dir().join(folder)).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap() != "_MANIFEST.json" {
            std::fs::copy(&p, dest.join(p.file_name().unwrap())).unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        !ledger("subscribers/VINAPHONE").exists(),
        "an upload without its manifest is not read"
    );
    std::fs::copy(
        sample_dir().join(folder).join("_MANIFEST.json"),
        dest.join("_MANIFEST.json"),
    )
    .unwrap();
    wait_for("carrier upload ingested", 20, || {
        ledger("subscribers/VINAPHONE").exists()
    })
    .await;
    let l: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ledger("subscribers/VINAPHONE")).unwrap()).unwrap();
    assert_eq!(l["decisions"][0]["status"], "accepted");
    assert!(
        t.path().join("runs/poll").exists(),
        "a poll that decided something leaves a record"
    );
    let (code, health) = svc.get("/healthz").await;
    assert_eq!(code, 200);
    let h: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert!(h["poll"]["runs"].as_u64().unwrap() >= 2);
    assert_eq!(h["poll"]["failures"], 0);
    svc.stop().await;
}

/// Parses an exposition into (name, sorted labels) → value.
fn scrape(text: &str) -> BTreeMap<(String, String), f64> {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let s = prometheus_parse::Scrape::parse(lines).expect("Prometheus text format");
    s.samples
        .into_iter()
        .map(|x| {
            let mut labels: Vec<String> =
                x.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            labels.sort();
            let v = match x.value {
                prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Untyped(v) => v,
                other => panic!("unexpected sample {other:?}"),
            };
            ((x.metric, labels.join(",")), v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nightly_job_publishes_and_metrics_match_the_published_json() {
    let t = Tree::sample();
    let mut cfg = config(NEVER, "*/2 * * * * *");
    cfg.expected_carriers = vec!["VIETTEL".into(), "REDDI".into()];
    let svc = Service::start(t.root(), cfg).await;
    let mut night = tonight();
    wait_for("nightly publication", 60, || {
        night = tonight();
        published(t.path(), &night)
    })
    .await;
    // The job counts as a success once its run record is written, just after the marker.
    for _ in 0..100 {
        let h: serde_json::Value = serde_json::from_str(&svc.get("/healthz").await.1).unwrap();
        if !h["nightly"]["last_success_unix"].is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (code, text) = svc.get("/metrics").await;
    assert_eq!(code, 200);
    let m = scrape(&text);
    let get = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        let mut l: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        l.sort();
        m.get(&(format!("junkrecon_{name}"), l.join(","))).copied()
    };
    let mut sources = 0;
    for (file, kind) in [("carriers", "carrier"), ("banks", "bank")] {
        for (source, j) in t.metrics(file, &night) {
            sources += 1;
            let l = [("kind", kind), ("source", source.as_str())];
            assert_eq!(get("clean_pct", &l), j["clean_pct"].as_f64(), "{source}");
            assert_eq!(
                get("cleanup_progress_pct", &l),
                j["cleanup_progress_pct"].as_f64(),
                "{source}"
            );
            assert_eq!(get("flagged_rows", &l), j["flagged"].as_f64(), "{source}");
            assert_eq!(get("rows", &l), j["total"].as_f64(), "{source}");
            assert_eq!(
                get("rows_rejected", &l),
                j["rows_rejected"].as_f64(),
                "{source}"
            );
            // §9 and §10: overdue rows, compliance (absent when null), gone keys.
            assert_eq!(get("overdue", &l), j["overdue"].as_f64(), "{source}");
            assert_eq!(
                get("compliance_pct", &l),
                j["compliance_pct"].as_f64(),
                "{source}"
            );
            assert_eq!(get("gone_keys", &l), j["gone"].as_f64(), "{source}");
            for (action, n) in j["required_action"].as_object().unwrap() {
                let la = [
                    ("kind", kind),
                    ("source", source.as_str()),
                    ("action", action),
                ];
                assert_eq!(
                    get("flagged_rows_by_required_action", &la),
                    n.as_f64(),
                    "{source} {action}"
                );
            }
            for (reason, n) in j["flags_by_reason"].as_object().unwrap() {
                let lr = [
                    ("kind", kind),
                    ("source", source.as_str()),
                    ("reason", reason),
                ];
                assert_eq!(
                    get("flagged_rows_by_reason", &lr),
                    n.as_f64(),
                    "{source} {reason}"
                );
            }
        }
    }
    assert!(sources >= 9);
    // Upload states: every sample extract is older than tonight; REDDI never uploaded.
    let st: Vec<serde_json::Value> = serde_json::from_slice(
        &std::fs::read(t.path().join(format!("metrics/date={night}/sources.json"))).unwrap(),
    )
    .unwrap();
    for s in &st {
        let l = [
            ("kind", s["kind"].as_str().unwrap()),
            ("source", s["source"].as_str().unwrap()),
        ];
        assert_eq!(get("extract_age_days", &l), s["age_days"].as_f64());
        let held = s["held_uploads"].as_array().unwrap().len() as f64;
        assert_eq!(get("held_uploads", &l), Some(held));
        let missing = if s["status"] == "missing" { 1.0 } else { 0.0 };
        assert_eq!(get("source_missing", &l), Some(missing));
    }
    let status = |src: &str| {
        st.iter()
            .find(|s| s["source"] == src)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status("REDDI").as_deref(), Some("missing"));
    assert_eq!(status("VIETTEL").as_deref(), Some("missing"));
    assert_eq!(status("VINAPHONE").as_deref(), Some("stale"));
    assert!(get("job_runs_total", &[("task", "nightly")]).unwrap() >= 1.0);
    assert_eq!(get("job_failures_total", &[("task", "nightly")]), Some(0.0));
    assert!(get("job_last_success_timestamp_seconds", &[("task", "nightly")]).is_some());

    // The API returns the published JSON; bad and unknown dates are told apart.
    let (code, body) = svc.get(&format!("/api/metrics?date={night}")).await;
    assert_eq!(code, 200);
    let doc: serde_json::Value = serde_json::from_str(&body).unwrap();
    let on_disk: serde_json::Value = serde_json::from_slice(
        &std::fs::read(t.path().join(format!("metrics/date={night}/carriers.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(doc["carriers"], on_disk);
    assert_eq!(svc.get("/api/metrics?date=20261121").await.0, 400);
    assert_eq!(svc.get("/api/metrics?date=1999-01-01").await.0, 404);
    let (code, page) = svc.get("/").await;
    assert_eq!(code, 200);
    assert!(page.contains("data-source=\"REDDI\"") && page.contains("class=\"missing\""));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_twice_is_retried_and_every_attempt_recorded() {
    let t = Tree::sample();
    // The store refuses the first two writes of a publication's rejects
    // report (one write per attempt, after the sources' reports, which are
    // written two at a time), then recovers.
    let flaky = Arc::new(Flaky::fails_first_where(
        t.root().store(),
        "/reports/rejects/",
        2,
    ));
    let root = Root::from_store(flaky, "flaky");
    let mut cfg = config(NEVER, "0 0 4 * * *");
    cfg.serve.catch_up_days = 1;
    let svc = Service::start(root, cfg).await;
    let night = last_cut_off_night().to_string();
    // The run record is written after the publication's marker: wait for both.
    wait_for("published after retries", 60, || {
        published(t.path(), &night) && run_records(t.path(), &night).len() == 3
    })
    .await;
    let runs = run_records(t.path(), &night);
    let got: Vec<(u64, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["attempt"].as_u64().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![(1, "failed"), (2, "failed"), (3, "succeeded")],
        "{runs:#?}"
    );
    for r in &runs[..2] {
        let e = r["error"].as_str().unwrap();
        assert!(
            e.contains("injected write failure") && e.contains("publications/"),
            "{e}"
        );
        assert_eq!(r["trigger"], "catch-up");
    }
    // Backoff: 1 s, then 2 s.
    let t0 = |r: &serde_json::Value, k: &str| {
        DateTime::parse_from_rfc3339(r[k].as_str().unwrap()).unwrap()
    };
    assert!((t0(&runs[1], "started_at") - t0(&runs[0], "finished_at")).num_milliseconds() >= 1000);
    assert!((t0(&runs[2], "started_at") - t0(&runs[1], "finished_at")).num_milliseconds() >= 2000);
    let m = scrape(&svc.get("/metrics").await.1);
    let job = |n: &str| m[&(format!("junkrecon_{n}"), "task=nightly".to_string())];
    assert_eq!(job("job_runs_total"), 3.0);
    assert_eq!(job("job_failures_total"), 2.0);
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_on_one_root_never_run_at_the_same_time() {
    let t = Tree::sample();
    // A run by hand holds the root: the service's night waits for it.
    let hand = match junkrecon::lease::Lease::try_acquire(
        &t.root(),
        "by-hand",
        "run",
        Duration::from_secs(30),
    )
    .await
    .unwrap()
    {
        junkrecon::lease::Acquire::Taken(l) => l,
        junkrecon::lease::Acquire::Busy(_) => panic!("free root"),
    };
    let mut cfg = config("* * * * * *", "0 0 4 * * *");
    cfg.serve.catch_up_days = 1;
    let a = Service::start(t.root(), cfg.clone()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let night = last_cut_off_night().to_string();
    assert!(
        run_records(t.path(), &night).is_empty(),
        "ran under another's lease"
    );
    assert!(
        !t.path().join("catalog").exists(),
        "a poll ran under another's lease"
    );
    hand.release().await.unwrap();
    wait_for("night after release", 60, || published(t.path(), &night)).await;
    a.stop().await;

    // Two instances with a night every two seconds: runs never overlap.
    let cfg = config(NEVER, "*/2 * * * * *");
    let a = Service::start(t.root(), cfg.clone()).await;
    let b = Service::start(t.root(), cfg).await;
    let mut seen = 0;
    wait_for("several nightly runs", 90, || {
        seen = run_records(t.path(), &tonight()).len();
        seen >= 4
    })
    .await;
    a.stop().await;
    b.stop().await;
    let mut runs = run_records(t.path(), &tonight());
    runs.retain(|r| r["status"] == "succeeded");
    let at = |r: &serde_json::Value, k: &str| {
        DateTime::parse_from_rfc3339(r[k].as_str().unwrap()).unwrap()
    };
    for w in runs.windows(2) {
        assert!(
            at(&w[1], "started_at") >= at(&w[0], "finished_at"),
            "overlapping runs: {} and {}",
            w[0]["run_id"],
            w[1]["run_id"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_nights_are_caught_up_once_at_start() {
    let t = Tree::sample();
    let last = last_cut_off_night();
    let before = (last - chrono::Days::new(2)).to_string();
    t.run(&before).await.unwrap();
    let mut cfg = config(NEVER, "0 0 4 * * *");
    cfg.serve.catch_up_days = 7;
    let svc = Service::start(t.root(), cfg.clone()).await;
    let missed = [(last - chrono::Days::new(1)).to_string(), last.to_string()];
    wait_for("caught up", 90, || {
        missed.iter().all(|d| published(t.path(), d))
    })
    .await;
    svc.stop().await;
    for d in &missed {
        let runs = run_records(t.path(), d);
        assert_eq!(runs.len(), 1, "{d}: {runs:#?}");
        assert_eq!(runs[0]["trigger"], "catch-up");
    }
    // Started again: nothing is missed any more.
    let svc = Service::start(t.root(), cfg).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    svc.stop().await;
    for d in &missed {
        assert_eq!(run_records(t.path(), d).len(), 1, "{d} run again");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_mid_job_leaves_the_previous_publication_whole() {
    let t = Tree::sample();
    let night = tonight();
    // Published first under another batch size, so that the service's run
    // computes the night again instead of keeping it.
    let other = Config {
        batch_size: 1024,
        ..Config::default()
    };
    let first = t.run_with(&night, &other).await.unwrap();
    let marker_path = t
        .path()
        .join(format!("metrics/date={night}/_PUBLISHED.json"));
    let marker = std::fs::read(&marker_path).unwrap();
    let pointer = std::fs::read(
        t.path()
            .join(format!("publications/date={night}/CURRENT.json")),
    )
    .unwrap();
    // Publishing is slow: the stop comes while the new run writes its publication.
    let slow = Arc::new(Flaky::slow(
        t.root().store(),
        "publications/",
        Duration::from_millis(400),
    ));
    let mut cfg = config(NEVER, "* * * * * *");
    cfg.serve.shutdown_grace_secs = 0;
    let svc = Service::start(Root::from_store(slow, "slow"), cfg).await;
    let staged = t.path().join(format!("publications/date={night}"));
    wait_for("a second run staging its publication", 60, || {
        std::fs::read_dir(&staged).unwrap().count() > 2
    })
    .await;
    svc.stop().await;
    assert_eq!(std::fs::read(&marker_path).unwrap(), marker);
    assert_eq!(
        std::fs::read(
            t.path()
                .join(format!("publications/date={night}/CURRENT.json"))
        )
        .unwrap(),
        pointer
    );
    let p: junkrecon::publish::Published = serde_json::from_slice(&marker).unwrap();
    assert_eq!(p.run_id, first.run_id);
    let on_disk = t.hashes("");
    for f in &p.files {
        assert_eq!(on_disk.get(&f.path), Some(&f.sha256), "{}", f.path);
    }
    let runs = run_records(t.path(), &night);
    assert!(runs.iter().any(|r| r["status"] == "abandoned"), "{runs:#?}");
}

/// Every text value of the given columns in the sample's Parquet files under `sub`.
fn sample_values(sub: &str, columns: &[&str]) -> Vec<String> {
    let mut out = vec![];
    crate::common::walk(&sample_dir().join(sub), &mut |p| {
        if p.extension().is_some_and(|e| e == "parquet") {
            // The sample holds a deliberately corrupt file: read what can be read.
            let Ok(f) = std::fs::File::open(p) else {
                return;
            };
            let Ok(reader) =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(f)
                    .and_then(|b| b.build())
            else {
                return;
            };
            for b in reader.map_while(Result::ok) {
                for c in columns {
                    let Some(col) = b.column_by_name(c) else {
                        continue;
                    };
                    let col = arrow::compute::cast(col, &arrow::datatypes::DataType::Utf8).unwrap();
                    let col = col
                        .as_any()
                        .downcast_ref::<arrow::array::StringArray>()
                        .unwrap();
                    out.extend(col.iter().flatten().map(|v| v.trim().to_string()));
                }
            }
        }
    });
    out.retain(|v| v.len() >= 6);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_logs_json_with_job_spans_no_personal_data_and_exits_zero_on_sigterm() {
    let t = Tree::sample();
    let night = last_cut_off_night().to_string();
    let cfg_path = t.path().join("serve.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "root = {:?}\nexpected_carriers = [\"VIETTEL\", \"REDDI\"]\n[serve]\npoll_schedule = \"* * * * * *\"\nnightly_schedule = \"0 0 4 * * *\"\ncatch_up_days = 1\nhttp_address = \"127.0.0.1:0\"\n",
            t.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let log_path = t.path().join("serve.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_junkrecon"))
        .args([
            "--log-format",
            "json",
            "serve",
            "--config",
            cfg_path.to_str().unwrap(),
        ])
        .env("RUST_LOG", "junkrecon=debug")
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    wait_for("the caught-up night", 90, || published(t.path(), &night)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await; // a few polls more
    let pid = child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut status = None;
    wait_for("exit after SIGTERM", 30, || {
        status = child.try_wait().unwrap();
        status.is_some()
    })
    .await;
    assert_eq!(status.unwrap().code(), Some(0));

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_job = |l: &serde_json::Value| {
        l["spans"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["name"] == "job" && s["run_id"].is_string())
        })
    };
    assert!(lines.iter().filter(|l| in_job(l)).count() >= 3, "{log}");
    assert!(
        lines.iter().any(|l| l["fields"]["source"] == "REDDI"
            && l["fields"]["message"]
                .as_str()
                .unwrap()
                .contains("no accepted upload")),
        "a missing source is logged"
    );
    let mut personal = sample_values("landing/identity", &["person_id", "legacy_id", "full_name"]);
    personal.extend(sample_values(
        "landing/subscribers",
        &["id_number", "full_name"],
    ));
    personal.extend(sample_values(
        "landing/accounts",
        &["id_number", "full_name"],
    ));
    assert!(personal.len() > 1000);
    for v in &personal {
        assert!(
            !log.contains(v.as_str()),
            "a personal value appears in the log"
        );
    }
}
