//! The Stripe API client: authentication, pacing, retries, pagination and
//! the few reads the tool needs. GET only: the tool never writes to Stripe.
//!
//! Everything goes through [`Client::get_json`]: it waits for a slot from the
//! rate limiter ([`pacing`]), bounds concurrency, retries what is worth
//! retrying and turns every failure into an [`ApiError`] that names Stripe's
//! request id and never the key. The base URL is injectable (`--api-base`),
//! which is how the tests point it at a fake Stripe on 127.0.0.1.
//!
//! For tests only (undocumented for users): `STRIPE_SYNC_TEST_BACKOFF_MS`
//! sets the retry backoff base in milliseconds (0: no sleeping; `Retry-After`
//! is scaled down alike), so fault tests of the binary do not wait for real.

mod client;
mod error;
pub mod pacing;

pub use client::{
    Client, ClientConfig, CustomerFetch, KeyMode, NextStep, RequestHook, RequestLog, Stats,
    is_loopback, key_mode, validate_api_base,
};
pub use error::ApiError;
