//! Joins under a memory limit: sort-merge joins give the contract's results,
//! and a step whose hash table the pool refuses is planned again with them
//! (same rows), while `joins = "hash"` fails with a clear error instead;
//! and a limited pool never parks the engine in a repartition spill.

use crate::common::night;
use std::fmt;
use std::sync::Arc;

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::memory_pool::{MemoryPool, MemoryReservation, UnboundedMemoryPool};
use datafusion::prelude::SessionContext;
use junkrecon::config::{Config, Joins};
use junkrecon::reconcile::{self, StepPlan};

use crate::common::Tree;
use crate::golden::assert_matches_expected;

const D1: &str = "2026-11-20";
const D2: &str = "2026-11-21";

/// A pool with no limit that refuses every hash join's build side, as a
/// small pool refuses a national registry's.
#[derive(Debug, Default)]
struct NoHashTables(UnboundedMemoryPool);

impl fmt::Display for NoHashTables {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no-hash-tables")
    }
}

impl MemoryPool for NoHashTables {
    fn name(&self) -> &str {
        "no-hash-tables"
    }
    fn grow(&self, r: &MemoryReservation, n: usize) {
        self.0.grow(r, n)
    }
    fn shrink(&self, r: &MemoryReservation, n: usize) {
        self.0.shrink(r, n)
    }
    fn try_grow(&self, r: &MemoryReservation, n: usize) -> DfResult<()> {
        if r.consumer().name().starts_with("HashJoinInput") {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} refused {n} bytes",
                r.consumer().name()
            )));
        }
        self.0.try_grow(r, n)
    }
    fn reserved(&self) -> usize {
        self.0.reserved()
    }
}

fn config(joins: Joins) -> Config {
    Config {
        joins,
        ..Config::default()
    }
}

/// Every row of a materialised table, as text, in a stable order.
async fn table_text(ctx: &SessionContext, table: &str, order: &str) -> String {
    let batches = ctx
        .sql(&format!("SELECT * FROM {table} ORDER BY {order}"))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&batches).unwrap().to_string()
}

async fn flags_text(ctx: &SessionContext) -> (String, String) {
    (
        table_text(ctx, "subscriber_flags", "carrier, row_id").await,
        table_text(ctx, "account_flags", "bank, row_id").await,
    )
}

fn joins_of(plans: &[StepPlan]) -> Vec<(&str, &str, bool)> {
    plans
        .iter()
        .map(|p| (p.table.as_str(), p.joins.as_str(), p.replanned))
        .collect()
}

/// What `joins_of` gives when all three steps were planned alike.
fn every_step(joins: &str, replanned: bool) -> Vec<(&str, &str, bool)> {
    ["resolved", "subscriber_flags", "account_flags"]
        .into_iter()
        .map(|table| (table, joins, replanned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sort_merge_joins_give_the_contract_results() {
    let tree = Tree::sample();
    for date in [D1, D2] {
        let record = tree
            .run_with(date, &config(Joins::SortMerge))
            .await
            .unwrap();
        assert_eq!(
            joins_of(&record.reconcile_steps),
            every_step("sort-merge", false)
        );
    }
    assert_matches_expected(&tree);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_table_over_the_limit_is_replanned_with_the_same_rows() {
    let tree = Tree::sample();
    let root = tree.root();
    let first = tree.run(D2).await.unwrap();
    assert_eq!(joins_of(&first.reconcile_steps), every_step("hash", false));
    let inputs = junkrecon::run::choose_inputs(&root, night(D2))
        .await
        .unwrap();

    let hash_cfg = Config::default();
    let hash = junkrecon::engine::session(&root, &hash_cfg).unwrap();
    reconcile::reconcile(&hash, &inputs, night(D2), &hash_cfg, "work/test-hash/", &[])
        .await
        .unwrap();

    let auto_cfg = config(Joins::Auto);
    let pool = Some(Arc::new(NoHashTables::default()) as Arc<dyn MemoryPool>);
    let auto = junkrecon::engine::session_with_pool(&root, &auto_cfg, pool.clone()).unwrap();
    let plans = reconcile::reconcile(&auto, &inputs, night(D2), &auto_cfg, "work/test-auto/", &[])
        .await
        .unwrap();
    assert_eq!(joins_of(&plans), every_step("sort-merge", true));
    let (subs, accs) = flags_text(&hash).await;
    assert!(subs.contains("DUPLICATE_MSISDN") && accs.contains("OTP_PHONE_MISMATCH"));
    assert_eq!(flags_text(&auto).await, (subs, accs));

    // `joins = "hash"` is never re-planned: the run stops at the first step.
    let strict_cfg = config(Joins::Hash);
    let strict = junkrecon::engine::session_with_pool(&root, &strict_cfg, pool).unwrap();
    let e = reconcile::reconcile(
        &strict,
        &inputs,
        night(D2),
        &strict_cfg,
        "work/test-strict/",
        &[],
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("query resolve") && e.contains("Resources exhausted"),
        "{e}"
    );
}

fn limited(mb: u64) -> Config {
    Config {
        memory_limit_mb: mb,
        ..Config::default()
    }
}

fn plan_of(record: &junkrecon::run::RunRecord, table: &str) -> (String, bool, bool) {
    let p = record
        .reconcile_steps
        .iter()
        .find(|p| p.table == table)
        .unwrap();
    (p.joins.to_string(), p.replanned, p.from_previous_run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_replanned_last_night_starts_with_sort_merge_under_the_same_pool() {
    let tree = Tree::sample();
    tree.run(D1).await.unwrap();
    // The night before re-planned `resolved` under a 64 MiB pool: its
    // planner memory says so (the run records are never read back).
    let before = serde_json::json!({
        "run_id": "2026-11-20_20261121T010000Z_0001",
        "as_of": D1,
        "memory_limit_mb": 64,
        "steps": [
            {"table": "resolved", "joins": "sort-merge", "replanned": true, "seconds": 1.0},
            {"table": "subscriber_flags", "joins": "hash", "replanned": false, "seconds": 1.0},
        ],
    });
    let memory = tree.path().join(junkrecon::plans::PLANNER_KEY);
    std::fs::write(&memory, serde_json::to_vec(&before).unwrap()).unwrap();
    // A run record saying otherwise does not steer the planner.
    let dir = tree.path().join("runs/date=2026-11-20");
    let mut record = before.clone();
    record["reconcile_steps"] = serde_json::json!([
        {"table": "resolved", "joins": "hash", "replanned": false, "seconds": 1.0},
    ]);
    std::fs::write(
        dir.join("2026-11-20_20261121T010000Z_0002.json"),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();

    let same = tree.run_with(D2, &limited(64)).await.unwrap();
    assert_eq!(
        plan_of(&same, "resolved"),
        ("sort-merge".into(), false, true)
    );
    assert_eq!(
        plan_of(&same, "subscriber_flags"),
        ("hash".into(), false, false)
    );
    // The choice carries on while the pool stays the same (or shrinks)...
    let again = tree.run_with(D2, &limited(32)).await.unwrap();
    assert_eq!(
        plan_of(&again, "resolved"),
        ("sort-merge".into(), false, true)
    );
    // ...and a larger pool, or `joins = "hash"`, tries hash joins again.
    let strict = Config {
        joins: Joins::Hash,
        ..limited(32)
    };
    let hash = tree.run_with(D2, &strict).await.unwrap();
    assert_eq!(plan_of(&hash, "resolved"), ("hash".into(), false, false));
    let after_hash = tree.run_with(D2, &limited(32)).await.unwrap();
    assert_eq!(
        plan_of(&after_hash, "resolved"),
        ("hash".into(), false, false)
    );
    std::fs::write(&memory, serde_json::to_vec(&before).unwrap()).unwrap();
    let larger = tree.run_with(D2, &limited(128)).await.unwrap();
    assert_eq!(plan_of(&larger, "resolved"), ("hash".into(), false, false));
    assert_matches_expected(&tree);
}

/// Runs apache/datafusion#24883's query (a distinct count per group over two
/// partitions, tiny batches, a 4 MiB pool) a few times in a limited session;
/// with `engine_spill_files`, repartition spill files are rotated as the
/// engine does by default instead of as junkrecon does. False when one
/// attempt does not finish within 20 s (every worker parked: the engine's
/// deadlock).
async fn distinct_counts_finish(engine_spill_files: bool) -> bool {
    let tree = Tree::new();
    let cfg = Config {
        batch_size: 64,
        target_partitions: 2,
        ..Config::default()
    };
    let pool = junkrecon::engine::bounded_pool(4 * 1024 * 1024);
    let ctx = junkrecon::engine::session_with_pool(&tree.root(), &cfg, Some(pool)).unwrap();
    if engine_spill_files {
        let engine = datafusion::prelude::SessionConfig::new();
        let default = engine.options().execution.max_spill_file_size_bytes;
        let state = ctx.state_ref();
        let mut state = state.write();
        let exec = &mut state.config_mut().options_mut().execution;
        assert_ne!(
            exec.max_spill_file_size_bytes, default,
            "junkrecon rotates its own way"
        );
        exec.max_spill_file_size_bytes = default;
    }
    ctx.sql(
        "CREATE TABLE t AS SELECT v % 13 AS g, concat('0123456789abcdef0123456789', CAST(v % 337 AS VARCHAR)) AS trace_id \
         FROM generate_series(1, 40000) AS s(v)",
    )
    .await
    .unwrap()
    .collect()
    .await
    .unwrap();
    for _ in 0..6 {
        let run = async {
            ctx.sql("SELECT g, count(DISTINCT trace_id) AS n FROM t GROUP BY g")
                .await?
                .collect()
                .await
        };
        match tokio::time::timeout(std::time::Duration::from_secs(20), run).await {
            Ok(result) => assert_eq!(
                result.unwrap().iter().map(|b| b.num_rows()).sum::<usize>(),
                13
            ),
            Err(_) => return false,
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limited_session_never_parks_in_a_repartition_spill() {
    assert!(
        distinct_counts_finish(false).await,
        "the query parked in junkrecon's limited session"
    );
    // The same session with the engine's spill files parks: the engine still
    // has the bug junkrecon works around. When this fails, DataFusion was
    // fixed and `max_spill_file_size_bytes` can go back to its default.
    assert!(
        !distinct_counts_finish(true).await,
        "the engine no longer parks in a repartition spill"
    );
}

/// A pool with no limit that refuses to grow any one hash join's build side
/// past `cap` bytes, as a pool refuses a hash table of the whole registry
/// but not of a bucket of it. Records the largest build side it allowed.
#[derive(Debug)]
struct HashTablesUpTo {
    cap: usize,
    largest: std::sync::atomic::AtomicUsize,
    /// Whether it refuses every work table held in memory as well.
    no_work_tables: bool,
    pool: UnboundedMemoryPool,
}

impl HashTablesUpTo {
    fn new(cap: usize) -> Self {
        HashTablesUpTo {
            cap,
            largest: Default::default(),
            no_work_tables: false,
            pool: UnboundedMemoryPool::default(),
        }
    }
}

impl fmt::Display for HashTablesUpTo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hash-tables-up-to-{}", self.cap)
    }
}

impl MemoryPool for HashTablesUpTo {
    fn name(&self) -> &str {
        "hash-tables-up-to"
    }
    fn grow(&self, r: &MemoryReservation, n: usize) {
        self.pool.grow(r, n)
    }
    fn shrink(&self, r: &MemoryReservation, n: usize) {
        self.pool.shrink(r, n)
    }
    fn try_grow(&self, r: &MemoryReservation, n: usize) -> DfResult<()> {
        if self.no_work_tables && r.consumer().name().starts_with("work table") {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} refused",
                r.consumer().name()
            )));
        }
        if r.consumer().name().starts_with("HashJoinInput") {
            let size = r.size() + n;
            if size > self.cap {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "{} refused {size} bytes",
                    r.consumer().name()
                )));
            }
            self.largest
                .fetch_max(size, std::sync::atomic::Ordering::Relaxed);
        }
        self.pool.try_grow(r, n)
    }
    fn reserved(&self) -> usize {
        self.pool.reserved()
    }
}

fn buckets_of(plans: &[StepPlan]) -> Vec<(&str, &str, bool, usize)> {
    plans
        .iter()
        .map(|p| (p.table.as_str(), p.joins.as_str(), p.replanned, p.buckets))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_buckets_give_the_contract_results() {
    let tree = Tree::sample();
    let cfg = Config {
        key_buckets: 3,
        ..Config::default()
    };
    for date in [D1, D2] {
        let record = tree.run_with(date, &cfg).await.unwrap();
        assert_eq!(
            buckets_of(&record.reconcile_steps),
            [
                ("resolved", "hash", false, 3),
                ("subscriber_flags", "hash", false, 3),
                ("account_flags", "hash", false, 3),
            ]
        );
    }
    assert_matches_expected(&tree);
}

/// Folders `{dir}{column}=<value>/` that hold at least one Parquet file.
fn split_folders(dir: &std::path::Path, column: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            std::fs::read_dir(e.path()).unwrap().any(|f| {
                f.unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "parquet")
            })
        })
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    assert!(
        out.iter().all(|f| f.starts_with(&format!("{column}="))),
        "{out:?}"
    );
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_keep_hash_tables_under_a_cap_the_whole_registry_exceeds() {
    let tree = Tree::new();
    let opts = junkrecon::generate::GenerateOptions {
        persons: 3000,
        days: 1,
        seed: 5,
        chunk: 1000,
        rows_per_file: 2000,
        ..Default::default()
    };
    junkrecon::generate::generate(&tree.root(), &opts)
        .await
        .unwrap();
    let root = tree.root();
    tree.run(D1).await.unwrap();
    let inputs = junkrecon::run::choose_inputs(&root, night(D1))
        .await
        .unwrap();

    // One bucket: the hash tables' sizes, and the flags, without a cap.
    let whole_pool = Arc::new(HashTablesUpTo::new(usize::MAX));
    let cfg = Config::default();
    let whole =
        junkrecon::engine::session_with_pool(&root, &cfg, Some(whole_pool.clone())).unwrap();
    let plans = reconcile::reconcile(&whole, &inputs, night(D1), &cfg, "work/test-whole/", &[])
        .await
        .unwrap();
    assert!(plans.iter().all(|p| p.buckets == 1 && p.joins == "hash"));
    let largest = whole_pool
        .largest
        .load(std::sync::atomic::Ordering::Relaxed);

    // Under a cap of half the largest table, one bucket is re-planned...
    let cap = largest / 2;
    let capped = Arc::new(HashTablesUpTo::new(cap)) as Arc<dyn MemoryPool>;
    let one = junkrecon::engine::session_with_pool(&root, &cfg, Some(capped.clone())).unwrap();
    let plans = reconcile::reconcile(&one, &inputs, night(D1), &cfg, "work/test-one/", &[])
        .await
        .unwrap();
    assert!(plans.iter().any(|p| p.replanned), "{plans:?}");

    // ...and eight buckets fit: every step with hash joins, the same rows.
    let split_cfg = Config {
        key_buckets: 8,
        ..Config::default()
    };
    let eight_pool = Arc::new(HashTablesUpTo::new(cap));
    let eight =
        junkrecon::engine::session_with_pool(&root, &split_cfg, Some(eight_pool.clone())).unwrap();
    let plans = reconcile::reconcile(
        &eight,
        &inputs,
        night(D1),
        &split_cfg,
        "work/test-eight/",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        buckets_of(&plans),
        [
            ("resolved", "hash", false, 8),
            ("subscriber_flags", "hash", false, 8),
            ("account_flags", "hash", false, 8),
        ]
    );
    assert!(
        eight_pool
            .largest
            .load(std::sync::atomic::Ordering::Relaxed)
            <= cap
    );
    let (subs, accs) = flags_text(&whole).await;
    assert!(subs.contains("DUPLICATE_MSISDN") && accs.contains("DUPLICATE_ACCOUNT"));
    assert!(accs.contains("OTP_PHONE_MISMATCH") && subs.contains("LEGACY_ID"));
    assert!(subs.contains("OVER_LIMIT"));
    assert_eq!(flags_text(&eight).await, (subs, accs));

    // Both sides were written split by bucket, and `resolved` by person bucket.
    let work = tree.path().join("work/test-eight");
    for side in ["id_checks_by_bucket", "identity_keys_by_bucket"] {
        let folders = split_folders(&work.join("buckets").join(side), "bucket");
        assert_eq!(folders.len(), 8, "{side}: {folders:?}");
    }
    // ... and within each person bucket by kind (subscriber rows, account
    // rows), so that each flags step reads only its own kind's files.
    let resolved = work.join("resolved");
    let buckets = std::fs::read_dir(&resolved).unwrap();
    let mut buckets: Vec<String> = buckets
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    buckets.sort();
    assert_eq!(buckets.len(), 8, "{buckets:?}");
    for bucket in &buckets {
        assert!(bucket.starts_with("person_bucket="), "{bucket}");
        let kinds = split_folders(&resolved.join(bucket), "kind");
        assert_eq!(kinds, ["kind=A", "kind=S"], "{bucket}");
    }
    // On the local engine the flags tables written as files are split by
    // source whatever the buckets (eight buckets: written, as `resolved` is).
    assert_flags_split_by_source(&work, &inputs);
    // One bucket: nothing split, and the work tables (small enough) held
    // in memory, with their bytes reserved in the pool: no files.
    assert!(!tree.path().join("work/test-whole").exists());
    assert!(whole_pool.reserved() > 0);

    // A pool that refuses to hold a work table: `resolved` is written as
    // files instead (in one bucket, split by kind only), and the flags are
    // the same.
    let files_pool = Arc::new(HashTablesUpTo {
        no_work_tables: true,
        ..HashTablesUpTo::new(usize::MAX)
    });
    let files = junkrecon::engine::session_with_pool(&root, &cfg, Some(files_pool)).unwrap();
    let plans = reconcile::reconcile(&files, &inputs, night(D1), &cfg, "work/test-files/", &[])
        .await
        .unwrap();
    assert!(plans.iter().all(|p| p.joins == "hash" && !p.replanned));
    assert_eq!(flags_text(&files).await, flags_text(&whole).await);
    let kinds = split_folders(&tree.path().join("work/test-files/resolved"), "kind");
    assert_eq!(kinds, ["kind=A", "kind=S"]);
    assert_flags_split_by_source(&tree.path().join("work/test-files"), &inputs);
}

/// The flags tables under a run's `work` folder: one folder per carrier and
/// per bank the night chose.
fn assert_flags_split_by_source(work: &std::path::Path, inputs: &junkrecon::catalog::Inputs) {
    let carriers = split_folders(&work.join("subscriber_flags"), "carrier");
    assert_eq!(carriers.len(), inputs.subscribers.len(), "{carriers:?}");
    let banks = split_folders(&work.join("account_flags"), "bank");
    assert_eq!(banks.len(), inputs.accounts.len(), "{banks:?}");
}
