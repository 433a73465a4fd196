//! Joins under a memory limit: sort-merge joins give the contract's results,
//! and a step whose hash table the pool refuses is planned again with them
//! (same rows), while `joins = "hash"` fails with a clear error instead.

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
            vec![
                ("resolved", "sort-merge", false),
                ("subscriber_flags", "sort-merge", false),
                ("account_flags", "sort-merge", false),
            ]
        );
    }
    assert_matches_expected(&tree);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hash_table_over_the_limit_is_replanned_with_the_same_rows() {
    let tree = Tree::sample();
    let root = tree.root();
    let first = tree.run(D2).await.unwrap();
    assert_eq!(
        joins_of(&first.reconcile_steps),
        vec![
            ("resolved", "hash", false),
            ("subscriber_flags", "hash", false),
            ("account_flags", "hash", false),
        ]
    );
    let inputs = junkrecon::run::choose_inputs(&root, D2).await.unwrap();

    let hash_cfg = Config::default();
    let hash = reconcile::session(&root, &hash_cfg).unwrap();
    reconcile::reconcile(&hash, &inputs, D2, &hash_cfg, "work/test-hash/")
        .await
        .unwrap();

    let auto_cfg = config(Joins::Auto);
    let pool = Some(Arc::new(NoHashTables::default()) as Arc<dyn MemoryPool>);
    let auto = reconcile::session_with_pool(&root, &auto_cfg, pool.clone()).unwrap();
    let plans = reconcile::reconcile(&auto, &inputs, D2, &auto_cfg, "work/test-auto/")
        .await
        .unwrap();
    assert_eq!(
        joins_of(&plans),
        vec![
            ("resolved", "sort-merge", true),
            ("subscriber_flags", "sort-merge", true),
            ("account_flags", "sort-merge", true),
        ]
    );
    let (subs, accs) = flags_text(&hash).await;
    assert!(subs.contains("DUPLICATE_MSISDN") && accs.contains("OTP_PHONE_MISMATCH"));
    assert_eq!(flags_text(&auto).await, (subs, accs));

    // `joins = "hash"` is never re-planned: the run stops at the first step.
    let strict_cfg = config(Joins::Hash);
    let strict = reconcile::session_with_pool(&root, &strict_cfg, pool).unwrap();
    let e = reconcile::reconcile(&strict, &inputs, D2, &strict_cfg, "work/test-strict/")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("query resolve") && e.contains("Resources exhausted"),
        "{e}"
    );
}
