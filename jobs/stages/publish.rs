//! Publish (contract §6): writes each source's report (flags.parquet and
//! flags.csv), the rejects report and the metrics, then commits the night by
//! writing `_PUBLISHED.json` last, naming every file with its sha256.
//!
//! Reports hold only their own source's rows and nothing from the registry.
//! Output bytes are deterministic (fixed writer settings, fixed chunking,
//! totally ordered rows), so a re-run for the same date is byte-identical.
//! Must never write outside `reports/` and `metrics/`.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, EnforcementSettings, Engine};
use crate::night::NightDate;
use crate::store::HashingWriter;
use arrow::array::{Array, ArrayRef};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::prelude::{DataFrame, SessionContext};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use parquet::arrow::async_writer::AsyncArrowWriter;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tracing::warn;
use tracing::Instrument;

use crate::catalog::Chosen;
use crate::catalog::Inputs;
use crate::engine::{self, int_column, str_column};
use crate::lease::Fence;
pub use crate::metrics::{pct, SourceMetrics};
pub use crate::publications::{
    committed_dates, read_current, read_published, report_key, stage_prefix, Published,
};
use crate::publications::{pointer_key, published_key, Pointer};
use crate::reasons::{codes, REASONS};
use crate::schema::Extract;
pub use crate::store::PublishedFile;
use crate::store::Root;
use crate::{Error, Result};

/// Rows per written chunk: fixed so that Parquet page and row-group layout,
/// hence the bytes, do not depend on how the engine happened to batch rows.
const CHUNK_ROWS: usize = 65_536;

/// UTF-8 byte-order mark, so spreadsheet programs read Vietnamese text right.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Report and metric queries (one statement each).
pub mod sql {
    /// One carrier's flags.
    pub const REPORT_SUBSCRIBERS: (&str, &str) = (
        "80_report_subscribers.sql",
        include_str!("../../queries/80_report_subscribers.sql"),
    );
    /// One bank's flags.
    pub const REPORT_ACCOUNTS: (&str, &str) = (
        "81_report_accounts.sql",
        include_str!("../../queries/81_report_accounts.sql"),
    );
    /// Row-level rejects.
    pub const REPORT_REJECTS: (&str, &str) = (
        "82_report_rejects.sql",
        include_str!("../../queries/82_report_rejects.sql"),
    );
    /// Per-carrier counts.
    pub const METRICS_SUBSCRIBERS: (&str, &str) = (
        "90_metrics_subscribers.sql",
        include_str!("../../queries/90_metrics_subscribers.sql"),
    );
    /// Per-bank counts.
    pub const METRICS_ACCOUNTS: (&str, &str) = (
        "91_metrics_accounts.sql",
        include_str!("../../queries/91_metrics_accounts.sql"),
    );
    /// Key-based progress.
    pub const PROGRESS: (&str, &str) = (
        "95_progress.sql",
        include_str!("../../queries/95_progress.sql"),
    );
    /// One source's delta list (§10).
    pub const DELTA: (&str, &str) = ("96_delta.sql", include_str!("../../queries/96_delta.sql"));
    /// One source's enforcement counts (§9) and GONE keys (§10).
    pub const ENFORCEMENT: (&str, &str) = (
        "97_enforcement.sql",
        include_str!("../../queries/97_enforcement.sql"),
    );
}

/// Key of one source's delta list (§10), beside its report.
pub fn delta_key(extract: Extract, source: &str, date: NightDate) -> String {
    report_key(extract, source, date).replace("flags.parquet", "delta.parquet")
}

fn report_props() -> parquet::file::properties::WriterProperties {
    parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::ZSTD(Default::default()))
        .set_max_row_group_row_count(Some(1 << 20))
        .set_created_by(format!("junkrecon {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Streams a query's rows in fixed-size chunks to `f`.
async fn for_each_chunk<F>(df: DataFrame, file: &str, mut f: F) -> Result<()>
where
    F: FnMut(RecordBatch) -> BoxFuture<'static, Result<()>>,
{
    let mut stream = df
        .execute_stream()
        .await
        .map_err(|e| Error::query(file, e))?;
    let schema = stream.schema();
    let mut pending: Vec<RecordBatch> = vec![];
    let mut rows = 0usize;
    let mut emitted = false;
    while let Some(b) = stream.next().await {
        let b = b.map_err(|e| Error::query(file, e))?;
        let b = conform(&b, &schema).map_err(|e| Error::encode(file, e))?;
        rows += b.num_rows();
        pending.push(b);
        while rows >= CHUNK_ROWS {
            let all = concat_batches(&schema, &pending).map_err(|e| Error::encode(file, e))?;
            f(all.slice(0, CHUNK_ROWS)).await?;
            emitted = true;
            let rest = all.slice(CHUNK_ROWS, all.num_rows() - CHUNK_ROWS);
            rows = rest.num_rows();
            pending = vec![rest];
        }
    }
    if rows > 0 || !emitted {
        let all = concat_batches(&schema, &pending).map_err(|e| Error::encode(file, e))?;
        f(all).await?;
    }
    Ok(())
}

/// Writes one query result as Parquet (without `drop_col`) and, if `csv_key`
/// is given, as CSV with a BOM where `reasons` is replaced by `reasons_csv`.
async fn write_query(
    root: &Root,
    df: DataFrame,
    file: &str,
    parquet_path: &str,
    csv_path: Option<&str>,
    stage: &str,
) -> Result<Vec<PublishedFile>> {
    let parquet_key = &format!("{stage}{parquet_path}");
    let csv_key = csv_path.map(|p| format!("{stage}{p}"));
    let csv_key = csv_key.as_deref();
    let full: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let pq_idx: Vec<usize> = (0..full.fields().len())
        .filter(|&i| full.field(i).name() != "reasons_csv")
        .collect();
    let pq_schema = Arc::new(full.project(&pq_idx).map_err(|e| Error::encode(file, e))?);
    let pq = Arc::new(tokio::sync::Mutex::new(Some(
        AsyncArrowWriter::try_new(
            HashingWriter::new(root.store(), parquet_key),
            pq_schema,
            Some(report_props()),
        )
        .map_err(|e| Error::encode(parquet_key, e))?,
    )));
    let csv = Arc::new(tokio::sync::Mutex::new(match csv_key {
        Some(k) => {
            let mut w = HashingWriter::new(root.store(), k);
            w.put(Bytes::from_static(BOM))
                .await
                .map_err(|e| Error::encode(k, e))?;
            Some(w)
        }
        None => None,
    }));
    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let key_owned = parquet_key.to_string();
    for_each_chunk(df, file, |chunk| {
        let (pq, csv, first, pq_idx, key) = (
            pq.clone(),
            csv.clone(),
            first.clone(),
            pq_idx.clone(),
            key_owned.clone(),
        );
        async move {
            let part = chunk.project(&pq_idx).map_err(|e| Error::encode(&key, e))?;
            if let Some(w) = pq.lock().await.as_mut() {
                w.write(&part).await.map_err(|e| Error::encode(&key, e))?;
            }
            if let Some(w) = csv.lock().await.as_mut() {
                let header = first.swap(false, std::sync::atomic::Ordering::SeqCst);
                let text = csv_bytes(&chunk, header).map_err(|e| Error::encode(&key, e))?;
                w.put(text).await.map_err(|e| Error::encode(&key, e))?;
            }
            Ok(())
        }
        .boxed()
    })
    .await?;
    let mut out = vec![];
    let mut writer = pq.lock().await.take().expect("writer present");
    writer
        .finish()
        .await
        .map_err(|e| Error::encode(parquet_key, e))?;
    out.push(writer.into_inner().finish(parquet_key).await?);
    if let (Some(w), Some(k)) = (csv.lock().await.take(), csv_key) {
        out.push(w.finish(k).await?);
    }
    for f in &mut out {
        f.path = f.path.strip_prefix(stage).unwrap_or(&f.path).to_string();
    }
    Ok(out)
}

/// Casts a batch to the planned schema: the engine may hand out view types
/// (Utf8View) where the plan says Utf8; reports always carry plain Utf8.
fn conform(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> std::result::Result<RecordBatch, arrow::error::ArrowError> {
    let cols = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| cast(c, f.data_type()))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), cols)
}

/// CSV rows of a report chunk: the `reasons` list replaced by its `;`-joined form.
fn csv_bytes(
    chunk: &RecordBatch,
    header: bool,
) -> std::result::Result<Bytes, arrow::error::ArrowError> {
    let schema = chunk.schema();
    let joined = schema.index_of("reasons_csv")?;
    let mut fields = vec![];
    let mut cols: Vec<ArrayRef> = vec![];
    for (i, f) in schema.fields().iter().enumerate() {
        if i == joined {
            continue;
        }
        if f.name() == "reasons" {
            fields.push(Field::new("reasons", DataType::Utf8, true));
            cols.push(chunk.column(joined).clone());
        } else {
            fields.push(f.as_ref().clone());
            cols.push(chunk.column(i).clone());
        }
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    let mut buf = vec![];
    {
        let mut w = arrow::csv::WriterBuilder::new()
            .with_header(header)
            .build(&mut buf);
        w.write(&batch)?;
    }
    Ok(Bytes::from(buf))
}

/// Reports written at once. A report's query runs on the engine's threads,
/// but its Parquet and CSV encoding is one thread's work: two at a time keep
/// both cores of a small machine busy (1M persons, day 1: publish 5.6 ->
/// 3.9 s, the same bytes), and a third fills the gaps while one waits on
/// its query (10M persons, day 2, three alternating rounds: publish
/// 9.72/9.29/9.62 -> 9.25/9.22/9.12 s).
const REPORTS_AT_ONCE: usize = 3;

/// Per-source counts of steps 95 and 97, keyed by (extract, source).
pub type Counts = BTreeMap<(String, String), BTreeMap<String, u64>>;

/// What [`write_reports`] staged: the files, and each source's progress and
/// enforcement counts (steps 95 and 97) read from its reports.
pub struct Reports {
    /// Every report, delta list and the rejects report, as staged.
    pub files: Vec<PublishedFile>,
    /// Steps 95 and 97 for every source.
    pub progress: Counts,
    /// Steps 90 and 91 for every source.
    pub metrics: Counts,
}

/// Writes every source's report and delta list and the rejects report for
/// `date` under the run's staging prefix; the entries name the contract paths.
/// Sources are written [`REPORTS_AT_ONCE`] at a time, each in a session of
/// its own ([`engine::side_session`]); the entries come in the sources' order.
/// On the local engine each source's task then counts its progress (steps
/// 95 and 97) from the reports it has just written, and its metrics (steps
/// 90, 91) from its folder of the flags table, while the next sources'
/// reports are encoded (10M persons, day 2: the tail after the last report
/// 1.7 -> 0.9 s). On a cluster the counts are taken once every report is
/// written, one source at a time: Ballista's scheduler never finished the
/// counting queries run beside other reports' jobs (the standalone cluster
/// test hung on them).
pub async fn write_reports(
    ctx: &SessionContext,
    root: &Root,
    inputs: &Inputs,
    h: &History,
    date: NightDate,
    stage: &str,
    cfg: &Config,
) -> Result<Reports> {
    let count_in_task = cfg.engine == Engine::Local;
    let targets: Vec<Target> = sources(inputs)
        .map(|(extract, c)| Target {
            extract,
            chosen: c.clone(),
            previous: h.previous(extract, &c.source).cloned(),
            baseline: h.baseline(extract, &c.source).cloned(),
            date,
            stage: stage.to_string(),
        })
        .collect();
    let (session, store, settings) = (ctx.clone(), root.clone(), cfg.enforcement.clone());
    let reports = futures::stream::iter(targets.clone()).map(move |target| {
        let task = (session.clone(), store.clone(), settings.clone());
        spawn_report(task, target, count_in_task)
    });
    let mut out = Reports {
        files: vec![],
        progress: BTreeMap::new(),
        metrics: BTreeMap::new(),
    };
    let mut written = reports.buffered(REPORTS_AT_ONCE);
    while let Some(report) = written.next().await {
        let (files, counted) = report?;
        out.files.extend(files);
        out.progress.extend(counted.progress);
        out.metrics.extend(counted.metrics);
    }
    if !count_in_task {
        for target in &targets {
            out.progress.extend(progress(ctx, target).await?);
            out.metrics.extend(source_metrics(ctx, target).await?);
        }
    }
    let (file, text) = sql::REPORT_REJECTS;
    let df = engine::query(ctx, file, text).await?;
    let key = format!("reports/rejects/date={date}/rejects.parquet");
    out.files
        .extend(write_query(root, df, file, &key, None, stage).await?);
    Ok(out)
}

/// One source's counts taken in its report task: steps 95 and 97
/// (`progress`), steps 90 or 91 (`metrics`); empty when not taken there.
#[derive(Default)]
struct SourceCounts {
    progress: Counts,
    metrics: Counts,
}

/// Writes one source's report and delta list in a session of its own, on a
/// task of its own (so that two reports encode on two threads), then counts
/// its progress and metrics when `count` says so; the task starts when the
/// returned future is first polled.
async fn spawn_report(
    (ctx, root, timeline): (SessionContext, Root, EnforcementSettings),
    target: Target,
    count: bool,
) -> Result<(Vec<PublishedFile>, SourceCounts)> {
    let report = async move {
        let started = std::time::Instant::now();
        let ctx = engine::side_session(&ctx, &[flags_table(target.extract)]).await?;
        let mut files = write_report(&ctx, &root, &target, &timeline).await?;
        files.extend(write_delta(&ctx, &root, &target).await?);
        let counts = match count {
            true => SourceCounts {
                progress: progress(&ctx, &target).await?,
                metrics: source_metrics(&ctx, &target).await?,
            },
            false => SourceCounts::default(),
        };
        let seconds = started.elapsed().as_secs_f64();
        tracing::info!(source = %target.chosen.source, seconds, "report written");
        Ok::<_, Error>((files, counts))
    };
    let mut task = Stopped(tokio::spawn(report.in_current_span()));
    (&mut task.0)
        .await
        .map_err(|e| Error::CannotRun(format!("writing a report: {e}")))?
}

/// A spawned task that is aborted when dropped. When one source's report
/// fails, `write_reports` returns and drops the report still being written:
/// it must not go on writing into a run that has failed (nor into the next
/// attempt's time).
struct Stopped<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for Stopped<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The flags table the reports of `extract` read (materialised by reconcile;
/// a stage does not import another, so the name is spelled here as in
/// `queries/80` and `81`).
fn flags_table(extract: Extract) -> &'static str {
    match extract {
        Extract::Subscribers => "subscriber_flags",
        _ => "account_flags",
    }
}

/// One source's report being written: which, its previous and baseline
/// reports, the night and the run's staging prefix.
#[derive(Clone)]
struct Target {
    extract: Extract,
    chosen: Chosen,
    previous: Option<Earlier>,
    baseline: Option<Earlier>,
    date: NightDate,
    stage: String,
}

/// Step 80/81 for one source: its flags with their enforcement clock,
/// carried over from the source's previous report.
async fn write_report(
    ctx: &SessionContext,
    root: &Root,
    t: &Target,
    timeline: &EnforcementSettings,
) -> Result<Vec<PublishedFile>> {
    let Target {
        extract,
        chosen: c,
        previous,
        date,
        stage,
        ..
    } = t;
    let (extract, date) = (*extract, *date);
    let (file, text) = match extract {
        Extract::Subscribers => sql::REPORT_SUBSCRIBERS,
        _ => sql::REPORT_ACCOUNTS,
    };
    let key = engine::report_key_column(extract);
    let columns = [
        (key, DataType::Utf8),
        ("first_flagged_on", DataType::Date32),
    ];
    let report = previous.as_ref().map(|e| e.report.as_str());
    engine::register_report(ctx, "previous_clock", extract, report, &columns).await?;
    let previous_night = previous.as_ref().map_or(date, |e| e.night);
    let p = BTreeMap::from([
        ("SOURCE", c.source.clone()),
        ("AS_OF", date.to_string()),
        ("PREVIOUS_NIGHT", previous_night.to_string()),
        (
            "LOCK_ONE_WAY_AFTER_DAYS",
            timeline.lock_one_way_after_days.to_string(),
        ),
        (
            "LOCK_TWO_WAY_AFTER_DAYS",
            timeline.lock_two_way_after_days.to_string(),
        ),
        (
            "TERMINATE_AFTER_DAYS",
            timeline.terminate_after_days.to_string(),
        ),
        (
            "SUSPEND_AFTER_DAYS",
            timeline.suspend_after_days.to_string(),
        ),
    ]);
    let df = engine::query(ctx, file, &engine::render(file, text, &p)?).await?;
    let pq = report_key(extract, &c.source, date);
    let csv = pq.replace("flags.parquet", "flags.csv");
    write_query(root, df, file, &pq, Some(&csv), stage).await
}

/// Step 96 for one source: the keys whose state changed since its previous
/// report, from the report just staged.
async fn write_delta(ctx: &SessionContext, root: &Root, t: &Target) -> Result<Vec<PublishedFile>> {
    let Target {
        extract,
        chosen: c,
        previous,
        date,
        stage,
        ..
    } = t;
    let (extract, date) = (*extract, *date);
    let now = format!("{stage}{}", report_key(extract, &c.source, date));
    engine::register_report_keys(ctx, "now_keys", extract, Some(&now)).await?;
    let before = previous.as_ref().map(|e| e.report.as_str());
    engine::register_report_keys(ctx, "previous_keys", extract, before).await?;
    let flags = flags_table(extract);
    let source_column = engine::flags_source_column(extract);
    let (file, text) = sql::DELTA;
    let p = BTreeMap::from([
        ("EXTRACT", extract.to_string()),
        ("SOURCE", c.source.clone()),
        ("KEY", engine::report_key_column(extract).to_string()),
        ("FLAGS", flags.to_string()),
        ("SOURCE_COLUMN", source_column.to_string()),
    ]);
    let df = engine::query(ctx, file, &engine::render(file, text, &p)?).await?;
    let key = delta_key(extract, &c.source, date);
    write_query(root, df, file, &key, None, stage).await
}

/// Rows of a small query as maps column → integer, keyed by `source` (and `extract`).
async fn collect_counts(ctx: &SessionContext, file: &str, text: &str) -> Result<Counts> {
    let batches = engine::query(ctx, file, text)
        .await?
        .collect()
        .await
        .map_err(|e| Error::query(file, e))?;
    let mut out = BTreeMap::new();
    for b in batches {
        let source = str_column(&b, "source")?;
        let extract = b
            .column_by_name("extract")
            .map(|_| str_column(&b, "extract"))
            .transpose()?;
        let schema = b.schema();
        let numeric: Vec<&str> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .filter(|n| *n != "source" && *n != "extract")
            .collect();
        let cols = numeric
            .iter()
            .map(|n| int_column(&b, n))
            .collect::<Result<Vec<_>>>()?;
        for i in 0..b.num_rows() {
            let e = extract
                .as_ref()
                .map(|e| e.value(i).to_string())
                .unwrap_or_default();
            let row: BTreeMap<String, u64> = numeric
                .iter()
                .zip(&cols)
                .map(|(n, c)| {
                    (
                        n.to_string(),
                        if c.is_null(i) { 0 } else { c.value(i) as u64 },
                    )
                })
                .collect();
            out.insert((e, source.value(i).to_string()), row);
        }
    }
    Ok(out)
}

/// One source's report in an earlier publication.
#[derive(Debug, Clone)]
pub struct Earlier {
    /// Extract kind of the source.
    pub extract: Extract,
    /// Source code.
    pub source: String,
    /// The publication's night.
    pub night: NightDate,
    /// Key of its flags.parquet in that publication's staging.
    pub report: String,
}

/// Earlier publications' reports of every source used for a run.
pub struct History {
    /// Each source's report of its previous published night.
    pub previous: Vec<Earlier>,
    /// Each source's report of its first published night (before D).
    pub baseline: Vec<Earlier>,
}

impl History {
    /// The source's report of its previous published night, if any.
    pub fn previous(&self, extract: Extract, source: &str) -> Option<&Earlier> {
        find(&self.previous, extract, source)
    }

    /// The source's report of its first published night, if any (none: this
    /// run is its baseline).
    pub fn baseline(&self, extract: Extract, source: &str) -> Option<&Earlier> {
        find(&self.baseline, extract, source)
    }
}

fn find<'a>(list: &'a [Earlier], extract: Extract, source: &str) -> Option<&'a Earlier> {
    list.iter()
        .find(|e| e.extract == extract && e.source == source)
}

/// Finds, for every source used, its previous and first published reports
/// among `earlier`, the committed publications before the night, oldest first
/// ([`crate::publications::committed_before`]).
pub fn history(earlier: &[Published], inputs: &Inputs) -> History {
    let mut h = History {
        previous: vec![],
        baseline: vec![],
    };
    for (extract, c) in sources(inputs) {
        let holding: Vec<Earlier> = earlier
            .iter()
            .filter_map(|p| {
                let k = report_key(extract, &c.source, p.as_of);
                p.files.iter().any(|f| f.path == k).then(|| Earlier {
                    extract,
                    source: c.source.clone(),
                    night: p.as_of,
                    report: format!("{}{k}", stage_prefix(p.as_of, &p.run_id)),
                })
            })
            .collect();
        if let (Some(first), Some(last)) = (holding.first(), holding.last()) {
            h.baseline.push(first.clone());
            h.previous.push(last.clone());
        }
    }
    h
}

/// Every source used for the run, carriers first.
fn sources(inputs: &Inputs) -> impl Iterator<Item = (Extract, &Chosen)> {
    inputs
        .subscribers
        .iter()
        .map(|c| (Extract::Subscribers, c))
        .chain(inputs.accounts.iter().map(|c| (Extract::Accounts, c)))
}

/// Steps 95 and 97 for one source, over its reports: the report and delta
/// list this run has just staged, and the reports of its previous and
/// baseline publications.
async fn progress(ctx: &SessionContext, t: &Target) -> Result<Counts> {
    let (extract, c) = (t.extract, &t.chosen);
    let now = format!("{}{}", t.stage, report_key(extract, &c.source, t.date));
    let reports = [
        ("now_keys", Some(now.as_str())),
        (
            "previous_keys",
            t.previous.as_ref().map(|e| e.report.as_str()),
        ),
        (
            "baseline_keys",
            t.baseline.as_ref().map(|e| e.report.as_str()),
        ),
    ];
    for (name, report) in reports {
        engine::register_report_keys(ctx, name, extract, report).await?;
    }
    let (file, text) = sql::PROGRESS;
    let p = BTreeMap::from([
        ("EXTRACT", extract.to_string()),
        ("SOURCE", c.source.clone()),
    ]);
    let mut counts = collect_counts(ctx, file, &engine::render(file, text, &p)?).await?;
    let key = engine::report_key_column(extract);
    let report_columns = [
        (key, DataType::Utf8),
        ("required_action", DataType::Utf8),
        ("overdue", DataType::Boolean),
    ];
    engine::register_report(ctx, "now_report", extract, Some(&now), &report_columns).await?;
    let delta = format!("{}{}", t.stage, delta_key(extract, &c.source, t.date));
    let delta_columns = [(key, DataType::Utf8), ("change", DataType::Utf8)];
    engine::register_report(ctx, "now_delta", extract, Some(&delta), &delta_columns).await?;
    let (efile, etext) = sql::ENFORCEMENT;
    let ep = BTreeMap::from([
        ("EXTRACT", extract.to_string()),
        ("SOURCE", c.source.clone()),
        ("ACTION_SUMS", crate::reasons::action_sums(extract)),
    ]);
    for (k, more) in collect_counts(ctx, efile, &engine::render(efile, etext, &ep)?).await? {
        counts.entry(k).or_default().extend(more);
    }
    Ok(counts)
}

/// Step 90 or 91 for one source, over its folder of the flags table: its
/// row counts, keyed by (extract, source).
async fn source_metrics(ctx: &SessionContext, t: &Target) -> Result<Counts> {
    let (file, text) = match t.extract {
        Extract::Subscribers => sql::METRICS_SUBSCRIBERS,
        _ => sql::METRICS_ACCOUNTS,
    };
    let mut p = crate::reasons::sql_params(REASONS);
    p.insert("SOURCE", t.chosen.source.clone());
    let counts = collect_counts(ctx, file, &engine::render(file, text, &p)?).await?;
    let extract = t.extract.to_string();
    Ok(counts
        .into_iter()
        .map(|((_, source), row)| ((extract.clone(), source), row))
        .collect())
}

/// Computes carriers.json and banks.json entries for `date` from what
/// [`write_reports`] counted: each source's row counts (`counted.metrics`)
/// and progress (`counted.progress`).
pub fn metrics(
    inputs: &Inputs,
    h: &History,
    date: NightDate,
    counted: &Reports,
) -> Result<(Vec<SourceMetrics>, Vec<SourceMetrics>)> {
    let progress = &counted.progress;
    let build = |extract: Extract, chosen: &[Chosen], counts: &Counts, reasons: Vec<&str>| {
        chosen
            .iter()
            .map(|c| {
                let empty = BTreeMap::new();
                let m = counts
                    .get(&(extract.to_string(), c.source.clone()))
                    .unwrap_or(&empty);
                let g = |k: &str| m.get(k).copied().unwrap_or(0);
                let p = progress
                    .get(&(extract.to_string(), c.source.clone()))
                    .unwrap_or(&empty);
                let pg = |k: &str| p.get(k).copied().unwrap_or(0);
                let now = h.baseline(extract, &c.source).is_none();
                let (baseline, since) = if now {
                    (pg("flagged_keys"), 0)
                } else {
                    (pg("baseline_flagged"), pg("resolved_since_baseline"))
                };
                SourceMetrics {
                    as_of: date,
                    source: c.source.clone(),
                    extract_as_of: c.as_of,
                    total: g("total"),
                    rows_rejected: c.rows_rejected,
                    out_of_scope: g("out_of_scope"),
                    flagged: g("flagged"),
                    clean: g("clean"),
                    clean_pct: pct(g("clean"), g("total") - g("out_of_scope")),
                    flags_by_reason: reasons.iter().map(|r| (r.to_string(), g(r))).collect(),
                    flagged_blocked: g("flagged_blocked"),
                    newly_flagged: pg("newly_flagged"),
                    resolved: pg("resolved"),
                    baseline_flagged: baseline,
                    resolved_since_baseline: since,
                    cleanup_progress_pct: pct(since, baseline),
                    gone: pg("gone"),
                    required_action: crate::reasons::actions(extract)
                        .iter()
                        .map(|a| (a.to_string(), pg(a)))
                        .collect(),
                    overdue: pg("overdue"),
                    compliance_pct: pct(pg("due").saturating_sub(pg("overdue")), pg("due")),
                    held_as_of: c.held_as_of,
                }
            })
            .collect::<Vec<_>>()
    };
    let carriers = build(
        Extract::Subscribers,
        &inputs.subscribers,
        &counted.metrics,
        codes(REASONS, Extract::Subscribers),
    );
    let banks = build(
        Extract::Accounts,
        &inputs.accounts,
        &counted.metrics,
        codes(REASONS, Extract::Accounts),
    );
    check_complete(inputs, &carriers, &banks)?;
    Ok((carriers, banks))
}

/// Never publish numbers computed over data that was not all read: every
/// source's row total must equal the rows its accepted extract holds.
fn check_complete(
    inputs: &Inputs,
    carriers: &[SourceMetrics],
    banks: &[SourceMetrics],
) -> Result<()> {
    let pairs = inputs
        .subscribers
        .iter()
        .zip(carriers)
        .chain(inputs.accounts.iter().zip(banks));
    let short: Vec<String> = pairs
        .filter(|(c, m)| c.rows != m.total)
        .map(|(c, m)| {
            format!(
                "{}/{}: {} rows read, {} accepted",
                c.extract, c.source, m.total, c.rows
            )
        })
        .collect();
    if short.is_empty() {
        Ok(())
    } else {
        Err(Error::CannotRun(format!(
            "curated data read incompletely: {}",
            short.join("; ")
        )))
    }
}

/// Writes a small JSON document and returns its publication entry.
async fn put_json(root: &Root, key: &str, value: &impl Serialize) -> Result<PublishedFile> {
    let mut body = serde_json::to_vec_pretty(value).map_err(|e| Error::encode(key, e))?;
    body.push(b'\n');
    let f = PublishedFile {
        path: key.to_string(),
        sha256: hex::encode(Sha256::digest(&body)),
        bytes: body.len() as u64,
    };
    root.put(key, body).await?;
    Ok(f)
}

/// Everything a night publishes besides the flag reports.
#[derive(Debug, Clone, Default)]
pub struct NightMetrics {
    /// carriers.json.
    pub carriers: Vec<SourceMetrics>,
    /// banks.json.
    pub banks: Vec<SourceMetrics>,
    /// sources.json: current, stale or missing uploads, rejected uploads.
    pub sources: Vec<crate::sources::SourceStatus>,
}

/// The night's upload states (an addition to the contract's files, listed in its marker).
pub fn sources_key(date: NightDate) -> String {
    format!("metrics/date={date}/sources.json")
}

/// The newest night's dashboard, outside any one night's publication.
pub const DASHBOARD: &str = "reports/dashboard.html";

/// A night's own dashboard, part of its publication.
pub fn dashboard_key(date: NightDate) -> String {
    format!("reports/dashboard/date={date}/dashboard.html")
}

/// The dashboard of `date`: every committed night before it, and this one.
async fn dashboard_page(root: &Root, date: NightDate, night: &NightMetrics) -> Result<String> {
    let mut history: Vec<(NightDate, Vec<SourceMetrics>, Vec<SourceMetrics>)> = vec![];
    for d in committed_dates(root).await? {
        if d >= date {
            continue;
        }
        if let Some((_, c, b)) = read_committed_metrics(root, d).await? {
            history.push((d, c, b));
        }
    }
    let mut nights: Vec<crate::dashboard::Night> = history
        .iter()
        .map(|(d, c, b)| crate::dashboard::Night {
            date: *d,
            carriers: c,
            banks: b,
            sources: &[],
        })
        .collect();
    nights.push(crate::dashboard::Night {
        date,
        carriers: &night.carriers,
        banks: &night.banks,
        sources: &night.sources,
    });
    Ok(crate::dashboard::render(&nights))
}

/// Commits a night: writes the metrics and the run's own `_PUBLISHED.json`
/// under its staging prefix, swings the date's pointer to the run (the commit
/// point), then mirrors the files to the contract's paths with
/// `metrics/date=D/_PUBLISHED.json` written last.
///
/// With a `fence`, the lease is checked before the pointer moves and before
/// the contract's paths change, and a pointer written under a newer lease is
/// never replaced: a run that lost its lease stops there. If mirroring fails,
/// the files already replaced are restored from the previous publication,
/// its marker is written back and the pointer returns to it.
pub async fn commit(
    root: &Root,
    date: NightDate,
    run_id: &str,
    mut files: Vec<PublishedFile>,
    night: &NightMetrics,
    fence: &Fence,
) -> Result<Published> {
    let stage = stage_prefix(date, run_id);
    for (name, value) in [("carriers", &night.carriers), ("banks", &night.banks)] {
        let path = format!("metrics/date={date}/{name}.json");
        let mut f = put_json(root, &format!("{stage}{path}"), value).await?;
        f.path = path;
        files.push(f);
    }
    let path = sources_key(date);
    let mut f = put_json(root, &format!("{stage}{path}"), &night.sources).await?;
    f.path = path;
    files.push(f);
    let page = dashboard_page(root, date, night).await?;
    let path = dashboard_key(date);
    let key = format!("{stage}{path}");
    root.put(&key, page.clone()).await?;
    files.push(PublishedFile {
        path,
        sha256: hex::encode(Sha256::digest(page.as_bytes())),
        bytes: page.len() as u64,
    });
    files.sort_by(|a, b| a.path.cmp(&b.path));
    let published = Published {
        as_of: date,
        run_id: run_id.to_string(),
        program_version: env!("CARGO_PKG_VERSION").to_string(),
        published_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        files,
    };
    put_json(root, &format!("{stage}_PUBLISHED.json"), &published).await?;
    let before = root
        .get_json::<Pointer>(&pointer_key(date))
        .await
        .ok()
        .flatten();
    fence.check("moving the pointer").await?;
    if let Some(newer) = before
        .as_ref()
        .and_then(|p| p.lease_generation)
        .filter(|&g| g > fence.generation())
    {
        return Err(Error::CannotRun(format!(
            "{} was committed under lease {newer}, newer than this run's {}: not replaced",
            pointer_key(date),
            fence.generation()
        )));
    }
    write_pointer(root, date, run_id, Some(fence.generation())).await?;
    let mirrored = fence.check("mirroring").await;
    if let Err(e) = async {
        mirrored?;
        mirror(root, &published).await
    }
    .await
    {
        if let Some(old) = before {
            if let Err(back) = write_pointer(root, date, &old.run_id, old.lease_generation).await {
                warn!(error = %back, "the pointer could not be moved back to the previous publication");
            }
        }
        return Err(e);
    }
    if committed_dates(root).await?.last() == Some(&date) {
        // The newest night is also the page officials open without the service.
        root.copy(&dashboard_key(date), DASHBOARD).await?;
    }
    Ok(published)
}

/// A committed night's publication with its carriers.json and banks.json,
/// read from the run's staging through the pointer (`None`: not published).
pub async fn read_committed_metrics(
    root: &Root,
    date: NightDate,
) -> Result<Option<(Published, Vec<SourceMetrics>, Vec<SourceMetrics>)>> {
    let Some(p) = read_current(root, date).await? else {
        return Ok(None);
    };
    let stage = stage_prefix(date, &p.run_id);
    let read = |name: &str| format!("{stage}metrics/date={date}/{name}.json");
    let carriers = root.get_json(&read("carriers")).await?.unwrap_or_default();
    let banks = root.get_json(&read("banks")).await?.unwrap_or_default();
    Ok(Some((p, carriers, banks)))
}

async fn write_pointer(
    root: &Root,
    date: NightDate,
    run_id: &str,
    lease: Option<u64>,
) -> Result<()> {
    let pointer = serde_json::to_vec(&Pointer {
        run_id: run_id.to_string(),
        lease_generation: lease,
    })
    .map_err(|e| Error::encode("pointer", e))?;
    root.put_pointer(&pointer_key(date), pointer).await
}

/// Copies a committed publication to the contract's paths: the old marker is
/// removed first (readers see "not published", never a mix), files no longer
/// published are removed, the marker is written last, and older staged runs
/// of the date are deleted. Safe to repeat after a crash. When a copy
/// fails, the files already replaced are put back from the previous
/// publication's staging and its marker is restored, so a failed
/// re-publication leaves the previous night published.
pub async fn mirror(root: &Root, published: &Published) -> Result<()> {
    let date = published.as_of;
    let stage = stage_prefix(date, &published.run_id);
    let old = read_published(root, date).await.ok().flatten();
    root.delete(&published_key(date)).await?;
    for (i, f) in published.files.iter().enumerate() {
        if let Err(e) = root.copy(&format!("{stage}{}", f.path), &f.path).await {
            if let Some(old) = &old {
                restore(root, old, &published.files[..i]).await;
            }
            return Err(e);
        }
    }
    for stale in old.iter().flat_map(|o| &o.files) {
        if !published.files.iter().any(|f| f.path == stale.path) {
            root.delete(&stale.path).await?;
        }
    }
    put_json(root, &published_key(date), published).await?;
    for run in root.list_dirs(&format!("publications/date={date}")).await? {
        if run != format!("run={}", published.run_id) {
            root.delete_prefix(&format!("publications/date={date}/{run}/"))
                .await?;
        }
    }
    Ok(())
}

/// Puts back the previous publication after a failed mirror: every path in
/// `replaced` is copied again from the previous run's staging (or removed
/// when it was not part of it), then the previous marker is written. Best
/// effort: what cannot be restored is logged, and the night then has no
/// marker (not published) rather than a marker that disagrees with its files.
async fn restore(root: &Root, old: &Published, replaced: &[PublishedFile]) {
    let stage = stage_prefix(old.as_of, &old.run_id);
    for f in replaced {
        let back = match old.files.iter().any(|o| o.path == f.path) {
            true => root.copy(&format!("{stage}{}", f.path), &f.path).await,
            false => root.delete(&f.path).await,
        };
        if let Err(e) = back {
            warn!(error = %e, path = %f.path, "the previous publication could not be restored");
            return;
        }
    }
    if let Err(e) = put_json(root, &published_key(old.as_of), old).await {
        warn!(error = %e, "the previous publication's marker could not be restored");
    }
}

/// Completes any committed night whose contract copy is missing or stale
/// (a publisher that died between the pointer and the marker).
pub async fn repair(root: &Root) -> Result<Vec<NightDate>> {
    let mut repaired = vec![];
    for date in committed_dates(root).await? {
        let Some(current) = read_current(root, date).await? else {
            continue;
        };
        let marker = read_published(root, date).await?;
        if marker.as_ref().map(|m| &m.run_id) != Some(&current.run_id) {
            mirror(root, &current).await?;
            repaired.push(date);
        }
    }
    Ok(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_round_to_two_decimals() {
        assert_eq!(pct(652, 1087), Some(59.98));
        assert_eq!(pct(0, 10), Some(0.0));
        assert_eq!(pct(1, 0), None);
        assert_eq!(pct(1, 3), Some(33.33));
        assert_eq!(pct(2, 3), Some(66.67));
        // exact binary tie 3.125 -> 3.12 (ties to even)
        assert_eq!(pct(1, 32), Some(3.12));
    }

    #[tokio::test]
    async fn a_report_task_dropped_before_it_ends_does_no_more_work() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let late = |done: Arc<AtomicBool>| async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            done.store(true, Ordering::SeqCst);
        };
        let (kept, dropped) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let mut task = Stopped(tokio::spawn(late(kept.clone())));
        drop(Stopped(tokio::spawn(late(dropped.clone()))));
        (&mut task.0).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(kept.load(Ordering::SeqCst));
        assert!(!dropped.load(Ordering::SeqCst), "the dropped task ran on");
    }
}
