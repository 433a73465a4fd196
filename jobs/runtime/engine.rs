//! The DataFusion engine every stage runs on: the session built from
//! `Config` (memory pool, spill, partitions), the registration of Parquet
//! folders and report keys as tables, and the rendering of the SQL in
//! `queries/` with its parameters. It knows no stage and no rule: it must
//! never decide what a query means, only run it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, Int64Array, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigNonZeroUsize;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryLimit, MemoryPool, TrackConsumersPool,
};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::prelude::{col, DataFrame, SessionConfig, SessionContext};
use datafusion::sql::parser::DFParser;

use crate::config::{Config, Engine};
use crate::schema::Extract;
use crate::store::{Root, DATAFUSION_URL};
use crate::{Error, Result};

/// A DataFusion session reading the root through the store (`junkrecon://root/`),
/// with a memory pool of `memory_limit_mb` when one is set.
pub fn session(root: &Root, cfg: &Config) -> Result<SessionContext> {
    let pool = (cfg.memory_limit_mb > 0)
        .then(|| bounded_pool((cfg.memory_limit_mb as usize) * 1024 * 1024));
    session_with_pool(root, cfg, pool)
}

/// A [`session`] for one aggregation over every key of an extract (the
/// volume guard, the registry's duplicate check), split into 16 partitions
/// a core instead of one: each partition's table of keys is a sixteenth of
/// the size, and its lookups miss the processor's caches less (every key is
/// a group: 8.8M for the largest carrier's guard at 10M persons). Measured
/// on that guard alone, two cores: 2.06+0.54 -> 1.74+0.55 CPU seconds
/// (user+sys); the registry's, 1.91+0.46 -> 1.67+0.56.
pub fn keys_session(root: &Root, cfg: &Config) -> Result<SessionContext> {
    let split = Config {
        target_partitions: partitions(cfg) * 16,
        batch_size: cfg.batch_size.saturating_mul(STREAM_BATCH_FACTOR),
        ..cfg.clone()
    };
    session(root, &split)
}

/// How many times `batch_size` the rows of a batch are in a query that
/// streams every row of an extract past one table: step 40's holders past
/// the registry's keys, step 50's subscriber rows past the lines over the
/// limit (the hash joins with one build table), and the key aggregations of
/// [`keys_session`] (whose spill merges are sized for it). Fewer, larger
/// batches there cost less per row (10M persons, day 2, seven alternating
/// rounds of the whole night with 32768 rows a batch against 8192:
/// `resolved` 13.2 -> 11.7 s on average, the guards' seconds 7.2 -> 6.4).
/// Not every query: sorts and spills under a small pool keep the configured
/// size (see the runbook).
pub const STREAM_BATCH_FACTOR: usize = 4;

/// The engine's partitions: `target_partitions`, or the cores when 0.
fn partitions(cfg: &Config) -> usize {
    match cfg.target_partitions {
        0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
        n => n,
    }
}

/// The session reconcile and publish run on, as `cfg.engine` says: this
/// process ([`session`]), or a Ballista cluster whose scheduler must answer
/// first (one clear line when it does not). A cluster session is the local
/// one's configuration and runtime (the same options, the same root under
/// `junkrecon://root/`) planned by Ballista; the executors resolve the root
/// themselves (`junkrecon executor --data`).
pub async fn night_session(root: &Root, cfg: &Config) -> Result<SessionContext> {
    use ballista::prelude::SessionContextExt;
    let local = session(root, cfg)?;
    let cluster = |e: datafusion::error::DataFusionError| {
        Error::CannotRun(format!("engine {}: {e}", cfg.engine))
    };
    match &cfg.engine {
        Engine::Local => Ok(local),
        Engine::Standalone => SessionContext::standalone_with_state(cluster_state(&local))
            .await
            .map_err(cluster),
        Engine::Cluster { host, port } => {
            scheduler_answers(&cfg.engine, host, *port).await?;
            let url = format!("df://{host}:{port}");
            SessionContext::remote_with_state(&url, cluster_state(&local))
                .await
                .map_err(cluster)
        }
    }
}

/// The local session's state with the settings a Ballista 55 cluster
/// needs; the scheduler takes them when the session first reaches it.
fn cluster_state(local: &SessionContext) -> datafusion::execution::SessionState {
    use ballista::prelude::SessionConfigExt;
    let mut config = local
        .state()
        .config()
        .clone()
        .upgrade_for_ballista()
        // The static distributed planner: the adaptive one leaves a job
        // waiting forever when it re-plans a stage it cannot cancel.
        .with_ballista_adaptive_query_planner(false);
    // Ballista plans each stage again with join selection, which refuses a
    // hash join whose dynamic filter is already built (an internal error
    // that stalls the job). Dynamic filters only skip rows early; results
    // are the same without them.
    let optimizer = &mut config.options_mut().optimizer;
    optimizer.enable_dynamic_filter_pushdown = false;
    optimizer.enable_join_dynamic_filter_pushdown = false;
    optimizer.enable_topk_dynamic_filter_pushdown = false;
    optimizer.enable_aggregate_dynamic_filter_pushdown = false;
    datafusion::execution::SessionStateBuilder::new_from_existing(local.state())
        .with_config(config)
        .build()
}

/// Stack of the threads queries run on. Ballista turns plans into protocol
/// buffers and back recursively; a night's plans overflow the usual 2 MiB
/// (an abort, not an error), so every runtime junkrecon builds uses this.
pub const WORKER_STACK_BYTES: usize = 16 * 1024 * 1024;

/// Fails with one line when nothing accepts connections at the scheduler's
/// address within 10 s.
async fn scheduler_answers(engine: &Engine, host: &str, port: u16) -> Result<()> {
    let connect = tokio::net::TcpStream::connect((host, port));
    match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(Error::CannotRun(format!(
            "engine {engine}: the Ballista scheduler cannot be reached: {e}"
        ))),
        Err(_) => Err(Error::CannotRun(format!(
            "engine {engine}: the Ballista scheduler did not answer within 10 s"
        ))),
    }
}

/// The memory pool of a limited session: fair shares for spilling operators,
/// and errors that name the five largest consumers.
pub fn bounded_pool(bytes: usize) -> Arc<dyn MemoryPool> {
    Arc::new(TrackConsumersPool::new(
        FairSpillPool::new(bytes),
        std::num::NonZeroUsize::new(5).expect("non-zero"),
    ))
}

/// [`session`] with the caller's memory pool (`None`: unbounded). Tests use a
/// pool that refuses chosen reservations.
pub fn session_with_pool(
    root: &Root,
    cfg: &Config,
    pool: Option<Arc<dyn MemoryPool>>,
) -> Result<SessionContext> {
    let partitions = partitions(cfg);
    // Plain Utf8 from Parquet: string_to_array on Utf8View returns a list type
    // other than the one it plans (DataFusion 55), which breaks the reports.
    let mut config = SessionConfig::new();
    let parquet = &mut config.options_mut().execution.parquet;
    parquet.schema_force_view_types = false;
    // The engine writes only the run's work tables (deleted when the run
    // ends; reports have their own writer): LZ4 costs a fraction of the
    // default zstd's CPU for files read once or twice. Uncompressed work
    // tables were tried and cost more (1M persons, day 1, two A/B rounds:
    // reconcile 3.63/3.34 -> 4.20/4.18 s, system CPU 1.3 -> 3.0 s, peak RSS
    // 575 -> 887 MiB): the larger files' writes and page cache outweigh LZ4.
    parquet.compression = Some("lz4_raw".into());
    // Nor dictionaries: most of their columns are keys, ID numbers and
    // names, unique per row, and building a dictionary for each column
    // chunk before giving up on it took a third of the CPU of a split write
    // (perf, 10M persons under 1 GiB).
    parquet.dictionary_enabled = Some(false);
    // Nor min/max statistics: no query filters a work table on a column's
    // value (their splits are folders), and keeping them compares every text
    // value as it is written (10M persons, day 2, two A/B rounds with the
    // curated data's below: night 56.4/54.7 -> 54.1/52.7 s).
    parquet.statistics_enabled = Some("none".into());
    let mut config = config
        .with_target_partitions(partitions)
        .with_batch_size(cfg.batch_size)
        .with_information_schema(false);
    // No cache of folder listings: a run writes files into folders it has
    // already read (a report's delta list beside its flags), and a cached
    // listing would not show them (DataFusion caches listings with no TTL).
    let caches = datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
        .with_list_files_cache_limit(0);
    let mut rt = RuntimeEnvBuilder::new().with_cache_manager(caches);
    if let Some(pool) = pool {
        if let MemoryLimit::Finite(bytes) = pool.memory_limit() {
            fit_buffers(&mut config, bytes);
            rt = rt.with_max_spill_merge_fan_in(merge_fan_in(bytes, cfg.batch_size));
        }
        rt = rt.with_memory_pool(pool);
    }
    if !cfg.spill_dir.is_empty() {
        rt = rt.with_temp_file_path(&cfg.spill_dir);
    }
    let rt = rt.build_arc().map_err(|e| Error::query("session", e))?;
    let ctx = SessionContext::new_with_config_rt(config, rt);
    let url = url::Url::parse(DATAFUSION_URL).expect("constant URL");
    ctx.register_object_store(&url, root.store());
    Ok(ctx)
}

/// Scales the engine's fixed-size buffers to a memory pool of `bytes`.
fn fit_buffers(config: &mut SessionConfig, bytes: usize) {
    let exec = &mut config.options_mut().execution;
    // Each sort sets aside this much of the pool for its final merge (10 MiB
    // by default); with a small pool and several sorts at once (sort-merge
    // joins) the default alone would exhaust it.
    exec.sort_spill_reservation_bytes = exec.sort_spill_reservation_bytes.min(bytes / 64);
    // A Parquet writer holds its row group until it is full: at most one row
    // per 2 KiB of pool keeps the writers of the intermediate tables to a
    // small share of it (1M rows, the default, from a 2 GiB pool up).
    exec.parquet.max_row_group_size = exec.parquet.max_row_group_size.min(bytes / 2048).max(8192);
    // One spill file per spilled repartition batch. In DataFusion 55.2 a
    // repartition output read from a spill file still open for writing can
    // park every worker for good when two inputs spill at once
    // (apache/datafusion#24883, fixed upstream after 55.2): a 30M night hung
    // in its progress aggregation. A file finished as soon as its batch is
    // written is never waited on. (Never refusing repartition buffers, the
    // earlier workaround, kept the engine off that path but let them take
    // 70 % of a 512 MiB pool.)
    exec.max_spill_file_size_bytes = ConfigNonZeroUsize::try_new(1).expect("1 is not zero");
}

/// How many spill files one external-sort merge pass may open under a pool
/// of `bytes`. The engine's default is no limit: a merge reserves a read
/// buffer for every spill file it can, so past the limit one sort's merge
/// took half the pool and the next sort of the same plan (a sort-merge join
/// sorts both sides of every join at once) failed with "Not enough memory to
/// continue external sort". Capped, a merge takes at most about 1/16 of the
/// pool (a file's buffer is taken as `batch_size` × 512 bytes: two batches
/// of ~128-byte rows plus their sort keys) and sorts that spilled more files
/// merge them in several passes: more disk reads, bounded memory.
fn merge_fan_in(bytes: usize, batch_size: usize) -> usize {
    let per_file = batch_size.max(1) * 512;
    (bytes / 16 / per_file).clamp(4, 128)
}

/// Registers the Parquet files under the given folders (keys relative to the
/// root, ending in `/`) as one table with a declared schema.
pub async fn register_parquet(
    ctx: &SessionContext,
    name: &str,
    keys: &[String],
    schema: SchemaRef,
) -> Result<()> {
    let table = match keys.is_empty() {
        true => empty_table(name, schema)?,
        false => parquet_folders(name, keys, schema)?,
    };
    ctx.register_table(name, Arc::new(table))
        .map_err(|e| Error::query(name, e))?;
    Ok(())
}

/// A table with no rows and the given columns: a listing of a folder of the
/// root nothing ever writes to. Unlike an in-memory table, it is a plan a
/// cluster can be sent (and every engine plans it the same way).
pub fn empty_table(name: &str, schema: SchemaRef) -> Result<ListingTable> {
    parquet_folders(name, &[format!("{EMPTY_FOLDER}{name}/")], schema)
}

/// The folder [`empty_table`] lists; nothing writes under it.
pub const EMPTY_FOLDER: &str = "work/never-written/";

/// A table over the `.parquet` files under folders of the root, with a
/// declared schema (no inference, no single-object listing).
pub fn parquet_folders(name: &str, dirs: &[String], schema: SchemaRef) -> Result<ListingTable> {
    parquet_table(name, dirs, schema, vec![])
}

/// A table over one Parquet file of the root, with a declared schema. It is
/// listed as its folder restricted to its own name (not as a single-object
/// URL, which an S3 root does not resolve the way a local one does), so the
/// files beside it (a report's CSV and delta list) are not read.
pub fn parquet_file(name: &str, file: &str, schema: SchemaRef) -> Result<ListingTable> {
    let (dir, file_name) = file.rsplit_once('/').unwrap_or(("", file));
    let url = ListingTableUrl::parse(Root::datafusion_url(&format!("{dir}/")))
        .map_err(|e| Error::query(name, e))?;
    let opts = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!("/{file_name}"));
    let cfg = ListingTableConfig::new_with_multi_paths(vec![url])
        .with_listing_options(opts)
        .with_schema(schema);
    ListingTable::try_new(cfg).map_err(|e| Error::query(name, e))
}

/// [`parquet_folders`] with columns read from folder names (`col=value/`),
/// which follow the files' columns in the table.
pub fn parquet_table(
    name: &str,
    dirs: &[String],
    file_schema: SchemaRef,
    folder_columns: Vec<(String, DataType)>,
) -> Result<ListingTable> {
    let urls = dirs
        .iter()
        .map(|k| ListingTableUrl::parse(Root::datafusion_url(k)))
        .collect::<datafusion::error::Result<Vec<_>>>()
        .map_err(|e| Error::query(name, e))?;
    let opts = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(".parquet")
        .with_table_partition_cols(folder_columns);
    let cfg = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(opts)
        .with_schema(file_schema);
    ListingTable::try_new(cfg).map_err(|e| Error::query(name, e))
}

/// Replaces `${NAME}` placeholders; an unknown or unreplaced placeholder is an error.
pub fn render(file: &str, sql: &str, params: &BTreeMap<&str, String>) -> Result<String> {
    let mut out = sql.to_string();
    for (k, v) in params {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    if let Some(pos) = out.find("${") {
        let end = out[pos..]
            .find('}')
            .map(|e| pos + e + 1)
            .unwrap_or(out.len());
        return Err(Error::Invalid {
            what: format!("queries/{file}"),
            message: format!("unknown placeholder {}", &out[pos..end]),
        });
    }
    Ok(out)
}

/// Runs every statement of a script (views are created, nothing is collected).
pub async fn run_script(ctx: &SessionContext, file: &str, sql: &str) -> Result<()> {
    let statements = DFParser::parse_sql(sql).map_err(|e| Error::query(file, e))?;
    for st in statements {
        let plan = ctx
            .state()
            .statement_to_plan(st)
            .await
            .map_err(|e| Error::query(file, e))?;
        // A view is made by planning it; only other statements have rows
        // to run (on a cluster, each would be a job).
        let ddl = matches!(plan, datafusion::logical_expr::LogicalPlan::Ddl(_));
        let df = ctx
            .execute_logical_plan(plan)
            .await
            .map_err(|e| Error::query(file, e))?;
        if !ddl {
            df.collect().await.map_err(|e| Error::query(file, e))?;
        }
    }
    Ok(())
}

/// Runs `work` with the session's options changed by `change`, then puts
/// every option back as it was, whether `work` succeeded or not: a step's
/// own settings (join strategy, writer layout) never leak into the queries
/// that follow on the same session.
pub async fn scoped_options<T>(
    ctx: &SessionContext,
    change: impl FnOnce(&mut datafusion::config::ConfigOptions),
    work: impl std::future::Future<Output = T>,
) -> T {
    let saved = ctx.state_ref().read().config().options().as_ref().clone();
    change(ctx.state_ref().write().config_mut().options_mut());
    let out = work.await;
    *ctx.state_ref().write().config_mut().options_mut() = saved;
    out
}

/// Plans one single-statement query file.
pub async fn query(ctx: &SessionContext, file: &str, sql: &str) -> Result<DataFrame> {
    ctx.sql(sql).await.map_err(|e| Error::query(file, e))
}

/// A session of its own beside `ctx`: the same configuration, runtime
/// (memory pool, spill, object stores) and planner (local or cluster), but
/// its own tables, starting with `tables` taken from `ctx`. Queries that
/// register tables under fixed names (a report's `previous_clock`, say) can
/// then run at the same time, each in its own session.
pub async fn side_session(ctx: &SessionContext, tables: &[&str]) -> Result<SessionContext> {
    use datafusion::catalog::{
        CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
        MemorySchemaProvider,
    };
    use datafusion::execution::SessionStateBuilder;
    let state = ctx.state();
    let names = &state.config().options().catalog;
    let catalog = MemoryCatalogProvider::new();
    catalog
        .register_schema(&names.default_schema, Arc::new(MemorySchemaProvider::new()))
        .map_err(|e| Error::query("side session", e))?;
    let catalogs = MemoryCatalogProviderList::new();
    catalogs.register_catalog(names.default_catalog.clone(), Arc::new(catalog));
    let side = SessionContext::new_with_state(
        SessionStateBuilder::new_from_existing(state)
            .with_catalog_list(Arc::new(catalogs))
            .build(),
    );
    for table in tables {
        let provider = ctx
            .table_provider(*table)
            .await
            .map_err(|e| Error::query(*table, e))?;
        side.register_table(*table, provider)
            .map_err(|e| Error::query(*table, e))?;
    }
    Ok(side)
}

/// The key column of a source's report (and delta list) of `extract`.
pub fn report_key_column(extract: Extract) -> &'static str {
    match extract {
        Extract::Subscribers => "msisdn",
        _ => "account_number",
    }
}

/// The column naming a row's source in the flags table of `extract`.
pub fn flags_source_column(extract: Extract) -> &'static str {
    match extract {
        Extract::Subscribers => "carrier",
        _ => "bank",
    }
}

/// Registers `name` as columns of one published file (a key relative to
/// the root: a report, a delta list), read with an explicit schema: each
/// `(column, type)` is read and renamed to `key` when it is `extract`'s key
/// column. A column the file does not have (a report written before
/// contract v2) reads as null. No file: an empty table of the same shape.
pub async fn register_report(
    ctx: &SessionContext,
    name: &str,
    extract: Extract,
    file: Option<&str>,
    columns: &[(&str, DataType)],
) -> Result<()> {
    ctx.deregister_table(name)
        .map_err(|e| Error::query(name, e))?;
    let key_col = report_key_column(extract);
    let renamed = |c: &str| if c == key_col { "key" } else { c }.to_string();
    let Some(file) = file else {
        let fields: Vec<Field> = columns
            .iter()
            .map(|(c, t)| Field::new(renamed(c), t.clone(), true))
            .collect();
        let empty = empty_table(name, Arc::new(Schema::new(fields)))?;
        ctx.register_table(name, Arc::new(empty))
            .map_err(|e| Error::query(name, e))?;
        return Ok(());
    };
    let fields: Vec<Field> = columns
        .iter()
        .map(|(c, t)| Field::new(*c, t.clone(), true))
        .collect();
    let table = parquet_file(name, file, Arc::new(Schema::new(fields)))?;
    let df = ctx
        .read_table(Arc::new(table))
        .and_then(|df| {
            df.select(
                columns
                    .iter()
                    .map(|(c, _)| col(*c).alias(renamed(c)))
                    .collect::<Vec<_>>(),
            )
        })
        .map_err(|e| Error::query(name, e))?;
    ctx.register_table(name, df.into_view())
        .map_err(|e| Error::query(name, e))?;
    Ok(())
}

/// Registers `name` as the key column (as `key`) of one report (see
/// [`register_report`]).
pub async fn register_report_keys(
    ctx: &SessionContext,
    name: &str,
    extract: Extract,
    report: Option<&str>,
) -> Result<()> {
    let key = report_key_column(extract);
    register_report(ctx, name, extract, report, &[(key, DataType::Utf8)]).await
}

/// A column of a query result cast to `T`'s type (the engine may choose
/// another integer width or a view type).
fn column_as<T: Array + Clone + 'static>(b: &RecordBatch, name: &str, ty: DataType) -> Result<T> {
    let c = b.column_by_name(name).ok_or_else(|| Error::Invalid {
        what: "query result".into(),
        message: format!("no column {name}"),
    })?;
    let c = cast(c, &ty).map_err(|e| Error::encode(name, e))?;
    Ok(c.as_any()
        .downcast_ref::<T>()
        .expect("cast to the requested type")
        .clone())
}

/// An integer column of a query result, whatever integer type the engine chose.
pub(crate) fn int_column(b: &RecordBatch, name: &str) -> Result<Int64Array> {
    column_as(b, name, DataType::Int64)
}

/// A text column of a query result as plain Utf8.
pub(crate) fn str_column(b: &RecordBatch, name: &str) -> Result<StringArray> {
    column_as(b, name, DataType::Utf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_replaces_and_refuses_unknown() {
        let p = BTreeMap::from([("AS_OF", "2026-11-20".to_string())]);
        assert_eq!(
            render("t", "DATE '${AS_OF}'", &p).unwrap(),
            "DATE '2026-11-20'"
        );
        let e = render("t", "${NOPE} x", &p).unwrap_err();
        assert!(e.to_string().contains("${NOPE}"), "{e}");
    }

    #[test]
    fn merge_fan_in_follows_pool_and_batch_size() {
        const GIB: usize = 1 << 30;
        assert_eq!(merge_fan_in(GIB, 8192), 16);
        assert_eq!(merge_fan_in(4 * GIB, 8192), 64);
        assert_eq!(merge_fan_in(GIB, 2048), 64);
        assert_eq!(merge_fan_in(64 << 20, 8192), 4, "never below 4 files");
        assert_eq!(merge_fan_in(64 * GIB, 8192), 128, "never above 128 files");
    }

    #[test]
    fn a_limited_session_caps_merge_fan_in_and_an_unlimited_one_does_not() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::open(dir.path().to_str().unwrap()).unwrap();
        let cfg = Config::default();
        let limited = session_with_pool(&root, &cfg, Some(bounded_pool(1 << 30))).unwrap();
        assert_eq!(
            limited.runtime_env().disk_manager.max_spill_merge_fan_in(),
            16
        );
        let open = session_with_pool(&root, &cfg, None).unwrap();
        assert_eq!(open.runtime_env().disk_manager.max_spill_merge_fan_in(), 0);
    }

    #[tokio::test]
    async fn scoped_options_are_put_back_after_the_work() {
        let ctx = SessionContext::new();
        let before = ctx.state_ref().read().config().options().as_ref().clone();
        let seen = scoped_options(
            &ctx,
            |o| {
                o.optimizer.prefer_hash_join = !o.optimizer.prefer_hash_join;
                o.execution.target_partitions += 3;
            },
            async {
                ctx.state_ref()
                    .read()
                    .config()
                    .options()
                    .execution
                    .target_partitions
            },
        )
        .await;
        assert_eq!(seen, before.execution.target_partitions + 3);
        let after = ctx.state_ref().read().config().options().as_ref().clone();
        assert_eq!(
            after.optimizer.prefer_hash_join,
            before.optimizer.prefer_hash_join
        );
        assert_eq!(
            after.execution.target_partitions,
            before.execution.target_partitions
        );
    }
}
