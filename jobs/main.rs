//! The `junkrecon` binary: parses the command line, sets up logging, calls the
//! library, and maps errors to a one-line message and an exit status.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use junkrecon::config::Config;
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
        as_of: String,
        /// TOML config file (see ops/junkrecon.example.toml).
        #[arg(long)]
        config: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let rt = tokio::runtime::Builder::new_multi_thread()
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
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
        } => {
            let cfg = load_config(config.as_ref())?;
            let root_spec = data.or(cfg.root.clone()).ok_or_else(|| {
                anyhow::anyhow!("no store root: pass --data or set root in the config")
            })?;
            let root = Root::open(&root_spec)?;
            let record = junkrecon::run::run(&root, &as_of, &cfg).await?;
            print!("{}", junkrecon::run::summary_table(&record.summary));
            println!(
                "run {} published {} files under {}",
                record.run_id,
                record.published_files,
                root.display()
            );
            Ok(())
        }
    }
}
