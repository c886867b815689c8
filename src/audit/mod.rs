//! `audit`: the app's own billing records held to the store's truth, user
//! by user, and repaired through the app's own webhook.

pub(crate) mod appdb;
pub(crate) mod fields;
pub(crate) mod record;
pub(crate) mod source;
