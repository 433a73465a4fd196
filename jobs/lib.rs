//! junkrecon: nightly reconciliation of carriers' subscriber extracts and
//! banks' KYC extracts against the national identity registry (the contract
//! for senders and readers: `docs/CONTRACT.md`).
//!
//! # Layout
//! The folders of `jobs/` are the layers of a night; a module imports only
//! from layers above its own, no stage imports another, and only [`run`]
//! sequences the stages (`tests/layout.rs` checks it). Module paths stay
//! flat (`crate::store`, `crate::ingest`).
//!
//! `contract/`: the contract as code and data; pure, no I/O.
//! - [`schema`]: the extract contracts, read from `schemas/*.toml`.
//! - [`manifest`]: `_MANIFEST.json`, landing folder names, strict dates, file names.
//! - [`night`]: [`night::NightDate`], the one date type (a night D, an upload's `as_of`), parsed once at the edge.
//! - [`normalize`]: phones, trimming, name folding, ID masking (§3).
//! - [`curated`]: the curated layout (the tables ingest writes and the queries read) and the rejects table.
//! - [`reasons`]: the one list of reason codes (code, flag column, extracts) the SQL and the metrics are rendered from.
//! - [`metrics`]: the per-source metrics document of §6 (carriers.json, banks.json) as a type.
//! - [`display`]: escapes untrusted text (senders' names, third-party messages) before it is printed.
//!
//! `runtime/`: what every stage runs on.
//! - [`config`]: the TOML configuration with its defaults.
//! - [`error`]: the one error type.
//! - [`store`]: one object-store root (local path, `file://`, `s3://`) and the few operations jobs need.
//! - [`guard`]: the store wrapper that refuses every change under `landing/`, whoever asks.
//! - [`lease`]: one job at a time per root, across processes, with expiry and a fence.
//! - [`engine`]: the DataFusion session from `Config`, table registration, scoped options, SQL rendering.
//! - [`held`]: work tables held in memory, with their reservation in the session's pool.
//! - [`logging`]: the binary's log set-up, with a cap on other crates' levels (their debug output holds personal data).
//!
//! `records/`: what the store remembers between nights.
//! - [`catalog`]: the ingest ledger (which uploads were accepted or rejected) and the choice of extracts for a date.
//! - [`fingerprints`]: what each published night was computed from, so a night run again with nothing changed keeps its publication.
//! - [`holds`]: the volume guard (§8): whether a valid upload is held.
//! - [`plans`]: the join planner's memory between nights (kept apart from the run records).
//! - [`publications`]: published nights as stored (markers, pointers, staging, report paths), read-only.
//! - [`sources`]: each source's upload state on a night (current, stale, missing, rejected uploads).
//!
//! `stages/`: the night's three stages, each on its own.
//! - [`ingest`]: validates new uploads and writes curated, normalised datasets.
//! - [`reconcile`]: runs the SQL of `queries/` over curated data for one date.
//! - [`publish`]: writes reports and metrics and commits a publication atomically; [`dashboard`] is its officials' page.
//!
//! [`run`] (`run.rs`): one night (ingest, reconcile, publish) and its run record: the only sequencer.
//!
//! `service/`: the scheduled service.
//! - [`cluster`]: `junkrecon scheduler` / `junkrecon executor`, Ballista's processes knowing junkrecon's store.
//! - [`serve`]: poll, nightly cut-off, retries, catch-up, graceful stop.
//! - [`http`]: `/metrics`, `/healthz`, `/api/metrics` and the dashboard.
//! - [`state`]: what the worker and the HTTP endpoints share.
//!
//! `tools/`: [`generate`] (synthetic, contract-legal landing trees; it plays
//! the senders) and [`demo`] (a small country, two nights, printed tables).
#![warn(missing_docs)]

/// An enum of words (an upload's status, a source's state, ...): each
/// variant is one word on disk, on pages and in logs (serde, `as_str`,
/// `Display`, all from the one `= "word"`), and compares with `&str`.
macro_rules! words {
    ($(#[doc = $edoc:literal])* pub enum $name:ident { $( $(#[doc = $doc:literal])* $variant:ident = $word:literal, )+ }) => {
        $(#[doc = $edoc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $( $(#[doc = $doc])* #[serde(rename = $word)] $variant, )+
        }

        impl $name {
            /// The word records and pages show.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}

#[path = "contract/curated.rs"]
pub mod curated;
#[path = "contract/display.rs"]
pub mod display;
#[path = "contract/manifest.rs"]
pub mod manifest;
#[path = "contract/metrics.rs"]
pub mod metrics;
#[path = "contract/night.rs"]
pub mod night;
#[path = "contract/normalize.rs"]
pub mod normalize;
#[path = "contract/reasons.rs"]
pub mod reasons;
#[path = "contract/schema.rs"]
pub mod schema;

#[path = "runtime/config.rs"]
pub mod config;
#[path = "runtime/engine.rs"]
pub mod engine;
#[path = "runtime/error.rs"]
pub mod error;
#[path = "runtime/guard.rs"]
pub mod guard;
#[path = "runtime/held.rs"]
pub mod held;
#[path = "runtime/lease.rs"]
pub mod lease;
#[path = "runtime/logging.rs"]
pub mod logging;
#[path = "runtime/split.rs"]
pub mod split;
#[path = "runtime/store.rs"]
pub mod store;

#[path = "records/catalog.rs"]
pub mod catalog;
#[path = "records/fingerprints.rs"]
pub mod fingerprints;
#[path = "records/holds.rs"]
pub mod holds;
#[path = "records/plans.rs"]
pub mod plans;
#[path = "records/publications.rs"]
pub mod publications;
#[path = "records/sources.rs"]
pub mod sources;

#[path = "stages/dashboard.rs"]
pub mod dashboard;
#[path = "stages/ingest.rs"]
pub mod ingest;
#[path = "stages/publish.rs"]
pub mod publish;
#[path = "stages/reconcile.rs"]
pub mod reconcile;

pub mod run;

#[path = "service/cluster.rs"]
pub mod cluster;
#[path = "service/http.rs"]
pub mod http;
#[path = "service/serve.rs"]
pub mod serve;
#[path = "service/state.rs"]
pub mod state;

#[path = "tools/demo.rs"]
pub mod demo;
#[path = "tools/generate.rs"]
pub mod generate;

pub use error::{Error, Result};
