//! The volume guard (contract §8): a valid upload that lost too many of its
//! reference extract's keys (not counting the keys its source was told to
//! clean up), or has no accepted row at all, is held rather than used. The
//! comparison is `queries/15_volume_guard.sql`, over curated data only.
//!
//! Decides; never records (ingest records the decision) and never reads a
//! row value into a message: reasons hold counts and dates only.

use std::collections::BTreeMap;

use crate::catalog::{self, Decision, Hold};
use crate::config::Config;
use crate::curated::curated_schema;
use crate::engine::{self, int_column};
use crate::manifest::UploadKey;
use crate::metrics::pct;
use crate::publications::{committed_dates, read_current, report_key, stage_prefix};
use crate::schema::Extract;
use crate::store::Root;
use crate::{Error, Result};

/// The guard's query.
pub const SQL: (&str, &str) = (
    "15_volume_guard.sql",
    include_str!("../../queries/15_volume_guard.sql"),
);

/// The guard's query for a carrier: the same counts, with every key (an
/// msisdn, always 84 + 9 digits) grouped as one number.
pub const PHONES_SQL: (&str, &str) = (
    "15_volume_guard_phones.sql",
    include_str!("../../queries/15_volume_guard_phones.sql"),
);

/// The key the guard compares an extract by.
pub fn key_column(extract: Extract) -> &'static str {
    match extract {
        Extract::Identity => "person_id",
        Extract::Subscribers => "msisdn",
        Extract::Accounts => "account_number",
    }
}

/// Whether the valid upload `key` (its decision so far: `upload`) is held:
/// `Some((reason, hold))`, or `None` when it may be accepted (no
/// reference, or not shrunk beyond the setting).
pub async fn decide(
    root: &Root,
    cfg: &Config,
    key: &UploadKey,
    upload: &Decision,
) -> Result<Option<(String, Hold)>> {
    let Some(reference) = catalog::reference(root, key).await? else {
        return Ok(None);
    };
    let allowed = match key.extract {
        Extract::Identity => cfg.guard.identity_max_shrink_pct,
        _ => cfg.guard.max_shrink_pct,
    };
    let upload_dir = upload.curated.clone().unwrap_or_default();
    let (reference_keys, lost_keys) =
        count(root, cfg, key, &reference.curated, &upload_dir).await?;
    let hold = Hold {
        reference_as_of: reference.as_of,
        reference_keys,
        lost_keys,
        max_shrink_pct: allowed,
        released: None,
    };
    if upload.rows_accepted == 0 {
        let reason = format!(
            "no accepted rows (all {} rows are row-level rejects); the {} extract stays in use",
            upload.rows_in, reference.as_of
        );
        return Ok(Some((reason, hold)));
    }
    // lost > reference × allowed / 100, compared without the division.
    if lost_keys as f64 * 100.0 <= reference_keys as f64 * allowed {
        return Ok(None);
    }
    let share = pct(lost_keys, reference_keys).unwrap_or(0.0);
    let reason = format!(
        "{lost_keys} of {reference_keys} keys ({share:.2}%) of the {} extract are missing and were not flagged, more than the {allowed}% allowed",
        reference.as_of
    );
    Ok(Some((reason, hold)))
}

/// Step 15 over the reference's and the upload's curated rows:
/// (reference keys, lost keys).
async fn count(
    root: &Root,
    cfg: &Config,
    key: &UploadKey,
    reference_dir: &str,
    upload_dir: &str,
) -> Result<(u64, u64)> {
    let ctx = engine::keys_session(root, cfg)?;
    let column = key_column(key.extract);
    // The key column of the curated layout: a non-null Utf8 in every extract.
    let field = curated_schema(key.extract)
        .field_with_name(column)
        .map_err(|e| Error::encode(SQL.0, e))?
        .clone();
    let schema = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![field]));
    for (name, dir) in [
        ("reference_rows", reference_dir),
        ("upload_rows", upload_dir),
    ] {
        engine::register_parquet(&ctx, name, &[format!("{dir}data/")], schema.clone()).await?;
    }
    let flagged = newest_report(root, key).await?;
    engine::register_report_keys(&ctx, "flagged_keys", key.extract, flagged.as_deref()).await?;
    let (file, text) = match key.extract {
        Extract::Subscribers => PHONES_SQL,
        Extract::Identity | Extract::Accounts => SQL,
    };
    let p = BTreeMap::from([
        ("EXTRACT", key.extract.to_string()),
        ("SOURCE", key.source.clone()),
        ("ROW_KEY", column.to_string()),
        ("REPORT_KEY", "key".to_string()),
    ]);
    let batches = engine::query(&ctx, file, &engine::render(file, text, &p)?)
        .await?
        .collect()
        .await
        .map_err(|e| Error::query(file, e))?;
    let b = batches
        .iter()
        .find(|b| b.num_rows() > 0)
        .ok_or_else(|| Error::CannotRun(format!("queries/{file} returned no row")))?;
    let get = |c: &str| int_column(b, c).map(|a| a.value(0) as u64);
    Ok((get("reference_keys")?, get("lost_keys")?))
}

/// The staged report of the upload's source in the newest published night
/// (whatever its date), if that night has one; never for the registry.
async fn newest_report(root: &Root, key: &UploadKey) -> Result<Option<String>> {
    if key.extract == Extract::Identity {
        return Ok(None);
    }
    let Some(night) = committed_dates(root).await?.pop() else {
        return Ok(None);
    };
    let Some(p) = read_current(root, night).await? else {
        return Ok(None);
    };
    let report = report_key(key.extract, &key.source, night);
    Ok(p.files
        .iter()
        .any(|f| f.path == report)
        .then(|| format!("{}{report}", stage_prefix(night, &p.run_id))))
}
