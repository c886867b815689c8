//! Tests of the `stripe-sync` binary: status, stdout and stderr together.

mod common;
mod completions;
mod sign;
mod verify;
