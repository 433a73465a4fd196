//! The service's HTTP endpoints: `/metrics` (Prometheus text format 0.0.4),
//! `/healthz`, `/api/metrics?date=YYYY-MM-DD` (a committed night's metrics
//! JSON) and `/` (the dashboard of the newest night). Everything shown comes
//! from committed publications and job counters: no row values, and metric
//! labels are only kinds, source codes, reason codes and job names.

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Semaphore};
use tracing::warn;

use crate::night::NightDate;
use crate::publish::{self, SourceMetrics};
use crate::sources::SourceStatus;
use crate::state::Shared;
use crate::{Error, Result};

/// Limits that keep slow or hostile clients from holding the service.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A connection that has not sent a whole request head within this
    /// time (counted from the connection, or from the previous response on
    /// a kept-alive one) is closed.
    pub header_read_timeout: Duration,
    /// Connections served at once; one more is closed at once, unread.
    pub max_connections: usize,
}

/// Serves until the stop flag is set.
pub async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(shared.cfg.serve.http_header_timeout_secs.max(1)),
        max_connections: shared.cfg.serve.http_max_connections.max(1),
    };
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/metrics", get(api_metrics))
        .with_state(shared);
    serve_with_limits(listener, app, limits, stop).await;
}

/// Accepts connections under [`Limits`] and serves `app` on each (HTTP/1.1),
/// until the stop flag is set; then in-flight requests get a few seconds.
pub async fn serve_with_limits(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut conns = tokio::task::JoinSet::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    warn!(error = %e, "http: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            drop(stream);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stop = stop.clone();
        conns.spawn(async move {
            let _permit = permit;
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
                }
            }
        });
        while conns.try_join_next().is_some() {}
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while conns.join_next().await.is_some() {}
    })
    .await;
}

/// Completes when the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// One committed night as `/api/metrics` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NightDocument {
    /// The night's date D.
    pub as_of: NightDate,
    /// The run whose publication is committed.
    pub run_id: String,
    /// When it was published (UTC).
    pub published_at: String,
    /// carriers.json.
    pub carriers: Vec<SourceMetrics>,
    /// banks.json.
    pub banks: Vec<SourceMetrics>,
    /// sources.json (empty for nights published before it existed).
    pub sources: Vec<SourceStatus>,
}

/// The committed night `date`, or the newest committed night.
pub async fn night(shared: &Shared, date: Option<NightDate>) -> Result<Option<NightDocument>> {
    let root = &shared.root;
    let date = match date {
        Some(d) => d,
        None => match publish::committed_dates(root).await?.pop() {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    let Some((p, carriers, banks)) = publish::read_committed_metrics(root, date).await? else {
        return Ok(None);
    };
    let staged = format!(
        "{}{}",
        publish::stage_prefix(date, &p.run_id),
        publish::sources_key(date)
    );
    Ok(Some(NightDocument {
        carriers,
        banks,
        sources: root.get_json(&staged).await?.unwrap_or_default(),
        as_of: date,
        run_id: p.run_id,
        published_at: p.published_at,
    }))
}

fn internal(e: Error) -> Response {
    warn!(error = %e, "http: cannot read the store");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("store unavailable: {e}\n"),
    )
        .into_response()
}

async fn dashboard(State(shared): State<Arc<Shared>>) -> Response {
    match shared.root.get_opt(publish::DASHBOARD).await {
        Ok(Some(page)) => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Chưa có đêm nào được công bố / no night published yet\n",
        )
            .into_response(),
        Err(e) => internal(e),
    }
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    holder: String,
    poll: crate::state::JobStats,
    nightly: crate::state::JobStats,
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Json<Health> {
    Json(Health {
        status: "ok",
        holder: shared.holder.clone(),
        poll: shared.stats.get("poll"),
        nightly: shared.stats.get("nightly"),
    })
}

#[derive(Deserialize)]
struct DateQuery {
    date: Option<String>,
}

async fn api_metrics(State(shared): State<Arc<Shared>>, Query(q): Query<DateQuery>) -> Response {
    let date = match q.date.as_deref().map(str::parse::<NightDate>).transpose() {
        Ok(d) => d,
        Err(_) => {
            let d = q.date.unwrap_or_default();
            let msg = serde_json::json!({"error": format!("date {d:?} is not YYYY-MM-DD")});
            return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
        }
    };
    match night(&shared, date).await {
        Ok(Some(doc)) => Json(doc).into_response(),
        Ok(None) => {
            let what = q.date.as_deref().unwrap_or("any night");
            let msg = serde_json::json!({"error": format!("{what} is not published")});
            (StatusCode::NOT_FOUND, Json(msg)).into_response()
        }
        Err(e) => internal(e),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let doc = match night(&shared, None).await {
        Ok(d) => d,
        Err(e) => return internal(e),
    };
    let text = exposition(&shared, doc.as_ref());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

/// A Prometheus text-format (0.0.4) exposition being written: one `# HELP`
/// and `# TYPE` per family, then its samples. (prometheus-client writes only
/// OpenMetrics; the issue and `promtool check metrics` want this format.)
#[derive(Default)]
struct Exposition {
    out: String,
}

impl Exposition {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let _ = writeln!(self.out, "# HELP junkrecon_{name} {help}");
        let _ = writeln!(self.out, "# TYPE junkrecon_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "junkrecon_{name}");
        if !labels.is_empty() {
            let inner: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
                .collect();
            let _ = write!(self.out, "{{{}}}", inner.join(","));
        }
        let _ = writeln!(self.out, " {value}");
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The `/metrics` text for the newest committed night and the job counters.
pub fn exposition(shared: &Shared, doc: Option<&NightDocument>) -> String {
    let mut e = Exposition::default();
    if let Some(doc) = doc {
        night_metrics(&mut e, doc);
    }
    job_metrics(&mut e, shared);
    e.out
}

/// One gauge family with a value per source (absent values are left out).
fn per_source(
    e: &mut Exposition,
    doc: &NightDocument,
    name: &str,
    help: &str,
    value: Reading<SourceMetrics>,
) {
    e.family(name, "gauge", help);
    for (kind, list) in [("carrier", &doc.carriers), ("bank", &doc.banks)] {
        for m in list {
            if let Some(v) = value(m) {
                e.sample(name, &[("kind", kind), ("source", &m.source)], v);
            }
        }
    }
}

fn night_metrics(e: &mut Exposition, doc: &NightDocument) {
    if let Some(t) = doc.as_of.date().and_hms_opt(0, 0, 0) {
        let name = "published_night_timestamp_seconds";
        e.family(
            name,
            "gauge",
            "Date D of the newest committed night (midnight UTC).",
        );
        e.sample(name, &[], t.and_utc().timestamp() as f64);
    }
    let families: [(&str, &str, Reading<SourceMetrics>); 10] = [
        (
            "clean_pct",
            "Clean % of the newest night (absent when null).",
            |m| m.clean_pct,
        ),
        (
            "cleanup_progress_pct",
            "Cleanup progress % since the source's first published night (absent when null).",
            |m| m.cleanup_progress_pct,
        ),
        ("rows", "Accepted rows of the extract used.", |m| {
            Some(m.total as f64)
        }),
        ("flagged_rows", "Rows with at least one reason.", |m| {
            Some(m.flagged as f64)
        }),
        (
            "rows_rejected",
            "Row-level rejects of the extract used.",
            |m| Some(m.rows_rejected as f64),
        ),
        (
            "newly_flagged_keys",
            "Keys flagged now and not in the previous night.",
            |m| Some(m.newly_flagged as f64),
        ),
        (
            "resolved_keys",
            "Keys flagged in the previous night and not now (gone ones included).",
            |m| Some(m.resolved as f64),
        ),
        (
            "gone_keys",
            "Keys flagged in the previous night and no longer in the extract.",
            |m| Some(m.gone as f64),
        ),
        (
            "overdue",
            "Flagged rows whose required action (contract §9) is not reflected in their status.",
            |m| Some(m.overdue as f64),
        ),
        (
            "compliance_pct",
            "Share of rows whose action is due that show it, % (absent when none is due).",
            |m| m.compliance_pct,
        ),
    ];
    for (name, help, value) in families {
        per_source(e, doc, name, help, value);
    }
    breakdown(
        e,
        doc,
        ("flagged_rows_by_reason", "Rows carrying each reason code."),
        "reason",
        |m| &m.flags_by_reason,
    );
    breakdown(
        e,
        doc,
        (
            "flagged_rows_by_required_action",
            "Flagged rows by the action required now (contract §9).",
        ),
        "action",
        |m| &m.required_action,
    );
    source_states(e, &doc.sources);
}

/// One gauge family with a value per source and per key of one of its
/// maps (reasons, actions), the key as the label `label`.
fn breakdown(
    e: &mut Exposition,
    doc: &NightDocument,
    (name, help): (&str, &str),
    label: &str,
    map: fn(&SourceMetrics) -> &std::collections::BTreeMap<String, u64>,
) {
    e.family(name, "gauge", help);
    for (kind, list) in [("carrier", &doc.carriers), ("bank", &doc.banks)] {
        for m in list {
            for (key, n) in map(m) {
                let l = [("kind", kind), ("source", m.source.as_str()), (label, key)];
                e.sample(name, &l, *n as f64);
            }
        }
    }
}

/// Reads one metric value out of a record (`None`: the sample is left out).
type Reading<T> = fn(&T) -> Option<f64>;

/// Upload states from sources.json: age, missing, rejected uploads.
fn source_states(e: &mut Exposition, sources: &[SourceStatus]) {
    let families: [(&str, &str, Reading<SourceStatus>); 5] = [
        (
            "extract_age_days",
            "Whole days between the night D and the as_of of the extract used.",
            |s| s.age_days.map(|a| a as f64),
        ),
        (
            "source_missing",
            "1 when the source has no accepted upload for D (expected sources, or no extract at all).",
            |s| Some(if s.status == crate::sources::SourceState::Missing { 1.0 } else { 0.0 }),
        ),
        (
            "rejected_uploads",
            "Rejected uploads not superseded by an accepted one.",
            |s| Some(s.rejected_uploads.len() as f64),
        ),
        (
            "held_uploads",
            "Uploads held by the volume guard (contract §8), not released.",
            |s| Some(s.held_uploads.len() as f64),
        ),
        (
            "held_since_timestamp_seconds",
            "Unix time the oldest held upload of the source was held (absent when none).",
            |s| {
                s.held_uploads
                    .iter()
                    .filter_map(|h| chrono::DateTime::parse_from_rfc3339(&h.decided_at).ok())
                    .map(|t| t.timestamp() as f64)
                    .reduce(f64::min)
            },
        ),
    ];
    for (name, help, value) in families {
        e.family(name, "gauge", help);
        for s in sources {
            if let Some(v) = value(s) {
                e.sample(name, &[("kind", &s.kind), ("source", &s.source)], v);
            }
        }
    }
}

fn job_metrics(e: &mut Exposition, shared: &Shared) {
    let stats: Vec<(&str, crate::state::JobStats)> = ["poll", "nightly"]
        .into_iter()
        .map(|j| (j, shared.stats.get(j)))
        .collect();
    let families: [(&str, &str, &str, Reading<crate::state::JobStats>); 5] = [
        ("job_runs_total", "counter", "Job attempts started.", |s| {
            Some(s.runs as f64)
        }),
        (
            "job_failures_total",
            "counter",
            "Job attempts that failed.",
            |s| Some(s.failures as f64),
        ),
        (
            "job_last_duration_seconds",
            "gauge",
            "Wall time of the last finished attempt.",
            |s| s.last_duration_secs,
        ),
        (
            "job_last_success_timestamp_seconds",
            "gauge",
            "Unix time of the last successful attempt.",
            |s| s.last_success_unix.map(|t| t as f64),
        ),
        (
            "job_running",
            "gauge",
            "1 while an attempt is in flight.",
            |s| Some(if s.running { 1.0 } else { 0.0 }),
        ),
    ];
    for (name, kind, help, value) in families {
        e.family(name, kind, help);
        for (job, s) in &stats {
            // `task`, not `job`: Prometheus reserves `job` for the scrape target.
            if let Some(v) = value(s) {
                e.sample(name, &[("task", job)], v);
            }
        }
    }
}
