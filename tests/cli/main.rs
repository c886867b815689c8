//! Tests of the `stripe-sync` binary: status, stdout and stderr together.

mod common;
mod completions;
mod inspect;
mod props;
mod replay;
mod sign;
mod verify;
