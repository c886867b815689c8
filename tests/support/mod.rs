//! Shared helpers for the integration tests (`mod support;` in `tests/*.rs`).
#![allow(dead_code)]

pub mod fake_stripe;
pub mod pg;
