//! The TOML configuration: every setting with its default (documented one per
//! line in `ops/junkrecon.example.toml`). Never holds secrets: S3 credentials
//! come from the standard AWS environment variables.

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// junkrecon settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Store root (path, `file://` or `s3://bucket/prefix`); `--data` overrides it.
    pub root: Option<String>,
    /// Rule setting: resolved subscriptions one person may hold across all carriers (§5 OVER_LIMIT).
    pub max_subscriptions_per_person: u32,
    /// DataFusion memory pool in MiB (spilling sorts beyond it); 0 = unbounded.
    pub memory_limit_mb: u64,
    /// Directory for DataFusion spill files; empty = system temp dir.
    pub spill_dir: String,
    /// Parallelism of queries; 0 = number of cores.
    pub target_partitions: usize,
    /// Rows per batch inside the engine.
    pub batch_size: usize,
    /// S3-compatible store settings (credentials come from the environment).
    pub s3: S3Settings,
}

/// Settings of an `s3://` root. Secrets are never read from here: the access
/// key and secret come from `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct S3Settings {
    /// Endpoint URL (e.g. `http://127.0.0.1:5000`); empty = `AWS_ENDPOINT_URL` or AWS itself.
    pub endpoint: String,
    /// Region; empty = `AWS_REGION` or `us-east-1`.
    pub region: String,
    /// Allow plain HTTP (a local server); `AWS_ALLOW_HTTP=true` also does.
    pub allow_http: bool,
    /// Retries of a transient failure (timeouts, 5xx, throttling), with backoff and jitter.
    pub max_retries: usize,
    /// Give up retrying one request after this many seconds.
    pub retry_timeout_secs: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: String::new(),
            region: String::new(),
            allow_http: false,
            max_retries: 10,
            retry_timeout_secs: 180,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            root: None,
            max_subscriptions_per_person: 10,
            memory_limit_mb: 0,
            spill_dir: String::new(),
            target_partitions: 0,
            batch_size: 8192,
            s3: S3Settings::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file; unknown keys are an error (a typo must not pass silently).
    pub fn from_file(path: &std::path::Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        Self::from_toml(&text).map_err(|e| Error::Config(format!("{}: {e}", path.display())))
    }

    /// Parses TOML text.
    pub fn from_toml(text: &str) -> Result<Config> {
        let c: Config = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        if c.max_subscriptions_per_person == 0 {
            return Err(Error::Config(
                "max_subscriptions_per_person must be at least 1".into(),
            ));
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_config_parses_to_defaults() {
        let c = Config::from_toml(include_str!("../ops/junkrecon.example.toml")).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::from_toml("max_subscription_per_person = 3").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }
}
