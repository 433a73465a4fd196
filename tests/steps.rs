//! Snapshot tests of the reconciliation, one file per SQL step, in the
//! manner of datafusion-cli's: the small hand-written country of
//! `tests/rules.rs` (every reason at its edges) is ingested and reconciled,
//! and what each step's table holds is compared with
//! `tests/snapshots/steps/<table>.txt`. A reviewer reads there what a step
//! does to each edge case without running a night. After a deliberate
//! change, `JUNKRECON_BLESS=1 cargo test steps` rewrites the files; the diff
//! is the change's effect, to be read before it is committed.

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_gives_its_snapshot() {
    let t = crate::rules::tree().await;
    let root = t.root();
    let cfg = Config::default();
    junkrecon::ingest::ingest(&root, "snapshot", &cfg)
        .await
        .unwrap();
    let inputs = junkrecon::run::choose_inputs(&root, D).await.unwrap();
    let ctx = junkrecon::engine::session(&root, &cfg).unwrap();
    junkrecon::reconcile::reconcile(&ctx, &inputs, D, &cfg, "work/snapshot/", &[])
        .await
        .unwrap();
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
