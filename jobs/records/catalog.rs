//! The ingest ledger and the choice of extracts for a run. One small JSON
//! document per landing folder (`catalog/uploads/<extract>/<source>/<as_of>.json`)
//! records every decision taken on that folder's manifests and which one is
//! the accepted extract. The ledger holds no row values: only counts, file
//! names, hashes and reasons. It never touches `landing/`.

use serde::{Deserialize, Serialize};

use crate::manifest::UploadKey;
use crate::night::NightDate;
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
        /// Valid, but held by the volume guard (§8): not used until an
        /// operator releases it; the reference extract stays in use.
        Held = "held",
    }
}

/// Why an upload was held (§8), and its release if an operator gave one.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hold {
    /// `as_of` of the reference extract it was compared with.
    pub reference_as_of: NightDate,
    /// Distinct keys among the reference's accepted rows.
    pub reference_keys: u64,
    /// Reference keys missing from the upload's accepted rows and not
    /// flagged in the source's newest report.
    pub lost_keys: u64,
    /// The share of the reference's keys allowed to go, in percent.
    pub max_shrink_pct: f64,
    /// The release, once an operator has given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub released: Option<Release>,
}

/// An operator's release of a held upload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Release {
    /// When (UTC, RFC 3339).
    pub released_at: String,
    /// Why the operator let it through.
    pub reason: String,
    /// Who ran the release (user and host).
    pub released_by: String,
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
    /// Curated folder (relative to the root) when accepted or held.
    pub curated: Option<String>,
    /// Set when the volume guard held it (§8), kept after a release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<Hold>,
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

    /// The latest decision when it holds the upload (not released).
    pub fn held(&self) -> Option<&Decision> {
        self.decisions
            .last()
            .filter(|d| d.status == UploadStatus::Held)
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

/// Releases a held upload (§8): its latest decision becomes the accepted
/// one, with the release recorded beside the hold. An upload that is not
/// held is an error, and nothing changes.
pub async fn release(
    root: &Root,
    key: &UploadKey,
    reason: &str,
    released_by: &str,
) -> Result<FolderLedger> {
    let label = key.label();
    let Some(mut ledger) = read_ledger(root, key).await? else {
        return Err(Error::CannotRun(format!(
            "{label}: no upload was ever decided for it; nothing to release"
        )));
    };
    if ledger.held().is_none() {
        let last = ledger.decisions.last().map_or("none".into(), |d| {
            format!("{} on {}", d.status, d.decided_at)
        });
        return Err(Error::CannotRun(format!(
            "{label} is not held (its latest decision: {last}); nothing released"
        )));
    }
    let i = ledger.decisions.len() - 1;
    let d = &mut ledger.decisions[i];
    d.status = UploadStatus::Accepted;
    if let Some(h) = d.hold.as_mut() {
        h.released = Some(Release {
            released_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            reason: reason.to_string(),
            released_by: released_by.to_string(),
        });
    }
    ledger.accepted = Some(i);
    write(root, &ledger).await?;
    Ok(ledger)
}

/// The reference extract of an upload (§8): the same source's accepted
/// extract with the newest `as_of` older than the upload's own.
pub async fn reference(root: &Root, key: &UploadKey) -> Result<Option<Chosen>> {
    let mut older = dates_of(root, key.extract, &key.source).await?;
    older.retain(|d| *d < key.as_of);
    for as_of in older.iter().rev() {
        let k = UploadKey {
            as_of: *as_of,
            ..key.clone()
        };
        if let Some(d) = read_ledger(root, &k)
            .await?
            .as_ref()
            .and_then(|l| l.accepted())
        {
            return Ok(Some(chosen(&k, d, None)));
        }
    }
    Ok(None)
}

/// The dates of one source's ledger documents, ascending (a document not
/// named by a date is not a ledger and is skipped).
async fn dates_of(root: &Root, extract: Extract, source: &str) -> Result<Vec<NightDate>> {
    let mut dates: Vec<NightDate> = root
        .list_files(&format!("catalog/uploads/{extract}/{source}"))
        .await?
        .iter()
        .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
        .collect();
    dates.sort();
    Ok(dates)
}

fn chosen(key: &UploadKey, d: &Decision, held_as_of: Option<NightDate>) -> Chosen {
    Chosen {
        extract: key.extract,
        source: key.source.clone(),
        as_of: key.as_of,
        curated: d.curated.clone().unwrap_or_default(),
        manifest_sha256: d.manifest_sha256.clone(),
        rows: d.rows_accepted,
        rows_rejected: d.rows_rejected,
        held_as_of,
    }
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
    pub as_of: NightDate,
    /// Curated folder.
    pub curated: String,
    /// Manifest version.
    pub manifest_sha256: String,
    /// Accepted rows.
    pub rows: u64,
    /// Row-level rejects.
    pub rows_rejected: u64,
    /// The newest held upload (§8) of the source with `as_of` ≤ D and newer
    /// than the extract used, if any.
    #[serde(default)]
    pub held_as_of: Option<NightDate>,
}

/// Every source's newest accepted extract with `as_of` ≤ `date`, sorted by
/// source, with the newest held upload newer than it (§8 `held_as_of`).
pub async fn choose(root: &Root, extract: Extract, date: NightDate) -> Result<Vec<Chosen>> {
    let base = format!("catalog/uploads/{extract}");
    let mut out = vec![];
    for source in root.list_dirs(&base).await? {
        let mut dates = dates_of(root, extract, &source).await?;
        dates.retain(|d| *d <= date);
        let mut held_as_of = None;
        for as_of in dates.iter().rev() {
            let key = UploadKey {
                extract,
                source: source.clone(),
                as_of: *as_of,
            };
            let Some(ledger) = read_ledger(root, &key).await? else {
                continue;
            };
            if let Some(d) = ledger.accepted() {
                out.push(chosen(&key, d, held_as_of));
                break;
            }
            if held_as_of.is_none() && ledger.held().is_some() {
                held_as_of = Some(*as_of);
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
