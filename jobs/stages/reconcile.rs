//! Reconcile (contract §4–§5): registers the curated extracts chosen for a
//! date and runs the SQL of `queries/` over them, in order, materialising the
//! intermediate results later steps read (`resolved`, the flags tables), the
//! big joins bucket by bucket under a memory limit. The rules live in the SQL
//! files, not here: this module only wires tables, parameters and files.
//! Must never register a custom function (the SQL has to run unchanged on a
//! distributed engine) and never write outside the run's work folder.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::datatypes::{Schema, SchemaRef};
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::datasource::listing::ListingTable;
use datafusion::execution::memory_pool::MemoryLimit;
use datafusion::prelude::SessionContext;

use crate::catalog::{Chosen, Inputs};
use crate::config::{Config, Joins};
use crate::curated::{curated_schema, rejects_schema};
use crate::engine::{self, parquet_folders, parquet_table, register_parquet, render, run_script};
use crate::held::HeldTable;
use crate::night::NightDate;
pub use crate::plans::{JoinPlan, StepPlan};
use crate::schema::Extract;
use crate::store::Root;
use crate::{Error, Result};

/// The views steps 40–75 read, in order: (file name, text). Embedded so the
/// binary runs exactly the SQL an auditor reads in `queries/`.
pub const STEPS: &[(&str, &str)] = &[
    (
        "10_holders.sql",
        include_str!("../../queries/10_holders.sql"),
    ),
    (
        "20_identity_keys.sql",
        include_str!("../../queries/20_identity_keys.sql"),
    ),
    (
        "30_id_checks.sql",
        include_str!("../../queries/30_id_checks.sql"),
    ),
    (
        "35_buckets.sql",
        include_str!("../../queries/35_buckets.sql"),
    ),
];

/// Step 40, run once per key bucket into `resolved`.
pub const RESOLVE: &[(&str, &str)] = &[(
    "40_resolve.sql",
    include_str!("../../queries/40_resolve.sql"),
)];

/// Steps 50 and 70, run once per person bucket into `subscriber_flags`.
pub const SUBSCRIBER_FLAGS: &[(&str, &str)] = &[
    (
        "50_subscriber_rules.sql",
        include_str!("../../queries/50_subscriber_rules.sql"),
    ),
    (
        "70_subscriber_flags.sql",
        include_str!("../../queries/70_subscriber_flags.sql"),
    ),
];

/// Step 55, run once (never split) into `duplicate_msisdns` and
/// `duplicate_accounts`.
pub const DUPLICATES: &[(&str, &str)] = &[(
    "55_duplicates.sql",
    include_str!("../../queries/55_duplicates.sql"),
)];

/// Steps 60 and 75, run once per person bucket into `account_flags`.
pub const ACCOUNT_FLAGS: &[(&str, &str)] = &[
    (
        "60_account_rules.sql",
        include_str!("../../queries/60_account_rules.sql"),
    ),
    (
        "75_account_flags.sql",
        include_str!("../../queries/75_account_flags.sql"),
    ),
];

/// Parameters substituted into the SQL.
pub fn params(date: NightDate, cfg: &Config) -> BTreeMap<&'static str, String> {
    let mut p = crate::reasons::sql_params(crate::reasons::REASONS);
    p.extend([
        ("AS_OF", date.to_string()),
        ("AS_OF_YEAR", date.text()[..4].to_string()),
        (
            "MAX_SUBSCRIPTIONS_PER_PERSON",
            cfg.max_subscriptions_per_person.to_string(),
        ),
    ]);
    p
}

/// The curated folders of the chosen extracts. Tables are registered by
/// folder (never by single object: object stores list a single key
/// differently, and a table must never silently come out empty).
fn curated_dirs(chosen: &[Chosen], sub: &str) -> Vec<String> {
    chosen
        .iter()
        .map(|c| format!("{}{sub}/", c.curated))
        .collect()
}

/// One materialised table: the scripts that create its view (run again for
/// each bucket when it is split: see [`step_buckets`]) and the view.
struct Step {
    table: &'static str,
    view: &'static str,
    scripts: &'static [(&'static str, &'static str)],
    /// The column its files are split by, one folder per value, when the
    /// run is split (`resolved` by `person_bucket`, so that steps 50 and
    /// 60 read only the rows of the bucket they run for).
    split_by: Option<&'static str>,
    /// Its files are also split by `kind` (the view's last column: 'S'
    /// subscriber rows, 'A' account rows) on the local engine, whatever the
    /// buckets, within the folders of `split_by` if any: step 50 then reads
    /// only the subscriber rows, step 60's accounts only the account rows,
    /// instead of decoding both and filtering half out.
    by_kind: bool,
    /// The extract whose source column (`carrier`, `bank`) its files are
    /// split by on the local engine, one folder per source, whatever the
    /// buckets: each source's report (step 80/81) then reads only its own
    /// rows instead of the whole table. That column is the view's last.
    by_source: Option<Extract>,
    /// Run once per key bucket: the steps with national-size joins (how
    /// their joins were planned goes in the run record). The others are
    /// aggregations over all rows, run once.
    per_bucket: bool,
    /// Its hash join holds its build side whole, in one table, on the local
    /// engine (see [`Shape::one_build_table`]).
    one_build_table: bool,
}

/// How a materialised table's files are split: by which column, then by
/// `kind` within each of its folders when `by_kind` (or by `kind` alone when
/// there is no column), and how many files a write may hold open at once
/// (one per folder).
#[derive(Debug, Clone, Copy)]
struct Split {
    column: Option<&'static str>,
    by_kind: bool,
    writers: usize,
    /// The rows come in long runs of one folder (split by source or kind,
    /// whose rows come from files of one source or kind), not spread over
    /// every folder in each batch (split by bucket): written by
    /// [`crate::split::write_split`], which passes runs on whole. Only on
    /// the local engine, the only one whose tables are split by source or
    /// kind.
    in_runs: bool,
}

/// The values of `kind`: 'S' subscriber rows, 'A' account rows.
const KINDS: usize = 2;

impl Split {
    /// Split by `column` alone, whose rows come `in_runs` or not.
    fn by(column: &'static str, writers: usize, in_runs: bool) -> Split {
        Split {
            column: Some(column),
            by_kind: false,
            writers,
            in_runs,
        }
    }

    /// The columns split by, outermost folder first: the view's last ones.
    fn columns(&self) -> Vec<&'static str> {
        let kind = self.by_kind.then_some("kind");
        self.column.into_iter().chain(kind).collect()
    }
}

/// What a run's steps are laid out by: the key buckets of its big joins,
/// whether it runs on the local engine, and its sources.
struct Layout<'a> {
    buckets: usize,
    local: bool,
    inputs: &'a Inputs,
    /// Bytes a work table may take to be held in memory (see [`held_cap`]).
    held_cap: u64,
}

impl<'a> Layout<'a> {
    fn new(buckets: usize, cfg: &Config, inputs: &'a Inputs, pool: MemoryLimit) -> Self {
        let local = cfg.engine == crate::config::Engine::Local;
        Layout {
            buckets,
            local,
            inputs,
            held_cap: held_cap(pool),
        }
    }

    /// The rows of the run's extracts of the holders `kind` (subscriptions,
    /// accounts, or both when `None`): the most rows a work table of them
    /// can have.
    fn holder_rows(&self, kind: Option<Extract>) -> u64 {
        let rows = |chosen: &[Chosen]| chosen.iter().map(|c| c.rows).sum::<u64>();
        let i = self.inputs;
        match kind {
            Some(Extract::Subscribers) => rows(&i.subscribers),
            Some(_) => rows(&i.accounts),
            None => rows(&i.subscribers) + rows(&i.accounts),
        }
    }
}

/// Bytes a work table's row takes in memory, with room to spare: `resolved`
/// of the generated country held 2,850,219 rows in 391 MB of Arrow arrays
/// (137 B a row; 1M persons).
const HELD_ROW_BYTES: u64 = 160;

/// The most bytes of work tables held in memory at once: a quarter of a
/// limited pool (the joins of the steps that follow need the rest), and
/// 1 GiB at most.
fn held_cap(pool: MemoryLimit) -> u64 {
    const MOST: u64 = 1 << 30;
    match pool {
        MemoryLimit::Finite(bytes) => (bytes as u64 / 4).min(MOST),
        MemoryLimit::Infinite | MemoryLimit::Unknown => MOST,
    }
}

/// How one step is computed and written in a run: in how many buckets, its
/// files split how.
#[derive(Debug, Clone, Copy)]
struct Shape {
    buckets: usize,
    split: Option<Split>,
    /// Hash joins built as one table the probe side's partitions share,
    /// instead of both sides repartitioned by key into a table per
    /// partition. For `resolved`: the holder rows (every column of the
    /// flags to come) then stream past the registry's keys without being
    /// hashed and copied into partitions first. 10M persons, 4 GiB: the
    /// step 45-50 s -> 41 s, 480 MiB less at its peak. Same rows, same
    /// memory reserved for the table. For the flags steps: the wide rows
    /// of `resolved` stream past the lines over the limit and the repeated
    /// msisdns the same way (1M persons, day 1, one A/B of the whole step:
    /// subscribers 2.93 -> 2.68 s). Not for the accounts step: its largest
    /// build side is a bucket's subscriber phones (14M at 10M persons), and
    /// one table is built on one thread while the other core waits (10M
    /// persons, day 2, four alternating A/B rounds: account_flags
    /// 6.95/7.50/7.11/7.57 -> 5.96/5.41/5.79/6.25 s; 1M: 0.30 -> 0.27 s).
    /// Not on a cluster, where one table would be a broadcast to every
    /// executor.
    one_build_table: bool,
    /// Held in memory for the rest of the run instead of written as Parquet
    /// (then not split) and decoded again: on the local engine, a table
    /// computed in one go whose rows surely fit what [`held_cap`] leaves
    /// after the tables held before it. 1M persons, day 1, two A/B rounds:
    /// `resolved` and the repeated keys held, reconcile 3.54/3.57 ->
    /// 2.42/2.47 s (`resolved` 1.5 -> 0.95 s, and the flags steps read it
    /// faster), peak RSS 459-495 -> 765-803 MiB; the flags tables held too
    /// (publish reads them five times), day 1 wall 5.84/6.44 -> 5.39/5.36 s,
    /// day 2 6.97/6.99 -> 6.57/6.51 s, peak RSS ~790 -> ~1000 MiB.
    held: bool,
}

impl Step {
    /// Its shape in a run laid out as `run`, with `held` bytes of work
    /// tables held in memory already.
    fn shape(&self, run: &Layout, held: u64) -> Shape {
        let buckets = self.buckets(run.buckets);
        let split = self.file_split(buckets, run);
        let rows = run.holder_rows(self.by_source);
        let fits = rows.saturating_mul(HELD_ROW_BYTES) <= run.held_cap.saturating_sub(held);
        Shape {
            buckets,
            split,
            one_build_table: self.one_build_table && run.local,
            held: run.local && buckets == 1 && fits,
        }
    }

    /// How its files are split when it is computed in `buckets` buckets: by
    /// bucket when several (then by kind on the local engine, if it is split
    /// by kind); else by kind or by source on the local engine; else not
    /// (one folder, written by the engine's parallel writers; a cluster's
    /// partitioned writes are not used).
    fn file_split(&self, buckets: usize, run: &Layout) -> Option<Split> {
        let by_kind = self.by_kind && run.local;
        if let Some(column) = self.split_by.filter(|_| buckets > 1) {
            let writers = if by_kind { buckets * KINDS } else { buckets };
            return Some(Split {
                column: Some(column),
                by_kind,
                writers,
                in_runs: false,
            });
        }
        if by_kind {
            return Some(Split {
                column: None,
                by_kind,
                writers: KINDS,
                in_runs: true,
            });
        }
        let extract = self.by_source.filter(|_| run.local)?;
        let sources = match extract {
            Extract::Subscribers => &run.inputs.subscribers,
            _ => &run.inputs.accounts,
        };
        let column = engine::flags_source_column(extract);
        let writers = sources.len();
        Some(Split::by(column, writers, true))
    }

    /// The buckets it is computed in, in a run split into `buckets`.
    fn buckets(&self, buckets: usize) -> usize {
        if self.per_bucket {
            buckets
        } else {
            1
        }
    }
}

const RESOLVED: Step = Step {
    table: "resolved",
    view: "resolve",
    scripts: RESOLVE,
    split_by: Some("person_bucket"),
    by_kind: true,
    by_source: None,
    per_bucket: true,
    one_build_table: true,
};

const SUBSCRIBERS: Step = Step {
    table: "subscriber_flags",
    view: "subscriber_flags_v",
    scripts: SUBSCRIBER_FLAGS,
    split_by: None,
    by_kind: false,
    by_source: Some(Extract::Subscribers),
    per_bucket: true,
    one_build_table: true,
};

const REPEATED_MSISDNS: Step = Step {
    table: "duplicate_msisdns",
    view: "duplicate_msisdns_v",
    scripts: DUPLICATES,
    split_by: None,
    by_kind: false,
    by_source: None,
    per_bucket: false,
    one_build_table: false,
};

const REPEATED_ACCOUNTS: Step = Step {
    table: "duplicate_accounts",
    view: "duplicate_accounts_v",
    scripts: DUPLICATES,
    split_by: None,
    by_kind: false,
    by_source: None,
    per_bucket: false,
    one_build_table: false,
};

const ACCOUNTS: Step = Step {
    table: "account_flags",
    view: "account_flags_v",
    scripts: ACCOUNT_FLAGS,
    split_by: None,
    by_kind: false,
    by_source: Some(Extract::Accounts),
    per_bucket: true,
    one_build_table: false,
};

/// The materialised tables, in the order they are computed.
const MATERIALISED: [&Step; 5] = [
    &RESOLVED,
    &REPEATED_MSISDNS,
    &REPEATED_ACCOUNTS,
    &SUBSCRIBERS,
    &ACCOUNTS,
];

/// Runs steps 10–75 for one date, materialising `resolved`,
/// `duplicate_msisdns`, `duplicate_accounts`, `subscriber_flags` and
/// `account_flags` under `work`
/// (a folder of this run, relative to the root). The big joins run in
/// [`key_buckets`] buckets. With [`Joins::Auto`], the tables named in
/// `sort_merge_first` skip the hash attempt (see [`sort_merge_first`]).
/// Returns how each table with joins was planned.
pub async fn reconcile(
    ctx: &SessionContext,
    inputs: &Inputs,
    date: NightDate,
    cfg: &Config,
    work: &str,
    sort_merge_first: &[String],
) -> Result<Vec<StepPlan>> {
    register_inputs(ctx, inputs).await?;
    let buckets = key_buckets(cfg, inputs);
    let mut p = params(date, cfg);
    p.insert("BUCKETS", buckets.to_string());
    for (file, text) in STEPS {
        run_script(ctx, file, &render(file, text, &p)?).await?;
    }
    if buckets > 1 {
        for view in ["id_checks_by_bucket", "identity_keys_by_bucket"] {
            split_by_bucket(ctx, view, &format!("{work}buckets/{view}/"), buckets).await?;
        }
    }
    let joins = |table: &str| match cfg.joins {
        Joins::Auto if sort_merge_first.iter().any(|t| t == table) => Start::SortMergeAsBefore,
        Joins::SortMerge => Start::SortMerge,
        Joins::Auto => Start::HashThenSortMerge,
        Joins::Hash => Start::HashOnly,
    };
    let pool = ctx.runtime_env().memory_pool.memory_limit();
    let run = Layout::new(buckets, cfg, inputs, pool);
    let mut plans = vec![];
    let mut held = 0;
    for step in MATERIALISED {
        let shape = step.shape(&run, held);
        let (plan, bytes) = materialise(ctx, step, joins(step.table), shape, &p, work).await?;
        held += bytes as u64;
        if step.per_bucket {
            plans.push(plan);
        }
    }
    Ok(plans)
}

/// Registers the curated extracts chosen for the run (and their rejects).
async fn register_inputs(ctx: &SessionContext, inputs: &Inputs) -> Result<()> {
    let identity = curated_dirs(std::slice::from_ref(&inputs.identity), "data");
    register_parquet(
        ctx,
        "identity",
        &identity,
        curated_schema(Extract::Identity),
    )
    .await?;
    let subs = curated_dirs(&inputs.subscribers, "data");
    register_parquet(
        ctx,
        "subscribers",
        &subs,
        curated_schema(Extract::Subscribers),
    )
    .await?;
    let accs = curated_dirs(&inputs.accounts, "data");
    register_parquet(ctx, "accounts", &accs, curated_schema(Extract::Accounts)).await?;
    let sources: Vec<Chosen> = inputs
        .subscribers
        .iter()
        .chain(&inputs.accounts)
        .cloned()
        .collect();
    let rejects = curated_dirs(&sources, "rejects");
    register_parquet(ctx, "rejects", &rejects, rejects_schema()).await
}

/// Bytes of pool per build-side row of a hash join (the row's columns, its
/// hash and its place in the table), calibrated on the generated country:
/// 10M persons under 1 GiB ran all hash joins in 2 buckets (peak 1632 MiB),
/// 4 (1100 MiB) and 12 (1158 MiB, slower); this gives 4.
const HASH_ROW_BYTES: u64 = 100;

/// Into how many key buckets the big joins are split: `key_buckets` when set;
/// otherwise 1 without a memory limit, and under one enough buckets that the
/// larger of the two hash tables (the registry's keys: a person's CCCD and
/// at most one legacy CMND; the subscribers' phones) takes at most half of
/// the pool, up to 64. A bucket that still does not fit is re-planned
/// with sort-merge joins (`joins = "auto"`).
pub fn key_buckets(cfg: &Config, inputs: &Inputs) -> usize {
    // A cluster partitions its joins and shuffles between executors: key
    // buckets are a one-machine tool for a pool smaller than a hash table.
    if cfg.engine != crate::config::Engine::Local {
        return 1;
    }
    if cfg.key_buckets > 0 {
        return cfg.key_buckets as usize;
    }
    if cfg.memory_limit_mb == 0 {
        return 1;
    }
    let registry_keys = inputs.identity.rows * 2;
    let phones: u64 = inputs.subscribers.iter().map(|c| c.rows).sum();
    let bytes = registry_keys.max(phones) * HASH_ROW_BYTES;
    let share = cfg.memory_limit_mb * 1024 * 1024 / 2;
    bytes.div_ceil(share).clamp(1, 64) as usize
}

/// Writes a view's rows under `dir` split by its `bucket` column (one folder
/// per bucket) and registers them under the view's name in its place, so
/// that a query of one bucket reads only that bucket's files.
async fn split_by_bucket(
    ctx: &SessionContext,
    view: &str,
    dir: &str,
    buckets: usize,
) -> Result<()> {
    let started = std::time::Instant::now();
    let how = Writing {
        hash_joins: true,
        one_build_table: false,
        split: Some(Split::by("bucket", buckets, false)),
    };
    let schema = write_view(ctx, view, dir, how, "part-0")
        .await
        .map_err(|e| Error::query(view, e))?;
    ctx.deregister_table(view)
        .map_err(|e| Error::query(view, e))?;
    register_written(ctx, view, dir, &schema, &["bucket"])?;
    tracing::info!(
        view,
        buckets,
        seconds = started.elapsed().as_secs_f64(),
        "split by key bucket"
    );
    Ok(())
}

/// How a materialised step's joins are planned first.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Start {
    /// Hash joins; sort-merge joins if a hash table does not fit.
    HashThenSortMerge,
    /// Hash joins; a hash table that does not fit fails the step.
    HashOnly,
    /// Sort-merge joins (configured).
    SortMerge,
    /// Sort-merge joins, because the previous run needed them for this step.
    SortMergeAsBefore,
}

/// Holds a step's rows in memory when its shape says so (see
/// [`Shape::held`]), or writes them to Parquet under `{work}{table}/`
/// (bucket after bucket, when the step is split), and registers them as its
/// table. Returns how it was planned and the bytes held in memory (0 when
/// written).
///
/// With [`Start::HashThenSortMerge`] the view is first planned with hash
/// joins; if a hash table does not fit the memory pool (the engine cannot
/// spill one), the partial output is left behind and the step is run again
/// with sort-merge joins into `{work}{table}.sort-merge/`: same rows,
/// bounded memory.
async fn materialise(
    ctx: &SessionContext,
    step: &Step,
    start: Start,
    shape: Shape,
    params: &BTreeMap<&'static str, String>,
    work: &str,
) -> Result<(StepPlan, usize)> {
    let started = std::time::Instant::now();
    let hash_first = matches!(start, Start::HashThenSortMerge | Start::HashOnly);
    if shape.held && hash_first {
        match hold_step(ctx, step, shape, params).await {
            Ok(bytes) => {
                let plan = step_plan(step, shape, JoinPlan::Hash, false, start, started);
                tracing::info!(table = step.table, bytes, seconds = plan.seconds, "kept in memory");
                return Ok((plan, bytes));
            }
            // The rows, or a hash table, did not fit the pool: computed
            // again and written as Parquet, as a larger table would be.
            Err(e) if out_of_memory(&e) => tracing::warn!(
                table = step.table,
                "holding the table in memory did not fit memory_limit_mb: written as Parquet instead"
            ),
            Err(e) => return Err(e),
        }
    }
    let mut dir = format!("{work}{}/", step.table);
    let mut replanned = false;
    let mut schema = write_step(ctx, step, shape, params, &dir, hash_first).await;
    if let Err(e) = &schema {
        if start == Start::HashThenSortMerge && out_of_memory(e) {
            tracing::warn!(
                table = step.table,
                "a hash table did not fit memory_limit_mb: step planned again with sort-merge joins"
            );
            replanned = true;
            dir = format!("{work}{}.sort-merge/", step.table);
            schema = write_step(ctx, step, shape, params, &dir, false).await;
        }
    }
    let split_by = shape.split.map(|s| s.columns()).unwrap_or_default();
    register_written(ctx, step.table, &dir, &schema?, &split_by)?;
    let joins = if hash_first && !replanned {
        JoinPlan::Hash
    } else {
        JoinPlan::SortMerge
    };
    let plan = step_plan(step, shape, joins, replanned, start, started);
    tracing::info!(
        table = step.table,
        joins = %plan.joins,
        replanned,
        from_previous_run = plan.from_previous_run,
        buckets = plan.buckets,
        seconds = plan.seconds,
        "materialised"
    );
    Ok((plan, 0))
}

/// How a step was planned, for the run record.
fn step_plan(
    step: &Step,
    shape: Shape,
    joins: JoinPlan,
    replanned: bool,
    start: Start,
    started: std::time::Instant,
) -> StepPlan {
    StepPlan {
        table: step.table.to_string(),
        joins,
        replanned,
        from_previous_run: start == Start::SortMergeAsBefore,
        buckets: shape.buckets,
        seconds: started.elapsed().as_secs_f64(),
    }
}

/// Creates a step's view (one bucket: see [`Shape::held`]) with hash joins,
/// holds its rows in memory and registers them as its table; returns the
/// bytes held. A reservation the pool refuses fails it as out of memory,
/// and the table registered before, if any, stays.
async fn hold_step(
    ctx: &SessionContext,
    step: &Step,
    shape: Shape,
    params: &BTreeMap<&'static str, String>,
) -> Result<usize> {
    create_view(ctx, step, params, 0).await?;
    let table = engine::scoped_options(
        ctx,
        |options| plan_joins(options, true, shape.one_build_table),
        async {
            let df = ctx.table(step.view).await?;
            HeldTable::collect(step.table, df).await
        },
    )
    .await
    .map_err(|e| Error::query(step.view, e))?;
    let bytes = table.bytes();
    ctx.register_table(step.table, Arc::new(table))
        .map_err(|e| Error::query(step.table, e))?;
    Ok(bytes)
}

/// Creates a step's view for each bucket in turn and writes its rows under
/// `dir`; returns the view's schema.
async fn write_step(
    ctx: &SessionContext,
    step: &Step,
    shape: Shape,
    params: &BTreeMap<&'static str, String>,
    dir: &str,
    hash_joins: bool,
) -> Result<SchemaRef> {
    let mut schema = None;
    for bucket in 0..shape.buckets {
        create_view(ctx, step, params, bucket).await?;
        let how = Writing {
            hash_joins,
            one_build_table: shape.one_build_table,
            split: shape.split,
        };
        let written = write_view(ctx, step.view, dir, how, &format!("part-{bucket}"))
            .await
            .map_err(|e| Error::query(step.view, e))?;
        schema = Some(written);
    }
    Ok(schema.expect("at least one bucket"))
}

/// Runs a step's scripts for one bucket, which (re)create its view.
async fn create_view(
    ctx: &SessionContext,
    step: &Step,
    params: &BTreeMap<&'static str, String>,
    bucket: usize,
) -> Result<()> {
    let mut p = params.clone();
    p.insert("BUCKET", bucket.to_string());
    for (file, text) in step.scripts {
        run_script(ctx, file, &render(file, text, &p)?).await?;
    }
    Ok(())
}

/// How a view is planned and written.
#[derive(Debug, Clone, Copy)]
struct Writing {
    hash_joins: bool,
    one_build_table: bool,
    split: Option<Split>,
}

/// Plans a view with hash joins or sort-merge joins and adds its rows as
/// Parquet files under `dir` (split into one folder per value of the
/// split's column; for a split whose rows come in runs, one file
/// `{name}.parquet` per folder, see [`Split::in_runs`]); returns the view's
/// schema. The split's `writers` is how many files may be open at once
/// across folders: each holds a row group, so row groups shrink with it.
async fn write_view(
    ctx: &SessionContext,
    view: &str,
    dir: &str,
    how: Writing,
    name: &str,
) -> datafusion::error::Result<SchemaRef> {
    let Writing {
        hash_joins,
        one_build_table,
        split,
    } = how;
    // These options hold for this one write: the session gets its own back
    // after it (publish's queries run on the same session).
    engine::scoped_options(
        ctx,
        |options| {
            plan_joins(options, hash_joins, one_build_table);
            let parquet = &mut options.execution.parquet;
            // A split write has a file open per bucket, each fed slices of the
            // engine's batches: one plain writer per file (the engine's
            // column-parallel writer costs more than it gains on small slices).
            parquet.allow_single_file_parallelism = split.is_none();
            if let Some(split) = split {
                parquet.max_row_group_size =
                    (parquet.max_row_group_size / split.writers.max(1)).max(8192);
            }
        },
        async {
            let df = ctx.table(view).await?;
            let schema: SchemaRef = Arc::new(df.schema().as_arrow().clone());
            if let Some(split) = split.filter(|s| s.in_runs) {
                let url = Root::datafusion_url(dir);
                crate::split::write_split(df, &url, &split.columns(), name).await?;
                return Ok(schema);
            }
            let mut options = DataFrameWriteOptions::new();
            if let Some(split) = split {
                let columns = split.columns().iter().map(|c| c.to_string()).collect();
                options = options.with_partition_by(columns);
            }
            df.write_parquet(&Root::datafusion_url(dir), options, None)
                .await?;
            Ok(schema)
        },
    )
    .await
}

/// Plans a step's joins as hash joins (with one build table the probe side's
/// partitions share: see [`Shape::one_build_table`]) or sort-merge joins.
fn plan_joins(
    options: &mut datafusion::config::ConfigOptions,
    hash_joins: bool,
    one_build_table: bool,
) {
    options.optimizer.prefer_hash_join = hash_joins;
    if hash_joins && one_build_table {
        options.optimizer.hash_join_single_partition_threshold = usize::MAX;
        options.optimizer.hash_join_single_partition_threshold_rows = usize::MAX;
        let rows = options.execution.batch_size.get();
        let rows = rows.saturating_mul(engine::STREAM_BATCH_FACTOR);
        if let Ok(rows) = datafusion::config::ConfigNonZeroUsize::try_new(rows) {
            options.execution.batch_size = rows;
        }
    }
    if !hash_joins {
        // The engine plans sort-merge joins only over two partitions or more.
        options.execution.target_partitions = options.execution.target_partitions.max(2);
    }
}

/// Registers the Parquet files a view was written to under `dir` as `table`,
/// with the view's schema; a `split_by` column is read from the folder names.
fn register_written(
    ctx: &SessionContext,
    table: &str,
    dir: &str,
    schema: &SchemaRef,
    split_by: &[&str],
) -> Result<()> {
    let listing = if split_by.is_empty() {
        parquet_folders(table, &[dir.to_string()], schema.clone())?
    } else {
        split_folders(table, dir, schema, split_by)?
    };
    ctx.register_table(table, Arc::new(listing))
        .map_err(|e| Error::query(table, e))?;
    Ok(())
}

/// A table over `{dir}{a}=<value>/{b}=<value>/*.parquet` for the split's
/// columns `[a, b, ...]`, their values taken from the folder names. They
/// must be the schema's last columns, in that order (as the engine puts
/// folder columns after the files' columns).
fn split_folders(
    table: &str,
    dir: &str,
    schema: &SchemaRef,
    columns: &[&str],
) -> Result<ListingTable> {
    let at = crate::split::file_columns(schema, columns).map_err(|message| Error::Invalid {
        what: table.to_string(),
        message,
    })?;
    let (file_fields, split_fields) = schema.fields().split_at(at);
    let partition_columns = split_fields
        .iter()
        .map(|f| (f.name().clone(), f.data_type().clone()))
        .collect();
    parquet_table(
        table,
        &[dir.to_string()],
        Arc::new(Schema::new(file_fields.to_vec())),
        partition_columns,
    )
}

/// The steps a run with `cfg` plans with sort-merge joins from the start:
/// those the previous run (`previous`, its memory limit and step plans)
/// re-planned, or itself started with sort-merge for this reason, under a
/// pool no larger than this one's and in no fewer key buckets than this run
/// would use. Saves the hash attempt that would fail again (≈ 100 s a night
/// at 30M persons). Raising `memory_limit_mb` (or a run without a limit), or
/// more buckets (more rows per pool, or `key_buckets`), tries hash joins again.
pub fn sort_merge_first(
    cfg: &Config,
    inputs: &Inputs,
    previous_limit_mb: u64,
    previous: &[StepPlan],
) -> Vec<String> {
    if cfg.joins != Joins::Auto
        || cfg.memory_limit_mb == 0
        || previous_limit_mb < cfg.memory_limit_mb
    {
        return vec![];
    }
    let buckets = key_buckets(cfg, inputs);
    previous
        .iter()
        .filter(|p| p.joins == JoinPlan::SortMerge && (p.replanned || p.from_previous_run))
        .filter(|p| p.buckets >= step_buckets(&p.table, buckets))
        .map(|p| p.table.clone())
        .collect()
}

/// The buckets a run split into `buckets` computes `table` in.
fn step_buckets(table: &str, buckets: usize) -> usize {
    MATERIALISED
        .iter()
        .find(|s| s.table == table)
        .map_or(1, |s| s.buckets(buckets))
}

/// Whether a query failed because the memory pool refused an allocation.
fn out_of_memory(e: &Error) -> bool {
    matches!(
        e,
        Error::Query { source, .. }
            if matches!(source.find_root(), datafusion::error::DataFusionError::ResourcesExhausted(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(table: &str, joins: &str, replanned: bool, from_previous_run: bool) -> StepPlan {
        StepPlan {
            table: table.into(),
            joins: match joins {
                "hash" => JoinPlan::Hash,
                _ => JoinPlan::SortMerge,
            },
            replanned,
            from_previous_run,
            buckets: 1,
            seconds: 1.0,
        }
    }

    #[test]
    fn sort_merge_first_follows_the_previous_run_under_a_pool_no_larger() {
        let before = [
            step("resolved", "sort-merge", true, false),
            step("subscriber_flags", "hash", false, false),
            step("account_flags", "sort-merge", false, true),
        ];
        let cfg = |mb, joins| Config {
            memory_limit_mb: mb,
            joins,
            key_buckets: 1,
            ..Config::default()
        };
        let country = inputs(1000, 1800);
        let first = |cfg: &Config, plans: &[StepPlan]| sort_merge_first(cfg, &country, 1024, plans);
        let both = vec!["resolved".to_string(), "account_flags".to_string()];
        assert_eq!(first(&cfg(1024, Joins::Auto), &before), both);
        assert_eq!(first(&cfg(512, Joins::Auto), &before), both);
        assert!(first(&cfg(2048, Joins::Auto), &before).is_empty());
        assert!(first(&cfg(0, Joins::Auto), &before).is_empty());
        assert!(first(&cfg(1024, Joins::Hash), &before).is_empty());
        // Configured sort-merge joins say nothing about what fits.
        let configured = [step("resolved", "sort-merge", false, false)];
        assert!(first(&cfg(1024, Joins::Auto), &configured).is_empty());
        // More buckets than the previous run: hash joins are tried again.
        let split = Config {
            key_buckets: 4,
            ..cfg(1024, Joins::Auto)
        };
        assert!(first(&split, &before).is_empty());
        let mut in_four = before.clone();
        in_four[0].buckets = 4;
        assert_eq!(first(&split, &in_four), ["resolved"]);
    }

    fn chosen(extract: Extract, rows: u64) -> Chosen {
        Chosen {
            extract,
            source: "X".into(),
            as_of: "2026-11-20".parse().unwrap(),
            curated: String::new(),
            manifest_sha256: String::new(),
            rows,
            rows_rejected: 0,
            held_as_of: None,
        }
    }

    fn inputs(persons: u64, subscriptions: u64) -> Inputs {
        Inputs {
            identity: chosen(Extract::Identity, persons),
            subscribers: vec![chosen(Extract::Subscribers, subscriptions / 2); 2],
            accounts: vec![chosen(Extract::Accounts, persons)],
        }
    }

    #[test]
    fn key_buckets_follow_pool_and_rows() {
        let cfg = |mb, key_buckets| Config {
            memory_limit_mb: mb,
            key_buckets,
            ..Config::default()
        };
        let m = 1_000_000;
        assert_eq!(key_buckets(&cfg(0, 0), &inputs(100 * m, 180 * m)), 1);
        assert_eq!(key_buckets(&cfg(0, 6), &inputs(100 * m, 180 * m)), 6);
        assert_eq!(key_buckets(&cfg(1024, 0), &inputs(m, 2 * m)), 1);
        // 10M persons: registry keys (2 per person at most) outnumber phones.
        assert_eq!(key_buckets(&cfg(1024, 0), &inputs(10 * m, 18 * m)), 4);
        assert_eq!(key_buckets(&cfg(4096, 0), &inputs(10 * m, 18 * m)), 1);
        assert_eq!(key_buckets(&cfg(1024, 0), &inputs(30 * m, 54 * m)), 12);
        // Phones outnumber registry keys.
        assert_eq!(key_buckets(&cfg(4096, 0), &inputs(10 * m, 50 * m)), 3);
        assert_eq!(key_buckets(&cfg(4096, 0), &inputs(100 * m, 180 * m)), 10);
        assert_eq!(key_buckets(&cfg(256, 0), &inputs(100 * m, 180 * m)), 64);
    }

    #[test]
    fn flags_split_by_source_and_one_build_table_on_the_local_engine_only() {
        let country = inputs(1000, 1800);
        let local = Config::default();
        let cluster = Config {
            engine: crate::config::Engine::Standalone,
            ..Config::default()
        };
        let run = |cfg, buckets| Layout::new(buckets, cfg, &country, MemoryLimit::Infinite);
        let split = |step: &Step, run: &Layout| {
            let split = step.shape(run, 0).split;
            split.map(|s| (s.columns().join("/"), s.writers))
        };
        let some = |columns: &str, writers| Some((columns.to_string(), writers));
        for buckets in [1, 4] {
            let local = run(&local, buckets);
            assert_eq!(split(&SUBSCRIBERS, &local), some("carrier", 2));
            assert_eq!(split(&ACCOUNTS, &local), some("bank", 1));
            assert_eq!(split(&REPEATED_MSISDNS, &local), None);
            assert_eq!(SUBSCRIBERS.shape(&local, 0).buckets, buckets);
            assert_eq!(REPEATED_ACCOUNTS.shape(&local, 0).buckets, 1);
        }
        // `resolved` by kind on the local engine, within its person buckets.
        assert_eq!(split(&RESOLVED, &run(&local, 1)), some("kind", 2));
        assert_eq!(
            split(&RESOLVED, &run(&local, 4)),
            some("person_bucket/kind", 8)
        );
        let cluster = run(&cluster, 1);
        assert_eq!(split(&RESOLVED, &cluster), None);
        assert_eq!(split(&SUBSCRIBERS, &cluster), None);
        assert_eq!(split(&ACCOUNTS, &cluster), None);
        // The registry's keys held as one hash table on the local engine only.
        assert!(RESOLVED.shape(&run(&local, 1), 0).one_build_table);
        assert!(!RESOLVED.shape(&cluster, 0).one_build_table);
        // So are the subscriber step's small tables (lines over the limit,
        // repeated msisdns): the wide rows stream past them. Not the
        // accounts step's, whose phones are as many as the subscribers.
        assert!(SUBSCRIBERS.shape(&run(&local, 4), 0).one_build_table);
        assert!(!SUBSCRIBERS.shape(&cluster, 0).one_build_table);
        assert!(!ACCOUNTS.shape(&run(&local, 1), 0).one_build_table);
        assert!(!ACCOUNTS.shape(&cluster, 0).one_build_table);
        assert!(!REPEATED_MSISDNS.shape(&run(&local, 1), 0).one_build_table);
    }

    #[test]
    fn a_small_table_computed_in_one_go_is_held_in_memory_on_the_local_engine() {
        let gib = 1usize << 30;
        let local = Config::default();
        let cluster = Config {
            engine: crate::config::Engine::Standalone,
            ..Config::default()
        };
        // 1M persons' holders (2.85M rows) fit a quarter of 4 GiB, 10M's do not.
        let small = inputs(1_000_000, 1_600_000);
        let large = inputs(10_000_000, 16_000_000);
        let held = |step: &Step, cfg: &Config, country: &Inputs, buckets, pool| {
            step.shape(&Layout::new(buckets, cfg, country, pool), 0)
                .held
        };
        let four = || MemoryLimit::Finite(4 * gib);
        assert!(held(&RESOLVED, &local, &small, 1, four()));
        assert!(held(&REPEATED_MSISDNS, &local, &small, 1, four()));
        assert!(held(&RESOLVED, &local, &small, 1, MemoryLimit::Infinite));
        assert!(!held(&RESOLVED, &local, &large, 1, four()));
        assert!(!held(&RESOLVED, &local, &large, 1, MemoryLimit::Infinite));
        assert!(!held(
            &RESOLVED,
            &local,
            &small,
            1,
            MemoryLimit::Finite(gib)
        ));
        // The flags tables too (then not split by source).
        assert!(held(&SUBSCRIBERS, &local, &small, 1, four()));
        assert!(held(&ACCOUNTS, &local, &small, 1, four()));
        // Split in buckets, or on a cluster: files.
        assert!(!held(&RESOLVED, &local, &small, 4, four()));
        assert!(!held(&SUBSCRIBERS, &local, &small, 4, four()));
        assert!(!held(&RESOLVED, &cluster, &small, 1, four()));
        // What the tables held before leave: 1.6M subscriptions (256 MB
        // estimated) fit the 1 GiB cap after 700 MB, not after 800 MB.
        let run = Layout::new(1, &local, &small, four());
        assert!(SUBSCRIBERS.shape(&run, 700 << 20).held);
        assert!(!SUBSCRIBERS.shape(&run, 800 << 20).held);
    }

    #[test]
    fn only_hash_joins_with_one_build_table_stream_larger_batches() {
        let planned = |hash_joins, one_build_table| {
            let mut options = datafusion::config::ConfigOptions::new();
            options.execution.batch_size =
                datafusion::config::ConfigNonZeroUsize::try_new(1000).unwrap();
            plan_joins(&mut options, hash_joins, one_build_table);
            options.execution.batch_size.get()
        };
        assert_eq!(planned(true, true), 1000 * engine::STREAM_BATCH_FACTOR);
        // Partitioned hash joins (the accounts step) and sort-merge joins,
        // which sort and may spill, keep the configured size.
        assert_eq!(planned(true, false), 1000);
        assert_eq!(planned(false, true), 1000);
        assert_eq!(planned(false, false), 1000);
    }

    /// Step 70's `reasons` over three rows: none of the flags set (all
    /// false), two set, and one unknown (NULL) with the rest false. Step 75
    /// renders the same expression from the accounts' codes.
    #[tokio::test]
    async fn reasons_are_null_for_a_clean_row_and_the_codes_in_order_for_a_flagged_one() {
        let p = params("2026-11-20".parse().unwrap(), &Config::default());
        let columns: Vec<&str> = p["SUBSCRIBER_FLAG_COLUMNS"].split(", ").collect();
        let row = |id: u32, set: &[&str], unknown: &[&str]| {
            let flags: Vec<String> = columns
                .iter()
                .map(|c| {
                    let v = if set.contains(c) {
                        "true"
                    } else if unknown.contains(c) {
                        "CAST(NULL AS BOOLEAN)"
                    } else {
                        "false"
                    };
                    format!("{v} AS {c}")
                })
                .collect();
            format!(
                "SELECT '8490000000{id}' AS key, '{id}' AS row_id, 'individual' AS holder_type, \
                 'active' AS status, DATE '2020-01-01' AS since, '***' AS id_number_masked, \
                 true AS in_scope, {}, 'VIETTEL' AS source",
                flags.join(", ")
            )
        };
        let rows = [
            row(1, &[], &[]),
            row(2, &["over_limit", "deceased"], &[]),
            row(3, &[], &["owner_denied"]),
        ];
        let ctx = SessionContext::new();
        let view = format!(
            "CREATE VIEW subscriber_rules AS {}",
            rows.join(" UNION ALL ")
        );
        run_script(&ctx, "rows", &view).await.unwrap();
        let (file, text) = SUBSCRIBER_FLAGS[1];
        run_script(&ctx, file, &render(file, text, &p).unwrap())
            .await
            .unwrap();
        let got = ctx
            .sql("SELECT row_id, reasons FROM subscriber_flags_v ORDER BY row_id")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let b = datafusion::arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        let reasons = engine::str_column(&b, "reasons").unwrap();
        let reasons: Vec<Option<&str>> = reasons.iter().collect();
        assert_eq!(reasons, [None, Some("DECEASED;OVER_LIMIT"), None]);
    }

    #[test]
    fn every_step_renders_with_run_parameters() {
        let mut p = params("2026-11-20".parse().unwrap(), &Config::default());
        p.insert("BUCKETS", "4".into());
        p.insert("BUCKET", "3".into());
        let steps = [RESOLVE, DUPLICATES, SUBSCRIBER_FLAGS, ACCOUNT_FLAGS];
        for (file, text) in STEPS.iter().chain(steps.into_iter().flatten()) {
            render(file, text, &p).unwrap();
        }
    }
}
