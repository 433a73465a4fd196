//! Ingest (contract §1–§3): finds complete uploads not decided before,
//! validates them, and turns each accepted one into a curated, normalised
//! dataset under `curated/`, with its row-level rejects beside it. Every
//! decision lands in the ledger ([`crate::catalog`]).
//!
//! Must never write, move or delete anything under `landing/`, never read a
//! folder without a manifest, and never put a row value (name, ID number,
//! date of birth) into a message or log line: reasons name files, rows and columns.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, Date32Array, Date32Builder, Int64Builder,
    StringArray, StringBuilder,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use arrow::record_batch::RecordBatch;
use futures::StreamExt;
use object_store::path::Path;
// ParquetObjectReader is deprecated upstream in favour of a hand-written
// AsyncFileReader (arrow-rs#10308); it is still the maintained reader of
// parquet 59 and does ranged reads, which is what we need.
use object_store::buffered::BufWriter;
#[allow(deprecated)]
use parquet::arrow::async_reader::ParquetObjectReader;
use parquet::arrow::async_reader::ParquetRecordBatchStream;
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};
use parquet::basic::Compression;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::{info, warn, Instrument};

use crate::catalog::UploadStatus;
use crate::catalog::{self, Decision};
use crate::config::{Config, CuratedCompression};
use crate::curated::{curated_schema, rejects_schema};
use crate::display::{excerpt, printable};
use crate::manifest::{self, Manifest, UploadKey, MANIFEST};
use crate::night::NightDate;
use crate::normalize::{clean_text, mask_id, phone, upper_case, NameKeys};
use crate::schema::{ColumnSpec, Extract, ExtractSchema};
use crate::store::{Listing, NameForm, Root};
use crate::{Error, Result};

/// Row-level reject reasons (§3).
pub const INVALID_MSISDN: &str = "INVALID_MSISDN";
/// Row-level reject: empty account number.
pub const EMPTY_ACCOUNT_NUMBER: &str = "EMPTY_ACCOUNT_NUMBER";
/// Row-level reject: unknown type/status value or null in a required column.
pub const INVALID_VALUE: &str = "INVALID_VALUE";

/// `row_id` = file index × 2^40 + 1-based row number: stable, and decodable
/// back to "row N of file F" for messages.
const ROW_ID_FILE_SHIFT: i64 = 1 << 40;

/// What ingest did with one upload.
#[derive(Debug, Clone, Serialize)]
pub struct UploadOutcome {
    /// Which folder.
    #[serde(flatten)]
    pub key: UploadKey,
    /// The decision recorded.
    #[serde(flatten)]
    pub decision: Decision,
    /// Wall time spent on it.
    pub seconds: f64,
}

/// A path under `landing/` that is not followed, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Ignored {
    /// Folder relative to the root.
    pub path: String,
    /// Why it is not an upload.
    pub reason: String,
}

/// Result of one ingest pass.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestReport {
    /// Uploads decided in this pass.
    pub decided: Vec<UploadOutcome>,
    /// Folders not followed (not a source code, not a date).
    pub ignored: Vec<Ignored>,
    /// Folders holding files but no manifest yet (uploads in progress).
    pub in_progress: Vec<String>,
    /// Uploads not decided this pass because the store failed while they
    /// were read (retried on the next pass, rejected after
    /// [`catalog::MAX_ATTEMPTS`] failed attempts).
    pub deferred: Vec<Deferred>,
    /// Complete uploads already decided earlier (not read again).
    pub already_decided: usize,
}

/// An upload whose reading failed on a transient store error this pass.
#[derive(Debug, Clone, Serialize)]
pub struct Deferred {
    /// Which folder.
    #[serde(flatten)]
    pub key: UploadKey,
    /// Failed attempts so far.
    pub attempts: u32,
    /// The last failure, one line.
    pub last_error: String,
}

/// One row-level reject (§3): position and reason only, never the value.
#[derive(Debug, Clone)]
struct RowReject {
    file: String,
    row_number: i64,
    reason: &'static str,
    column: String,
}

/// Finds and decides every complete upload not decided before.
///
/// Folders are decided in parallel (one task per folder, as many at once as
/// there are cores): each streams its files with bounded memory, and the
/// report lists them in discovery order whatever order they finish in.
pub async fn ingest(root: &Root, run_id: &str, cfg: &Config) -> Result<IngestReport> {
    let mut report = IngestReport::default();
    let mut keys = vec![];
    for extract in Extract::ALL {
        keys.extend(discover(root, extract, &mut report).await?);
    }
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let tasks = keys.into_iter().enumerate().map(|(i, key)| {
        let (root, run_id, cfg) = (root.clone(), run_id.to_string(), cfg.clone());
        let span = tracing::info_span!("upload", upload = %key.label());
        let task = tokio::spawn(
            async move { ingest_folder(&root, &key, &run_id, &cfg).await }.instrument(span),
        );
        async move { (i, task.await) }
    });
    // Unordered: `buffered` counts a finished folder waiting behind a slower
    // one as in flight, so on a night where most folders were decided before,
    // only one upload at a time was being curated.
    let mut results: Vec<(usize, Folder)> = vec![];
    let mut stream = futures::stream::iter(tasks).buffer_unordered(parallel);
    while let Some((i, joined)) = stream.next().await {
        let outcome =
            joined.map_err(|e| Error::CannotRun(format!("ingest task failed: {e}")))??;
        results.push((i, outcome));
    }
    results.sort_by_key(|(i, _)| *i);
    let mut valid = vec![];
    let mut decided: Vec<(usize, UploadOutcome)> = vec![];
    for (i, outcome) in results {
        match outcome {
            Folder::InProgress(dir) => report.in_progress.push(dir),
            Folder::AlreadyDecided => report.already_decided += 1,
            Folder::Deferred(d) => report.deferred.push(d),
            Folder::Decided(o) => decided.push((i, *o)),
            Folder::Valid(o) => valid.push((i, o)),
        }
    }
    decided.extend(guard_all(root, cfg, valid, parallel).await?);
    decided.sort_by_key(|(i, _)| *i);
    report.decided = decided.into_iter().map(|(_, o)| o).collect();
    Ok(report)
}

/// The volume guard's decisions on the valid uploads (in discovery order),
/// recorded in the ledger. Sources are independent and run at once, up to
/// `parallel`; within a source the uploads are decided in discovery order,
/// which is `as_of` order, so that an older upload accepted here is the
/// reference of a newer one (§8).
async fn guard_all(
    root: &Root,
    cfg: &Config,
    valid: Vec<(usize, Box<UploadOutcome>)>,
    parallel: usize,
) -> Result<Vec<(usize, UploadOutcome)>> {
    let mut by_source: Vec<Vec<(usize, Box<UploadOutcome>)>> = vec![];
    for (i, o) in valid {
        let same = |g: &Vec<(usize, Box<UploadOutcome>)>| {
            g[0].1.key.extract == o.key.extract && g[0].1.key.source == o.key.source
        };
        match by_source.iter_mut().find(|g| same(g)) {
            Some(g) => g.push((i, o)),
            None => by_source.push(vec![(i, o)]),
        }
    }
    let tasks = by_source.into_iter().map(|group| {
        let (root, cfg) = (root.clone(), cfg.clone());
        tokio::spawn(
            async move {
                let mut out = vec![];
                for (i, o) in group {
                    out.push((i, *guard_and_record(&root, &cfg, o).await?));
                }
                Ok::<_, Error>(out)
            }
            .in_current_span(),
        )
    });
    let mut stream = futures::stream::iter(tasks).buffer_unordered(parallel);
    let mut out = vec![];
    while let Some(joined) = stream.next().await {
        out.extend(joined.map_err(|e| Error::CannotRun(format!("ingest task failed: {e}")))??);
    }
    Ok(out)
}

/// What happened to one landing folder in one pass.
enum Folder {
    InProgress(String),
    AlreadyDecided,
    Deferred(Deferred),
    Decided(Box<UploadOutcome>),
    /// Passed every check; the volume guard decides it next.
    Valid(Box<UploadOutcome>),
}

/// Lists candidate folders of one extract kind, recording the ones not
/// followed with their reason. Nothing a sender can put under `landing/`
/// makes this fail: an entry that cannot be listed, read or trusted (a link,
/// a name that is not UTF-8, a key the store cannot represent) is recorded
/// as ignored and the others are listed. Only a transient store failure is
/// an error.
async fn discover(
    root: &Root,
    extract: Extract,
    report: &mut IngestReport,
) -> Result<Vec<UploadKey>> {
    let base = format!("landing/{extract}");
    let sources: Vec<(String, String)> = match extract.source_dir() {
        // The registry has one fixed source code, from its schema file.
        None => vec![(
            extract.contract().source_code.clone().unwrap_or_default(),
            base.clone(),
        )],
        Some(dir) => {
            let mut v = vec![];
            for name in listed_dirs(root, &base, &NameForm::source(dir), report).await? {
                if let Some(code) = manifest::source_folder(dir, &name) {
                    v.push((code.to_string(), format!("{base}/{name}")));
                } else {
                    report.ignored.push(Ignored {
                        path: format!("{base}/{}/", printable(&name)),
                        reason: format!(
                            "folder name {name:?} is not {dir}=CODE with CODE matching ^[A-Z0-9_]{{2,16}}$; not read"
                        ),
                    });
                }
            }
            v
        }
    };
    let mut keys = vec![];
    for (source, dir) in sources {
        for name in listed_dirs(root, &dir, &NameForm::date(), report).await? {
            match manifest::date_folder(&name) {
                Some(d) => keys.push(UploadKey {
                    extract,
                    source: source.clone(),
                    as_of: d,
                }),
                None => report.ignored.push(Ignored {
                    path: format!("{dir}/{}/", printable(&name)),
                    reason: format!("folder name {name:?} is not date=YYYY-MM-DD; not read"),
                }),
            }
        }
    }
    Ok(keys)
}

/// The sub-folders of `prefix` that may be followed; the rest is recorded
/// in `report.ignored` with its reason.
async fn listed_dirs(
    root: &Root,
    prefix: &str,
    form: &NameForm,
    report: &mut IngestReport,
) -> Result<Vec<String>> {
    match root.list_landing_dirs(prefix, form).await? {
        Listing::Dirs { dirs, skipped } => {
            for (name, reason) in skipped {
                warn!(path = %format!("{prefix}/{name}"), reason = %reason, "landing entry not followed");
                report.ignored.push(Ignored {
                    path: format!("{prefix}/{name}"),
                    reason,
                });
            }
            Ok(dirs)
        }
        Listing::Unlistable(reason) => {
            warn!(path = %prefix, reason = %reason, "landing folder cannot be listed; not followed");
            report.ignored.push(Ignored {
                path: format!("{prefix}/"),
                reason: format!("cannot be listed: {reason}; not read"),
            });
            Ok(vec![])
        }
    }
}

async fn ingest_folder(root: &Root, key: &UploadKey, run_id: &str, cfg: &Config) -> Result<Folder> {
    let dir = key.landing_dir();
    let manifest_key = format!("{dir}{MANIFEST}");
    let manifest_bytes = match root.regular_file(&manifest_key).await? {
        None => return Ok(Folder::InProgress(dir)),
        Some(Ok(_)) => Ok(root.get(&manifest_key).await?),
        Some(Err(reason)) => Err(reason),
    };
    // A manifest that is not a regular file is never read: its version is
    // named by the reason, so the same link is decided once.
    let manifest_sha = match &manifest_bytes {
        Ok(bytes) => hex::encode(Sha256::digest(bytes)),
        Err(reason) => hex::encode(Sha256::digest(format!("not a file: {reason}"))),
    };
    let ledger = catalog::read_ledger(root, key).await?;
    if ledger.as_ref().is_some_and(|l| l.has_seen(&manifest_sha)) {
        return Ok(Folder::AlreadyDecided);
    }
    let started = Instant::now();
    let curated = format!(
        "curated/{}/{}/as_of={}/upload={}/",
        key.extract,
        key.source,
        key.as_of,
        &manifest_sha[..16]
    );
    let outcome = match manifest_bytes.and_then(|b| manifest::parse_and_check(&b, key)) {
        Err(reason) => Ok(Verdict::rejected(reason, 0)),
        Ok(m) => validate_and_curate(root, key, &m, &curated, cfg).await,
    };
    let verdict = match outcome {
        Ok(v) => v,
        Err(e) => {
            root.delete_prefix(&curated).await?;
            match failed_read(root, key, &manifest_sha, e).await? {
                Some(v) => v,
                None => return Ok(Folder::Deferred(deferred(root, key).await?)),
            }
        }
    };
    if verdict.reason.is_some() {
        root.delete_prefix(&curated).await?;
    }
    let reason = verdict.reason.as_deref().map(|r| printable(r).into_owned());
    let decision = Decision {
        manifest_sha256: manifest_sha,
        status: match reason {
            None => UploadStatus::Accepted,
            Some(_) => UploadStatus::Rejected,
        },
        reason: reason.clone().unwrap_or_default(),
        run_id: run_id.to_string(),
        decided_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        rows_in: verdict.rows_in,
        rows_accepted: verdict.rows_accepted,
        rows_rejected: verdict.rows_rejected,
        curated: reason.is_none().then(|| curated.clone()),
        hold: None,
    };
    let outcome = Box::new(UploadOutcome {
        key: key.clone(),
        decision,
        seconds: started.elapsed().as_secs_f64(),
    });
    if let Some(r) = &reason {
        warn!(reason = %r, "upload rejected");
        catalog::record(root, key, outcome.decision.clone()).await?;
        return Ok(Folder::Decided(outcome));
    }
    // A valid upload is recorded only once the volume guard has decided it,
    // in `as_of` order per source (§8): not yet.
    Ok(Folder::Valid(outcome))
}

/// The volume guard's decision on a valid upload (§8), recorded in the
/// ledger: accepted, or held with the reason.
async fn guard_and_record(
    root: &Root,
    cfg: &Config,
    mut outcome: Box<UploadOutcome>,
) -> Result<Box<UploadOutcome>> {
    let span = tracing::info_span!("upload", upload = %outcome.key.label());
    async {
        let d = &mut outcome.decision;
        let started = Instant::now();
        let held = crate::holds::decide(root, cfg, &outcome.key, d).await?;
        let guard_seconds = started.elapsed().as_secs_f64();
        match held {
            Some((reason, hold)) => {
                warn!(reason = %reason, guard_seconds, "upload held by the volume guard");
                d.status = UploadStatus::Held;
                d.reason = reason;
                d.hold = Some(hold);
            }
            None => info!(
                rows = d.rows_accepted,
                rows_rejected = d.rows_rejected,
                guard_seconds,
                "upload accepted"
            ),
        }
        catalog::record(root, &outcome.key, outcome.decision.clone()).await?;
        Ok(outcome)
    }
    .instrument(span)
    .await
}

/// What to do with an upload whose reading failed with `e`: a store
/// failure the upload itself causes (a key the store cannot represent, a
/// name too long) rejects it at once; a transient one (network, 5xx, local
/// I/O) is recorded as an attempt and retried on the next pass (`None`),
/// until [`catalog::MAX_ATTEMPTS`] attempts have failed, which rejects it.
/// Any other error (a query that cannot be planned, an encoding failure
/// with no I/O underneath) is junkrecon's own fault, not the sender's nor
/// the store's: it is returned, and the run fails with it.
async fn failed_read(
    root: &Root,
    key: &UploadKey,
    manifest_sha: &str,
    e: Error,
) -> Result<Option<Verdict>> {
    let transient = match &e {
        Error::Store { source, .. } => crate::store::is_transient(source),
        Error::Encode { source, .. } => match crate::store::store_failure(source.as_ref()) {
            Some(transient) => transient,
            None => return Err(e),
        },
        _ => return Err(e),
    };
    let line = printable(&error_line(&e)).into_owned();
    if !transient {
        return Ok(Some(Verdict::rejected(
            format!("cannot be read from the store: {line}"),
            0,
        )));
    }
    let attempts = catalog::record_attempt(root, key, manifest_sha, &line).await?;
    if attempts >= catalog::MAX_ATTEMPTS {
        return Ok(Some(Verdict::rejected(
            format!("could not be read in {attempts} attempts; the last failure: {line}"),
            0,
        )));
    }
    warn!(attempts, error = %line, "upload not decided: the store failed while reading it; retried on the next pass");
    Ok(None)
}

async fn deferred(root: &Root, key: &UploadKey) -> Result<Deferred> {
    let pending = catalog::read_ledger(root, key)
        .await?
        .and_then(|l| l.pending);
    Ok(Deferred {
        key: key.clone(),
        attempts: pending.as_ref().map_or(0, |p| p.attempts),
        last_error: pending.map(|p| p.last_error).unwrap_or_default(),
    })
}

/// An error in one line, with the S3 error code where there is one.
fn error_line(e: &Error) -> String {
    match e {
        Error::Store { op, key, source } => {
            format!("{op} {key}: {}", crate::store::short_store_error(source))
        }
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// What validation concluded: a rejection reason, or accepted with counts.
struct Verdict {
    reason: Option<String>,
    rows_in: u64,
    rows_accepted: u64,
    rows_rejected: u64,
}

impl Verdict {
    fn rejected(reason: String, rows_in: u64) -> Verdict {
        Verdict {
            reason: Some(reason),
            rows_in,
            rows_accepted: 0,
            rows_rejected: 0,
        }
    }
}

/// A data file that passed the cheap checks (presence, checksum, footer, rows, schema).
#[derive(Clone)]
struct CheckedFile {
    name: String,
    size: u64,
    /// Rows the file must yield when read (the manifest's count at ingest,
    /// the footer's for `check`): never trusted, compared with what is read.
    rows: u64,
}

/// Checks every file, then curates them. `Err` only for store failures;
/// a contract breach is an `Ok(Verdict)` carrying the reason.
async fn validate_and_curate(
    root: &Root,
    key: &UploadKey,
    m: &Manifest,
    curated: &str,
    cfg: &Config,
) -> Result<Verdict> {
    let extract = key.extract;
    let spec = extract
        .contract_at(m.schema_version)
        .expect("the manifest's schema_version was checked");
    let dir = key.landing_dir();
    let rows_in: u64 = m.files.iter().fold(0u64, |n, f| n.saturating_add(f.rows));
    let mut checked = vec![];
    for f in &m.files {
        match check_file(root, spec, &format!("{dir}{}", f.name), f).await? {
            Ok(size) => checked.push(CheckedFile {
                name: f.name.clone(),
                size,
                rows: f.rows,
            }),
            Err(reason) => return Ok(Verdict::rejected(reason, rows_in)),
        }
    }
    // The files of an upload are independent: curate them in parallel, then
    // merge counts and rejects in file order.
    let parallel = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let codec = curated_codec(root, cfg);
    let tasks = checked.iter().cloned().enumerate().map(|(idx, f)| {
        let (root, key, dir) = (root.clone(), key.clone(), dir.clone());
        let out = format!("{curated}data/part-{idx:05}.parquet");
        tokio::spawn(
            async move {
                let mut rejects = vec![];
                let out = CuratedOut { key: &out, codec };
                let r =
                    curate_file(&root, spec, &key, idx, &dir, &f, Some(out), &mut rejects).await;
                r.map(|r| (r, rejects))
            }
            .in_current_span(),
        )
    });
    let mut results = futures::stream::iter(tasks).buffered(parallel);
    let mut rejects = vec![];
    let mut accepted = 0u64;
    let mut failure = None;
    while let Some(joined) = results.next().await {
        let (r, file_rejects) =
            joined.map_err(|e| Error::CannotRun(format!("ingest task failed: {e}")))??;
        match r {
            Ok(n) => accepted += n,
            Err(reason) => {
                failure.get_or_insert(reason);
            }
        }
        rejects.extend(file_rejects);
    }
    if let Some(reason) = failure {
        return Ok(Verdict::rejected(reason, rows_in));
    }
    if extract == Extract::Identity {
        if let Some(reason) = identity_duplicates(root, curated, &checked, cfg).await? {
            return Ok(Verdict::rejected(reason, rows_in));
        }
    }
    let out = CuratedOut {
        key: &format!("{curated}rejects/rejects.parquet"),
        codec,
    };
    write_rejects(root, key, out, &rejects).await?;
    Ok(Verdict {
        reason: None,
        rows_in,
        rows_accepted: accepted,
        rows_rejected: rejects.len() as u64,
    })
}

/// A Parquet or Arrow error as quoted in a rejection reason. Such a message
/// can echo bytes of the sender's file (a damaged column name, say), so it is
/// escaped and cut like any other untrusted text: the reason stays one short line.
fn quoted(e: impl std::fmt::Display) -> String {
    excerpt(&e.to_string(), 240)
}

/// Opens a Parquet file's footer for streaming (ranged reads). The error is
/// the rejection reason: `unreadable NAME: not valid Parquet (...)`.
#[allow(deprecated)]
async fn open_parquet(
    root: &Root,
    path: &str,
    size: u64,
    name: &str,
) -> std::result::Result<ParquetRecordBatchStreamBuilder<ParquetObjectReader>, String> {
    let reader = ParquetObjectReader::new(root.store(), Path::from(path)).with_file_size(size);
    ParquetRecordBatchStreamBuilder::new(reader)
        .await
        .map_err(|e| format!("unreadable {name}: not valid Parquet ({})", quoted(e)))
}

/// Presence, checksum, readable footer, row count, schema. Returns the file size.
async fn check_file(
    root: &Root,
    spec: &ExtractSchema,
    path: &str,
    f: &manifest::ManifestFile,
) -> Result<std::result::Result<u64, String>> {
    let size = match root.regular_file(path).await? {
        None => {
            return Ok(Err(format!(
                "{} is listed in the manifest but missing",
                f.name
            )))
        }
        Some(Err(reason)) => return Ok(Err(reason)),
        Some(Ok(size)) => size,
    };
    let (sha, _) = root.sha256(path).await?;
    if !sha.eq_ignore_ascii_case(&f.sha256) {
        return Ok(Err(format!(
            "{}: sha256 is {sha}, manifest says {}",
            f.name, f.sha256
        )));
    }
    let builder = match open_parquet(root, path, size, &f.name).await {
        Ok(b) => b,
        Err(reason) => return Ok(Err(reason)),
    };
    let rows = match footer_rows(&builder, &f.name) {
        Ok(rows) => rows,
        Err(reason) => return Ok(Err(reason)),
    };
    if rows != f.rows {
        return Ok(Err(format!(
            "{}: holds {rows} rows, manifest says {}",
            f.name, f.rows
        )));
    }
    if let Err(e) = spec.check(builder.schema()) {
        return Ok(Err(format!(
            "{}: {e} (schema_version {})",
            f.name, spec.schema_version
        )));
    }
    Ok(Ok(size))
}

/// The footer's row count, once it agrees with the sum of its row groups'
/// counts. Neither is trusted further: curation counts the rows it reads.
#[allow(deprecated)]
fn footer_rows(
    builder: &ParquetRecordBatchStreamBuilder<ParquetObjectReader>,
    name: &str,
) -> std::result::Result<u64, String> {
    let md = builder.metadata();
    let footer = md.file_metadata().num_rows();
    let groups: i128 = md.row_groups().iter().map(|g| g.num_rows() as i128).sum();
    if footer < 0 || footer as i128 != groups {
        return Err(format!(
            "{name}: the footer says {footer} rows, its row groups hold {groups}"
        ));
    }
    Ok(footer as u64)
}

/// Where a curated file goes, and how it is compressed.
#[derive(Clone, Copy)]
struct CuratedOut<'a> {
    key: &'a str,
    codec: Compression,
}

/// Streams one landing file through normalisation into one curated file.
/// Returns the accepted row count, or the reason the whole upload is rejected.
#[allow(clippy::too_many_arguments)]
async fn curate_file(
    root: &Root,
    spec: &'static ExtractSchema,
    key: &UploadKey,
    idx: usize,
    dir: &str,
    f: &CheckedFile,
    out: Option<CuratedOut<'_>>,
    rejects: &mut Vec<RowReject>,
) -> Result<std::result::Result<u64, String>> {
    let path = format!("{dir}{}", f.name);
    let builder = match open_parquet(root, &path, f.size, &f.name).await {
        Ok(b) => b,
        Err(reason) => return Ok(Err(reason)),
    };
    let extract = spec.extract;
    // Only the columns of the manifest's version are read: a version-1
    // file's columns named like version 2's are extra, and ignored (§7).
    let names: Vec<&str> = spec.columns.iter().map(|c| c.name.as_str()).collect();
    let roots: Vec<usize> = names
        .iter()
        .map(|n| builder.schema().index_of(n).expect("schema checked"))
        .collect();
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut stream = match builder.with_projection(mask).with_batch_size(65536).build() {
        Ok(s) => s,
        Err(e) => return Ok(Err(format!("unreadable {}: {}", f.name, quoted(e)))),
    };
    let schema = curated_schema(extract);
    let mut writer = match out {
        Some(out) => Some(
            AsyncArrowWriter::try_new(
                BufWriter::new(root.store(), Path::from(out.key)),
                schema.clone(),
                Some(curated_props(out.codec)),
            )
            .map_err(|e| Error::encode(out.key, e))?,
        ),
        None => None,
    };
    let out = out.map_or("(check only)", |o| o.key);
    let mut next_row: i64 = 1;
    let mut accepted = 0u64;
    while let Some(batch) = next_batch(&mut stream, &f.name, next_row - 1).await {
        let batch = match batch {
            Ok(b) => b,
            Err(ReadFailure::Panicked(reason)) => return Ok(Err(reason)),
            Err(ReadFailure::Error(e)) => {
                return Ok(Err(format!(
                    "unreadable {}: failed after row {} ({})",
                    f.name,
                    next_row - 1,
                    quoted(e)
                )))
            }
        };
        let ctx = BatchCtx {
            source: &key.source,
            file: &f.name,
            file_idx: idx as i64,
            first_row: next_row,
        };
        next_row += batch.num_rows() as i64;
        if let Some(reason) = null_rejecting_the_upload(&ctx, &batch, spec) {
            return Ok(Err(reason));
        }
        let normalised = match extract {
            Extract::Identity => normalise_identity(&ctx, &batch),
            Extract::Subscribers => Ok(normalise_subscribers(&ctx, &batch, spec, rejects)),
            Extract::Accounts => Ok(normalise_accounts(&ctx, &batch, spec, rejects)),
        };
        let out_batch = match normalised {
            Ok(cols) => {
                RecordBatch::try_new(schema.clone(), cols).map_err(|e| Error::encode(out, e))?
            }
            Err(reason) => return Ok(Err(reason)),
        };
        accepted += out_batch.num_rows() as u64;
        if let Some(w) = writer.as_mut() {
            w.write(&out_batch)
                .await
                .map_err(|e| Error::encode(out, e))?;
        }
    }
    let read = (next_row - 1) as u64;
    if read != f.rows {
        return Ok(Err(format!(
            "{}: {read} rows were read, the file and its manifest say {}",
            f.name, f.rows
        )));
    }
    if let Some(w) = writer {
        w.close().await.map_err(|e| Error::encode(out, e))?;
    }
    Ok(Ok(accepted))
}

/// Columns of the curated layout that hold a different value on (nearly)
/// every row: written without a dictionary, which the writer would build
/// for each column chunk only to give it up (a tenth of ingest's CPU, perf
/// at 1M persons).
const UNIQUE_PER_ROW: [&str; 8] = [
    "row_id",
    "person_id",
    "legacy_id",
    "msisdn",
    "account_number",
    "id_number",
    "id_number_masked",
    "otp_msisdn",
];

/// Why a sender's file could not be read on.
enum ReadFailure {
    /// The Parquet reader's own error.
    Error(parquet::errors::ParquetError),
    /// The reader panicked on damaged data (parquet 59 does on some damaged
    /// definition levels): the rejection reason, with the panic's message.
    Panicked(String),
}

/// The next batch of a sender's file. A panic of the Parquet reader is
/// caught and becomes a rejection of the file (the stream is not polled
/// again), so that damaged bytes reject an upload instead of failing the
/// night or the `check` command.
#[allow(deprecated)]
async fn next_batch(
    stream: &mut ParquetRecordBatchStream<ParquetObjectReader>,
    name: &str,
    rows_read: i64,
) -> Option<std::result::Result<RecordBatch, ReadFailure>> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(stream.next())
        .catch_unwind()
        .await
    {
        Ok(next) => next.map(|b| b.map_err(ReadFailure::Error)),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".into());
            Some(Err(ReadFailure::Panicked(format!(
                "unreadable {name}: the Parquet reader failed on damaged data after row {rows_read} ({})",
                quoted(message)
            ))))
        }
    }
}

/// The codec of curated files: the setting, or for `auto` none on a local
/// directory and snappy on an object store (see [`CuratedCompression`]).
fn curated_codec(root: &Root, cfg: &Config) -> Compression {
    match cfg.curated_compression {
        CuratedCompression::Auto if root.is_local() => Compression::UNCOMPRESSED,
        CuratedCompression::Auto | CuratedCompression::Snappy => Compression::SNAPPY,
        CuratedCompression::None => Compression::UNCOMPRESSED,
        CuratedCompression::Zstd => Compression::ZSTD(Default::default()),
    }
}

fn curated_props(codec: Compression) -> parquet::file::properties::WriterProperties {
    let builder = parquet::file::properties::WriterProperties::builder()
        .set_compression(codec)
        .set_max_row_group_row_count(Some(1 << 20))
        // No min/max statistics: nothing prunes curated files by value, and
        // keeping them compares every text value as it is written.
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::None);
    UNIQUE_PER_ROW
        .iter()
        .fold(builder, |b, column| {
            b.set_column_dictionary_enabled(
                parquet::schema::types::ColumnPath::from(*column),
                false,
            )
        })
        .build()
}

/// Where a batch comes from, for row ids and reject positions.
struct BatchCtx<'a> {
    source: &'a str,
    file: &'a str,
    file_idx: i64,
    first_row: i64,
}

impl BatchCtx<'_> {
    /// The message that rejects a whole upload over a null on row `i`.
    fn null_in(&self, i: usize, column: &str) -> String {
        format!(
            "{} row {}: column {column} is null or empty, contract says not null",
            self.file,
            self.row_number(i)
        )
    }
    fn row_number(&self, i: usize) -> i64 {
        self.first_row + i as i64
    }
    fn row_id(&self, i: usize) -> i64 {
        self.file_idx * ROW_ID_FILE_SHIFT + self.row_number(i)
    }
    fn reject(&self, rejects: &mut Vec<RowReject>, i: usize, reason: &'static str, column: &str) {
        rejects.push(RowReject {
            file: self.file.to_string(),
            row_number: self.row_number(i),
            reason,
            column: column.to_string(),
        });
    }
}

fn text(batch: &RecordBatch, name: &str) -> StringArray {
    let col = batch
        .column_by_name(name)
        .expect("projected contract column");
    let c = cast(col, &DataType::Utf8).expect("Utf8-compatible type checked against the contract");
    c.as_any()
        .downcast_ref::<StringArray>()
        .expect("cast to Utf8")
        .clone()
}

/// Earliest date every output can show: 0001-01-01 (days since 1970-01-01).
pub const MIN_DATE_DAYS: i32 = -719_162;
/// Latest date every output can show: 9999-12-31. Dates outside
/// [`MIN_DATE_DAYS`]..=[`MAX_DATE_DAYS`] have no `YYYY-MM-DD` form, so a
/// report or CSV holding one could not be written: such a value is an
/// `INVALID_VALUE` row reject (an identity snapshot holding one is rejected).
pub const MAX_DATE_DAYS: i32 = 2_932_896;

/// A date column as sent and as Date32: a value present in the upload that
/// did not convert (a timestamp past Date32's range) is told apart from a null.
struct DateCol {
    sent: ArrayRef,
    days: Date32Array,
}

fn date(batch: &RecordBatch, name: &str) -> DateCol {
    let col = batch
        .column_by_name(name)
        .expect("projected contract column");
    let c =
        cast(col, &DataType::Date32).expect("Date32-compatible type checked against the contract");
    DateCol {
        sent: col.clone(),
        days: c
            .as_any()
            .downcast_ref::<Date32Array>()
            .expect("cast to Date32")
            .clone(),
    }
}

fn boolean(batch: &RecordBatch, name: &str) -> BooleanArray {
    let col = batch
        .column_by_name(name)
        .expect("projected contract column");
    col.as_any()
        .downcast_ref::<BooleanArray>()
        .expect("Boolean checked against the contract")
        .clone()
}

/// The columns a schema file declares `nullable = false`, read from a
/// batch: the contract's "required" columns, checked from the file, not
/// from code (schemas/*.toml).
struct Required {
    columns: Vec<(String, RequiredCol)>,
}

enum RequiredCol {
    Text(StringArray),
    Date(ArrayRef),
    Bool(BooleanArray),
}

impl Required {
    /// The required columns of `spec` but `except` (a key column with a
    /// reason code of its own).
    fn read(batch: &RecordBatch, spec: &ExtractSchema, except: &str) -> Required {
        let columns = spec
            .columns
            .iter()
            .filter(|c| !c.nullable && c.name != except)
            .map(|c| {
                let col = match c.ty {
                    crate::schema::ColumnType::Utf8 => RequiredCol::Text(text(batch, &c.name)),
                    crate::schema::ColumnType::Date32 => RequiredCol::Date(
                        batch
                            .column_by_name(&c.name)
                            .expect("projected contract column")
                            .clone(),
                    ),
                    crate::schema::ColumnType::Boolean => {
                        RequiredCol::Bool(boolean(batch, &c.name))
                    }
                };
                (c.name.clone(), col)
            })
            .collect();
        Required { columns }
    }

    /// The first required column (in contract order) that is null on row
    /// `i` (text: null, empty or only white space).
    fn first_null(&self, i: usize) -> Option<&str> {
        self.columns.iter().find_map(|(name, col)| {
            let null = match col {
                RequiredCol::Text(a) => get(a, i).is_none(),
                RequiredCol::Date(a) => a.is_null(i),
                RequiredCol::Bool(a) => a.is_null(i),
            };
            null.then_some(name.as_str())
        })
    }
}

fn get(a: &StringArray, i: usize) -> Option<&str> {
    clean_text((!a.is_null(i)).then(|| a.value(i)))
}

/// The date of row `i`: `Ok(None)` when null, `Err(())` when the value sent
/// is outside the dates every output can show (see [`MAX_DATE_DAYS`]).
#[allow(clippy::result_unit_err)]
fn get_date(a: &DateCol, i: usize) -> std::result::Result<Option<i32>, ()> {
    if a.sent.is_null(i) {
        return Ok(None);
    }
    if a.days.is_null(i) {
        return Err(());
    }
    let d = a.days.value(i);
    if (MIN_DATE_DAYS..=MAX_DATE_DAYS).contains(&d) {
        Ok(Some(d))
    } else {
        Err(())
    }
}

/// A restricted value (type, status): trimmed, lower-cased, one of `spec.values`.
fn enum_value<'s>(a: &StringArray, i: usize, spec: &'s ColumnSpec) -> Option<Cow<'s, str>> {
    let v = get(a, i)?;
    if v.is_ascii() {
        // The common case, without lower-casing every row into a new string:
        // the allowed value it equals (ASCII too), borrowed when it is
        // already lower-case, as the schema files write them.
        let allowed = spec.values.iter().find(|a| a.eq_ignore_ascii_case(v))?;
        return Some(match allowed.bytes().any(|b| b.is_ascii_uppercase()) {
            true => Cow::Owned(allowed.to_ascii_lowercase()),
            false => Cow::Borrowed(allowed.as_str()),
        });
    }
    let v = v.to_lowercase();
    spec.values
        .iter()
        .any(|allowed| allowed.to_lowercase() == v)
        .then_some(Cow::Owned(v))
}

/// The columns shared by subscriber and account rows about the holder.
struct HolderCols {
    id_type: StringBuilder,
    id_number: StringBuilder,
    id_masked: StringBuilder,
    name_key: StringBuilder,
    dob: Date32Builder,
    names: NameKeys,
}

impl HolderCols {
    fn new() -> Self {
        HolderCols {
            id_type: StringBuilder::new(),
            id_number: StringBuilder::new(),
            id_masked: StringBuilder::new(),
            name_key: StringBuilder::new(),
            dob: Date32Builder::new(),
            names: NameKeys::default(),
        }
    }

    fn push(&mut self, src: &HolderSrc, i: usize) {
        self.id_type
            .append_option(get(&src.id_type, i).map(upper_case));
        let id = get(&src.id_number, i);
        self.id_number.append_option(id);
        self.id_masked.append_option(id.map(mask_id));
        let name = get(&src.full_name, i);
        self.name_key
            .append_option(name.map(|n| self.names.fold(n)));
        self.dob.append_option(get_date(&src.dob, i).ok().flatten());
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.id_type.finish()),
            Arc::new(self.id_number.finish()),
            Arc::new(self.id_masked.finish()),
            Arc::new(self.name_key.finish()),
            Arc::new(self.dob.finish()),
        ]
    }
}

struct HolderSrc {
    id_type: StringArray,
    id_number: StringArray,
    full_name: StringArray,
    dob: DateCol,
}

impl HolderSrc {
    fn read(batch: &RecordBatch) -> Self {
        HolderSrc {
            id_type: text(batch, "id_type"),
            id_number: text(batch, "id_number"),
            full_name: text(batch, "full_name"),
            dob: date(batch, "date_of_birth"),
        }
    }
}

fn normalise_subscribers(
    ctx: &BatchCtx,
    batch: &RecordBatch,
    spec: &ExtractSchema,
    rejects: &mut Vec<RowReject>,
) -> Vec<ArrayRef> {
    let (type_spec, status_spec) = (spec.column("subscriber_type"), spec.column("status"));
    // §7: version 2 only; a version-1 extract reads as if both were null.
    let v2 = V2Columns::read(batch, spec);
    let msisdn = text(batch, "msisdn");
    let stype = text(batch, "subscriber_type");
    let activated = date(batch, "activated_on");
    let status = text(batch, "status");
    let holder = HolderSrc::read(batch);
    let required = Required::read(batch, spec, "msisdn");
    let n = batch.num_rows();
    let (mut carrier, mut row_id, mut out_msisdn) = (
        StringBuilder::new(),
        Int64Builder::new(),
        StringBuilder::new(),
    );
    let (mut out_type, mut out_act, mut out_status) = (
        StringBuilder::new(),
        Date32Builder::new(),
        StringBuilder::new(),
    );
    let (mut out_bio, mut out_owner) = (BooleanBuilder::new(), StringBuilder::new());
    let mut hc = HolderCols::new();
    for i in 0..n {
        let Some(m) = get(&msisdn, i).and_then(phone) else {
            ctx.reject(rejects, i, INVALID_MSISDN, "msisdn");
            continue;
        };
        // §3: a null in a column the schema file says is not nullable.
        if let Some(column) = required.first_null(i) {
            ctx.reject(rejects, i, INVALID_VALUE, column);
            continue;
        }
        let Some(t) = enum_value(&stype, i, type_spec) else {
            ctx.reject(rejects, i, INVALID_VALUE, "subscriber_type");
            continue;
        };
        let Ok(Some(a)) = get_date(&activated, i) else {
            ctx.reject(rejects, i, INVALID_VALUE, "activated_on");
            continue;
        };
        if get_date(&holder.dob, i).is_err() {
            ctx.reject(rejects, i, INVALID_VALUE, "date_of_birth");
            continue;
        }
        let Some(s) = enum_value(&status, i, status_spec) else {
            ctx.reject(rejects, i, INVALID_VALUE, "status");
            continue;
        };
        let Ok(owner) = v2.owner_confirmation(i) else {
            ctx.reject(rejects, i, INVALID_VALUE, "owner_confirmation");
            continue;
        };
        out_bio.append_option(v2.biometric_verified(i));
        out_owner.append_option(owner);
        carrier.append_value(ctx.source);
        row_id.append_value(ctx.row_id(i));
        out_msisdn.append_value(m);
        out_type.append_value(t);
        hc.push(&holder, i);
        out_act.append_value(a);
        out_status.append_value(s);
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(carrier.finish()),
        Arc::new(row_id.finish()),
        Arc::new(out_msisdn.finish()),
        Arc::new(out_type.finish()),
    ];
    cols.extend(hc.finish());
    cols.push(Arc::new(out_act.finish()));
    cols.push(Arc::new(out_status.finish()));
    cols.push(Arc::new(out_bio.finish()));
    cols.push(Arc::new(out_owner.finish()));
    cols
}

/// The two columns version 2 adds to a subscriber extract (§7), when the
/// extract is of version 2.
struct V2Columns<'a> {
    biometric: Option<BooleanArray>,
    owner: Option<(StringArray, &'a ColumnSpec)>,
}

impl<'a> V2Columns<'a> {
    fn read(batch: &RecordBatch, spec: &'a ExtractSchema) -> Self {
        let has = |name: &str| spec.columns.iter().any(|c| c.name == name);
        V2Columns {
            biometric: has("biometric_verified").then(|| boolean(batch, "biometric_verified")),
            owner: has("owner_confirmation").then(|| {
                (
                    text(batch, "owner_confirmation"),
                    spec.column("owner_confirmation"),
                )
            }),
        }
    }

    /// `None` when not checked yet (null) or not sent (version 1).
    fn biometric_verified(&self, i: usize) -> Option<bool> {
        let b = self.biometric.as_ref()?;
        (!b.is_null(i)).then(|| b.value(i))
    }

    /// The owner's answer lower-cased, `Ok(None)` when not asked yet (null,
    /// or version 1), `Err(())` for a value outside the contract's.
    fn owner_confirmation(&self, i: usize) -> std::result::Result<Option<Cow<'a, str>>, ()> {
        let Some((a, spec)) = &self.owner else {
            return Ok(None);
        };
        match get(a, i) {
            None => Ok(None),
            Some(_) => enum_value(a, i, spec).map(Some).ok_or(()),
        }
    }
}

fn normalise_accounts(
    ctx: &BatchCtx,
    batch: &RecordBatch,
    spec: &ExtractSchema,
    rejects: &mut Vec<RowReject>,
) -> Vec<ArrayRef> {
    let required = Required::read(batch, spec, "account_number");
    let (type_spec, status_spec) = (spec.column("holder_type"), spec.column("status"));
    let account = text(batch, "account_number");
    let htype = text(batch, "holder_type");
    let otp = text(batch, "otp_msisdn");
    let opened = date(batch, "opened_on");
    let bio = boolean(batch, "biometric_verified");
    let status = text(batch, "status");
    let holder = HolderSrc::read(batch);
    let (mut bank, mut row_id, mut out_acc) = (
        StringBuilder::new(),
        Int64Builder::new(),
        StringBuilder::new(),
    );
    let (mut out_type, mut otp_present, mut otp_norm) = (
        StringBuilder::new(),
        BooleanBuilder::new(),
        StringBuilder::new(),
    );
    let (mut out_opened, mut out_bio, mut out_status) = (
        Date32Builder::new(),
        BooleanBuilder::new(),
        StringBuilder::new(),
    );
    let mut hc = HolderCols::new();
    for i in 0..batch.num_rows() {
        let Some(acc) = get(&account, i) else {
            ctx.reject(rejects, i, EMPTY_ACCOUNT_NUMBER, "account_number");
            continue;
        };
        // §3: a null in a column the schema file says is not nullable.
        if let Some(column) = required.first_null(i) {
            ctx.reject(rejects, i, INVALID_VALUE, column);
            continue;
        }
        let Some(t) = enum_value(&htype, i, type_spec) else {
            ctx.reject(rejects, i, INVALID_VALUE, "holder_type");
            continue;
        };
        let Ok(Some(o)) = get_date(&opened, i) else {
            ctx.reject(rejects, i, INVALID_VALUE, "opened_on");
            continue;
        };
        if get_date(&holder.dob, i).is_err() {
            ctx.reject(rejects, i, INVALID_VALUE, "date_of_birth");
            continue;
        }
        let Some(s) = enum_value(&status, i, status_spec) else {
            ctx.reject(rejects, i, INVALID_VALUE, "status");
            continue;
        };
        let otp_raw = get(&otp, i);
        bank.append_value(ctx.source);
        row_id.append_value(ctx.row_id(i));
        out_acc.append_value(acc);
        out_type.append_value(t);
        hc.push(&holder, i);
        otp_present.append_value(otp_raw.is_some());
        otp_norm.append_option(otp_raw.and_then(phone));
        out_opened.append_value(o);
        out_bio.append_option((!bio.is_null(i)).then(|| bio.value(i)));
        out_status.append_value(s);
    }
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(bank.finish()),
        Arc::new(row_id.finish()),
        Arc::new(out_acc.finish()),
        Arc::new(out_type.finish()),
    ];
    cols.extend(hc.finish());
    cols.push(Arc::new(otp_present.finish()));
    cols.push(Arc::new(otp_norm.finish()));
    cols.push(Arc::new(out_opened.finish()));
    cols.push(Arc::new(out_bio.finish()));
    cols.push(Arc::new(out_status.finish()));
    cols
}

/// When the schema file says a null in a required column rejects the whole
/// upload (`null_in_required = "reject_upload"`: the registry's), the first
/// such null of the batch (row order, then column order) as the reason;
/// under `reject_row` the row checks reject the row instead.
fn null_rejecting_the_upload(
    ctx: &BatchCtx,
    batch: &RecordBatch,
    spec: &ExtractSchema,
) -> Option<String> {
    if spec.null_in_required != crate::schema::NullInRequired::RejectUpload {
        return None;
    }
    let required = Required::read(batch, spec, "");
    (0..batch.num_rows()).find_map(|i| required.first_null(i).map(|column| ctx.null_in(i, column)))
}

/// Identity rows. Nulls in required columns were refused upload-wide
/// before ([`null_rejecting_the_upload`]); the checks here are the values'.
fn normalise_identity(
    ctx: &BatchCtx,
    batch: &RecordBatch,
) -> std::result::Result<Vec<ArrayRef>, String> {
    let pid = text(batch, "person_id");
    let legacy = text(batch, "legacy_id");
    let name = text(batch, "full_name");
    let dob = date(batch, "date_of_birth");
    let sex = text(batch, "sex");
    let dead = date(batch, "deceased_on");
    let n = batch.num_rows();
    let (mut row_id, mut out_pid, mut out_legacy) = (
        Int64Builder::new(),
        StringBuilder::new(),
        StringBuilder::new(),
    );
    let (mut out_name, mut out_dob, mut out_dead) = (
        StringBuilder::new(),
        Date32Builder::new(),
        Date32Builder::new(),
    );
    let mut names = NameKeys::default();
    for i in 0..n {
        let null_in = |column: &str| ctx.null_in(i, column);
        let p = get(&pid, i).ok_or_else(|| null_in("person_id"))?;
        let nm = get(&name, i).ok_or_else(|| null_in("full_name"))?;
        let out_of_range = |column: &str| {
            format!(
                "{} row {}: column {column} holds a date outside 0001-01-01..9999-12-31",
                ctx.file,
                ctx.row_number(i)
            )
        };
        let d = get_date(&dob, i)
            .map_err(|()| out_of_range("date_of_birth"))?
            .ok_or_else(|| null_in("date_of_birth"))?;
        let dead_on = get_date(&dead, i).map_err(|()| out_of_range("deceased_on"))?;
        get(&sex, i).ok_or_else(|| null_in("sex"))?;
        row_id.append_value(ctx.row_id(i));
        out_pid.append_value(p);
        out_legacy.append_option(get(&legacy, i));
        out_name.append_value(names.fold(nm));
        out_dob.append_value(d);
        out_dead.append_option(dead_on);
    }
    Ok(vec![
        Arc::new(row_id.finish()),
        Arc::new(out_pid.finish()),
        Arc::new(out_legacy.finish()),
        Arc::new(out_name.finish()),
        Arc::new(out_dob.finish()),
        Arc::new(out_dead.finish()),
    ])
}

/// Runs `queries/checks/identity_duplicates.sql` over a curated identity
/// upload, on a session under the configured memory limit (the check
/// aggregates every registry key: at national scale, the night's largest).
async fn identity_duplicates(
    root: &Root,
    curated: &str,
    files: &[CheckedFile],
    cfg: &Config,
) -> Result<Option<String>> {
    let ctx = crate::engine::keys_session(root, cfg)?;
    let parts = vec![format!("{curated}data/")];
    crate::engine::register_parquet(
        &ctx,
        "identity_upload",
        &parts,
        curated_schema(Extract::Identity),
    )
    .await?;
    let file = "checks/identity_duplicates.sql";
    let sql = include_str!("../../queries/checks/identity_duplicates.sql");
    let curated = curated_schema(Extract::Identity);
    let unique = Extract::Identity
        .contract()
        .columns
        .iter()
        .filter(|c| c.unique);
    for column in unique {
        if curated.field_with_name(&column.name).is_err() {
            return Err(Error::Invalid {
                what: "schemas/identity.v1.toml".into(),
                message: format!(
                    "column {} is unique = true but is not kept in the curated layout",
                    column.name
                ),
            });
        }
        let p = std::collections::BTreeMap::from([("COLUMN", column.name.clone())]);
        let batches = crate::engine::query(&ctx, file, &crate::engine::render(file, sql, &p)?)
            .await?
            .collect()
            .await
            .map_err(|e| Error::query(file, e))?;
        for b in batches {
            let repeated = crate::engine::int_column(&b, "repeated_values")?;
            let first = crate::engine::int_column(&b, "first_row")?;
            let second = crate::engine::int_column(&b, "second_row")?;
            if let Some(i) = (0..b.num_rows()).find(|&i| repeated.value(i) > 0) {
                return Ok(Some(format!(
                    "column {}: {} value(s) appear more than once (e.g. {} and {})",
                    column.name,
                    repeated.value(i),
                    describe_row(first.value(i), files),
                    describe_row(second.value(i), files)
                )));
            }
        }
    }
    Ok(None)
}

fn describe_row(row_id: i64, files: &[CheckedFile]) -> String {
    let idx = (row_id / ROW_ID_FILE_SHIFT) as usize;
    let row = row_id % ROW_ID_FILE_SHIFT;
    let name = files.get(idx).map(|f| f.name.as_str()).unwrap_or("?");
    format!("{name} row {row}")
}

async fn write_rejects(
    root: &Root,
    key: &UploadKey,
    out: CuratedOut<'_>,
    rejects: &[RowReject],
) -> Result<()> {
    let days = key.as_of.epoch_days();
    let n = rejects.len();
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![key.extract.as_str(); n])),
        Arc::new(StringArray::from(vec![key.source.as_str(); n])),
        Arc::new(Date32Array::from(vec![days; n])),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.file.as_str()),
        )),
        Arc::new(arrow::array::Int64Array::from_iter_values(
            rejects.iter().map(|r| r.row_number),
        )),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.reason),
        )),
        Arc::new(StringArray::from_iter_values(
            rejects.iter().map(|r| r.column.as_str()),
        )),
    ];
    let (codec, out) = (out.codec, out.key);
    let batch = RecordBatch::try_new(rejects_schema(), cols).map_err(|e| Error::encode(out, e))?;
    let writer_obj = BufWriter::new(root.store(), Path::from(out));
    let mut w = AsyncArrowWriter::try_new(writer_obj, rejects_schema(), Some(curated_props(codec)))
        .map_err(|e| Error::encode(out, e))?;
    w.write(&batch).await.map_err(|e| Error::encode(out, e))?;
    w.close().await.map_err(|e| Error::encode(out, e))?;
    Ok(())
}

/// The contract a lone file is checked against: version 2 for a subscriber
/// file with both of version 2's columns (whatever their types: the check
/// then says if they are wrong), version 1 otherwise.
fn version_of_file(extract: Extract, found: &arrow::datatypes::Schema) -> &'static ExtractSchema {
    let (v1, v2) = (
        extract.contract(),
        extract.contract_at(2).expect("every kind has version 2"),
    );
    let in_v1 = |name: &str| v1.columns.iter().any(|c| c.name == name);
    let holds_v2 = v2
        .columns
        .iter()
        .all(|c| in_v1(&c.name) || found.field_with_name(&c.name).is_ok());
    // For identity and accounts version 2 is version 1: either answer is v1.
    if holds_v2 {
        v2
    } else {
        v1
    }
}

/// What `junkrecon check` found in one local file.
#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    /// File name.
    pub file: String,
    /// Rows in the file.
    pub rows: u64,
    /// The contract version the file was checked against: 2 for a
    /// subscriber file holding both columns version 2 adds, else 1 (a
    /// manifest names the version; a lone file can only show it).
    pub schema_version: u32,
    /// Why an upload holding this file would be rejected, if it would.
    pub upload_rejected: Option<String>,
    /// Row-level rejects it would produce: (row number, reason, column).
    pub row_rejects: Vec<(i64, String, String)>,
}

/// Checks a local Parquet file against an extract contract the way ingest
/// would (schema, values, normalisation), without a manifest and without
/// writing anything. Registry uniqueness is only checked at ingest.
pub async fn check_local(path: &std::path::Path, extract: Extract) -> Result<FileCheck> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| Error::Root(format!("{}: not a file", path.display())))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let root = Root::open(&dir.to_string_lossy())?;
    let mut out = FileCheck {
        file: name.clone(),
        rows: 0,
        schema_version: 1,
        upload_rejected: None,
        row_rejects: vec![],
    };
    if let Some(problem) = manifest::file_name_problem(&name) {
        out.upload_rejected = Some(problem);
        return Ok(out);
    }
    let Some(meta) = root.head(&name).await? else {
        out.upload_rejected = Some(format!("{name} does not exist"));
        return Ok(out);
    };
    let builder = match open_parquet(&root, &name, meta.size, &name).await {
        Ok(b) => b,
        Err(reason) => {
            out.upload_rejected = Some(reason);
            return Ok(out);
        }
    };
    out.rows = match footer_rows(&builder, &name) {
        Ok(rows) => rows,
        Err(reason) => {
            out.upload_rejected = Some(reason);
            return Ok(out);
        }
    };
    let spec = version_of_file(extract, builder.schema());
    out.schema_version = spec.schema_version;
    if let Err(e) = spec.check(builder.schema()) {
        out.upload_rejected = Some(format!("{name}: {e}"));
        return Ok(out);
    }
    let key = UploadKey {
        extract,
        source: "CHECK".into(),
        as_of: NightDate::from_date(chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")),
    };
    let f = CheckedFile {
        name: name.clone(),
        size: meta.size,
        rows: out.rows,
    };
    let mut rejects = vec![];
    if let Err(reason) = curate_file(&root, spec, &key, 0, "", &f, None, &mut rejects).await? {
        out.upload_rejected = Some(reason);
    }
    out.row_rejects = rejects
        .into_iter()
        .map(|r| (r.row_number, r.reason.to_string(), r.column.to_string()))
        .collect();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{Field, Schema};

    /// Two account rows as a bank sends them; the second has no
    /// biometric_verified.
    fn accounts() -> RecordBatch {
        let spec = Extract::Accounts.contract();
        let text = |v: [Option<&str>; 2]| -> ArrayRef { Arc::new(StringArray::from(v.to_vec())) };
        let day = || -> ArrayRef { Arc::new(Date32Array::from(vec![Some(18_000), Some(18_000)])) };
        let cols: Vec<ArrayRef> = spec
            .columns
            .iter()
            .map(|c| match c.name.as_str() {
                "account_number" => text([Some("100001"), Some("100002")]),
                "holder_type" => text([Some("individual"), Some("individual")]),
                "status" => text([Some("active"), Some("active")]),
                "biometric_verified" => {
                    Arc::new(BooleanArray::from(vec![Some(true), None])) as ArrayRef
                }
                "opened_on" | "date_of_birth" => day(),
                _ => text([None, None]),
            })
            .collect();
        let fields: Vec<Field> = spec
            .columns
            .iter()
            .zip(&cols)
            .map(|(c, a)| Field::new(&c.name, a.data_type().clone(), true))
            .collect();
        RecordBatch::try_new(Arc::new(Schema::new(fields)), cols).unwrap()
    }

    fn ctx() -> BatchCtx<'static> {
        BatchCtx {
            source: "BANK",
            file: "part-0.parquet",
            file_idx: 0,
            first_row: 1,
        }
    }

    /// The schema file decides which nulls reject a row: the same batch
    /// under a contract whose biometric_verified is nullable keeps the row.
    #[test]
    fn a_required_column_is_the_schema_files_word() {
        let batch = accounts();
        let mut rejects = vec![];
        let spec = Extract::Accounts.contract();
        let cols = normalise_accounts(&ctx(), &batch, spec, &mut rejects);
        assert_eq!(cols[0].len(), 1);
        assert_eq!(rejects.len(), 1);
        assert_eq!(
            (
                rejects[0].row_number,
                rejects[0].reason,
                rejects[0].column.as_str()
            ),
            (2, INVALID_VALUE, "biometric_verified")
        );

        let mut relaxed = spec.clone();
        relaxed
            .columns
            .iter_mut()
            .find(|c| c.name == "biometric_verified")
            .unwrap()
            .nullable = true;
        let mut rejects = vec![];
        let cols = normalise_accounts(&ctx(), &batch, &relaxed, &mut rejects);
        assert!(rejects.is_empty());
        assert_eq!(cols[0].len(), 2);
        RecordBatch::try_new(curated_schema(Extract::Accounts), cols).unwrap();

        // And the other way round: a column made required rejects its nulls.
        let mut strict = spec.clone();
        strict
            .columns
            .iter_mut()
            .find(|c| c.name == "otp_msisdn")
            .unwrap()
            .nullable = false;
        let mut rejects = vec![];
        normalise_accounts(&ctx(), &batch, &strict, &mut rejects);
        assert_eq!(rejects.len(), 2);
        assert!(rejects.iter().all(|r| r.column == "otp_msisdn"));
    }

    /// `null_in_required` decides what a null rejects: under `reject_row`
    /// (the senders' files) the row, under `reject_upload` (the registry's
    /// file) the whole upload, naming the file, row and column.
    #[test]
    fn what_a_null_rejects_is_the_schema_files_word() {
        let batch = accounts();
        let spec = Extract::Accounts.contract();
        assert_eq!(null_rejecting_the_upload(&ctx(), &batch, spec), None);
        let mut whole = spec.clone();
        whole.null_in_required = crate::schema::NullInRequired::RejectUpload;
        assert_eq!(
            null_rejecting_the_upload(&ctx(), &batch, &whole).as_deref(),
            Some(
                "part-0.parquet row 2: column biometric_verified is null or empty, contract says not null"
            )
        );
    }
}
