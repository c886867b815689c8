//! The Stripe API client: authentication, pacing, retries, pagination and
//! the few reads the tool needs. GET only: the tool never writes to Stripe.
//!
//! Everything goes through [`Client::get_json`]: it waits for a slot from the
//! rate limiter ([`pacing`]), bounds concurrency, retries what is worth
//! retrying and turns every failure into an [`ApiError`] that names Stripe's
//! request id and never the key. The base URL is injectable (`--api-base`),
//! which is how the tests point it at a fake Stripe on 127.0.0.1.

mod client;
mod error;
pub mod pacing;

pub use client::{
    Client, ClientConfig, CustomerFetch, DEFAULT_API_BASE, DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, KeyMode, Stats, is_loopback, key_mode,
    metadata_search_query, validate_api_base,
};
pub use error::{ApiError, redact};
