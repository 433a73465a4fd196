//! The `junkrecon` binary: parses the command line, sets up logging, calls the
//! library, and maps errors to a one-line message and an exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use junkrecon::config::Config;
use junkrecon::night::NightDate;
use junkrecon::store::Root;

#[derive(Parser)]
#[command(
    name = "junkrecon",
    version,
    about = "Nightly reconciliation of SIM and bank KYC extracts against the national identity registry"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ingest new uploads, reconcile for one date and publish.
    Run {
        /// Store root: a path, file:///... or s3://bucket/prefix.
        #[arg(long)]
        data: Option<String>,
        /// The run date D (YYYY-MM-DD).
        #[arg(long = "as-of")]
        as_of: NightDate,
        /// TOML config file (see ops/junkrecon.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// When another run or the service holds the root, wait up to this many
        /// seconds for it instead of failing at once.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// Where reconcile and publish run: local, standalone or
        /// df://HOST:PORT (a Ballista scheduler); overrides `engine` in the config.
        #[arg(long)]
        engine: Option<junkrecon::config::Engine>,
        /// Compute and publish the night even when nothing it is computed from
        /// changed since it was published (by default its publication stands).
        #[arg(long)]
        recompute: bool,
    },
    /// Run an Apache Ballista scheduler for junkrecon's cluster engine.
    Scheduler {
        /// Store root the nights run on (the executors' and `run`'s too).
        #[arg(long)]
        data: Option<String>,
        /// TOML config file (for `root` and `[s3]`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// gRPC port (executors and `run --engine df://HOST:PORT` connect here).
        #[arg(long, default_value_t = 50050)]
        port: u16,
        /// Host name others reach this scheduler at.
        #[arg(long, default_value = "localhost")]
        external_host: String,
        /// Seconds without a heartbeat before an executor is dead and its
        /// tasks are run on the others (more than the executors' --heartbeat-secs).
        #[arg(long, default_value_t = 180)]
        executor_timeout_secs: u64,
        /// Seconds a job may run before it is cancelled and its night fails
        /// (and is retried); 0: no limit. Above the longest query of a night.
        #[arg(long, default_value_t = 3600)]
        job_timeout_secs: u64,
    },
    /// Run an Apache Ballista executor for junkrecon's cluster engine.
    Executor {
        /// Store root the nights run on (the same as the scheduler's).
        #[arg(long)]
        data: Option<String>,
        /// TOML config file (for `root` and `[s3]`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The scheduler, HOST:PORT.
        #[arg(long, default_value = "localhost:50050")]
        scheduler: String,
        /// Address to bind.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
        /// Host name other executors and the coordinator fetch results from.
        #[arg(long)]
        external_host: Option<String>,
        /// Arrow Flight port (shuffle and results).
        #[arg(long, default_value_t = 50051)]
        port: u16,
        /// gRPC port (tasks from the scheduler).
        #[arg(long, default_value_t = 50052)]
        grpc_port: u16,
        /// Folder for shuffle files and spills (default: a temporary folder).
        #[arg(long)]
        work_dir: Option<String>,
        /// Tasks run at once; 0 = number of cores.
        #[arg(long, default_value_t = 0)]
        concurrent_tasks: usize,
        /// Memory pool shared by this executor's tasks, MiB; 0 = unbounded.
        #[arg(long, default_value_t = 0)]
        memory_limit_mb: u64,
        /// Seconds between heartbeats to the scheduler.
        #[arg(long, default_value_t = 60)]
        heartbeat_secs: u64,
    },
    /// Run the scheduled service: ingest polls, the nightly run, HTTP metrics and dashboard.
    Serve {
        /// TOML config file (see ops/junkrecon.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Store root; overrides `root` in the config.
        #[arg(long)]
        data: Option<String>,
    },
    /// Write a synthetic, contract-legal landing tree.
    Generate {
        /// Root to fill (created if missing).
        #[arg(long)]
        out: String,
        /// Persons in the registry.
        #[arg(long, default_value_t = 10_000)]
        persons: u64,
        /// Consecutive days of extracts.
        #[arg(long, default_value_t = 2)]
        days: u32,
        /// Random seed (same seed, same files).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// First day (YYYY-MM-DD).
        #[arg(long, default_value = "2026-11-20")]
        start: NightDate,
        /// Plant upload faults on the last day (missing manifest, bad checksum, missing column).
        #[arg(long)]
        faults: bool,
        /// Contract v2 over many nights: two carriers on schema version 2, carriers
        /// locking flagged SIMs (on time, late), fixes and re-flags, and (with 6 or
        /// more days) uploads the volume guard holds.
        #[arg(long)]
        v2: bool,
    },
    /// Show the upload ledger (accepted/rejected and why) and the latest runs.
    Status {
        /// Store root.
        #[arg(long)]
        data: String,
        /// Only uploads and runs up to this date.
        #[arg(long = "as-of")]
        as_of: Option<NightDate>,
    },
    /// Release an upload held by the volume guard: from the next run on it is used.
    Release {
        /// Store root.
        #[arg(long)]
        data: Option<String>,
        /// identity, subscribers or accounts.
        #[arg(long)]
        extract: String,
        /// Carrier or bank code (identity: NATIONAL, or leave it out).
        #[arg(long)]
        source: Option<String>,
        /// The held upload's date folder (YYYY-MM-DD).
        #[arg(long = "as-of")]
        as_of: NightDate,
        /// Why the upload may be used (kept in the ledger).
        #[arg(long)]
        reason: String,
        /// TOML config file (for the store and lease settings).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Check Parquet files against an extract contract before uploading them.
    Check {
        /// identity, subscribers or accounts.
        #[arg(long)]
        extract: String,
        /// Local Parquet files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Generate a small country into a local folder and run a week of nights (contract v2, short enforcement settings).
    Demo {
        /// Folder for the demo data (emptied if it holds an earlier demo).
        #[arg(long, default_value = junkrecon::demo::DEFAULT_DIR)]
        dir: PathBuf,
        /// Persons in the demo country.
        #[arg(long, default_value_t = 20_000)]
        persons: u64,
    },
}

/// Files and folders the process creates are readable by its own user only:
/// curated data, work tables and spill files hold ID numbers, names and
/// dates of birth. Set before anything is written (the systemd unit sets
/// the same `UMask`, this covers `junkrecon run` by hand).
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only changes the process's file-creation mask; it has no
    // memory effects and cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

fn main() -> ExitCode {
    private_files();
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(junkrecon::engine::WORKER_STACK_BYTES)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("junkrecon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    junkrecon::logging::init(format == "json");
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    Ok(match path {
        Some(p) => Config::from_file(p)?,
        None => Config::default(),
    })
}

async fn dispatch(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Run {
            data,
            as_of,
            config,
            wait,
            engine,
            recompute,
        } => {
            let mut cfg = load_config(config.as_ref())?;
            if let Some(engine) = engine {
                cfg.engine = engine;
            }
            let root = open_root(data, &cfg).await?;
            let lease = junkrecon::lease::Lease::acquire_waiting(
                &root,
                &junkrecon::lease::holder_id(),
                &format!("run {as_of}"),
                std::time::Duration::from_secs(cfg.serve.lease_secs),
                std::time::Duration::from_secs(2),
                std::time::Duration::from_secs(wait),
            )
            .await?;
            let meta = junkrecon::run::RunMeta {
                recompute,
                ..junkrecon::run::RunMeta::manual(as_of)
            };
            let result = junkrecon::run::run_as(&root, as_of, &cfg, &meta, &lease.fence()).await;
            if let Err(e) = lease.release().await {
                eprintln!("junkrecon: could not release the lease (it expires by itself): {e}");
            }
            let record = result?;
            print!("{}", junkrecon::run::summary_table(&record.summary));
            if let Some(line) = junkrecon::run::missing_line(&record.sources) {
                println!("{line}");
            }
            match &record.kept_publication_of {
                Some(kept) => println!(
                    "run {}: nothing changed since run {kept} published the night; its {} files under {} stand (--recompute computes it again)",
                    record.run_id,
                    record.published_files,
                    root.display()
                ),
                None => println!(
                    "run {} published {} files under {}",
                    record.run_id,
                    record.published_files,
                    root.display()
                ),
            }
            Ok(())
        }
        Command::Scheduler {
            data,
            config,
            bind,
            port,
            external_host,
            executor_timeout_secs,
            job_timeout_secs,
        } => {
            let cfg = load_config(config.as_ref())?;
            let root = open_root(data, &cfg).await?;
            let opts = junkrecon::cluster::SchedulerOptions {
                bind,
                port,
                external_host,
                executor_timeout_secs,
                job_timeout_secs,
            };
            junkrecon::cluster::scheduler(root, opts).await?;
            Ok(())
        }
        Command::Executor {
            data,
            config,
            scheduler,
            bind,
            external_host,
            port,
            grpc_port,
            work_dir,
            concurrent_tasks,
            memory_limit_mb,
            heartbeat_secs,
        } => {
            let cfg = load_config(config.as_ref())?;
            let root = open_root(data, &cfg).await?;
            let opts = junkrecon::cluster::ExecutorOptions {
                scheduler,
                bind,
                external_host,
                port,
                grpc_port,
                work_dir,
                concurrent_tasks,
                memory_limit_mb,
                heartbeat_secs,
            };
            junkrecon::cluster::executor(root, opts).await?;
            Ok(())
        }
        Command::Serve { config, data } => {
            let cfg = Config::from_file(&config)?;
            let root = open_root(data, &cfg).await?;
            junkrecon::serve::serve(root, cfg, shutdown_signal()).await?;
            Ok(())
        }
        Command::Generate {
            out,
            persons,
            days,
            seed,
            start,
            faults,
            v2,
        } => {
            let start = start.date();
            if !out.contains("://") {
                std::fs::create_dir_all(&out)?;
            }
            let root = Root::open(&out)?;
            let opts = junkrecon::generate::GenerateOptions {
                persons,
                days,
                seed,
                start,
                faults,
                v2,
                progress: true,
                ..Default::default()
            };
            let t = std::time::Instant::now();
            let report = junkrecon::generate::generate(&root, &opts).await?;
            let rows: u64 = report.rows.values().sum();
            println!(
                "wrote {rows} rows in {} uploads under {} in {:.1}s",
                report.rows.len(),
                root.display(),
                t.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Status { data, as_of } => {
            let root = Root::open(&data)?;
            print!("{}", junkrecon::run::status_text(&root, as_of).await?);
            Ok(())
        }
        Command::Release {
            data,
            extract,
            source,
            as_of,
            reason,
            config,
        } => {
            let cfg = load_config(config.as_ref())?;
            let root = open_root(data, &cfg).await?;
            let key = upload_key(&extract, source, as_of)?;
            let by = format!(
                "{}@{}",
                std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
                junkrecon::lease::holder_id()
            );
            junkrecon::run::release(&root, &key, &reason, &by, &cfg).await?;
            println!("released {}: it is used from the next run on", key.label());
            Ok(())
        }
        Command::Check { extract, files } => check(&extract, &files).await,
        Command::Demo { dir, persons } => {
            let text = junkrecon::demo::demo(&dir, persons).await?;
            print!("{text}");
            Ok(())
        }
    }
}

/// The upload a command names: extract, source (NATIONAL for identity) and date.
fn upload_key(
    extract: &str,
    source: Option<String>,
    as_of: NightDate,
) -> anyhow::Result<junkrecon::manifest::UploadKey> {
    let kind = junkrecon::schema::Extract::parse(extract).ok_or_else(|| {
        anyhow::anyhow!("--extract {extract:?}: expected identity, subscribers or accounts")
    })?;
    let source = match (kind, source) {
        (junkrecon::schema::Extract::Identity, None) => "NATIONAL".to_string(),
        (junkrecon::schema::Extract::Identity, Some(s)) if s == "NATIONAL" => s,
        (junkrecon::schema::Extract::Identity, Some(s)) => {
            anyhow::bail!("--source {s:?}: the registry's snapshot has no source code (NATIONAL, or leave it out)")
        }
        (_, None) => anyhow::bail!("--source is required for {extract}"),
        (_, Some(s)) => s,
    };
    Ok(junkrecon::manifest::UploadKey {
        extract: kind,
        source,
        as_of,
    })
}

/// The store root from `--data` or the config, checked before anything is read.
async fn open_root(data: Option<String>, cfg: &Config) -> anyhow::Result<Root> {
    let spec = data
        .or(cfg.root.clone())
        .ok_or_else(|| anyhow::anyhow!("no store root: pass --data or set root in the config"))?;
    let root = Root::open_with(&spec, &cfg.s3)?;
    root.probe().await?;
    Ok(root)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `junkrecon check`: exit status 1 when any file would reject its upload.
async fn check(extract: &str, files: &[PathBuf]) -> anyhow::Result<()> {
    let kind = junkrecon::schema::Extract::parse(extract).ok_or_else(|| {
        anyhow::anyhow!("--extract {extract:?}: expected identity, subscribers or accounts")
    })?;
    let mut failed = false;
    for f in files {
        let c = junkrecon::ingest::check_local(f, kind).await?;
        match &c.upload_rejected {
            Some(reason) => {
                failed = true;
                println!(
                    "{}: REJECTED (schema_version {}): {reason}",
                    f.display(),
                    c.schema_version
                );
            }
            None => println!(
                "{}: ok, schema_version {}, {} rows, {} row-level rejects",
                f.display(),
                c.schema_version,
                c.rows,
                c.row_rejects.len()
            ),
        }
        for (row, reason, column) in c.row_rejects.iter().take(20) {
            println!("  row {row}: {reason} (column {column})");
        }
        if c.row_rejects.len() > 20 {
            println!("  ... and {} more", c.row_rejects.len() - 20);
        }
    }
    if failed {
        anyhow::bail!("some files would be rejected");
    }
    Ok(())
}
