//! `junkrecon demo`: generates a small country into a local folder, runs two
//! nights, and prints the summary tables and where the reports are. Needs no
//! arguments; never touches anything outside the folder it is given.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::generate::{generate, GenerateOptions};
use crate::run::{run, summary_table};
use crate::store::Root;
use crate::Result;

/// Default demo folder (relative to the current directory).
pub const DEFAULT_DIR: &str = "junkrecon-demo";

/// Generates a demo country under `dir` (emptied first when it holds an earlier
/// demo) and runs both nights; returns the text to print.
pub async fn demo(dir: &Path, persons: u64) -> Result<String> {
    prepare(dir)?;
    let root = Root::open(&dir.to_string_lossy())?;
    let opts = GenerateOptions {
        persons,
        days: 2,
        seed: 2026,
        faults: true,
        progress: true,
        ..GenerateOptions::default()
    };
    generate(&root, &opts).await?;
    let cfg = Config::default();
    let mut out = String::new();
    for day in 0..opts.days {
        let date = (opts.start + chrono::Days::new(u64::from(day))).to_string();
        let record = run(&root, &date, &cfg).await?;
        out.push_str(&format!("\nNight {date} (run {}):\n", record.run_id));
        out.push_str(&summary_table(&record.summary));
        for d in &record.ingest.decided {
            if d.decision.status == crate::catalog::UploadStatus::Rejected {
                out.push_str(&format!(
                    "  rejected upload {}: {}\n",
                    d.key.label(),
                    d.decision.reason
                ));
            }
        }
        for p in &record.ingest.in_progress {
            out.push_str(&format!(
                "  upload in progress (no manifest yet, not read): {p}\n"
            ));
        }
    }
    let abs = root.display().to_string();
    out.push_str(&format!(
        "\nReports:  {abs}/reports/<subscribers|accounts>/<carrier|bank>=CODE/date=D/flags.csv (and .parquet)\n\
         Metrics:  {abs}/metrics/date=D/carriers.json, banks.json (committed by _PUBLISHED.json)\n\
         Rejects:  {abs}/reports/rejects/date=D/rejects.parquet\n\
         Ledger:   {abs}/catalog/uploads/   Run records: {abs}/runs/\n\
         Dashboard: {abs}/reports/dashboard.html (open it in a browser)\n\
         Service:  junkrecon serve --config ops/junkrecon.example.toml --data {abs}   (then http://127.0.0.1:8080/)\n"
    ));
    Ok(out)
}

/// Creates the folder, or empties one that holds an earlier demo. Refuses a
/// non-empty folder that is not a demo, so a typo cannot wipe real data.
fn prepare(dir: &Path) -> Result<()> {
    if dir.exists() {
        let is_demo = dir.join(".junkrecon-demo").exists();
        let empty = std::fs::read_dir(dir)
            .map(|mut d| d.next().is_none())
            .unwrap_or(false);
        if !is_demo && !empty {
            return Err(crate::Error::Root(format!(
                "{}: exists and is not a junkrecon demo folder; choose another --dir",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir)
            .map_err(|e| crate::Error::Root(format!("{}: {e}", dir.display())))?;
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| crate::Error::Root(format!("{}: {e}", dir.display())))?;
    std::fs::write(dir.join(".junkrecon-demo"), b"created by junkrecon demo\n")
        .map_err(|e| crate::Error::Root(format!("{}: {e}", dir.display())))?;
    Ok(())
}

/// The default demo folder as a path.
pub fn default_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DIR)
}
