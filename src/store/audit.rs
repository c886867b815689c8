//! What `audit` reads from the store beyond the mapping: how many
//! subscriptions charge each customer, and a customer's last known
//! subscription (for a repair event). Their SQL is both backends' (see
//! [`super::reads`]).

use super::{SqliteStore, reads, sql};
use crate::objects::SubscriptionRecord;

impl SqliteStore {
    /// See [`reads::for_each_billing_customer`].
    pub(crate) fn for_each_billing_customer(
        &self,
        bills: impl Fn(&str) -> bool,
        each: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        reads::for_each_billing_customer(&mut sql::Sqlite::new(&self.conn), bills, each)
    }

    /// See [`reads::billing_subscriptions_of`].
    pub(crate) fn billing_subscriptions_of(
        &self,
        user_id: &str,
        bills: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        reads::billing_subscriptions_of(&mut sql::Sqlite::new(&self.conn), user_id, bills)
    }

    /// See [`reads::last_subscription`].
    pub(crate) fn last_subscription(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Option<(SubscriptionRecord, bool)>> {
        reads::last_subscription(&mut sql::Sqlite::new(&self.conn), customer_id)
    }
}
