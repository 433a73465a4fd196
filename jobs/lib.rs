//! junkrecon: nightly reconciliation of carriers' subscriber extracts and
//! banks' KYC extracts against the national identity registry (contract:
//! `CONTRACT.md`, explained in the README).
//!
//! # Layout
//! - [`store`]: one object-store root (local path, `file://`, `s3://`) and the few operations jobs need.
//! - [`guard`]: the store wrapper that refuses every change under `landing/`, whoever asks.
//! - [`config`]: the TOML configuration with its defaults.
//! - [`schema`]: the extract contracts, read from `schemas/*.toml`.
//! - [`display`]: escapes untrusted text (senders' names, third-party messages) before it is printed.
//! - [`reasons`]: the one list of reason codes (code, flag column, extracts) the SQL and the metrics are rendered from.
//! - [`normalize`]: phones, trimming, name folding, ID masking: the contract's §3 in Rust.
//! - [`logging`]: the binary's log set-up, with a cap on other crates' levels (their debug output holds personal data).
//! - [`manifest`]: `_MANIFEST.json` parsing and its agreement with the landing path.
//! - [`catalog`]: the ingest ledger (which uploads were accepted or rejected) and the choice of extracts for a date.
//! - [`curated`]: the curated layout (the tables ingest writes and the queries read) and the rejects table.
//! - [`engine`]: the DataFusion session from `Config`, table registration and SQL rendering, shared by every stage.
//! - [`ingest`]: validates new uploads and writes curated, normalised datasets.
//! - [`reconcile`]: runs the SQL of `queries/` over curated data for one date.
//! - [`metrics`]: the per-source metrics document of §6 (carriers.json, banks.json) as a type.
//! - [`dashboard`]: the officials' page, one self-contained HTML file per night.
//! - [`publish`]: writes reports and metrics and commits a publication atomically.
//! - [`sources`]: each source's upload state on a night (current, stale, missing, rejected uploads).
//! - [`lease`]: one job at a time per root, across processes, with expiry.
//! - [`run`]: one nightly run (ingest, reconcile, publish) and its run record.
//! - [`serve`]: the scheduled service (poll, nightly cut-off, retries, catch-up, graceful stop).
//! - [`state`]: what the service's worker and its HTTP endpoints share (root, config, job counters).
//! - [`http`]: the service's `/metrics`, `/healthz`, `/api/metrics` and dashboard endpoints.
//! - [`generate`]: synthetic, contract-legal landing trees.
//! - [`demo`]: a small country, two nights, printed tables.
#![warn(missing_docs)]

pub mod catalog;
pub mod config;
pub mod curated;
pub mod dashboard;
pub mod demo;
pub mod display;
pub mod engine;
pub mod error;
pub mod generate;
pub mod guard;
pub mod http;
pub mod ingest;
pub mod lease;
pub mod logging;
pub mod manifest;
pub mod metrics;
pub mod normalize;
pub mod publish;
pub mod reasons;
pub mod reconcile;
pub mod run;
pub mod schema;
pub mod serve;
pub mod sources;
pub mod state;
pub mod store;

pub use error::{Error, Result};
