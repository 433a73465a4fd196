//! Where each carrier's and bank's uploads stand on a night: its extract is
//! current (an accepted upload for D), stale (older than D), or missing (an
//! expected source with no accepted upload for D at cut-off, or a source with
//! no accepted extract at all), and which of its uploads were rejected and
//! why, and which are held by the volume guard (§8; the registry's held
//! snapshots too, under kind `registry`). Published with the night as `metrics/date=D/sources.json`, read by
//! the dashboard and `/metrics`. Built from the ledger only: never row values.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::catalog::{self, Chosen, FolderLedger, Inputs};
use crate::config::Config;
use crate::night::NightDate;
use crate::schema::Extract;
use crate::store::Root;
use crate::Result;

words! {
    /// A source's state on a night.
    pub enum SourceState {
        /// Its extract in use is of the night itself.
        Current = "current",
        /// Its extract in use is older, and it is not expected every night.
        Stale = "stale",
        /// Expected, and no extract of the night (or none at all).
        Missing = "missing",
    }
}

/// One source's state on night D.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SourceStatus {
    /// `carrier` or `bank`.
    pub kind: String,
    /// Carrier or bank code.
    pub source: String,
    /// Named in `expected_carriers` / `expected_banks`.
    pub expected: bool,
    /// Current, stale or missing.
    pub status: SourceState,
    /// as_of of the extract used (none when the source never had one accepted).
    pub extract_as_of: Option<NightDate>,
    /// D minus extract_as_of, in days.
    pub age_days: Option<i64>,
    /// Rejected uploads not superseded: as_of ≤ D and not older than the extract in use.
    pub rejected_uploads: Vec<RejectedUpload>,
    /// Uploads held by the volume guard (§8) and not released: as_of ≤ D and
    /// newer than the extract in use. Not used by the night.
    #[serde(default)]
    pub held_uploads: Vec<HeldUpload>,
}

/// An upload held by the volume guard, with the ledger's reason.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HeldUpload {
    /// The upload's date folder.
    pub as_of: NightDate,
    /// Why it was held (keys lost against the reference, or no accepted row).
    pub reason: String,
    /// When it was held (UTC).
    pub decided_at: String,
    /// The `junkrecon release` arguments that let it through once checked.
    pub release: String,
}

/// A rejected upload, with the ledger's reason (file, column, expected versus found).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RejectedUpload {
    /// The upload's date folder.
    pub as_of: NightDate,
    /// Why it was rejected.
    pub reason: String,
    /// When it was decided (UTC).
    pub decided_at: String,
}

/// The ledgers of carriers' and banks' uploads, read once per run.
pub struct SourceLedgers {
    /// `catalog/uploads/subscribers/`.
    pub carriers: Vec<FolderLedger>,
    /// `catalog/uploads/accounts/`.
    pub banks: Vec<FolderLedger>,
    /// `catalog/uploads/identity/`.
    pub registry: Vec<FolderLedger>,
}

impl SourceLedgers {
    /// Reads every ledger of both source kinds.
    pub async fn read(root: &Root) -> Result<SourceLedgers> {
        Ok(SourceLedgers {
            carriers: catalog::all_ledgers(root, Extract::Subscribers).await?,
            banks: catalog::all_ledgers(root, Extract::Accounts).await?,
            registry: catalog::all_ledgers(root, Extract::Identity).await?,
        })
    }

    /// The ledgers of one kind (`carrier`, `bank` or `registry`).
    pub fn of(&self, kind: &str) -> &[FolderLedger] {
        match kind {
            "carrier" => &self.carriers,
            "registry" => &self.registry,
            _ => &self.banks,
        }
    }
}

/// The rejected uploads of `source` that matter on night `date`: those whose
/// latest decision is a rejection, dated on or before `date` and not before
/// the extract in use (`since`; `None` when none is in use). An older
/// rejection was superseded by the accepted extract. The one rule for every
/// reader: `status`, the run's table, `sources.json` and the dashboard.
pub fn rejected_uploads(
    ledgers: &[FolderLedger],
    source: &str,
    date: NightDate,
    since: Option<NightDate>,
) -> Vec<RejectedUpload> {
    ledgers
        .iter()
        .filter(|l| l.key.source == source)
        .filter(|l| l.key.as_of <= date && since.is_none_or(|s| l.key.as_of >= s))
        .filter_map(|l| {
            let last = l.decisions.last()?;
            (last.status == crate::catalog::UploadStatus::Rejected).then(|| RejectedUpload {
                as_of: l.key.as_of,
                reason: last.reason.clone(),
                decided_at: last.decided_at.clone(),
            })
        })
        .collect()
}

/// The held uploads of `source` that matter on night `date`: those whose
/// latest decision holds them, dated on or before `date` and after the
/// extract in use (`since`). The one rule for `status`, `sources.json`,
/// `/metrics` and the dashboard.
pub fn held_uploads(
    ledgers: &[FolderLedger],
    source: &str,
    date: NightDate,
    since: Option<NightDate>,
) -> Vec<HeldUpload> {
    ledgers
        .iter()
        .filter(|l| l.key.source == source)
        .filter(|l| l.key.as_of <= date && since.is_none_or(|s| l.key.as_of > s))
        .filter_map(|l| {
            let d = l.held()?;
            Some(HeldUpload {
                as_of: l.key.as_of,
                reason: d.reason.clone(),
                decided_at: d.decided_at.clone(),
                release: format!(
                    "--extract {} --source {} --as-of {}",
                    l.key.extract, l.key.source, l.key.as_of
                ),
            })
        })
        .collect()
}

/// Status of every carrier and bank known on night D: expected ones, ones
/// with an extract in use, and ones with only rejected uploads.
pub fn statuses(
    all: &SourceLedgers,
    inputs: &Inputs,
    date: NightDate,
    cfg: &Config,
) -> Vec<SourceStatus> {
    let mut out = vec![];
    for (kind, chosen, expected) in [
        ("carrier", &inputs.subscribers, &cfg.expected_carriers),
        ("bank", &inputs.accounts, &cfg.expected_banks),
    ] {
        let ledgers = all.of(kind);
        let mut known: BTreeMap<String, Option<&Chosen>> = BTreeMap::new();
        for s in expected {
            known.insert(s.clone(), None);
        }
        for l in ledgers.iter().filter(|l| l.key.as_of <= date) {
            known.entry(l.key.source.clone()).or_insert(None);
        }
        for c in chosen {
            known.insert(c.source.clone(), Some(c));
        }
        for (source, used) in known {
            let extract_as_of = used.map(|c| c.as_of);
            let rejected_uploads = rejected_uploads(ledgers, &source, date, extract_as_of);
            let held_uploads = held_uploads(ledgers, &source, date, extract_as_of);
            let is_expected = expected.contains(&source);
            out.push(SourceStatus {
                kind: kind.into(),
                status: status(extract_as_of, date, is_expected),
                age_days: extract_as_of.map(|e| date.days_since(e)),
                extract_as_of,
                expected: is_expected,
                source,
                rejected_uploads,
                held_uploads,
            });
        }
    }
    if let Some(registry) = registry_status(all, inputs, date) {
        out.push(registry);
    }
    out
}

/// The registry's entry (kind `registry`, source `NATIONAL`), only on a
/// night when one of its snapshots is held: a held snapshot is news, an
/// accepted one is not.
fn registry_status(all: &SourceLedgers, inputs: &Inputs, date: NightDate) -> Option<SourceStatus> {
    let used = &inputs.identity;
    let held = held_uploads(&all.registry, &used.source, date, Some(used.as_of));
    if held.is_empty() {
        return None;
    }
    Some(SourceStatus {
        kind: "registry".into(),
        source: used.source.clone(),
        expected: true,
        status: status(Some(used.as_of), date, true),
        extract_as_of: Some(used.as_of),
        age_days: Some(date.days_since(used.as_of)),
        rejected_uploads: rejected_uploads(&all.registry, &used.source, date, Some(used.as_of)),
        held_uploads: held,
    })
}

fn status(extract_as_of: Option<NightDate>, date: NightDate, expected: bool) -> SourceState {
    match extract_as_of {
        Some(d) if d == date => SourceState::Current,
        Some(_) if !expected => SourceState::Stale,
        _ => SourceState::Missing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_of_a_source() {
        let d = |s: &str| s.parse::<NightDate>().unwrap();
        let (d20, d21) = (d("2026-11-20"), d("2026-11-21"));
        assert_eq!(status(Some(d21), d21, true), "current");
        assert_eq!(status(Some(d20), d21, false), "stale");
        assert_eq!(status(Some(d20), d21, true), "missing");
        assert_eq!(status(None, d21, false), "missing");
    }
}
