//! What a night's publication was computed from, so that a night run again
//! with nothing changed keeps its publication instead of computing it again.
//!
//! A night's outputs are a function of: the build (Rust code, SQL, schema
//! files, locked dependencies: `JUNKRECON_BUILD_FINGERPRINT` from
//! `build.rs`), the night D, the extracts chosen for it (each with its
//! manifest's sha256 and curated folder), every source's upload state for
//! the night (rejected and held uploads included), the settings the rules
//! and reports read (and the engine settings, see [`Basis`]), and the
//! publications of the nights before D (each
//! committed run's staging is written once and never changed, so its run
//! id stands for its content). The sha256 of all of that is kept in
//! `catalog/nights/date=D.json` next to the run that published.
//!
//! It must never let a publication stand on the fingerprint alone: a
//! publication is kept only when the night's pointer still names that run
//! and every file its marker lists has that content on the contract's path.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tracing::{info, warn};

use crate::catalog::Inputs;
use crate::config::Config;
use crate::night::NightDate;
use crate::publications::{read_current, read_published, Published};
use crate::sources::SourceStatus;
use crate::store::Root;
use crate::{Error, Result};

/// The build's own fingerprint (`build.rs`).
pub const BUILD: &str = env!("JUNKRECON_BUILD_FINGERPRINT");

/// `catalog/nights/date=D.json`: the run that published night D and what it
/// was computed from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NightFingerprint {
    /// The run whose publication this is.
    pub run_id: String,
    /// sha256 (hex) of [`Basis`].
    pub fingerprint: String,
}

/// Everything a night's outputs are computed from, and how it was
/// computed: the engine settings change no output (tests prove it), but an
/// operator who re-runs a night under another memory pool, join strategy,
/// bucket count or engine asks to see it computed that way.
#[derive(Serialize)]
struct Basis<'a> {
    build: &'a str,
    as_of: NightDate,
    inputs: &'a Inputs,
    sources: &'a [SourceStatus],
    max_subscriptions_per_person: u32,
    enforcement: &'a crate::config::EnforcementSettings,
    expected_carriers: &'a [String],
    expected_banks: &'a [String],
    memory_limit_mb: u64,
    joins: crate::config::Joins,
    key_buckets: u32,
    target_partitions: usize,
    batch_size: usize,
    engine: String,
    /// (night, committed run) of every published night before D.
    earlier: Vec<(NightDate, String)>,
}

fn key(date: NightDate) -> String {
    format!("catalog/nights/date={date}.json")
}

/// The fingerprint of night `date` computed from `inputs` and `sources`
/// under `cfg`, over `earlier`, the publications committed before it
/// ([`crate::publications::committed_before`]).
pub fn of_night(
    date: NightDate,
    cfg: &Config,
    inputs: &Inputs,
    sources: &[SourceStatus],
    earlier: &[Published],
) -> Result<String> {
    let earlier = earlier
        .iter()
        .map(|p| (p.as_of, p.run_id.clone()))
        .collect();
    let basis = Basis {
        build: BUILD,
        as_of: date,
        inputs,
        sources,
        max_subscriptions_per_person: cfg.max_subscriptions_per_person,
        enforcement: &cfg.enforcement,
        expected_carriers: &cfg.expected_carriers,
        expected_banks: &cfg.expected_banks,
        memory_limit_mb: cfg.memory_limit_mb,
        joins: cfg.joins,
        key_buckets: cfg.key_buckets,
        target_partitions: cfg.target_partitions,
        batch_size: cfg.batch_size,
        engine: cfg.engine.to_string(),
        earlier,
    };
    let text = serde_json::to_vec(&basis).map_err(|e| Error::encode("night fingerprint", e))?;
    Ok(hex::encode(Sha256::digest(&text)))
}

/// Records that run `run_id` published night `date` from `fingerprint`.
pub async fn remember(root: &Root, date: NightDate, run_id: &str, fingerprint: &str) -> Result<()> {
    let record = NightFingerprint {
        run_id: run_id.to_string(),
        fingerprint: fingerprint.to_string(),
    };
    let body =
        serde_json::to_vec_pretty(&record).map_err(|e| Error::encode("night fingerprint", e))?;
    root.put(&key(date), body).await
}

/// The publication of night `date`, when it was computed from `fingerprint`
/// and is still whole: the pointer names the run that recorded it, and the
/// marker at `metrics/date=D/_PUBLISHED.json` is that run's, with every
/// file it lists holding its sha256. `None` otherwise (the night is then
/// computed again).
pub async fn standing(
    root: &Root,
    date: NightDate,
    fingerprint: &str,
) -> Result<Option<Published>> {
    let Some(recorded) = root.get_json::<NightFingerprint>(&key(date)).await? else {
        return Ok(None);
    };
    if recorded.fingerprint != fingerprint {
        info!(night = %date, run_id = %recorded.run_id, "the night's inputs, settings or build changed since it was published: computing it again");
        return Ok(None);
    }
    let committed = read_current(root, date).await?;
    let marker = read_published(root, date).await?;
    let (Some(committed), Some(marker)) = (committed, marker) else {
        return Ok(None);
    };
    if committed.run_id != recorded.run_id || marker != committed {
        return Ok(None);
    }
    if let Some(path) = first_damaged(root, &marker).await? {
        warn!(night = %date, file = %path, "a published file does not match its marker: computing the night again");
        return Ok(None);
    }
    Ok(Some(marker))
}

/// The first file of the marker (in its order) that is missing or whose
/// content is not the listed sha256, each streamed through the hash.
async fn first_damaged(root: &Root, marker: &Published) -> Result<Option<String>> {
    for f in &marker.files {
        if root.sha256_opt(&f.path).await? != Some((f.sha256.clone(), f.bytes)) {
            return Ok(Some(f.path.clone()));
        }
    }
    Ok(None)
}
