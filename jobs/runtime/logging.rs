//! Logging set-up for the binary: `RUST_LOG` (default `warn`), text or JSON
//! on stderr, and a cap that no `RUST_LOG` can lift: events of other crates
//! (DataFusion, Parquet, object_store, hyper ...) are shown at `info` and
//! above only. Their `debug`/`trace` messages print Parquet statistics,
//! plans with literal values and request details, which for the curated
//! files are ID numbers, names and dates of birth. junkrecon's own events
//! carry counts, keys and codes only, at every level. Must never let a
//! third-party `debug` or `trace` event through.

use tracing::{Level, Metadata};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// Whether an event or span may be logged whatever `RUST_LOG` says:
/// junkrecon's own at any level, other crates' at `info` and above.
pub fn allowed(meta: &Metadata<'_>) -> bool {
    is_own(meta.target()) || *meta.level() <= Level::INFO
}

fn is_own(target: &str) -> bool {
    target == "junkrecon" || target.starts_with("junkrecon::")
}

/// Installs the global subscriber; `json` selects JSON lines.
pub fn init(json: bool) {
    let env = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let cap = tracing_subscriber::filter::filter_fn(allowed);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let layer = if json {
        fmt.json().with_filter(env).with_filter(cap).boxed()
    } else {
        fmt.with_filter(env).with_filter(cap).boxed()
    };
    tracing_subscriber::registry().with(layer).init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_junkrecon_targets_are_own() {
        assert!(is_own("junkrecon"));
        assert!(is_own("junkrecon::ingest"));
        assert!(!is_own("junkrecon_evil"));
        assert!(!is_own("datafusion_datasource_parquet::opener"));
        assert!(!is_own("parquet"));
    }
}
