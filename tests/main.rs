//! One integration-test binary (the heavy dependency graph links once).
//! Every test works in its own temporary root.

mod bad_input;
mod browser;
mod cluster;
mod common;
mod crash;
mod docs;
mod faults;
mod generated;
mod golden;
mod holds;
mod hostile;
mod idempotence;
mod layout;
mod memory;
mod ops;
mod properties;
mod publication;
mod rules;
mod s3;
mod serve;
mod steps;
mod timeline;
mod v2;
