//! The service's HTTP endpoints: `/metrics` (Prometheus/OpenMetrics text),
//! `/healthz`, `/api/metrics?date=YYYY-MM-DD` (a committed night's metrics
//! JSON) and `/` (the dashboard of the newest night). Everything shown comes
//! from committed publications and job counters: no row values, and metric
//! labels are only kinds, source codes, reason codes and job names.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::warn;

use crate::publish::{self, SourceMetrics};
use crate::serve::Shared;
use crate::sources::SourceStatus;
use crate::{Error, Result};

/// Serves until the stop flag is set.
pub async fn run(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let app = Router::new()
        .route("/", get(dashboard))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/metrics", get(api_metrics))
        .with_state(shared);
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(stopped)
        .await
    {
        warn!(error = %e, "http server stopped");
    }
}

/// One committed night as `/api/metrics` returns it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NightDocument {
    /// The night's date D.
    pub as_of: String,
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
pub async fn night(shared: &Shared, date: Option<&str>) -> Result<Option<NightDocument>> {
    let root = &shared.root;
    let date = match date {
        Some(d) => d.to_string(),
        None => match publish::committed_dates(root).await?.pop() {
            Some(d) => d,
            None => return Ok(None),
        },
    };
    let Some(p) = publish::read_current(root, &date).await? else {
        return Ok(None);
    };
    let stage = publish::stage_prefix(&date, &p.run_id);
    let read = |name: &str| format!("{stage}metrics/date={date}/{name}.json");
    Ok(Some(NightDocument {
        carriers: root.get_json(&read("carriers")).await?.unwrap_or_default(),
        banks: root.get_json(&read("banks")).await?.unwrap_or_default(),
        sources: root.get_json(&read("sources")).await?.unwrap_or_default(),
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
    poll: crate::serve::JobStats,
    nightly: crate::serve::JobStats,
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
    if let Some(d) = &q.date {
        if !crate::manifest::is_date(d) {
            let msg = serde_json::json!({"error": format!("date {d:?} is not YYYY-MM-DD")});
            return (StatusCode::BAD_REQUEST, Json(msg)).into_response();
        }
    }
    match night(&shared, q.date.as_deref()).await {
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
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

type Labels = Vec<(String, String)>;
type FloatFamily = Family<Labels, Gauge<f64, AtomicU64>>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Registers a gauge family and returns it.
fn gauge(reg: &mut Registry, name: &str, help: &str) -> FloatFamily {
    let f = FloatFamily::default();
    reg.register(name, help, f.clone());
    f
}

/// The `/metrics` text for the newest committed night and the job counters.
pub fn exposition(shared: &Shared, doc: Option<&NightDocument>) -> String {
    let mut reg = Registry::with_prefix("junkrecon");
    if let Some(doc) = doc {
        night_metrics(&mut reg, doc);
    }
    job_metrics(&mut reg, shared);
    let mut out = String::new();
    if encode(&mut out, &reg).is_err() {
        return String::from("# EOF\n");
    }
    out
}

fn night_metrics(reg: &mut Registry, doc: &NightDocument) {
    let night = gauge(
        reg,
        "published_night_timestamp_seconds",
        "Date D of the newest committed night (midnight UTC)",
    );
    let clean = gauge(
        reg,
        "clean_pct",
        "Clean % of the newest night (null: absent)",
    );
    let progress = gauge(
        reg,
        "cleanup_progress_pct",
        "Cleanup progress % since the source's first published night",
    );
    let total = gauge(reg, "rows", "Accepted rows of the extract used");
    let flagged = gauge(reg, "flagged_rows", "Rows with at least one reason");
    let by_reason = gauge(reg, "flagged_rows_by_reason", "Rows carrying each reason");
    let rejected = gauge(
        reg,
        "rows_rejected",
        "Row-level rejects of the extract used",
    );
    let newly = gauge(
        reg,
        "newly_flagged_keys",
        "Keys flagged now and not the night before",
    );
    let resolved = gauge(
        reg,
        "resolved_keys",
        "Keys flagged the night before and not now",
    );
    let age = gauge(
        reg,
        "extract_age_days",
        "D minus the as_of of the extract used",
    );
    let missing = gauge(
        reg,
        "source_missing",
        "1 when the source has no accepted upload for D (expected sources, or no extract at all)",
    );
    let rejected_uploads = gauge(
        reg,
        "rejected_uploads",
        "Rejected uploads not superseded by an accepted one",
    );
    if let Some(t) = chrono::NaiveDate::parse_from_str(&doc.as_of, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        night
            .get_or_create(&vec![])
            .set(t.and_utc().timestamp() as f64);
    }
    for (kind, list) in [("carrier", &doc.carriers), ("bank", &doc.banks)] {
        for m in list {
            let l = labels(&[("kind", kind), ("source", &m.source)]);
            if let Some(p) = m.clean_pct {
                clean.get_or_create(&l).set(p);
            }
            if let Some(p) = m.cleanup_progress_pct {
                progress.get_or_create(&l).set(p);
            }
            total.get_or_create(&l).set(m.total as f64);
            flagged.get_or_create(&l).set(m.flagged as f64);
            rejected.get_or_create(&l).set(m.rows_rejected as f64);
            newly.get_or_create(&l).set(m.newly_flagged as f64);
            resolved.get_or_create(&l).set(m.resolved as f64);
            for (reason, n) in &m.flags_by_reason {
                let lr = labels(&[("kind", kind), ("source", &m.source), ("reason", reason)]);
                by_reason.get_or_create(&lr).set(*n as f64);
            }
        }
    }
    for s in &doc.sources {
        let l = labels(&[("kind", &s.kind), ("source", &s.source)]);
        if let Some(a) = s.age_days {
            age.get_or_create(&l).set(a as f64);
        }
        let is_missing = if s.status == "missing" { 1.0 } else { 0.0 };
        missing.get_or_create(&l).set(is_missing);
        rejected_uploads
            .get_or_create(&l)
            .set(s.rejected_uploads.len() as f64);
    }
}

fn job_metrics(reg: &mut Registry, shared: &Shared) {
    let runs = Family::<Labels, Counter>::default();
    reg.register("job_runs", "Job attempts started", runs.clone());
    let failures = Family::<Labels, Counter>::default();
    reg.register("job_failures", "Job attempts that failed", failures.clone());
    let duration = gauge(
        reg,
        "job_last_duration_seconds",
        "Wall time of the last finished attempt",
    );
    let success = gauge(
        reg,
        "job_last_success_timestamp_seconds",
        "Unix time of the last successful attempt",
    );
    let running = gauge(reg, "job_running", "1 while an attempt is in flight");
    for job in ["poll", "nightly"] {
        let s = shared.stats.get(job);
        let l = labels(&[("job", job)]);
        runs.get_or_create(&l).inc_by(s.runs);
        failures.get_or_create(&l).inc_by(s.failures);
        if let Some(d) = s.last_duration_secs {
            duration.get_or_create(&l).set(d);
        }
        if let Some(t) = s.last_success_unix {
            success.get_or_create(&l).set(t as f64);
        }
        running
            .get_or_create(&l)
            .set(if s.running { 1.0 } else { 0.0 });
    }
}
