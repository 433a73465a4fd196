//! What the service's worker and its HTTP endpoints share: the root, the
//! configuration, this process's lease holder id and the job counters. Plain
//! state: it must never run a job or answer a request.

use std::sync::Mutex;

use serde::Serialize;

use crate::config::Config;
use crate::store::Root;

/// Counters of one job kind, shown on `/metrics` and `/healthz`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobStats {
    /// Attempts started.
    pub runs: u64,
    /// Attempts that failed.
    pub failures: u64,
    /// Attempts abandoned at shutdown.
    pub abandoned: u64,
    /// Wall seconds of the last finished attempt.
    pub last_duration_secs: Option<f64>,
    /// Unix time of the last success.
    pub last_success_unix: Option<i64>,
    /// Error of the last failed attempt (store and query errors; never row values).
    pub last_error: Option<String>,
    /// An attempt is in flight.
    pub running: bool,
}

/// The service's job counters.
#[derive(Debug, Default)]
pub struct Stats {
    poll: Mutex<JobStats>,
    nightly: Mutex<JobStats>,
}

impl Stats {
    fn of(&self, job: &str) -> &Mutex<JobStats> {
        if job == "poll" {
            &self.poll
        } else {
            &self.nightly
        }
    }

    pub(crate) fn update(&self, job: &str, f: impl FnOnce(&mut JobStats)) {
        let mut g = self.of(job).lock().unwrap_or_else(|p| p.into_inner());
        f(&mut g);
    }

    /// A copy of one job's counters (`poll` or `nightly`).
    pub fn get(&self, job: &str) -> JobStats {
        self.of(job)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

/// What the HTTP handlers and the worker share.
pub struct Shared {
    /// The store root.
    pub root: Root,
    /// The configuration.
    pub cfg: Config,
    /// Job counters.
    pub stats: Stats,
    /// This process's lease holder id.
    pub holder: String,
}
