//! What `audit` reads from the store beyond the mapping: how many
//! subscriptions charge each customer, and a customer's last known
//! subscription (for a repair event).

use rusqlite::OptionalExtension;

use super::SqliteStore;
use crate::objects::{Card, SubscriptionRecord};

impl SqliteStore {
    /// The customer of each subscription whose status `bills`, handed to
    /// `each` one at a time: one pass over the table in its own order, no
    /// sort, no index, nothing held, so the audit keeps only what it needs
    /// to sum them per user in its walk of the mapping.
    pub(crate) fn for_each_billing_customer(
        &self,
        bills: impl Fn(&str) -> bool,
        mut each: impl FnMut(&str),
    ) -> anyhow::Result<()> {
        let mut st = self
            .conn
            .prepare("SELECT customer_id, status FROM subscriptions")?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            if bills(r.get_ref(1)?.as_str()?) {
                each(r.get_ref(0)?.as_str()?);
            }
        }
        Ok(())
    }

    /// The subscriptions whose status `bills` of the user's customers that
    /// are not deleted, newest first.
    pub(crate) fn billing_subscriptions_of(
        &self,
        user_id: &str,
        bills: impl Fn(&str) -> bool,
    ) -> anyhow::Result<Vec<String>> {
        let mut st = self.conn.prepare_cached(
            "SELECT s.id, s.status FROM subscriptions s
             JOIN customers c ON c.id = s.customer_id
             WHERE c.user_id = ?1 AND c.deleted = 0
             ORDER BY s.created DESC, s.id DESC",
        )?;
        let mut rows = st.query([user_id])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let (id, status): (String, String) = (r.get(0)?, r.get(1)?);
            if bills(&status) {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The customer's subscription as the mapping shows it, else its newest
    /// one (a deleted customer's mapping shows none), and whether the
    /// customer is deleted.
    pub(crate) fn last_subscription(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Option<(SubscriptionRecord, bool)>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT s.id, s.customer_id, s.status, s.price_id, s.current_period_start,
                        s.current_period_end, s.cancel_at_period_end, s.payment_method_id,
                        s.card_brand, s.card_last4, s.created, c.deleted
                 FROM subscriptions s JOIN customers c ON c.id = s.customer_id
                 WHERE s.customer_id = ?1
                 ORDER BY s.id = c.subscription_id DESC, s.created DESC, s.id DESC
                 LIMIT 1",
            )?
            .query_row([customer_id], |r| {
                let (brand, last4): (Option<String>, Option<String>) = (r.get(8)?, r.get(9)?);
                let sub = SubscriptionRecord {
                    id: r.get(0)?,
                    customer_id: r.get(1)?,
                    status: r.get(2)?,
                    price_id: r.get(3)?,
                    current_period_start: r.get(4)?,
                    current_period_end: r.get(5)?,
                    cancel_at_period_end: r.get(6)?,
                    payment_method_id: r.get(7)?,
                    card: (brand.is_some() || last4.is_some()).then_some(Card { brand, last4 }),
                    created: r.get(10)?,
                };
                Ok((sub, r.get(11)?))
            })
            .optional()?)
    }
}
