//! One nightly run for a date D: ingest, reconcile, publish, then a run
//! record under `runs/date=D/` that a person can read or query (which uploads
//! were accepted or rejected and why, which extracts were used, row counts,
//! per-stage timings, program version). Never prints or logs row values.

use std::time::Instant;

use serde::Serialize;
use tracing::{info, warn, Instrument};

use crate::catalog::Inputs;
use crate::catalog::{self, Chosen};
use crate::config::Config;
use crate::fingerprints;
use crate::ingest::{self, IngestReport};
use crate::night::NightDate;
use crate::plans::PlannerMemory;
use crate::publish::{self, SourceMetrics};
use crate::reconcile;
use crate::schema::Extract;
use crate::sources;
use crate::store::Root;
use crate::{Error, Result};

/// Time spent in one stage.
#[derive(Debug, Clone, Serialize)]
pub struct StageTiming {
    /// ingest, reconcile, publish.
    pub stage: String,
    /// Wall seconds.
    pub seconds: f64,
}

/// One line of the printed summary.
#[derive(Debug, Clone, Serialize)]
pub struct SummaryRow {
    /// `carrier` or `bank`.
    pub kind: String,
    /// Source code.
    pub source: String,
    /// as_of of the extract used.
    pub extract_as_of: NightDate,
    /// Accepted rows.
    pub total: u64,
    /// Flagged rows.
    pub flagged: u64,
    /// Clean percentage.
    pub clean_pct: Option<f64>,
    /// Keys newly flagged.
    pub newly_flagged: u64,
    /// Keys resolved since the previous run.
    pub resolved: u64,
    /// Rejected uploads of this source (dates ≤ D, not superseded by an accepted correction).
    pub rejected_uploads: u64,
    /// Flagged rows whose required action is overdue (§9).
    pub overdue: u64,
    /// Compliance with the enforcement timeline, % (none when no action is due).
    pub compliance_pct: Option<f64>,
    /// `as_of` of the newest held upload not used (§8), if any.
    pub held_as_of: Option<NightDate>,
}

words! {
    /// How a run ended.
    pub enum RunStatus {
        /// Published.
        Succeeded = "succeeded",
        /// Stopped by an error (recorded); nothing of it was published.
        Failed = "failed",
        /// Stopped at shutdown before it finished.
        Abandoned = "abandoned",
    }
}

words! {
    /// Why a run started.
    pub enum Cause {
        /// `junkrecon run` by hand (or the demo).
        Manual = "manual",
        /// The service's nightly cut-off.
        Schedule = "schedule",
        /// A night the service missed while it was down.
        CatchUp = "catch-up",
    }
}

/// The run record written to `runs/date=D/<run_id>.json`.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    /// Unique run id.
    pub run_id: String,
    /// Run date D.
    pub as_of: NightDate,
    /// junkrecon version.
    pub program_version: String,
    /// Succeeded, failed or abandoned.
    pub status: RunStatus,
    /// Failure reason, if any.
    pub error: Option<String>,
    /// Start (UTC).
    pub started_at: String,
    /// End (UTC).
    pub finished_at: String,
    /// Per-stage timings.
    pub stages: Vec<StageTiming>,
    /// The memory pool of the run (0: none).
    pub memory_limit_mb: u64,
    /// The reconciliation's materialised steps: join planning and time
    /// (for the reader; the next night plans from [`crate::plans`], not from here).
    pub reconcile_steps: Vec<reconcile::StepPlan>,
    /// What ingest decided in this run.
    pub ingest: IngestReport,
    /// Extracts used (absent when the run stopped before choosing).
    pub inputs: Option<Inputs>,
    /// Per-source summary.
    pub summary: Vec<SummaryRow>,
    /// Each source's upload state for the night (current, stale, missing; rejected uploads).
    pub sources: Vec<sources::SourceStatus>,
    /// Files published (or, when the publication was kept, the files it holds).
    pub published_files: usize,
    /// The run whose publication of the night was kept: nothing the night is
    /// computed from changed since it published, and every file it lists
    /// still holds its sha256 ([`crate::fingerprints`]). `None`: this run
    /// computed and published the night.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kept_publication_of: Option<String>,
    /// Rules applied.
    pub max_subscriptions_per_person: u32,
    /// What started the run: `manual`, `schedule` or `catch-up`.
    pub trigger: Cause,
    /// Attempt number (retries of a failed scheduled run count up from 1).
    pub attempt: u32,
}

/// Why a run starts: who asked and which attempt it is, and the lease it holds.
#[derive(Debug, Clone)]
pub struct RunMeta {
    /// The run id (chosen before the run, so a service can name an abandoned run).
    pub run_id: String,
    /// Manual, schedule or catch-up.
    pub trigger: Cause,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// Compute and publish the night even when its publication stands
    /// (`run --recompute`).
    pub recompute: bool,
}

impl RunMeta {
    /// A run started by hand.
    pub fn manual(date: NightDate) -> RunMeta {
        RunMeta {
            run_id: new_run_id(date),
            trigger: Cause::Manual,
            attempt: 1,
            recompute: false,
        }
    }
}

impl RunRecord {
    /// A record for a run that has not finished (yet).
    pub fn start(date: NightDate, cfg: &Config, meta: &RunMeta) -> RunRecord {
        RunRecord {
            run_id: meta.run_id.clone(),
            as_of: date,
            program_version: env!("CARGO_PKG_VERSION").to_string(),
            status: RunStatus::Failed,
            error: None,
            started_at: now(),
            finished_at: String::new(),
            stages: vec![],
            memory_limit_mb: cfg.memory_limit_mb,
            reconcile_steps: vec![],
            ingest: IngestReport::default(),
            inputs: None,
            summary: vec![],
            sources: vec![],
            published_files: 0,
            kept_publication_of: None,
            max_subscriptions_per_person: cfg.max_subscriptions_per_person,
            trigger: meta.trigger,
            attempt: meta.attempt,
        }
    }

    /// Writes the record under `runs/date=D/<run_id>.json`.
    pub async fn save(&self, root: &Root) -> Result<()> {
        let body = serde_json::to_vec_pretty(self).map_err(|e| Error::encode("run record", e))?;
        root.put(
            &format!("runs/date={}/{}.json", self.as_of, self.run_id),
            body,
        )
        .await
    }
}

/// A fresh run id: the night's date (or `poll`), UTC time, and a random suffix.
pub fn new_run_id(prefix: impl std::fmt::Display) -> String {
    let now = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    format!("{prefix}_{now}_{:04x}", rand::random::<u16>())
}

/// Runs ingest, reconcile and publish for `date`, started by hand: takes
/// the root's lease first (waiting up to `serve.lease_secs` for a job in
/// flight), runs the night under it ([`run_as`]) and gives it back. The
/// run record is written whether or not the run succeeds; an error means
/// the run could not proceed.
pub async fn run(root: &Root, date: NightDate, cfg: &Config) -> Result<RunRecord> {
    let ttl = std::time::Duration::from_secs(cfg.serve.lease_secs);
    let lease = crate::lease::Lease::acquire_waiting(
        root,
        &crate::lease::holder_id(),
        &format!("run {date}"),
        ttl,
        std::time::Duration::from_millis(500),
        ttl,
    )
    .await?;
    let result = run_as(root, date, cfg, &RunMeta::manual(date), &lease.fence()).await;
    if let Err(e) = lease.release().await {
        warn!(error = %e, "could not release the lease (it expires by itself)");
    }
    result
}

/// [`run`] with the caller's run id, trigger and attempt number, under the
/// lease the caller holds: `fence` is the proof, checked before the run
/// removes other runs' leftovers, before it reconciles and before each
/// commit step, so a run that lost its lease changes nothing published.
pub async fn run_as(
    root: &Root,
    date: NightDate,
    cfg: &Config,
    meta: &RunMeta,
    fence: &crate::lease::Fence,
) -> Result<RunRecord> {
    let span = tracing::info_span!("run", run_id = %meta.run_id, as_of = %date, trigger = %meta.trigger, attempt = meta.attempt);
    async {
        let mut record = RunRecord::start(date, cfg, meta);
        // Removing other runs' work folders is safe only under the lease.
        fence.check("starting the run").await?;
        remove_stale_work(root, &meta.run_id).await?;
        remove_strays(root).await?;
        let work = format!("work/{}/", meta.run_id);
        let result = run_stages(root, date, cfg, meta, fence, &work, &mut record).await;
        let _ = root.delete_prefix(&work).await;
        record.finished_at = now();
        match &result {
            Ok(()) => record.status = RunStatus::Succeeded,
            Err(e) => record.error = Some(e.to_string()),
        }
        // The record is written whether or not the run succeeded; a failure
        // to write it never hides why the run failed.
        match (record.save(root).await, result) {
            (Ok(()), r) => r.map(|()| record),
            (Err(save), Ok(())) => Err(save),
            (Err(save), Err(e)) => {
                warn!(error = %save, "the run record could not be written");
                Err(e)
            }
        }
    }
    .instrument(span)
    .await
}

/// Removes the work folders of runs that were stopped before they could
/// remove their own (a killed process, a lost machine; at 30M persons one
/// holds ≈ 9 GiB). Runs hold the lease (the CLI and the service take it
/// first), so a folder under `work/` other than this run's is never in use.
async fn remove_stale_work(root: &Root, run_id: &str) -> Result<()> {
    for dir in root.list_dirs("work/").await? {
        if dir != run_id {
            root.delete_prefix(&format!("work/{dir}/")).await?;
            info!(run_id = %dir, "removed the work folder of an interrupted run");
        }
    }
    Ok(())
}

/// Removes what interrupted writes left under the root's own folders (a
/// local root's `name#N` staging files, which no listing shows). Runs hold
/// the lease, so no write is in flight.
async fn remove_strays(root: &Root) -> Result<()> {
    for prefix in [
        "catalog",
        "curated",
        "metrics",
        "publications",
        "reports",
        "runs",
        "work",
    ] {
        let n = root.remove_strays(prefix).await?;
        if n > 0 {
            info!(prefix, files = n, "removed leftovers of interrupted writes");
        }
    }
    Ok(())
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn run_stages(
    root: &Root,
    date: NightDate,
    cfg: &Config,
    meta: &RunMeta,
    fence: &crate::lease::Fence,
    work: &str,
    record: &mut RunRecord,
) -> Result<()> {
    let run_id = meta.run_id.as_str();
    let repaired = publish::repair(root).await?;
    if !repaired.is_empty() {
        info!(dates = ?repaired, "completed publications interrupted earlier");
    }
    let t = Instant::now();
    record.ingest = ingest::ingest(root, run_id, cfg).await?;
    record.stages.push(stage("ingest", t));
    info!(
        decided = record.ingest.decided.len(),
        already_decided = record.ingest.already_decided,
        "ingest done"
    );
    undecided_uploads(&record.ingest, date)?;
    fence.check("reconciling").await?;

    let t = Instant::now();
    let inputs = choose_inputs(root, date).await?;
    record.inputs = Some(inputs.clone());
    let ledgers = sources::SourceLedgers::read(root).await?;
    let sources = sources::statuses(&ledgers, &inputs, date, cfg);
    let earlier = crate::publications::committed_before(root, date).await?;
    let fingerprint = fingerprints::of_night(date, cfg, &inputs, &sources, &earlier)?;
    if !meta.recompute {
        if let Some(kept) = fingerprints::standing(root, date, &fingerprint).await? {
            return keep_publication(root, date, kept, sources, record, t).await;
        }
    }
    let ctx = crate::engine::night_session(root, cfg).await?;
    let before = PlannerMemory::read(root).await?;
    let sort_merge_first =
        reconcile::sort_merge_first(cfg, &inputs, before.memory_limit_mb, &before.steps);
    record.reconcile_steps =
        reconcile::reconcile(&ctx, &inputs, date, cfg, work, &sort_merge_first)
            .await
            .map_err(|e| on_engine(cfg, e))?;
    remember_plans(root, record).await;
    record.stages.push(stage("reconcile", t));

    let t = Instant::now();
    let staging = publish::stage_prefix(date, run_id);
    let history = publish::history(&earlier, &inputs);
    let reports = publish::write_reports(&ctx, root, &inputs, &history, date, &staging, cfg)
        .await
        .map_err(|e| on_engine(cfg, e))?;
    let (carriers, banks) = publish::metrics(&inputs, &history, date, &reports)?;
    warn_missing(&sources);
    let night = publish::NightMetrics {
        carriers,
        banks,
        sources,
    };
    let published = publish::commit(root, date, run_id, reports.files, &night, fence).await?;
    record.published_files = published.files.len();
    record.stages.push(stage("publish", t));
    record.summary = summary(&night.sources, &night.carriers, &night.banks);
    record.sources = night.sources;
    info!(files = published.files.len(), "published");
    // Without this record the next re-run computes the night again: a
    // warning, not a failed night.
    if let Err(e) = fingerprints::remember(root, date, run_id, &fingerprint).await {
        warn!(error = %e, "the night's fingerprint could not be written");
    }
    Ok(())
}

/// Sources the night has no accepted upload of, in the log.
fn warn_missing(sources: &[sources::SourceStatus]) {
    for s in sources
        .iter()
        .filter(|s| s.status == crate::sources::SourceState::Missing)
    {
        let latest = s
            .extract_as_of
            .map_or_else(|| "none".into(), NightDate::text);
        warn!(kind = %s.kind, source = %s.source, extract_as_of = %latest,
            "no accepted upload for the night: published with the latest extract");
    }
}

/// The night's publication stands (same build, inputs, upload states,
/// settings and earlier nights, every file whole): the record says so and
/// carries its figures; nothing is written but the record.
async fn keep_publication(
    root: &Root,
    date: NightDate,
    kept: crate::publications::Published,
    sources: Vec<sources::SourceStatus>,
    record: &mut RunRecord,
    t: Instant,
) -> Result<()> {
    let (_, carriers, banks) = publish::read_committed_metrics(root, date)
        .await?
        .ok_or_else(|| Error::CannotRun(format!("night {date} is no longer published")))?;
    warn_missing(&sources);
    record.summary = summary(&sources, &carriers, &banks);
    record.sources = sources;
    record.published_files = kept.files.len();
    record.kept_publication_of = Some(kept.run_id.clone());
    record.stages.push(stage("keep", t));
    info!(kept = %kept.run_id, files = kept.files.len(),
        "nothing the night is computed from changed since it was published: its publication stands (run --recompute computes it again)");
    Ok(())
}

/// A night is never published over an upload that is complete but not yet
/// decided because the store failed while it was read: that would publish
/// the source's previous extract as if nothing had arrived. Uploads dated
/// after the night do not matter to it.
fn undecided_uploads(report: &IngestReport, date: NightDate) -> Result<()> {
    let waiting: Vec<String> = report
        .deferred
        .iter()
        .filter(|d| d.key.as_of <= date)
        .map(|d| {
            format!(
                "{} ({} attempts; {})",
                d.key.label(),
                d.attempts,
                d.last_error
            )
        })
        .collect();
    if waiting.is_empty() {
        return Ok(());
    }
    Err(Error::CannotRun(format!(
        "not published: the store failed while reading {} upload(s) for the night, which stay undecided until read: {}",
        waiting.len(),
        waiting.join("; ")
    )))
}

/// Keeps this reconciliation's plans for the next night. A memory that
/// cannot be written only costs the next night a hash-join attempt, so it
/// is a warning, not a failed night.
async fn remember_plans(root: &Root, record: &RunRecord) {
    let memory = PlannerMemory {
        run_id: record.run_id.clone(),
        as_of: Some(record.as_of),
        memory_limit_mb: record.memory_limit_mb,
        steps: record.reconcile_steps.clone(),
    };
    if let Err(e) = memory.save(root).await {
        warn!(error = %e, "the planner memory could not be written");
    }
}

/// The run records under `runs/date=D/` (not the service's poll records,
/// which share `runs/`).
async fn run_records(root: &Root) -> Result<Vec<object_store::ObjectMeta>> {
    let mut all = root.list("runs/").await?;
    all.retain(|m| m.location.as_ref().starts_with("runs/date="));
    Ok(all)
}

/// A query that failed on a cluster says which engine it ran on, and a job
/// the scheduler cancelled ("Job ... failed: Cancelled") says why that
/// happens. Other errors, and every error of the local engine, are as they
/// are.
fn on_engine(cfg: &Config, e: Error) -> Error {
    match (&cfg.engine, e) {
        (crate::config::Engine::Local, e) => e,
        (engine, e @ Error::Query { .. }) => {
            let why = if e.to_string().ends_with("failed: Cancelled") {
                " (a scheduler cancels a job that runs past its --job-timeout-secs; its log names the job)"
            } else {
                ""
            };
            Error::CannotRun(format!("engine {engine}: {e}{why}"))
        }
        (_, e) => e,
    }
}

fn stage(name: &str, t: Instant) -> StageTiming {
    StageTiming {
        stage: name.into(),
        seconds: t.elapsed().as_secs_f64(),
    }
}

/// The extracts the run uses (§4); no identity snapshot means no run.
pub async fn choose_inputs(root: &Root, date: NightDate) -> Result<Inputs> {
    let identity: Chosen = catalog::choose(root, Extract::Identity, date)
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::CannotRun(format!(
                "no accepted identity snapshot with as_of <= {date} under landing/identity/"
            ))
        })?;
    Ok(Inputs {
        identity,
        subscribers: catalog::choose(root, Extract::Subscribers, date).await?,
        accounts: catalog::choose(root, Extract::Accounts, date).await?,
    })
}

/// One line per carrier and bank for the CLI table. Its "rejected uploads"
/// are the ones the dashboard and `sources.json` show
/// ([`sources::rejected_uploads`]), counted.
fn summary(
    statuses: &[sources::SourceStatus],
    carriers: &[SourceMetrics],
    banks: &[SourceMetrics],
) -> Vec<SummaryRow> {
    let mut rows = vec![];
    for (kind, metrics) in [("carrier", carriers), ("bank", banks)] {
        for m in metrics {
            let rejected = statuses
                .iter()
                .find(|s| s.kind == kind && s.source == m.source)
                .map_or(0, |s| s.rejected_uploads.len() as u64);
            rows.push(SummaryRow {
                kind: kind.into(),
                source: m.source.clone(),
                extract_as_of: m.extract_as_of,
                total: m.total,
                flagged: m.flagged,
                clean_pct: m.clean_pct,
                newly_flagged: m.newly_flagged,
                resolved: m.resolved,
                rejected_uploads: rejected,
                overdue: m.overdue,
                compliance_pct: m.compliance_pct,
                held_as_of: m.held_as_of,
            });
        }
    }
    rows
}

/// One line naming the sources with no accepted upload for the night, if any.
pub fn missing_line(sources: &[sources::SourceStatus]) -> Option<String> {
    let missing: Vec<String> = sources
        .iter()
        .filter(|s| s.status == crate::sources::SourceState::Missing)
        .map(|s| match &s.extract_as_of {
            Some(d) => format!("{} {} (used its {d} extract)", s.kind, s.source),
            None => format!("{} {} (no accepted extract at all)", s.kind, s.source),
        })
        .collect();
    (!missing.is_empty()).then(|| format!("missing uploads for the night: {}", missing.join(", ")))
}

/// The summary as a plain-text table.
pub fn summary_table(rows: &[SummaryRow]) -> String {
    let header = [
        "kind",
        "source",
        "extract",
        "total",
        "flagged",
        "clean %",
        "new",
        "resolved",
        "rejected uploads",
        "overdue",
        "compliance %",
        "held",
    ];
    let body: Vec<[String; 12]> = rows
        .iter()
        .map(|r| {
            [
                r.kind.clone(),
                r.source.clone(),
                r.extract_as_of.text(),
                r.total.to_string(),
                r.flagged.to_string(),
                r.clean_pct
                    .map(|p| format!("{p:.2}"))
                    .unwrap_or_else(|| "-".into()),
                r.newly_flagged.to_string(),
                r.resolved.to_string(),
                r.rejected_uploads.to_string(),
                r.overdue.to_string(),
                r.compliance_pct
                    .map(|p| format!("{p:.2}"))
                    .unwrap_or_else(|| "-".into()),
                r.held_as_of.map_or_else(|| "-".into(), NightDate::text),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &body {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 3 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in &body {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Releases a held upload (§8) under the root's lease (a pass of ingest
/// may be writing the ledger): from the next run on it counts as accepted.
/// `released_by` names who ran it (user and host). An upload that is not
/// held is an error, and nothing changes.
pub async fn release(
    root: &Root,
    key: &crate::manifest::UploadKey,
    reason: &str,
    released_by: &str,
    cfg: &Config,
) -> Result<catalog::FolderLedger> {
    if reason.trim().is_empty() {
        return Err(Error::CannotRun(
            "--reason is empty: say why the upload may be used".into(),
        ));
    }
    let ttl = std::time::Duration::from_secs(cfg.serve.lease_secs);
    let lease = crate::lease::Lease::acquire_waiting(
        root,
        &crate::lease::holder_id(),
        &format!("release {}", key.label()),
        ttl,
        std::time::Duration::from_millis(500),
        ttl,
    )
    .await?;
    let result = async {
        lease.fence().check("releasing").await?;
        catalog::release(root, key, reason, released_by).await
    }
    .await;
    if let Err(e) = lease.release().await {
        warn!(error = %e, "could not release the lease (it expires by itself)");
    }
    let ledger = result?;
    info!(upload = %key.label(), "held upload released");
    Ok(ledger)
}

/// The command that releases a held upload, as `status` prints it.
pub fn release_command(root: &str, key: &crate::manifest::UploadKey) -> String {
    format!(
        "junkrecon release --data {root} --extract {} --source {} --as-of {} --reason \"...\"",
        key.extract, key.source, key.as_of
    )
}

/// A plain-text view of the ledger (every upload decision in use) and the
/// latest runs, for `junkrecon status`. Dates after `as_of` are left out when given.
pub async fn status_text(root: &Root, as_of: Option<NightDate>) -> Result<String> {
    let mut rows = vec![];
    let mut held = vec![];
    let mut commands = vec![];
    for extract in Extract::ALL {
        for l in catalog::all_ledgers(root, extract).await? {
            if as_of.is_some_and(|d| l.key.as_of > d) {
                continue;
            }
            if let Some(p) = &l.pending {
                rows.push([
                    l.key.extract.to_string(),
                    l.key.source.clone(),
                    l.key.as_of.text(),
                    format!(
                        "pending (attempt {} of {})",
                        p.attempts,
                        catalog::MAX_ATTEMPTS
                    ),
                    String::new(),
                    String::new(),
                    format!("store failed while reading it: {}", p.last_error),
                ]);
                continue;
            }
            let Some(last) = l.decisions.last() else {
                continue;
            };
            let in_use = match (l.accepted(), last.status) {
                (Some(_), crate::catalog::UploadStatus::Rejected) => " (earlier version in use)",
                (Some(_), crate::catalog::UploadStatus::Held) => " (earlier version in use)",
                (_, crate::catalog::UploadStatus::Accepted)
                    if last.hold.as_ref().is_some_and(|h| h.released.is_some()) =>
                {
                    " (released)"
                }
                _ => "",
            };
            if l.held().is_some() {
                held.push([
                    l.key.extract.to_string(),
                    l.key.source.clone(),
                    l.key.as_of.text(),
                    last.decided_at.clone(),
                    last.reason.clone(),
                ]);
                commands.push(release_command(root.display(), &l.key));
            }
            rows.push([
                l.key.extract.to_string(),
                l.key.source.clone(),
                l.key.as_of.text(),
                format!("{}{in_use}", last.status),
                last.rows_accepted.to_string(),
                last.rows_rejected.to_string(),
                last.reason.clone(),
            ]);
        }
    }
    let mut out = String::from("Uploads (catalog/uploads/):\n");
    out.push_str(&table(
        &[
            "extract",
            "source",
            "as_of",
            "status",
            "rows",
            "rows rejected",
            "reason",
        ],
        &rows,
    ));
    if !held.is_empty() {
        out.push_str(
            "\nHeld uploads (not used until released; the previous extract stays in use):\n",
        );
        out.push_str(&table(
            &["extract", "source", "as_of", "held since", "reason"],
            &held,
        ));
        out.push_str("To release one after checking it:\n");
        for c in commands {
            out.push_str(&format!("  {c}\n"));
        }
    }
    let mut runs = vec![];
    for meta in run_records(root).await? {
        let body = root.get(meta.location.as_ref()).await?;
        let v: serde_json::Value = serde_json::from_slice(&body).map_err(|e| Error::Invalid {
            what: meta.location.to_string(),
            message: e.to_string(),
        })?;
        let night = v["as_of"]
            .as_str()
            .and_then(|t| t.parse::<NightDate>().ok());
        if as_of.is_some_and(|d| night.is_some_and(|n| n > d)) {
            continue;
        }
        let secs: f64 = v["stages"]
            .as_array()
            .map(|s| s.iter().filter_map(|x| x["seconds"].as_f64()).sum())
            .unwrap_or(0.0);
        runs.push([
            v["started_at"].as_str().unwrap_or("").to_string(),
            v["run_id"].as_str().unwrap_or("").to_string(),
            v["as_of"].as_str().unwrap_or("").to_string(),
            v["status"].as_str().unwrap_or("").to_string(),
            format!("{secs:.1}s"),
            v["error"].as_str().unwrap_or("").to_string(),
        ]);
    }
    runs.sort();
    let recent: Vec<[String; 6]> = runs.into_iter().rev().take(10).collect();
    out.push_str("\nLatest runs (runs/):\n");
    out.push_str(&table(
        &["started", "run", "as_of", "status", "took", "error"],
        &recent,
    ));
    Ok(out)
}

/// Left-aligned plain-text table. Cells are escaped (a sender's text cannot
/// add lines or terminal escapes) and cut at 200 characters.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let rows: Vec<[String; N]> = rows
        .iter()
        .map(|r| {
            r.clone().map(|c| {
                let c = crate::display::printable(&c);
                match c.char_indices().nth(200) {
                    Some((i, _)) => format!("{}...", &c[..i]),
                    None => c.into_owned(),
                }
            })
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let fmt = |cells: Vec<&str>| {
        let mut line = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ");
        line.truncate(line.trim_end().len());
        line + "\n"
    };
    let mut out = fmt(header.to_vec());
    for r in rows {
        out.push_str(&fmt(r.iter().map(String::as_str).collect()));
    }
    out
}
