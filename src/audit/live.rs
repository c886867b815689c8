//! `audit --live`: the audited users resynced from the API first, as
//! `resync --user` does (the same [`Lookup::resync`]), so the app is held
//! to the truth of now rather than of the store's last sync.

use crate::runtime::Runtime;
use crate::stripe::Client;
use crate::sync::targeted::Lookup;
use crate::sync::{Mode, Syncer};

/// What the resync did: customers synced, and warnings for the user.
pub(crate) struct Resynced {
    pub customers: usize,
    pub warnings: Vec<String>,
}

/// Resync `users` into the store at `db`. A customer that fails is an error
/// (each one named): the audit would otherwise hold the app to an old
/// truth. A user Stripe has no customer for is no failure: it is a
/// finding (`unknown_user`).
pub(crate) fn resync(
    rt: &Runtime,
    client: &Client,
    db: &crate::store::Location,
    user_key: &str,
    users: &[String],
    bar: &indicatif::ProgressBar,
) -> anyhow::Result<Resynced> {
    let mut syncer = Syncer::open(db, Mode::Write)?;
    let now = crate::commands::unix_now();
    let done = Lookup::resync(rt, client, &mut syncer, user_key, now, (&[], users), bar);
    syncer.close();
    let (reports, warnings) = done?;
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            Some(format!(
                "customer {}: {}",
                r.customer_id.as_deref()?,
                r.error.as_deref()?
            ))
        })
        .collect();
    if !failed.is_empty() {
        anyhow::bail!(
            "--live: {} could not be resynced; the audit would hold the app to an old truth (run again, or drop --live):\n  {}",
            crate::output::fmt::plural(failed.len() as u64, "customer"),
            failed.join("\n  ")
        );
    }
    Ok(Resynced {
        customers: reports.iter().filter(|r| r.customer_id.is_some()).count(),
        warnings,
    })
}
