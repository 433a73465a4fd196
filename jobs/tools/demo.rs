//! `junkrecon demo`: a small country in a local folder over a week of
//! nights under contract v2, with short enforcement settings (lock one way
//! after 1 day, both ways after 2, terminate after 3; suspend after 2): the
//! senders' uploads arrive night by night, records go overdue, uploads are
//! held by the volume guard and one is released. Prints each night's
//! summary table and where the outputs are. Needs no arguments; never
//! touches anything outside the folder it is given.

use std::path::{Path, PathBuf};

use crate::catalog::UploadStatus;
use crate::config::Config;
use crate::generate::{generate, GenerateOptions};
use crate::manifest::UploadKey;
use crate::night::NightDate;
use crate::run::{run, summary_table};
use crate::schema::Extract;
use crate::store::Root;
use crate::Result;

/// Default demo folder (relative to the current directory).
pub const DEFAULT_DIR: &str = "junkrecon-demo";

/// Nights the demo runs (the v2 scenario needs at least 6).
const NIGHTS: u32 = 7;

/// The upload the demo releases after "checking" it, and the night before
/// which it does (GMOBILE's shrunk export of day 3; it sends nothing on day 4).
const RELEASE: (Extract, &str, u32) = (Extract::Subscribers, "GMOBILE", 3);

/// The demo's settings: short enforcement, so that actions fall due within a week.
pub fn demo_config() -> Config {
    let mut cfg = Config::default();
    cfg.enforcement.lock_one_way_after_days = 1;
    cfg.enforcement.lock_two_way_after_days = 2;
    cfg.enforcement.terminate_after_days = 3;
    cfg.enforcement.suspend_after_days = 2;
    cfg
}

/// Generates a demo country under `dir` (emptied first when it holds an
/// earlier demo), one day of uploads before each night, runs every night and
/// returns the text to print.
pub async fn demo(dir: &Path, persons: u64) -> Result<String> {
    prepare(dir)?;
    let root = Root::open(&dir.to_string_lossy())?;
    let opts = GenerateOptions {
        persons,
        days: NIGHTS,
        seed: 2026,
        faults: true,
        v2: true,
        ..GenerateOptions::default()
    };
    let cfg = demo_config();
    let mut out = format!(
        "Contract v2 over {NIGHTS} nights, enforcement after 1/2/3 days (SIMs) and 2 days (accounts).\nSenders: {}\n",
        crate::generate::v2_scenario()
    );
    for day in 0..NIGHTS {
        let date = NightDate::from_date(opts.start + chrono::Days::new(u64::from(day)));
        let today = GenerateOptions {
            only_day: Some(day),
            ..opts.clone()
        };
        generate(&root, &today).await?;
        if day == RELEASE.2 + 1 {
            out.push_str(&release(&root, &opts, &cfg).await?);
        }
        let record = run(&root, date, &cfg).await?;
        out.push_str(&format!("\nNight {date} (run {}):\n", record.run_id));
        out.push_str(&summary_table(&record.summary));
        for d in &record.ingest.decided {
            match d.decision.status {
                UploadStatus::Rejected => out.push_str(&format!(
                    "  rejected upload {}: {}\n",
                    d.key.label(),
                    d.decision.reason
                )),
                UploadStatus::Held => out.push_str(&format!(
                    "  held upload {}: {}\n",
                    d.key.label(),
                    d.decision.reason
                )),
                UploadStatus::Accepted => {}
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
        "\nReports:  {abs}/reports/<subscribers|accounts>/<carrier|bank>=CODE/date=D/flags.csv (and .parquet, delta.parquet)\n\
         Metrics:  {abs}/metrics/date=D/carriers.json, banks.json (committed by _PUBLISHED.json)\n\
         Rejects:  {abs}/reports/rejects/date=D/rejects.parquet\n\
         Ledger:   {abs}/catalog/uploads/   Run records: {abs}/runs/\n\
         Held:     junkrecon status --data {abs}   (reasons, and the release command)\n\
         Dashboard: {abs}/reports/dashboard.html (open it in a browser)\n\
         Service:  junkrecon serve --config ops/junkrecon.example.toml --data {abs}   (then http://127.0.0.1:8080/)\n"
    ));
    Ok(out)
}

/// Releases [`RELEASE`] when the volume guard held it, as an operator would
/// after checking it; returns the line to print.
async fn release(root: &Root, opts: &GenerateOptions, cfg: &Config) -> Result<String> {
    let key = UploadKey {
        extract: RELEASE.0,
        source: RELEASE.1.to_string(),
        as_of: NightDate::from_date(opts.start + chrono::Days::new(u64::from(RELEASE.2))),
    };
    let held = crate::catalog::read_ledger(root, &key)
        .await?
        .is_some_and(|l| l.held().is_some());
    if !held {
        return Ok(String::new());
    }
    let reason = "demo: the carrier confirmed it closed those lines";
    crate::run::release(root, &key, reason, "demo", cfg).await?;
    Ok(format!(
        "\nReleased {} (junkrecon release ... --reason {reason:?}): used from the next night on.\n",
        key.label()
    ))
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
