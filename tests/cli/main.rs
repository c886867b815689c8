//! Tests of the `stripe-sync` binary: status, stdout and stderr together.

mod audit;
mod audit_repair;
mod chaos;
mod common;
mod completions;
mod config;
mod crash;
mod events;
mod forward;
mod fuzz_regressions;
mod harness;
mod history;
mod inspect;
mod inspect_stream;
mod manpages;
mod messages;
mod order;
mod pg_server;
mod prompt;
mod props;
mod readme;
mod replay;
mod resync;
mod secrets;
mod serve;
mod sign;
mod snapshots;
#[path = "../support/mod.rs"]
mod support;
mod team_store;
mod terminal;
mod terminal_serve;
mod truth;
mod verbosity;
mod verify;
mod widths;
