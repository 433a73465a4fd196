//! `junkrecon serve`: the scheduled service. A cron schedule polls `landing/`
//! and ingests uploads as they arrive; another runs the night (ingest,
//! reconcile, publish) at the cut-off; an HTTP server in the same process
//! answers `/metrics`, `/healthz`, `/api/metrics` and `/` (see [`crate::http`]).
//!
//! Jobs run one at a time: the scheduler only queues triggers, one worker
//! runs them in order, and every job holds the root's [`lease`] so that other
//! instances and `junkrecon run` by hand never overlap with it. A failed job
//! is retried with doubling backoff, every attempt recorded. Nights whose
//! cut-off passed while the service was down are run once at start. On
//! shutdown the job in flight may finish within a grace period, otherwise it
//! is abandoned: a night is committed by one pointer write, so an abandoned
//! run never leaves a half-published night.
//!
//! Never logs row values; spans carry only run ids, dates and job names.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio_cron_scheduler::{Job, JobScheduler};
use tracing::{error, info, warn, Instrument};

use crate::config::{Config, ServeSettings};
use crate::lease::{self, Acquire, Lease};
use crate::night::NightDate;
use crate::run::{self, RunMeta, RunRecord};
use crate::store::Root;
use crate::{publish, Error, Result};

/// What the worker is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Ingest whatever has arrived.
    Poll,
    /// Reconcile and publish night `date`.
    Night {
        /// The night's date D.
        date: NightDate,
        /// Schedule or catch-up.
        cause: run::Cause,
    },
}

impl Trigger {
    fn job(&self) -> &'static str {
        match self {
            Trigger::Poll => "poll",
            Trigger::Night { .. } => "nightly",
        }
    }
}

pub use crate::state::{JobStats, Shared, Stats};

/// Runs the service until `shutdown` completes, listening on the configured address.
pub async fn serve(
    root: Root,
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = cfg.serve.http_address.clone();
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| Error::CannotRun(format!("cannot listen on {addr}: {e}")))?;
    serve_on(listener, root, cfg, shutdown).await
}

/// [`serve`] on a listener the caller bound (tests bind port 0).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    root: Root,
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let tz = cfg.serve.tz()?;
    let shared = Arc::new(Shared {
        root,
        cfg,
        stats: Stats::default(),
        holder: lease::holder_id(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::unbounded_channel();
    let poll_pending = Arc::new(AtomicBool::new(false));

    let repaired = publish::repair(&shared.root).await?;
    if !repaired.is_empty() {
        info!(dates = ?repaired, "completed publications interrupted earlier");
    }
    for date in missed_nights(&shared, tz, Utc::now()).await? {
        info!(%date, "catching up a night missed while the service was down");
        let _ = tx.send(Trigger::Night {
            date,
            cause: run::Cause::CatchUp,
        });
    }
    let mut scheduler = schedule(&shared.cfg.serve, tz, tx.clone(), poll_pending.clone()).await?;
    // Jobs get their own runtime: a long DataFusion night must not delay the
    // scheduler's ticks or the HTTP answers.
    let jobs = JobRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("junkrecon-job")
            .thread_stack_size(crate::engine::WORKER_STACK_BYTES)
            .enable_all()
            .build()
            .map_err(|e| Error::CannotRun(format!("cannot start the job runtime: {e}")))?,
    ));
    let worker = jobs.spawn(worker(shared.clone(), rx, stop_rx.clone(), poll_pending));
    let http = tokio::spawn(crate::http::run(listener, shared.clone(), stop_rx));
    info!(address = %shared.cfg.serve.http_address, holder = %shared.holder, "serving");

    shutdown.await;
    info!("shutdown requested");
    let _ = stop_tx.send(true);
    let _ = scheduler.shutdown().await;
    drop(tx);
    if let Err(e) = worker.await {
        error!(error = %e, "job worker ended abnormally");
    }
    drop(jobs);
    let _ = http.await;
    info!("stopped");
    Ok(())
}

/// The jobs' own runtime. Dropped without blocking (a runtime may not be
/// dropped by blocking inside another one, e.g. when the service's future is
/// dropped): tasks still on it are abandoned, as at shutdown.
struct JobRuntime(Option<tokio::runtime::Runtime>);

impl JobRuntime {
    fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.0
            .as_ref()
            .expect("runtime present until dropped")
            .spawn(f)
    }
}

impl Drop for JobRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// Registers the poll and nightly schedules; their firings only queue triggers.
async fn schedule(
    s: &ServeSettings,
    tz: Tz,
    tx: mpsc::UnboundedSender<Trigger>,
    poll_pending: Arc<AtomicBool>,
) -> Result<JobScheduler> {
    let err =
        |e: tokio_cron_scheduler::JobSchedulerError| Error::CannotRun(format!("scheduler: {e}"));
    let sched = JobScheduler::new().await.map_err(err)?;
    let poll_tx = tx.clone();
    let poll = Job::new_async_tz(s.poll_schedule.as_str(), tz, move |_, _| {
        // A poll already queued covers this one.
        if !poll_pending.swap(true, Ordering::SeqCst) {
            let _ = poll_tx.send(Trigger::Poll);
        }
        Box::pin(async {})
    })
    .map_err(err)?;
    let lag = s.night_lag_days;
    let nightly = Job::new_async_tz(s.nightly_schedule.as_str(), tz, move |_, _| {
        let date = night_of(Utc::now().with_timezone(&tz).date_naive(), lag);
        let _ = tx.send(Trigger::Night {
            date,
            cause: run::Cause::Schedule,
        });
        Box::pin(async {})
    })
    .map_err(err)?;
    sched.add(poll).await.map_err(err)?;
    sched.add(nightly).await.map_err(err)?;
    sched.start().await.map_err(err)?;
    Ok(sched)
}

/// The night's date for a cut-off on local date `day`.
pub fn night_of(day: NaiveDate, lag_days: u32) -> NightDate {
    NightDate::from_date(day - chrono::Days::new(lag_days as u64))
}

/// Nights whose cut-off passed within `catch_up_days` and after the newest
/// committed night, oldest first. On a root with no committed night, only
/// the most recent cut-off's night (a new installation does not replay a week).
pub async fn missed_nights(shared: &Shared, tz: Tz, now: DateTime<Utc>) -> Result<Vec<NightDate>> {
    let s = &shared.cfg.serve;
    if s.catch_up_days == 0 {
        return Ok(vec![]);
    }
    let cron = ServeSettings::cron("nightly_schedule", &s.nightly_schedule)?;
    let newest = publish::committed_dates(&shared.root).await?.pop();
    let horizon = now - chrono::Duration::days(s.catch_up_days as i64);
    let mut out: Vec<NightDate> = vec![];
    let mut t = now.with_timezone(&tz);
    while let Ok(fired) = cron.find_previous_occurrence(&t, false) {
        if fired.with_timezone(&Utc) < horizon || out.len() >= s.catch_up_days as usize {
            break;
        }
        let date = night_of(fired.date_naive(), s.night_lag_days);
        if newest.is_some_and(|n| date <= n) {
            break;
        }
        out.push(date);
        if newest.is_none() {
            break;
        }
        // Continue from the start of that local day: one night per day.
        let Some(midnight) = fired
            .date_naive()
            .and_hms_opt(0, 0, 0)
            .and_then(|m| m.and_local_timezone(tz).earliest())
        else {
            break;
        };
        t = midnight;
    }
    out.dedup();
    out.reverse();
    Ok(out)
}

/// Runs triggers one at a time until told to stop.
async fn worker(
    shared: Arc<Shared>,
    mut rx: mpsc::UnboundedReceiver<Trigger>,
    mut stop: watch::Receiver<bool>,
    poll_pending: Arc<AtomicBool>,
) {
    loop {
        let trigger = tokio::select! {
            biased;
            _ = stopped(&mut stop) => break,
            t = rx.recv() => match t { Some(t) => t, None => break },
        };
        if trigger == Trigger::Poll {
            poll_pending.store(false, Ordering::SeqCst);
        }
        run_trigger(&shared, &trigger, &mut stop).await;
        if *stop.borrow() {
            break;
        }
    }
}

/// Completes when the stop flag is (or becomes) set.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The outcome of one attempt under a possible shutdown.
enum Outcome<T> {
    Finished(T),
    Abandoned,
}

/// Runs `job`; on shutdown lets it finish within `grace`, then drops it.
async fn finish_or_abandon<T>(
    job: impl Future<Output = T>,
    stop: &mut watch::Receiver<bool>,
    grace: Duration,
) -> Outcome<T> {
    tokio::pin!(job);
    tokio::select! {
        r = &mut job => return Outcome::Finished(r),
        _ = stopped(stop) => {}
    }
    info!(
        grace_secs = grace.as_secs(),
        "waiting for the job in flight"
    );
    match tokio::time::timeout(grace, &mut job).await {
        Ok(r) => Outcome::Finished(r),
        Err(_) => Outcome::Abandoned,
    }
}

/// Takes the lease for a trigger: a poll skips when the root is busy, a night waits for it.
async fn take_lease(
    shared: &Shared,
    trigger: &Trigger,
    stop: &mut watch::Receiver<bool>,
) -> Option<Lease> {
    let ttl = Duration::from_secs(shared.cfg.serve.lease_secs);
    let what = match trigger {
        Trigger::Poll => "poll".to_string(),
        Trigger::Night { date, .. } => format!("nightly {date}"),
    };
    loop {
        match Lease::try_acquire(&shared.root, &shared.holder, &what, ttl).await {
            Ok(Acquire::Taken(l)) => return Some(l),
            Ok(Acquire::Busy(h)) if *trigger == Trigger::Poll => {
                info!(holder = %h.describe(), "root busy: poll skipped");
                return None;
            }
            Ok(Acquire::Busy(h)) => info!(holder = %h.describe(), "root busy: night waits"),
            Err(e) => warn!(error = %e, "cannot take the lease; retrying"),
        }
        let wait = Duration::from_secs((shared.cfg.serve.lease_secs / 4).clamp(1, 15));
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stopped(stop) => return None,
        }
    }
}

/// Runs one trigger under the lease, with retries.
async fn run_trigger(shared: &Shared, trigger: &Trigger, stop: &mut watch::Receiver<bool>) {
    let Some(lease) = take_lease(shared, trigger, stop).await else {
        return;
    };
    let s = &shared.cfg.serve;
    let job = trigger.job();
    for attempt in 1..=s.retries + 1 {
        let run_id = match trigger {
            Trigger::Poll => run::new_run_id("poll"),
            Trigger::Night { date, .. } => run::new_run_id(*date),
        };
        let span = tracing::info_span!("job", job, run_id = %run_id, attempt);
        shared.stats.update(job, |j| {
            j.runs += 1;
            j.running = true;
        });
        let t = Instant::now();
        let work =
            attempt_once(shared, trigger, &run_id, attempt, lease.fence()).instrument(span.clone());
        let outcome =
            finish_or_abandon(work, stop, Duration::from_secs(s.shutdown_grace_secs)).await;
        let secs = t.elapsed().as_secs_f64();
        match outcome {
            Outcome::Abandoned => {
                shared.stats.update(job, |j| {
                    j.abandoned += 1;
                    j.running = false;
                });
                warn!(parent: &span, "job abandoned at shutdown; the previous publication stays in place");
                record_abandoned(shared, trigger, &run_id, attempt).await;
                break;
            }
            Outcome::Finished(Ok(())) => {
                shared.stats.update(job, |j| {
                    j.running = false;
                    j.last_duration_secs = Some(secs);
                    j.last_success_unix = Some(Utc::now().timestamp());
                });
                if job == "poll" {
                    tracing::debug!(parent: &span, seconds = secs, "poll done");
                } else {
                    info!(parent: &span, seconds = secs, "job succeeded");
                }
                break;
            }
            Outcome::Finished(Err(e)) => {
                shared.stats.update(job, |j| {
                    j.running = false;
                    j.failures += 1;
                    j.last_duration_secs = Some(secs);
                    j.last_error = Some(e.to_string());
                });
                if attempt > s.retries || *stop.borrow() {
                    error!(parent: &span, error = %e, "job failed; no retries left");
                    break;
                }
                let backoff = Duration::from_secs(s.retry_backoff_secs) * 2u32.pow(attempt - 1);
                warn!(parent: &span, error = %e, retry_in_secs = backoff.as_secs(), "job failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped(stop) => break,
                }
            }
        }
    }
    if lease.lost() {
        error!("the lease was taken over while the job ran (lease_secs too short for a stalled store?)");
    }
    if let Err(e) = lease.release().await {
        warn!(error = %e, "cannot release the lease; it expires by itself");
    }
}

/// One attempt of a job.
async fn attempt_once(
    shared: &Shared,
    trigger: &Trigger,
    run_id: &str,
    attempt: u32,
    fence: crate::lease::Fence,
) -> Result<()> {
    match trigger {
        Trigger::Poll => poll(shared, run_id).await,
        Trigger::Night { date, cause } => {
            let meta = RunMeta {
                run_id: run_id.to_string(),
                trigger: *cause,
                attempt,
                recompute: false,
            };
            run::run_as(&shared.root, *date, &shared.cfg, &meta, &fence).await?;
            Ok(())
        }
    }
}

/// A poll record: written when the poll decided an upload or failed.
#[derive(Debug, Serialize)]
struct PollRecord<'a> {
    run_id: &'a str,
    status: run::RunStatus,
    error: Option<String>,
    finished_at: String,
    ingest: Option<crate::ingest::IngestReport>,
}

/// Ingests new uploads; records what it decided under `runs/poll/`.
async fn poll(shared: &Shared, run_id: &str) -> Result<()> {
    let result = crate::ingest::ingest(&shared.root, run_id, &shared.cfg).await;
    let (status, error, report) = match &result {
        Ok(r) if r.decided.is_empty() => return Ok(()),
        Ok(r) => (run::RunStatus::Succeeded, None, Some(r.clone())),
        Err(e) => (run::RunStatus::Failed, Some(e.to_string()), None),
    };
    if let Some(r) = &report {
        info!(decided = r.decided.len(), "poll ingested new uploads");
    }
    let rec = PollRecord {
        run_id,
        status,
        error,
        finished_at: Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ingest: report,
    };
    let day = Utc::now().format("%Y-%m-%d");
    let body = serde_json::to_vec_pretty(&rec).map_err(|e| Error::encode("poll record", e))?;
    shared
        .root
        .put(&format!("runs/poll/date={day}/{run_id}.json"), body)
        .await?;
    result.map(|_| ())
}

/// Writes the run record of a night abandoned at shutdown.
async fn record_abandoned(shared: &Shared, trigger: &Trigger, run_id: &str, attempt: u32) {
    let Trigger::Night { date, cause } = trigger else {
        return;
    };
    let meta = RunMeta {
        run_id: run_id.to_string(),
        trigger: *cause,
        attempt,
        recompute: false,
    };
    let mut rec = RunRecord::start(*date, &shared.cfg, &meta);
    rec.status = run::RunStatus::Abandoned;
    rec.error = Some(
        "abandoned at shutdown before it finished (a night is committed whole or not at all)"
            .into(),
    );
    rec.finished_at = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    if let Err(e) = rec.save(&shared.root).await {
        warn!(error = %e, "cannot write the abandoned run's record");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_night_is_the_day_before_the_cut_off() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(night_of(d, 1).to_string(), "2026-11-30");
        assert_eq!(night_of(d, 0).to_string(), "2026-12-01");
    }
}
