//! One integration-test binary (the heavy dependency graph links once).
//! Every test works in its own temporary root.

mod bad_input;
mod common;
mod generated;
mod golden;
mod idempotence;
mod publication;
mod rules;
mod s3;
mod serve;
