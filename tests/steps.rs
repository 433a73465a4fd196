//! Snapshot tests of the reconciliation, one file per SQL step, in the
//! manner of datafusion-cli's: the small hand-written country of
//! `tests/rules.rs` (every reason at its edges) is ingested and reconciled,
//! and what each step's table holds is compared with
//! `tests/snapshots/steps/<table>.txt`. A reviewer reads there what a step
//! does to each edge case without running a night. After a deliberate
//! change, `JUNKRECON_BLESS=1 cargo test steps` rewrites the files; the diff
//! is the change's effect, to be read before it is committed.

use crate::common::night;
use std::path::PathBuf;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use junkrecon::config::Config;

/// The tables of `queries/` in step order: (step file, table or view).
const TABLES: [(&str, &str); 9] = [
    ("10_holders.sql", "holders"),
    ("20_identity_keys.sql", "identity_keys"),
    ("30_id_checks.sql", "id_checks"),
    ("40_resolve.sql", "resolved"),
    ("50_subscriber_rules.sql", "subscriber_rules"),
    ("55_duplicates.sql", "duplicate_msisdns"),
    ("55_duplicates.sql", "duplicate_accounts"),
    ("70_subscriber_flags.sql", "subscriber_flags"),
    ("75_account_flags.sql", "account_flags"),
];

const D: &str = "2026-11-21";

fn snapshot_path(table: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots/steps")
        .join(format!("{table}.txt"))
}

/// A table as text: a header naming the step, the columns, then one line
/// per row (`col=value` separated by ` | `), sorted, so the text does not
/// depend on partitioning.
async fn render(ctx: &datafusion::prelude::SessionContext, step: &str, table: &str) -> String {
    let df = ctx.table(table).await.unwrap();
    let columns: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let batches = df.collect().await.unwrap();
    let opts = FormatOptions::default().with_null("NULL");
    let mut rows = vec![];
    for b in &batches {
        let fmts: Vec<ArrayFormatter> = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
            .collect();
        for i in 0..b.num_rows() {
            let cells: Vec<String> = columns
                .iter()
                .zip(&fmts)
                .map(|(name, f)| format!("{name}={}", f.value(i)))
                .collect();
            rows.push(cells.join(" | "));
        }
    }
    rows.sort();
    format!(
        "# {step} -> {table} ({} rows) on the country of tests/rules.rs, night {D}\n# columns: {}\n{}\n",
        rows.len(),
        columns.join(", "),
        rows.join("\n")
    )
}

/// The country of `tests/rules.rs`, ingested and reconciled for night D: its
/// tree (kept alive while the session reads it) and the session holding every
/// step's tables.
async fn reconciled() -> (crate::common::Tree, datafusion::prelude::SessionContext) {
    let t = crate::rules::tree().await;
    let root = t.root();
    let cfg = Config::default();
    junkrecon::ingest::ingest(&root, "snapshot", &cfg)
        .await
        .unwrap();
    let inputs = junkrecon::run::choose_inputs(&root, night(D))
        .await
        .unwrap();
    let ctx = junkrecon::engine::session(&root, &cfg).unwrap();
    junkrecon::reconcile::reconcile(&ctx, &inputs, night(D), &cfg, "work/snapshot/", &[])
        .await
        .unwrap();
    (t, ctx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_gives_its_snapshot() {
    let (_t, ctx) = reconciled().await;
    let bless = std::env::var("JUNKRECON_BLESS").as_deref() == Ok("1");
    let mut differ = vec![];
    for (step, table) in TABLES {
        let got = render(&ctx, step, table).await;
        let path = snapshot_path(table);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if got != want {
            eprintln!("--- {}\n+++ got\n{got}", path.display());
            differ.push(table);
        }
    }
    assert!(
        differ.is_empty(),
        "steps differ from their snapshots: {differ:?} (JUNKRECON_BLESS=1 rewrites them after a deliberate change)"
    );
}

/// A code added to the one list shows in the rows' `reasons` (step 70) and
/// in `flags_by_reason` (step 90) without another line of SQL there: here a
/// new rule's column (`every_in_scope`, true on every in-scope row) is added
/// to the rules the way a rule step adds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_added_to_the_one_list_is_reported_and_counted() {
    use junkrecon::reasons::{sql_params, Reason, REASONS};
    let (_t, ctx) = reconciled().await;
    let cfg = Config::default();
    let mut list = REASONS.to_vec();
    list.push(Reason {
        code: "EVERY_IN_SCOPE",
        column: "every_in_scope",
        subscribers: true,
        accounts: false,
    });
    let mut p = junkrecon::reconcile::params(night(D), &cfg);
    p.extend(sql_params(&list));
    let count = |sql: String| {
        let ctx = ctx.clone();
        async move {
            let b = ctx.sql(&sql).await.unwrap().collect().await.unwrap();
            b.iter().map(|b| b.num_rows()).sum::<usize>()
        }
    };
    for rule in [
        "CREATE VIEW rules_before AS SELECT * FROM subscriber_rules",
        "CREATE OR REPLACE VIEW subscriber_rules AS SELECT *, in_scope AS every_in_scope FROM rules_before",
    ] {
        ctx.sql(rule).await.unwrap();
    }
    let in_scope = count("SELECT 1 FROM subscriber_rules WHERE in_scope".into()).await;
    assert!(in_scope > 0);
    // Step 70 rendered with the longer list: every in-scope row carries it.
    let (file, text) = junkrecon::reconcile::SUBSCRIBER_FLAGS[1];
    assert_eq!(file, "70_subscriber_flags.sql");
    ctx.sql(&junkrecon::engine::render(file, text, &p).unwrap())
        .await
        .unwrap();
    let carrying = "SELECT 1 FROM subscriber_flags_v WHERE reasons LIKE '%EVERY_IN_SCOPE%'";
    assert_eq!(count(carrying.into()).await, in_scope);
    ctx.deregister_table("subscriber_flags").unwrap();
    ctx.sql("CREATE VIEW subscriber_flags AS SELECT * FROM subscriber_flags_v")
        .await
        .unwrap();
    // Step 90 rendered with it, once per carrier: a column of that name,
    // counting them.
    let carriers = ctx
        .sql("SELECT DISTINCT carrier FROM subscriber_flags")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let carriers: Vec<String> = carriers
        .iter()
        .flat_map(|b| {
            let c = arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
            let c = c
                .as_any()
                .downcast_ref::<arrow::array::StringArray>()
                .unwrap();
            c.iter().flatten().map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    assert!(carriers.len() > 1, "the sample has several carriers");
    let (file, text) = junkrecon::publish::sql::METRICS_SUBSCRIBERS;
    let mut counted = 0i64;
    for carrier in &carriers {
        p.insert("SOURCE", carrier.clone());
        let metrics = junkrecon::engine::render(file, text, &p).unwrap();
        let b = ctx.sql(&metrics).await.unwrap().collect().await.unwrap();
        counted += b
            .iter()
            .map(|b| {
                let c = arrow::compute::cast(
                    b.column_by_name("EVERY_IN_SCOPE")
                        .expect("a column per code"),
                    &arrow::datatypes::DataType::Int64,
                )
                .unwrap();
                arrow::compute::sum(
                    c.as_any()
                        .downcast_ref::<arrow::array::Int64Array>()
                        .unwrap(),
                )
                .unwrap_or(0)
            })
            .sum::<i64>();
    }
    assert_eq!(counted as usize, in_scope);
    // With the list as shipped, no such code exists.
    let mut shipped = junkrecon::reconcile::params(night(D), &cfg);
    shipped.extend(sql_params(REASONS));
    shipped.insert("SOURCE", carriers[0].clone());
    let shipped = junkrecon::engine::render(file, text, &shipped).unwrap();
    assert!(!shipped.contains("EVERY_IN_SCOPE"));
}
