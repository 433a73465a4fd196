//! The ingest ledger and the choice of extracts for a run. One small JSON
//! document per landing folder (`catalog/uploads/<extract>/<source>/<as_of>.json`)
//! records every decision taken on that folder's manifests and which one is
//! the accepted extract. The ledger holds no row values: only counts, file
//! names, hashes and reasons. It never touches `landing/`.

use serde::{Deserialize, Serialize};

use crate::manifest::UploadKey;
use crate::schema::Extract;
use crate::store::Root;
use crate::{Error, Result};

words! {
    /// What was decided about an upload.
    pub enum UploadStatus {
        /// Its extract may be used.
        Accepted = "accepted",
        /// Refused, with the reason; the previous extract stays in use.
        Rejected = "rejected",
    }
}

/// Decision taken on one manifest version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Decision {
    /// sha256 of the manifest bytes: identifies the upload version.
    pub manifest_sha256: String,
    /// Accepted or rejected.
    pub status: UploadStatus,
    /// Why it was rejected (file, column, expected versus found); empty when accepted.
    pub reason: String,
    /// Run that took the decision.
    pub run_id: String,
    /// When (UTC, RFC 3339).
    pub decided_at: String,
    /// Rows the data files hold.
    pub rows_in: u64,
    /// Rows accepted into the curated dataset.
    pub rows_accepted: u64,
    /// Row-level rejects (§3).
    pub rows_rejected: u64,
    /// Curated folder (relative to the root) when accepted.
    pub curated: Option<String>,
}

/// The ledger document of one landing folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FolderLedger {
    /// Which folder.
    #[serde(flatten)]
    pub key: UploadKey,
    /// Index into `decisions` of the accepted version in use, if any.
    pub accepted: Option<usize>,
    /// Every decision, oldest first.
    pub decisions: Vec<Decision>,
    /// A manifest version that could not be decided yet because the store
    /// failed while reading it (transient): retried on every pass until it is
    /// decided, and rejected after [`MAX_ATTEMPTS`] failed attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

/// Attempts after which an upload that keeps failing to read is rejected.
pub const MAX_ATTEMPTS: u32 = 5;

/// An upload waiting for a store that failed while it was read.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pending {
    /// sha256 of the manifest version being read.
    pub manifest_sha256: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure, one line (no row values: store errors name keys).
    pub last_error: String,
    /// When the first attempt failed (UTC, RFC 3339).
    pub first_failed_at: String,
    /// When the last attempt failed (UTC, RFC 3339).
    pub last_failed_at: String,
}

impl FolderLedger {
    /// The accepted decision in use, if any.
    pub fn accepted(&self) -> Option<&Decision> {
        self.accepted.and_then(|i| self.decisions.get(i))
    }

    /// Whether this manifest version was already decided.
    pub fn has_seen(&self, manifest_sha256: &str) -> bool {
        self.decisions
            .iter()
            .any(|d| d.manifest_sha256 == manifest_sha256)
    }
}

fn ledger_key(key: &UploadKey) -> String {
    format!(
        "catalog/uploads/{}/{}/{}.json",
        key.extract, key.source, key.as_of
    )
}

/// Reads a folder's ledger (`None` when the folder was never decided).
pub async fn read_ledger(root: &Root, key: &UploadKey) -> Result<Option<FolderLedger>> {
    root.get_json(&ledger_key(key)).await
}

/// Appends a decision to a folder's ledger, making it the one in use when accepted.
pub async fn record(root: &Root, key: &UploadKey, decision: Decision) -> Result<FolderLedger> {
    let mut ledger = read_or_new(root, key).await?;
    if decision.status == UploadStatus::Accepted {
        ledger.accepted = Some(ledger.decisions.len());
    }
    ledger.decisions.push(decision);
    ledger.pending = None;
    write(root, &ledger).await?;
    Ok(ledger)
}

/// Records a failed attempt at reading a manifest version; returns the
/// number of failed attempts so far (1 for the first).
pub async fn record_attempt(
    root: &Root,
    key: &UploadKey,
    manifest_sha256: &str,
    error: &str,
) -> Result<u32> {
    let mut ledger = read_or_new(root, key).await?;
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let pending = match ledger.pending.take() {
        Some(p) if p.manifest_sha256 == manifest_sha256 => Pending {
            attempts: p.attempts + 1,
            last_error: error.to_string(),
            last_failed_at: now,
            ..p
        },
        _ => Pending {
            manifest_sha256: manifest_sha256.to_string(),
            attempts: 1,
            last_error: error.to_string(),
            first_failed_at: now.clone(),
            last_failed_at: now,
        },
    };
    let attempts = pending.attempts;
    ledger.pending = Some(pending);
    write(root, &ledger).await?;
    Ok(attempts)
}

async fn read_or_new(root: &Root, key: &UploadKey) -> Result<FolderLedger> {
    Ok(read_ledger(root, key).await?.unwrap_or(FolderLedger {
        key: key.clone(),
        accepted: None,
        decisions: vec![],
        pending: None,
    }))
}

async fn write(root: &Root, ledger: &FolderLedger) -> Result<()> {
    let body = serde_json::to_vec_pretty(ledger).map_err(|e| Error::encode("ledger", e))?;
    root.put(&ledger_key(&ledger.key), body).await
}

/// The extract a run uses for one source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chosen {
    /// Extract kind.
    pub extract: Extract,
    /// Source code.
    pub source: String,
    /// `as_of` of the extract used.
    pub as_of: String,
    /// Curated folder.
    pub curated: String,
    /// Manifest version.
    pub manifest_sha256: String,
    /// Accepted rows.
    pub rows: u64,
    /// Row-level rejects.
    pub rows_rejected: u64,
}

/// Every source's newest accepted extract with `as_of` ≤ `date`, sorted by source.
pub async fn choose(root: &Root, extract: Extract, date: &str) -> Result<Vec<Chosen>> {
    let base = format!("catalog/uploads/{extract}");
    let mut out = vec![];
    for source in root.list_dirs(&base).await? {
        let mut dates: Vec<String> = root
            .list_files(&format!("{base}/{source}"))
            .await?
            .iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")
                    .map(String::from)
            })
            .filter(|d| d.as_str() <= date)
            .collect();
        dates.sort();
        for as_of in dates.iter().rev() {
            let key = UploadKey {
                extract,
                source: source.clone(),
                as_of: as_of.clone(),
            };
            let Some(ledger) = read_ledger(root, &key).await? else {
                continue;
            };
            if let Some(d) = ledger.accepted() {
                out.push(Chosen {
                    extract,
                    source: source.clone(),
                    as_of: as_of.clone(),
                    curated: d.curated.clone().unwrap_or_default(),
                    manifest_sha256: d.manifest_sha256.clone(),
                    rows: d.rows_accepted,
                    rows_rejected: d.rows_rejected,
                });
                break;
            }
        }
    }
    Ok(out)
}

/// Every ledger of one extract kind (for summaries and the status view).
pub async fn all_ledgers(root: &Root, extract: Extract) -> Result<Vec<FolderLedger>> {
    let mut out = vec![];
    for meta in root.list(&format!("catalog/uploads/{extract}/")).await? {
        out.extend(root.get_json(meta.location.as_ref()).await?);
    }
    Ok(out)
}

/// The extracts a run for one date uses.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Inputs {
    /// The identity snapshot.
    pub identity: Chosen,
    /// One per carrier.
    pub subscribers: Vec<Chosen>,
    /// One per bank.
    pub accounts: Vec<Chosen>,
}
