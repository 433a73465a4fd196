//! The lease that keeps jobs on one root from overlapping: the scheduled jobs
//! of `junkrecon serve` (in any number of processes, on any number of
//! machines) and `junkrecon run` started by hand.
//!
//! A lease is a numbered object under `locks/root/`. Taking it means creating
//! the next number with a create-if-absent put, which is atomic on local files
//! and on S3, so of two contenders exactly one wins. The holder renews it every
//! third of its lifetime; a holder that crashes stops renewing and loses it when
//! it expires, so nobody keeps a root forever. Expiry compares wall clocks of
//! different machines: they are assumed NTP-synchronised to well under the
//! lease lifetime. Never holds personal data (holder, host, pid, job, times).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tracing::{error, warn};

use crate::store::Root;
use crate::{Error, Result};

/// Where lease generations live.
pub const PREFIX: &str = "locks/root";

/// What a lease object says about its holder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    /// Unique id of the holding process (host, pid, random suffix).
    pub holder: String,
    /// What it is doing (`nightly 2026-11-20`, `poll`, `run 2026-11-20`).
    pub job: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// When the lease was taken (UTC, RFC 3339).
    pub acquired_at: String,
    /// When it lapses unless renewed (UTC, RFC 3339).
    pub expires_at: String,
    /// Given back by its holder.
    pub released: bool,
}

impl Holder {
    fn is_live(&self, now: DateTime<Utc>) -> bool {
        !self.released
            && DateTime::parse_from_rfc3339(&self.expires_at)
                .map(|t| t.with_timezone(&Utc) > now)
                .unwrap_or(false)
    }

    /// One line for logs and errors.
    pub fn describe(&self) -> String {
        format!(
            "{} on {} (pid {}) holds the root for {:?} since {}, lease until {}",
            self.holder, self.host, self.pid, self.job, self.acquired_at, self.expires_at
        )
    }
}

/// Result of an attempt to take the lease.
pub enum Acquire {
    /// Taken: hold it while the job runs, then release it.
    Taken(Lease),
    /// Someone else holds it.
    Busy(Holder),
}

/// A held lease, renewed in the background until released.
pub struct Lease {
    root: Root,
    generation: u64,
    holder: Holder,
    lost: Arc<AtomicBool>,
    renewed: Arc<std::sync::Mutex<std::time::Instant>>,
    ttl: Duration,
    heartbeat: tokio::task::JoinHandle<()>,
}

/// What a job checks before each step that commits something: that its
/// lease is still its own. A holder that stalled (a paused machine, a hung
/// request) past its lease may have been replaced by another process; it
/// must then stop before it changes anything the new holder relies on.
#[derive(Clone, Debug)]
pub struct Fence {
    root: Root,
    generation: u64,
    lost: Arc<AtomicBool>,
    renewed: Arc<std::sync::Mutex<std::time::Instant>>,
    ttl: Duration,
}

impl Fence {
    /// The lease generation this fence guards (written into the commit pointer).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// `Ok` while the lease is still held: not taken over, no newer
    /// generation in the store, and renewed within its lifetime by this
    /// process's own clock (so a holder resumed after a long pause stops
    /// even before it sees the newer generation).
    pub async fn check(&self, step: &str) -> Result<()> {
        let since = self.renewed.lock().map(|t| t.elapsed()).unwrap_or(self.ttl);
        let lost = self.lost.load(Ordering::SeqCst)
            || since >= self.ttl
            || newer_exists(&self.root, self.generation).await?;
        if lost {
            self.lost.store(true, Ordering::SeqCst);
            return Err(Error::CannotRun(format!(
                "lease {} lost before {step} (last renewed {:.0} s ago, lease {} s): another process may hold the root; nothing more is committed by this run",
                self.generation,
                since.as_secs_f64(),
                self.ttl.as_secs()
            )));
        }
        Ok(())
    }
}

fn key(generation: u64) -> String {
    format!("{PREFIX}/{generation:020}.json")
}

fn ttl_chrono(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(60))
}

fn stamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A process-unique holder id.
pub fn holder_id() -> String {
    format!(
        "{}:{}:{:04x}",
        host_name(),
        std::process::id(),
        rand::random::<u16>()
    )
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}

/// Generation numbers present under [`PREFIX`], ascending.
async fn generations(root: &Root) -> Result<Vec<u64>> {
    let mut gens: Vec<u64> = root
        .list_files(PREFIX)
        .await?
        .iter()
        .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
        .collect();
    gens.sort_unstable();
    Ok(gens)
}

/// The current holder, if the newest lease object is live.
pub async fn current(root: &Root) -> Result<Option<Holder>> {
    let Some(g) = generations(root).await?.last().copied() else {
        return Ok(None);
    };
    let h: Option<Holder> = root.get_json(&key(g)).await?;
    Ok(h.filter(|h| h.is_live(Utc::now())))
}

impl Lease {
    /// Tries once to take the lease on `root` for `job`, held by `holder_id`.
    pub async fn try_acquire(
        root: &Root,
        holder_id: &str,
        job: &str,
        ttl: Duration,
    ) -> Result<Acquire> {
        let gens = generations(root).await?;
        let newest = gens.last().copied().unwrap_or(0);
        if newest > 0 {
            if let Some(h) = root.get_json::<Holder>(&key(newest)).await? {
                if h.is_live(Utc::now()) {
                    return Ok(Acquire::Busy(h));
                }
            }
        }
        let now = Utc::now();
        let holder = Holder {
            holder: holder_id.to_string(),
            job: job.to_string(),
            host: host_name(),
            pid: std::process::id(),
            acquired_at: stamp(now),
            expires_at: stamp(now + ttl_chrono(ttl)),
            released: false,
        };
        let generation = newest + 1;
        let body = serde_json::to_vec_pretty(&holder).map_err(|e| Error::encode("lease", e))?;
        if !root.put_if_absent(&key(generation), body).await? {
            // Another contender created this generation first.
            let winner = root.get_json::<Holder>(&key(generation)).await?;
            return Ok(Acquire::Busy(winner.unwrap_or(holder)));
        }
        for old in gens {
            let _ = root.delete(&key(old)).await;
        }
        let lost = Arc::new(AtomicBool::new(false));
        let renewed = Arc::new(std::sync::Mutex::new(std::time::Instant::now()));
        let heartbeat = tokio::spawn(heartbeat(
            root.clone(),
            generation,
            holder.clone(),
            ttl,
            lost.clone(),
            renewed.clone(),
        ));
        Ok(Acquire::Taken(Lease {
            root: root.clone(),
            generation,
            holder,
            lost,
            renewed,
            ttl,
            heartbeat,
        }))
    }

    /// Takes the lease, waiting while someone else holds it (checking every
    /// `every`); gives up with an error naming the holder after `patience`.
    pub async fn acquire_waiting(
        root: &Root,
        holder_id: &str,
        job: &str,
        ttl: Duration,
        every: Duration,
        patience: Duration,
    ) -> Result<Lease> {
        let start = tokio::time::Instant::now();
        loop {
            match Self::try_acquire(root, holder_id, job, ttl).await? {
                Acquire::Taken(l) => return Ok(l),
                Acquire::Busy(h) if start.elapsed() >= patience => {
                    return Err(Error::CannotRun(format!(
                        "root {} is busy: {}",
                        root.display(),
                        h.describe()
                    )))
                }
                Acquire::Busy(_) => tokio::time::sleep(every).await,
            }
        }
    }

    /// Whether another process took the lease over (this one stopped renewing in time).
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Generation number of this lease.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The fence a job checks before each commit step.
    pub fn fence(&self) -> Fence {
        Fence {
            root: self.root.clone(),
            generation: self.generation,
            lost: self.lost.clone(),
            renewed: self.renewed.clone(),
            ttl: self.ttl,
        }
    }

    /// Stops renewing without giving the lease back, as a stalled or
    /// crashed holder would (tests of takeovers).
    pub fn stop_renewing(&self) {
        self.heartbeat.abort();
    }

    /// Gives the lease back so the next job need not wait for it to expire.
    pub async fn release(self) -> Result<()> {
        self.heartbeat.abort();
        let _ = self.heartbeat.await;
        if self.lost.load(Ordering::SeqCst) || newer_exists(&self.root, self.generation).await? {
            return Ok(());
        }
        let mut h = self.holder;
        h.released = true;
        h.expires_at = stamp(Utc::now());
        let body = serde_json::to_vec_pretty(&h).map_err(|e| Error::encode("lease", e))?;
        self.root.put(&key(self.generation), body).await
    }
}

async fn newer_exists(root: &Root, generation: u64) -> Result<bool> {
    Ok(generations(root)
        .await?
        .last()
        .is_some_and(|&g| g > generation))
}

/// Renews the lease every third of its lifetime until aborted or lost.
async fn heartbeat(
    root: Root,
    generation: u64,
    mut holder: Holder,
    ttl: Duration,
    lost: Arc<AtomicBool>,
    renewed: Arc<std::sync::Mutex<std::time::Instant>>,
) {
    loop {
        tokio::time::sleep(ttl / 3).await;
        let attempt = std::time::Instant::now();
        match newer_exists(&root, generation).await {
            Ok(true) => {
                error!(
                    generation,
                    "lease taken over by another process: renewals stop"
                );
                lost.store(true, Ordering::SeqCst);
                return;
            }
            Ok(false) => {}
            Err(e) => {
                warn!(error = %e, "lease renewal: cannot list locks; retrying");
                continue;
            }
        }
        holder.expires_at = stamp(Utc::now() + ttl_chrono(ttl));
        let body = match serde_json::to_vec_pretty(&holder) {
            Ok(b) => b,
            Err(_) => return,
        };
        match root.put(&key(generation), body).await {
            // Counted from before the write: the lease runs from when it was asked for.
            Ok(()) => {
                if let Ok(mut t) = renewed.lock() {
                    *t = attempt;
                }
            }
            Err(e) => warn!(error = %e, "lease renewal failed; retrying"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn take(r: &Root, holder: &str, ttl: Duration) -> Lease {
        match Lease::try_acquire(r, holder, "poll", ttl).await.unwrap() {
            Acquire::Taken(l) => l,
            Acquire::Busy(h) => panic!("{holder}: root held by {}", h.holder),
        }
    }

    async fn busy(r: &Root, holder: &str, ttl: Duration) -> bool {
        matches!(
            Lease::try_acquire(r, holder, "poll", ttl).await.unwrap(),
            Acquire::Busy(_)
        )
    }

    fn root() -> (tempfile::TempDir, Root) {
        let d = tempfile::tempdir().unwrap();
        let r = Root::open(d.path().to_str().unwrap()).unwrap();
        (d, r)
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() {
        let (_d, r) = root();
        let ttl = Duration::from_secs(60);
        let a = take(&r, "a", ttl).await;
        match Lease::try_acquire(&r, "b", "nightly", ttl).await.unwrap() {
            Acquire::Busy(h) => assert_eq!(h.holder, "a"),
            Acquire::Taken(_) => panic!("two holders"),
        }
        assert_eq!(current(&r).await.unwrap().unwrap().job, "poll");
        a.release().await.unwrap();
        assert!(current(&r).await.unwrap().is_none());
        let b = take(&r, "b", ttl).await;
        assert_eq!(b.generation(), 2);
        b.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_crashed_holder_loses_the_lease_when_it_expires() {
        let (_d, r) = root();
        let ttl = Duration::from_millis(600);
        let a = take(&r, "a", ttl).await;
        a.heartbeat.abort(); // the process died: no more renewals
        assert!(busy(&r, "b", ttl).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
        let b = take(&r, "b", ttl).await;
        b.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_stalled_holder_fails_its_fence_after_a_takeover() {
        let (_d, r) = root();
        let ttl = Duration::from_millis(600);
        let a = take(&r, "a", ttl).await;
        let fence = a.fence();
        fence.check("commit").await.unwrap();
        a.stop_renewing(); // stalled: no renewals
        tokio::time::sleep(Duration::from_millis(700)).await;
        // Past its lifetime by its own clock, even before anyone took over.
        assert!(fence.check("commit").await.is_err());
        let b = take(&r, "b", ttl).await;
        let err = fence.check("commit").await.unwrap_err().to_string();
        assert!(err.contains("lost before commit"), "{err}");
        b.fence().check("commit").await.unwrap();
        b.release().await.unwrap();
    }

    #[tokio::test]
    async fn a_live_holder_keeps_renewing() {
        let (_d, r) = root();
        let ttl = Duration::from_millis(600);
        let a = take(&r, "a", ttl).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(busy(&r, "b", ttl).await);
        assert!(!a.lost());
        a.fence().check("commit").await.unwrap();
        a.release().await.unwrap();
    }
}
