//! The join planner's memory between nights: how each materialised
//! reconcile step was planned (hash or sort-merge joins, in how many key
//! buckets) and under which memory pool, so that a step that had to be
//! re-planned last night starts with sort-merge joins tonight. It lives in
//! `catalog/planner.json`, apart from the run records, which are audit
//! documents and are never read back to steer a run. Holds no row values; a
//! document that cannot be read is a warning and a fresh start, never a
//! failed night.

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::night::NightDate;
use crate::store::Root;
use crate::{Error, Result};

/// Where the planner's memory is kept.
pub const PLANNER_KEY: &str = "catalog/planner.json";

words! {
    /// How a materialised step's joins were planned in the end.
    pub enum JoinPlan {
        /// Hash joins (the fast plan).
        Hash = "hash",
        /// Sort-merge joins (bounded memory: they spill through sorts).
        SortMerge = "sort-merge",
    }
}

/// How one materialised step was computed (kept in the run record, for the
/// reader, and in the planner's memory, for the next night).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepPlan {
    /// The table materialised (`resolved`, `subscriber_flags`, `account_flags`).
    pub table: String,
    /// How its joins were planned in the end.
    pub joins: JoinPlan,
    /// Whether a hash-join attempt ran out of memory first and was re-planned.
    pub replanned: bool,
    /// Whether sort-merge joins were chosen up front because the previous
    /// run needed them for this step under a pool no larger (no hash attempt).
    #[serde(default)]
    pub from_previous_run: bool,
    /// Key buckets it was computed in (1: at once).
    #[serde(default = "one")]
    pub buckets: usize,
    /// Wall time, the failed attempt included.
    pub seconds: f64,
}

fn one() -> usize {
    1
}

/// The last reconciliation's plans and the pool they were made under.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlannerMemory {
    /// The run that planned them.
    pub run_id: String,
    /// Its night.
    pub as_of: Option<NightDate>,
    /// The memory pool it ran under (0: none).
    pub memory_limit_mb: u64,
    /// Its materialised steps.
    pub steps: Vec<StepPlan>,
}

impl PlannerMemory {
    /// The memory left by the last reconciliation, or an empty one when
    /// there is none or it cannot be read (with a warning).
    pub async fn read(root: &Root) -> Result<PlannerMemory> {
        let Some(body) = root.get_opt(PLANNER_KEY).await? else {
            return Ok(PlannerMemory::default());
        };
        match serde_json::from_slice(&body) {
            Ok(memory) => Ok(memory),
            Err(e) => {
                warn!(key = PLANNER_KEY, error = %e, "planner memory not readable: joins are planned afresh");
                Ok(PlannerMemory::default())
            }
        }
    }

    /// Replaces the stored memory with this one.
    pub async fn save(&self, root: &Root) -> Result<()> {
        let body =
            serde_json::to_vec_pretty(self).map_err(|e| Error::encode("planner memory", e))?;
        root.put(PLANNER_KEY, body).await
    }
}
