//! Split writes of work tables on the local engine: a query's rows written
//! as Parquet in one folder per value of its last columns
//! (`{dir}{column}={value}/.../{name}.parquet`), the layout the engine's own
//! partitioned write gives and its listing tables read back.
//!
//! The engine's partitioned write (DataFusion 55) turns the split values of
//! every row into owned strings, hashes them, and copies every row into a
//! batch per folder, even when a whole batch goes to one folder, as nearly
//! every batch of a work table does (its rows come from files of one source
//! or one kind). Here a run of rows with the same split values is passed on
//! as a slice of the batch, with no copy; only a batch cut into many runs
//! is gathered per folder.
//!
//! Must never change, drop or reorder a row within its folder, never write
//! outside `dir`, and never be used on a cluster (the rows would all flow
//! through this process).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::{partition, take_record_batch};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use arrow::util::display::array_value_to_string;
use datafusion::common::file_options::parquet_writer::ParquetWriterOptions;
use datafusion::config::TableParquetOptions;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::execute_stream;
use datafusion::prelude::DataFrame;
use futures::StreamExt;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::ObjectStore;
use parquet::arrow::async_writer::AsyncArrowWriter;
use parquet::file::properties::WriterProperties;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

/// Runs of equal split values in one batch above which the batch is
/// gathered per folder (one copy) rather than sent on as that many slices.
const MOST_SLICES: usize = 16;

/// Batches waiting for one folder's writer (as the engine's
/// `max_buffered_batches_per_output_file` default).
const QUEUED_BATCHES: usize = 2;

/// Writes the rows of `df` under the folder `dir_url` (an engine URL), split
/// by `columns`, the last columns of its schema, outermost folder first; each
/// folder gets one file, `{name}.parquet`. The files are written with the
/// session's Parquet options, each by a task of its own, and the row group
/// each writer buffers is reserved in the session's memory pool.
pub async fn write_split(df: DataFrame, dir_url: &str, columns: &[&str], name: &str) -> Result<()> {
    let task = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let schema = plan.schema();
    let first = file_columns(&schema, columns)
        .map_err(|message| DataFusionError::Plan(format!("split write: {message}")))?;
    let file_schema = Arc::new(Schema::new(schema.fields()[..first].to_vec()));
    let url = ListingTableUrl::parse(dir_url)?;
    let out = Output {
        store: task.runtime_env().object_store(&url)?,
        dir: url.prefix().clone(),
        schema: file_schema,
        props: writer_props(&task)?,
        pool: Arc::clone(task.memory_pool()),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        name: format!("{name}.parquet"),
    };
    let mut queues: HashMap<Vec<String>, mpsc::Sender<RecordBatch>> = HashMap::new();
    // Dropped on an early return: every writer still running is aborted.
    let mut writers = JoinSet::new();
    let mut rows = execute_stream(plan, task)?;
    'rows: while let Some(batch) = rows.next().await.transpose()? {
        for (values, part) in by_folder(&batch, first, &out.schema)? {
            let queue = queues
                .entry(values)
                .or_insert_with_key(|values| out.spawn(values, &mut writers));
            if queue.send(part).await.is_err() {
                // A writer has stopped: its error is returned below.
                break 'rows;
            }
        }
    }
    drop(queues);
    while let Some(done) = writers.join_next().await {
        done.map_err(|e| DataFusionError::External(Box::new(e)))??;
    }
    Ok(())
}

/// How many of the schema's columns go into the files of a split table
/// (written here, or read back from its folders): all but `columns`, which
/// must be its last ones, in that order; else what is wrong.
pub fn file_columns(schema: &SchemaRef, columns: &[&str]) -> std::result::Result<usize, String> {
    let fields = schema.fields();
    let first = fields.len().checked_sub(columns.len());
    let found: Vec<&str> = fields[first.unwrap_or(0)..]
        .iter()
        .map(|f| f.name().as_str())
        .collect();
    match first {
        Some(first) if found == columns => Ok(first),
        _ => Err(format!(
            "{columns:?} must be the last columns, found {found:?}"
        )),
    }
}

/// The session's Parquet writer settings, as the engine's own writes use
/// (the Arrow schema is put in each file by the writer itself).
fn writer_props(task: &TaskContext) -> Result<WriterProperties> {
    let mut global = task.session_config().options().execution.parquet.clone();
    global.skip_arrow_metadata = true;
    let options = TableParquetOptions {
        global,
        ..Default::default()
    };
    Ok(ParquetWriterOptions::try_from(&options)?
        .writer_options()
        .clone())
}

/// The batch's rows as (split values, rows without the split columns): a
/// slice per run of equal values, or, past [`MOST_SLICES`] runs, the rows of
/// each folder gathered in their order.
fn by_folder(
    batch: &RecordBatch,
    first: usize,
    schema: &SchemaRef,
) -> Result<Vec<(Vec<String>, RecordBatch)>> {
    let keys: &[ArrayRef] = &batch.columns()[first..];
    let rows = RecordBatch::try_new(Arc::clone(schema), batch.columns()[..first].to_vec())?;
    let values = |row: usize| -> Result<Vec<String>> {
        keys.iter()
            .map(|k| Ok(array_value_to_string(k, row)?))
            .collect()
    };
    let runs = partition(keys)?.ranges();
    if runs.len() <= MOST_SLICES {
        return runs
            .into_iter()
            .map(|r| Ok((values(r.start)?, rows.slice(r.start, r.len()))))
            .collect();
    }
    let mut order: Vec<Vec<String>> = vec![];
    let mut indices: HashMap<Vec<String>, Vec<u32>> = HashMap::new();
    for r in runs {
        let v = values(r.start)?;
        if !indices.contains_key(&v) {
            order.push(v.clone());
        }
        indices
            .entry(v)
            .or_default()
            .extend(r.start as u32..r.end as u32);
    }
    order
        .into_iter()
        .map(|v| {
            let picked = UInt32Array::from(indices.remove(&v).unwrap_or_default());
            Ok((v, take_record_batch(&rows, &picked)?))
        })
        .collect()
}

/// Where and how the folders' files are written.
struct Output {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    schema: SchemaRef,
    props: WriterProperties,
    pool: Arc<dyn MemoryPool>,
    columns: Vec<String>,
    name: String,
}

impl Output {
    /// The file of the folder of `values`.
    fn path(&self, values: &[String]) -> Path {
        let folders = self.columns.iter().zip(values);
        let mut path = self.dir.clone();
        for (column, value) in folders {
            path = path.join(format!("{column}={value}"));
        }
        path.join(self.name.as_str())
    }

    /// Starts the writer of the folder of `values`; returns its queue.
    fn spawn(
        &self,
        values: &[String],
        writers: &mut JoinSet<Result<()>>,
    ) -> mpsc::Sender<RecordBatch> {
        let (queue, mut batches) = mpsc::channel::<RecordBatch>(QUEUED_BATCHES);
        let path = self.path(values);
        let sink = BufWriter::new(Arc::clone(&self.store), path.clone());
        let (schema, props) = (Arc::clone(&self.schema), self.props.clone());
        let reservation = MemoryConsumer::new(format!("split write {path}")).register(&self.pool);
        writers.spawn(async move {
            let mut writer = AsyncArrowWriter::try_new(sink, schema, Some(props))?;
            while let Some(batch) = batches.recv().await {
                writer.write(&batch).await?;
                reservation.try_resize(writer.memory_size())?;
            }
            writer.close().await?;
            Ok(())
        });
        queue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    /// Rows numbered 0.. with the kinds given, in that order.
    fn batch(schema: &SchemaRef, first: i64, kinds: &[&str]) -> RecordBatch {
        let n: Vec<i64> = (first..first + kinds.len() as i64).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from(n)),
            Arc::new(StringArray::from(kinds.to_vec())),
        ];
        RecordBatch::try_new(Arc::clone(schema), columns).unwrap()
    }

    /// The `n` of the rows of one folder, in file order.
    async fn folder_rows(ctx: &SessionContext, dir: &str, kind: &str) -> Vec<i64> {
        let df = ctx
            .read_parquet(format!("{dir}kind={kind}/"), ParquetReadOptions::default())
            .await
            .unwrap();
        let mut out = vec![];
        for b in df.collect().await.unwrap() {
            let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
            out.extend(n.values().iter().copied());
        }
        out
    }

    #[tokio::test]
    async fn every_row_lands_in_its_folder_in_order_whether_in_runs_or_mixed() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("kind", DataType::Utf8, false),
        ]));
        // Two runs (passed on as slices), then a batch alternating 40 times
        // (gathered per folder), then one run of the first kind again.
        let runs = batch(&schema, 0, &["S", "S", "S", "A", "A"]);
        let mixed: Vec<&str> = (0..40)
            .map(|i| if i % 2 == 0 { "A" } else { "S" })
            .collect();
        let mixed = batch(&schema, 5, &mixed);
        let last = batch(&schema, 45, &["S", "S"]);
        let input = [runs, mixed, last];
        let config = SessionConfig::new().with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        let df = ctx.read_batches(input.clone()).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let dir = format!("file://{}/", tmp.path().display());
        write_split(df, &dir, &["kind"], "part-7").await.unwrap();

        for kind in ["S", "A"] {
            let file = tmp.path().join(format!("kind={kind}/part-7.parquet"));
            assert!(file.is_file(), "{} missing", file.display());
            let mut expected = vec![];
            for b in &input {
                let n = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                let k = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
                expected.extend(
                    (0..b.num_rows())
                        .filter(|&i| k.value(i) == kind)
                        .map(|i| n.value(i)),
                );
            }
            assert_eq!(folder_rows(&ctx, &dir, kind).await, expected, "kind {kind}");
        }
        let files = std::fs::read_dir(tmp.path()).unwrap().count();
        assert_eq!(files, 2, "one folder per kind and nothing else");
    }

    #[tokio::test]
    async fn split_columns_that_are_not_the_last_ones_are_refused() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("kind", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let err = file_columns(&schema, &["kind"]).unwrap_err();
        assert!(err.contains("must be the last columns"), "{err}");
    }
}
