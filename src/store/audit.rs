//! What `audit` reads from the store beyond the mapping: the users with
//! more than one subscription that bills, and a customer's last known
//! subscription (for a repair event).

use std::collections::HashMap;

use rusqlite::OptionalExtension;

use super::Store;

/// A subscription as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeptSubscription {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub price_id: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub payment_method_id: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub created: i64,
}

impl Store {
    /// Users (of customers not deleted) with more than one subscription
    /// whose status `bills`, and those subscriptions' ids, newest first.
    pub(crate) fn users_billed_twice(
        &self,
        bills: impl Fn(&str) -> bool,
    ) -> anyhow::Result<HashMap<String, Vec<String>>> {
        let mut st = self.conn.prepare(
            "SELECT c.user_id, s.id, s.status FROM subscriptions s
             JOIN customers c ON c.id = s.customer_id
             WHERE c.user_id IS NOT NULL AND c.deleted = 0
             ORDER BY c.user_id, s.created DESC, s.id DESC",
        )?;
        let mut rows = st.query([])?;
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        let mut current: Option<(String, Vec<String>)> = None;
        while let Some(r) = rows.next()? {
            let (user, id, status): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if !bills(&status) {
                continue;
            }
            match &mut current {
                Some((u, ids)) if *u == user => ids.push(id),
                _ => {
                    if let Some((u, ids)) = current.take()
                        && ids.len() > 1
                    {
                        out.insert(u, ids);
                    }
                    current = Some((user, vec![id]));
                }
            }
        }
        if let Some((u, ids)) = current
            && ids.len() > 1
        {
            out.insert(u, ids);
        }
        Ok(out)
    }

    /// The customer's subscription as the mapping shows it, else its newest
    /// one (a deleted customer's mapping shows none).
    pub(crate) fn last_subscription(
        &self,
        customer_id: &str,
    ) -> anyhow::Result<Option<KeptSubscription>> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT s.id, s.customer_id, s.status, s.price_id, s.current_period_start,
                        s.current_period_end, s.cancel_at_period_end, s.payment_method_id,
                        s.card_brand, s.card_last4, s.created
                 FROM subscriptions s JOIN customers c ON c.id = s.customer_id
                 WHERE s.customer_id = ?1
                 ORDER BY s.id = c.subscription_id DESC, s.created DESC, s.id DESC
                 LIMIT 1",
            )?
            .query_row([customer_id], |r| {
                Ok(KeptSubscription {
                    id: r.get(0)?,
                    customer_id: r.get(1)?,
                    status: r.get(2)?,
                    price_id: r.get(3)?,
                    current_period_start: r.get(4)?,
                    current_period_end: r.get(5)?,
                    cancel_at_period_end: r.get(6)?,
                    payment_method_id: r.get(7)?,
                    card_brand: r.get(8)?,
                    card_last4: r.get(9)?,
                    created: r.get(10)?,
                })
            })
            .optional()?)
    }

    /// Whether the store knows `customer_id` as deleted in Stripe.
    pub(crate) fn customer_deleted(&self, customer_id: &str) -> anyhow::Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT deleted FROM customers WHERE id = ?1")?
            .query_row([customer_id], |r| r.get::<_, bool>(0))
            .optional()?
            .unwrap_or(false))
    }
}
