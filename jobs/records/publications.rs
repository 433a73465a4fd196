//! Published nights as the store holds them (contract §6): each night's
//! commit marker, the pointer that commits it for internal readers, the
//! staging prefix of a run's publication and the report paths. Read by
//! publish (which writes them), by ingest's volume guard (the newest
//! report of a source) and by the service. Must never write anything.

use serde::{Deserialize, Serialize};
use tracing::warn;

use crate::night::NightDate;
use crate::schema::Extract;
use crate::store::{PublishedFile, Root};
use crate::Result;

/// The commit marker `metrics/date=D/_PUBLISHED.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Published {
    /// The run date D.
    pub as_of: NightDate,
    /// The run that published.
    pub run_id: String,
    /// Version of junkrecon.
    pub program_version: String,
    /// When the commit was written (UTC).
    pub published_at: String,
    /// Every file of the publication, sorted by path.
    pub files: Vec<PublishedFile>,
}

/// Key of one source's Parquet report.
pub fn report_key(extract: Extract, source: &str, date: NightDate) -> String {
    let dir = extract
        .source_dir()
        .expect("reports exist for carriers and banks");
    format!("reports/{extract}/{dir}={source}/date={date}/flags.parquet")
}

/// Key of a night's commit marker, `metrics/date=D/_PUBLISHED.json`.
pub fn published_key(date: NightDate) -> String {
    format!("metrics/date={date}/_PUBLISHED.json")
}

/// Reads the commit marker of a date (`None`: not published).
pub async fn read_published(root: &Root, date: NightDate) -> Result<Option<Published>> {
    root.get_json(&published_key(date)).await
}

/// Staging prefix of one run's publication: written whole, never changed.
pub fn stage_prefix(date: NightDate, run_id: &str) -> String {
    format!("publications/date={date}/run={run_id}/")
}

/// Key of a night's pointer to its committed run.
pub fn pointer_key(date: NightDate) -> String {
    format!("publications/date={date}/CURRENT.json")
}

/// The pointer that commits a night for every internal reader.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Pointer {
    /// The committed run.
    pub run_id: String,
    /// Generation of the lease the committing run held: a run never moves
    /// a pointer written under a newer lease than its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_generation: Option<u64>,
}

/// The committed publication of a date, read through its pointer (`None`: not published).
pub async fn read_current(root: &Root, date: NightDate) -> Result<Option<Published>> {
    let Some(p) = root.get_json::<Pointer>(&pointer_key(date)).await? else {
        return Ok(None);
    };
    let k = format!("{}_PUBLISHED.json", stage_prefix(date, &p.run_id));
    match root.get_json(&k).await? {
        Some(published) => Ok(Some(published)),
        // No state of the store may stop later nights: a pointer to a
        // staging that is gone (a run that lost its lease, a hand-made
        // deletion) counts as "not published" and the night can be run again.
        None => {
            warn!(pointer = %pointer_key(date), staging = %k,
                "the pointer names a publication that does not exist: the night counts as not published");
            Ok(None)
        }
    }
}

/// The committed publications of the nights before `date`, oldest first
/// (read through their pointers, as [`read_current`]).
pub async fn committed_before(root: &Root, date: NightDate) -> Result<Vec<Published>> {
    let mut out = vec![];
    for d in committed_dates(root).await? {
        if d < date {
            if let Some(p) = read_current(root, d).await? {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// Dates with a committed publication, ascending.
pub async fn committed_dates(root: &Root) -> Result<Vec<NightDate>> {
    let mut out = vec![];
    for d in root.list_dirs("publications").await? {
        if let Some(date) = crate::manifest::date_folder(&d) {
            if root.head(&pointer_key(date)).await?.is_some() {
                out.push(date);
            }
        }
    }
    Ok(out)
}
