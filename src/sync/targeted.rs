//! `resync --customer/--user`: which customers to sync. A user's customers
//! come from the store's mapping, else Customer Search, else a paged scan of
//! every customer (search is eventually consistent and may be unavailable).

use std::collections::HashMap;

use super::report::CustomerReport;
use super::{ApiSource, Job, SyncError, Syncer};
use crate::objects::{StripeObject, metadata_str};
use crate::runtime::Runtime;
use crate::store::{CustomerInfo, Store};
use crate::stripe::Client;

/// The customers to sync, in the order asked, and what was learned on the way.
#[derive(Debug, Default)]
pub(crate) struct Targets {
    pub customers: Vec<String>,
    /// Customer objects fetched while searching (no second request for them).
    pub prefetched: HashMap<String, CustomerInfo>,
    /// Users with no customer anywhere: (user, message).
    pub missing_users: Vec<(String, String)>,
    /// Warnings for the user (search fell back to a scan, duplicates).
    pub warnings: Vec<String>,
}

pub(crate) struct Lookup<'a> {
    pub rt: &'a Runtime,
    pub client: &'a Client,
    pub store: &'a Store,
    pub user_key: &'a str,
    pub now: i64,
}

impl Lookup<'_> {
    /// `resync --customer/--user` and `audit --live`: the customers asked
    /// for (and the users' customers) synced from the API, one report each
    /// (a user without a customer is a report too), and the warnings found
    /// on the way. `self.store` is `syncer`'s.
    pub(crate) fn resync(
        rt: &Runtime,
        client: &Client,
        syncer: &mut Syncer,
        user_key: &str,
        now: i64,
        (customers, users): (&[String], &[String]),
        bar: &indicatif::ProgressBar,
    ) -> anyhow::Result<(Vec<CustomerReport>, Vec<String>)> {
        let targets = Lookup {
            rt,
            client,
            store: syncer.store(),
            user_key,
            now,
        }
        .targets(customers, users)?;
        let mut reports: Vec<CustomerReport> = targets
            .missing_users
            .iter()
            .map(|(user, e)| CustomerReport::user_not_found(user, e.clone()))
            .collect();
        let mut source = ApiSource::new(rt, client, user_key, now);
        source.prefetched = targets.prefetched;
        let jobs = targets
            .customers
            .into_iter()
            .map(|customer_id| Job {
                customer_id,
                user_hint: None,
            })
            .collect();
        let synced = syncer.sync(&mut source, jobs, Some(rt), bar)?;
        reports.extend(synced.iter().map(CustomerReport::from_synced));
        Ok((reports, targets.warnings))
    }

    pub(crate) fn targets(
        &self,
        customers: &[String],
        users: &[String],
    ) -> Result<Targets, SyncError> {
        let mut t = Targets::default();
        let push = |c: String, t: &mut Targets| {
            if !t.customers.contains(&c) {
                t.customers.push(c);
            }
        };
        for c in customers {
            push(c.clone(), &mut t);
        }
        for user in users {
            let mut found = self.store.customers_of_user(user)?;
            if found.is_empty() {
                found = self.search(user, &mut t)?;
            }
            if found.len() > 1 {
                t.warnings.push(format!(
                    "user {} has {} customers ({}): duplicate customers, all are synced",
                    crate::output::escape_text(user),
                    found.len(),
                    found.join(", ")
                ));
            }
            if found.is_empty() {
                t.missing_users.push((
                    user.clone(),
                    format!(
                        "no customer for user {user}: none in the store, and no customer with metadata['{}'] = '{user}' in Stripe",
                        self.user_key
                    ),
                ));
            }
            for c in found {
                push(c, &mut t);
            }
        }
        Ok(t)
    }

    fn call<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, crate::stripe::ApiError>>,
    ) -> Result<Result<T, crate::stripe::ApiError>, SyncError> {
        Ok(self.rt.block_on(f)?)
    }

    /// Search, else scan when search answers an error.
    fn search(&self, user: &str, t: &mut Targets) -> Result<Vec<String>, SyncError> {
        let objects = match self.call(
            self.client
                .search_customers_by_metadata(self.user_key, user),
        )? {
            Ok(objects) => objects,
            Err(e) if e.is_fatal() => return Err(SyncError::Api(e)),
            Err(e) => {
                t.warnings.push(format!(
                    "customer search failed ({e}); scanning all customers for user {}",
                    crate::output::escape_text(user)
                ));
                self.scan()?
                    .into_iter()
                    .filter(|o| metadata_str(o.metadata.as_ref(), self.user_key) == Some(user))
                    .collect()
            }
        };
        let mut ids = Vec::new();
        for o in objects {
            if let Some(id) = o.id.clone() {
                t.prefetched.insert(
                    id.clone(),
                    super::source::customer_info(&o, self.user_key, self.now, false),
                );
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }

    fn scan(&self) -> Result<Vec<StripeObject>, SyncError> {
        let mut all = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .call(self.client.list_customers(after.as_deref()))?
                .map_err(SyncError::Api)?;
            let last = page.data.last().and_then(|o| o.id.clone());
            let more = page.has_more;
            all.extend(page.data);
            match (more, last) {
                (true, Some(l)) => after = Some(l),
                _ => return Ok(all),
            }
        }
    }
}
