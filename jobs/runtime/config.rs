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
    /// How the reconciliation's joins are planned: `auto` (hash joins; a step
    /// whose hash table does not fit `memory_limit_mb` is re-planned with
    /// sort-merge joins, which spill), `hash` (never re-planned), or
    /// `sort-merge` (always; bounded memory, slower).
    pub joins: Joins,
    /// Key buckets of the two big joins (registry keys, subscribers' phones):
    /// each bucket's hash table holds 1/n of the rows; 0 = derived from
    /// `memory_limit_mb` and the extracts' row counts (1 without a limit).
    pub key_buckets: u32,
    /// Parallelism of queries; 0 = number of cores.
    pub target_partitions: usize,
    /// Compression of the curated files ingest writes: `auto` (none on a
    /// local directory, snappy on S3), `none`, `snappy` or `zstd`.
    pub curated_compression: CuratedCompression,
    /// Rows per batch inside the engine.
    pub batch_size: usize,
    /// Carriers that must upload every night; one with no accepted upload for
    /// D at cut-off is reported as missing (metrics, dashboard, log).
    pub expected_carriers: Vec<String>,
    /// Banks that must upload every night (as `expected_carriers`).
    pub expected_banks: Vec<String>,
    /// S3-compatible store settings (credentials come from the environment).
    pub s3: S3Settings,
    /// `junkrecon serve`: schedules, HTTP, retries, lease.
    pub serve: ServeSettings,
    /// The enforcement timeline (§9): days after a record is first flagged.
    pub enforcement: EnforcementSettings,
    /// The volume guard (§8): how far an upload may shrink before it is held.
    pub guard: GuardSettings,
    /// Where reconcile and publish run: `local` (this process) or an Apache
    /// Ballista scheduler, `df://HOST:PORT`; `run --engine` overrides it.
    pub engine: Engine,
}

/// Where the night's queries run (see [`Config::engine`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Engine {
    /// DataFusion in this process.
    #[default]
    Local,
    /// A Ballista scheduler and executor inside this process: the cluster's
    /// planning and shuffles on one machine (tests, trying the cluster path).
    Standalone,
    /// An Apache Ballista cluster: its scheduler's host and gRPC port.
    Cluster {
        /// Scheduler host name or address.
        host: String,
        /// Scheduler gRPC port.
        port: u16,
    },
}

impl std::str::FromStr for Engine {
    type Err = String;

    /// `local`, or `df://HOST:PORT` (the scheduler of a Ballista cluster).
    fn from_str(s: &str) -> std::result::Result<Engine, String> {
        match s {
            "local" => return Ok(Engine::Local),
            "standalone" => return Ok(Engine::Standalone),
            _ => {}
        }
        let bad =
            || format!("engine {s:?}: expected \"local\", \"standalone\" or \"df://HOST:PORT\"");
        let rest = s.strip_prefix("df://").ok_or_else(bad)?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || host.contains(['/', '@', ' ']) || port == 0 {
            return Err(bad());
        }
        Ok(Engine::Cluster {
            host: host.to_string(),
            port,
        })
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Engine::Local => f.write_str("local"),
            Engine::Standalone => f.write_str("standalone"),
            Engine::Cluster { host, port } => write!(f, "df://{host}:{port}"),
        }
    }
}

impl TryFrom<String> for Engine {
    type Error = String;
    fn try_from(s: String) -> std::result::Result<Engine, String> {
        s.parse()
    }
}

impl From<Engine> for String {
    fn from(e: Engine) -> String {
        e.to_string()
    }
}

/// Days since a record was first flagged from which each action is
/// required (contract §9). The counts of one extract kind increase strictly.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EnforcementSettings {
    /// Subscribers: from this day the SIM must be locked one way (before it: NOTIFY).
    pub lock_one_way_after_days: u32,
    /// Subscribers: from this day the SIM must be locked both ways.
    pub lock_two_way_after_days: u32,
    /// Subscribers: from this day the SIM must be terminated (out of the extract).
    pub terminate_after_days: u32,
    /// Accounts: from this day online transactions must be suspended.
    pub suspend_after_days: u32,
}

impl Default for EnforcementSettings {
    fn default() -> Self {
        EnforcementSettings {
            lock_one_way_after_days: 15,
            lock_two_way_after_days: 30,
            terminate_after_days: 60,
            suspend_after_days: 30,
        }
    }
}

impl EnforcementSettings {
    fn validate(&self) -> Result<()> {
        let (one, two, end) = (
            self.lock_one_way_after_days,
            self.lock_two_way_after_days,
            self.terminate_after_days,
        );
        if one < two && two < end {
            return Ok(());
        }
        Err(Error::Config(format!(
            "[enforcement] day counts must increase strictly: lock_one_way_after_days ({one}) < lock_two_way_after_days ({two}) < terminate_after_days ({end})"
        )))
    }
}

/// The volume guard (contract §8): an upload that lost more than this share
/// of its reference extract's keys (not counting keys flagged in the
/// source's newest report) is held until an operator releases it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct GuardSettings {
    /// Carriers and banks: percent of the reference's keys an upload may lose.
    pub max_shrink_pct: f64,
    /// The registry snapshot: percent of the reference's person_ids it may lose.
    pub identity_max_shrink_pct: f64,
}

impl Default for GuardSettings {
    fn default() -> Self {
        GuardSettings {
            max_shrink_pct: 10.0,
            identity_max_shrink_pct: 1.0,
        }
    }
}

impl GuardSettings {
    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("max_shrink_pct", self.max_shrink_pct),
            ("identity_max_shrink_pct", self.identity_max_shrink_pct),
        ] {
            if !(0.0..=100.0).contains(&v) {
                return Err(Error::Config(format!(
                    "[guard] {name} must be between 0 and 100, found {v}"
                )));
            }
        }
        Ok(())
    }
}

/// Join planning of the reconciliation (see [`Config::joins`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Joins {
    /// Hash joins, re-planned as sort-merge joins when a hash table does not fit.
    #[default]
    Auto,
    /// Hash joins only: a hash table larger than the memory limit fails the run.
    Hash,
    /// Sort-merge joins only: every join spills through sorts.
    SortMerge,
}

/// Compression of the curated files (see [`Config::curated_compression`]).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum CuratedCompression {
    /// None on a local directory (a night waits for the CPU there: about 2 s
    /// of a 55 s night at 10M persons, for twice the disk), snappy on S3
    /// (where it waits for the bytes).
    #[default]
    Auto,
    /// Uncompressed.
    None,
    /// Snappy.
    Snappy,
    /// Zstandard (smallest, slowest to write).
    Zstd,
}

/// Settings of the scheduled service (`junkrecon serve`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServeSettings {
    /// IANA time zone of the schedules and of the night's date.
    pub time_zone: String,
    /// Cron (with seconds: `sec min hour dom mon dow`) of the ingest poll.
    pub poll_schedule: String,
    /// Cron of the nightly reconcile-and-publish (the cut-off).
    pub nightly_schedule: String,
    /// The night's date D is the local date of the nightly firing minus this many days.
    pub night_lag_days: u32,
    /// HTTP listen address (`/metrics`, `/healthz`, `/api/metrics`, `/`).
    pub http_address: String,
    /// A client that has not sent a whole request head within this many
    /// seconds (of connecting, or of its previous response) is disconnected.
    pub http_header_timeout_secs: u64,
    /// HTTP connections served at once; more are closed at once.
    pub http_max_connections: usize,
    /// Retries of a failed job, with doubling backoff.
    pub retries: u32,
    /// First backoff between attempts, in seconds (then doubled each time).
    pub retry_backoff_secs: u64,
    /// At start, nights missed within this many days are caught up (0 = none).
    pub catch_up_days: u32,
    /// Lease on the root: a holder that stops renewing loses it after this many seconds.
    pub lease_secs: u64,
    /// On SIGTERM/Ctrl-C, wait this long for the job in flight before abandoning it.
    pub shutdown_grace_secs: u64,
}

impl Default for ServeSettings {
    fn default() -> Self {
        ServeSettings {
            time_zone: "Asia/Ho_Chi_Minh".into(),
            poll_schedule: "0 */5 * * * *".into(),
            nightly_schedule: "0 0 4 * * *".into(),
            night_lag_days: 1,
            http_address: "127.0.0.1:8080".into(),
            http_header_timeout_secs: 10,
            http_max_connections: 256,
            retries: 3,
            retry_backoff_secs: 60,
            catch_up_days: 7,
            lease_secs: 120,
            shutdown_grace_secs: 30,
        }
    }
}

impl ServeSettings {
    /// The configured time zone.
    pub fn tz(&self) -> Result<chrono_tz::Tz> {
        self.time_zone.parse().map_err(|_| {
            Error::Config(format!(
                "serve.time_zone {:?} is not an IANA time zone (e.g. Asia/Ho_Chi_Minh)",
                self.time_zone
            ))
        })
    }

    /// Parses one of the schedules (6 or 7 fields, seconds first).
    pub fn cron(name: &str, text: &str) -> Result<croner::Cron> {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|e| {
                Error::Config(format!(
                    "serve.{name} {text:?}: {e} (expected `sec min hour day-of-month month day-of-week`)"
                ))
            })
    }

    fn validate(&self) -> Result<()> {
        self.tz()?;
        Self::cron("poll_schedule", &self.poll_schedule)?;
        Self::cron("nightly_schedule", &self.nightly_schedule)?;
        self.http_address
            .parse::<std::net::SocketAddr>()
            .map_err(|_| {
                Error::Config(format!(
                    "serve.http_address {:?} is not an address like 127.0.0.1:8080",
                    self.http_address
                ))
            })?;
        if self.lease_secs < 3 {
            return Err(Error::Config("serve.lease_secs must be at least 3".into()));
        }
        Ok(())
    }
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
            max_retries: 100,
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
            joins: Joins::Auto,
            key_buckets: 0,
            target_partitions: 0,
            curated_compression: CuratedCompression::Auto,
            batch_size: 8192,
            expected_carriers: vec![],
            expected_banks: vec![],
            s3: S3Settings::default(),
            serve: ServeSettings::default(),
            enforcement: EnforcementSettings::default(),
            guard: GuardSettings::default(),
            engine: Engine::Local,
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
        c.serve.validate()?;
        c.enforcement.validate()?;
        c.guard.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_engine_is_local_or_a_scheduler_url() {
        assert_eq!(Config::default().engine, Engine::Local);
        let c = Config::from_toml("engine = \"df://sched.internal:50050\"").unwrap();
        assert_eq!(
            c.engine,
            Engine::Cluster {
                host: "sched.internal".into(),
                port: 50050
            }
        );
        assert_eq!(c.engine.to_string(), "df://sched.internal:50050");
        for bad in [
            "df://host",
            "http://h:1",
            "df://:50050",
            "df://h:0",
            "cluster",
        ] {
            let e = Config::from_toml(&format!("engine = \"{bad}\"")).unwrap_err();
            assert!(e.to_string().contains("df://HOST:PORT"), "{e}");
        }
    }

    #[test]
    fn example_config_parses_to_defaults() {
        let c = Config::from_toml(include_str!("../../ops/junkrecon.example.toml")).unwrap();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = Config::from_toml("max_subscription_per_person = 3").unwrap_err();
        assert!(e.to_string().contains("unknown field"), "{e}");
    }

    #[test]
    fn schedules_zone_and_address_are_checked() {
        for (toml, needle) in [
            ("[serve]\npoll_schedule = \"*/5 * * * *\"", "poll_schedule"),
            (
                "[serve]\nnightly_schedule = \"0 0 25 * * *\"",
                "nightly_schedule",
            ),
            ("[serve]\ntime_zone = \"Asia/Hanoi_City\"", "time_zone"),
            ("[serve]\nhttp_address = \"localhost\"", "http_address"),
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains(needle), "{toml}: {e}");
        }
        for toml in [
            "[enforcement]\nlock_one_way_after_days = 30",
            "[enforcement]\nterminate_after_days = 30",
            "[enforcement]\nlock_one_way_after_days = 2\nlock_two_way_after_days = 1\nterminate_after_days = 3",
        ] {
            let e = Config::from_toml(toml).unwrap_err().to_string();
            assert!(e.contains("increase strictly"), "{toml}: {e}");
        }
        let e = Config::from_toml("[guard]\nmax_shrink_pct = 120").unwrap_err();
        assert!(e.to_string().contains("max_shrink_pct"), "{e}");
        let short = Config::from_toml(
            "[enforcement]\nlock_one_way_after_days = 1\nlock_two_way_after_days = 2\nterminate_after_days = 3\nsuspend_after_days = 2\n[guard]\nmax_shrink_pct = 5",
        )
        .unwrap();
        assert_eq!(short.enforcement.terminate_after_days, 3);
        assert_eq!(short.guard.max_shrink_pct, 5.0);
        let ok = Config::from_toml("[serve]\npoll_schedule = \"*/2 * * * * *\"").unwrap();
        assert_eq!(ok.serve.poll_schedule, "*/2 * * * * *");
    }
}
