//! The contract's per-source metrics document (§6: one entry of
//! `carriers.json` / `banks.json`) as a type, shared by publish, which
//! computes it, and the dashboard, which shows it. Plain data: it must never
//! read or write the store.

use crate::night::NightDate;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One source's entry of carriers.json / banks.json (contract §6; §8–§10
/// add the last five fields, which read as empty from a night published
/// before them).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceMetrics {
    /// Run date D.
    pub as_of: NightDate,
    /// Carrier or bank code.
    pub source: String,
    /// as_of of the extract used.
    pub extract_as_of: NightDate,
    /// Accepted rows of the extract.
    pub total: u64,
    /// Row-level rejects of that extract.
    pub rows_rejected: u64,
    /// Rows of type foreigner/organization.
    pub out_of_scope: u64,
    /// Rows with at least one reason.
    pub flagged: u64,
    /// Individual rows with no reason.
    pub clean: u64,
    /// 100 × clean / (total − out_of_scope), 2 decimals; null when that is 0.
    pub clean_pct: Option<f64>,
    /// Reason → rows carrying it (every reason of the extract kind).
    pub flags_by_reason: BTreeMap<String, u64>,
    /// Flagged rows whose status is blocked_* (carriers) or suspended (banks).
    pub flagged_blocked: u64,
    /// Keys flagged now and not in the previous published run.
    pub newly_flagged: u64,
    /// Keys flagged in the previous published run and not now.
    pub resolved: u64,
    /// Keys flagged in the source's first published run.
    pub baseline_flagged: u64,
    /// Of those, keys not flagged now.
    pub resolved_since_baseline: u64,
    /// 100 × resolved_since_baseline / baseline_flagged, 2 decimals; null when 0.
    pub cleanup_progress_pct: Option<f64>,
    /// Keys flagged in the previous published run and no longer in the
    /// extract (§10; `resolved` counts them too).
    #[serde(default)]
    pub gone: u64,
    /// Action required now (§9) → flagged rows (every action of the extract kind).
    #[serde(default)]
    pub required_action: BTreeMap<String, u64>,
    /// Flagged rows whose required action is not reflected in their status (§9).
    #[serde(default)]
    pub overdue: u64,
    /// 100 × (rows whose action is due − overdue) / rows whose action is due
    /// (any action but NOTIFY), 2 decimals; null when none is due.
    #[serde(default)]
    pub compliance_pct: Option<f64>,
    /// The newest held upload (§8) with `as_of` ≤ D and newer than the
    /// extract used, else null.
    #[serde(default)]
    pub held_as_of: Option<NightDate>,
}

/// `100 × num / den` rounded to 2 decimals (ties to even on the exact binary
/// value, as Python's `round(x, 2)` and Rust's formatting do); `None` when den is 0.
pub fn pct(num: u64, den: u64) -> Option<f64> {
    if den == 0 {
        return None;
    }
    let x = 100.0 * num as f64 / den as f64;
    format!("{x:.2}").parse().ok()
}
