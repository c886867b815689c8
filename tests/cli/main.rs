//! Tests of the `stripe-sync` binary: status, stdout and stderr together.

mod common;
mod completions;
mod forward;
mod inspect;
mod props;
mod replay;
mod resync;
mod sign;
#[path = "../support/mod.rs"]
mod support;
mod verify;
