//! The store's small reads, once for both backends (see [`super::sql`]):
//! what routing, `serve`, `resync` and `audit` ask of one customer, one
//! user or one event. The walks of the whole mapping are each backend's
//! own (SQLite reads it with several connections at once).

use super::Known;
use super::sql::{self, Arg, Db};
use crate::objects::{Card, SubscriptionRecord};

/// A column the schema holds NOT NULL.
fn required<T>(v: Option<T>, what: &str) -> anyhow::Result<T> {
    v.ok_or_else(|| anyhow::anyhow!("the store's {what} is NULL"))
}

pub(super) fn event_seen(db: &mut impl Db, id: &str) -> anyhow::Result<bool> {
    Ok(sql::one(
        db,
        "SELECT 1 FROM events WHERE id = ?1",
        &[Arg::Text(id)],
        |_| Ok(()),
    )?
    .is_some())
}

/// Events in the log, for tests.
#[cfg(test)]
pub(super) fn count_events(db: &mut impl Db) -> anyhow::Result<i64> {
    Ok(
        sql::one(db, "SELECT count(*) FROM events", &[], |r| r.int(0))?
            .flatten()
            .unwrap_or(0),
    )
}

/// Whether any event has been logged yet.
pub(super) fn has_events(db: &mut impl Db) -> anyhow::Result<bool> {
    Ok(
        sql::one(db, "SELECT EXISTS(SELECT 1 FROM events)", &[], |r| {
            r.flag(0)
        })?
        .unwrap_or(false),
    )
}

/// Whether the store holds any customer.
pub(super) fn has_customers(db: &mut impl Db) -> anyhow::Result<bool> {
    Ok(
        sql::one(db, "SELECT EXISTS(SELECT 1 FROM customers)", &[], |r| {
            r.flag(0)
        })?
        .unwrap_or(false),
    )
}

/// What the store knows of a customer's user.
pub(super) fn customer_user(db: &mut impl Db, customer_id: &str) -> anyhow::Result<Known> {
    let user = sql::one(
        db,
        "SELECT user_id FROM customers WHERE id = ?1",
        &[Arg::Text(customer_id)],
        |r| r.string(0),
    )?;
    Ok(match user {
        None => Known::Unknown,
        Some(None) => Known::Unmapped,
        Some(Some(u)) => Known::User(u),
    })
}

pub(super) fn customer_known(db: &mut impl Db, customer_id: &str) -> anyhow::Result<bool> {
    Ok(sql::one(
        db,
        "SELECT 1 FROM customers WHERE id = ?1",
        &[Arg::Text(customer_id)],
        |_| Ok(()),
    )?
    .is_some())
}

/// Customers the store maps to a user, by id.
pub(super) fn customers_of_user(db: &mut impl Db, user_id: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    db.each(
        "SELECT id FROM customers WHERE user_id = ?1 ORDER BY id",
        &[Arg::Text(user_id)],
        &mut |r| {
            out.push(required(r.string(0)?, "customer id")?);
            Ok(true)
        },
    )?;
    Ok(out)
}

/// The customer of each subscription whose status `bills`, handed to
/// `each` one at a time: one pass over the table in its own order, no
/// sort, no index, nothing held, so the audit keeps only what it needs to
/// sum them per user in its walk of the mapping.
pub(super) fn for_each_billing_customer(
    db: &mut impl Db,
    bills: impl Fn(&str) -> bool,
    mut each: impl FnMut(&str),
) -> anyhow::Result<()> {
    db.each(
        "SELECT customer_id, status FROM subscriptions",
        &[],
        &mut |r| {
            if bills(required(r.text(1)?, "subscription status")?) {
                each(required(r.text(0)?, "subscription's customer")?);
            }
            Ok(true)
        },
    )
}

/// The subscriptions whose status `bills` of the user's customers that
/// are not deleted, newest first.
pub(super) fn billing_subscriptions_of(
    db: &mut impl Db,
    user_id: &str,
    bills: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    db.each(
        "SELECT s.id, s.status FROM subscriptions s
         JOIN customers c ON c.id = s.customer_id
         WHERE c.user_id = ?1 AND NOT c.deleted
         ORDER BY s.created DESC, s.id DESC",
        &[Arg::Text(user_id)],
        &mut |r| {
            if bills(required(r.text(1)?, "subscription status")?) {
                out.push(required(r.string(0)?, "subscription id")?);
            }
            Ok(true)
        },
    )?;
    Ok(out)
}

/// The customer's subscription as the mapping shows it, else its newest
/// one (a deleted customer's mapping shows none), and whether the customer
/// is deleted.
pub(super) fn last_subscription(
    db: &mut impl Db,
    customer_id: &str,
) -> anyhow::Result<Option<(SubscriptionRecord, bool)>> {
    sql::one(
        db,
        "SELECT s.id, s.customer_id, s.status, s.price_id, s.current_period_start,
                s.current_period_end, s.cancel_at_period_end, s.payment_method_id,
                s.card_brand, s.card_last4, s.created, c.deleted
         FROM subscriptions s JOIN customers c ON c.id = s.customer_id
         WHERE s.customer_id = ?1
         ORDER BY CASE WHEN s.id = c.subscription_id THEN 0 ELSE 1 END,
                  s.created DESC, s.id DESC
         LIMIT 1",
        &[Arg::Text(customer_id)],
        |r| {
            let (brand, last4) = (r.string(8)?, r.string(9)?);
            let sub = SubscriptionRecord {
                id: required(r.string(0)?, "subscription id")?,
                customer_id: required(r.string(1)?, "subscription's customer")?,
                status: required(r.string(2)?, "subscription status")?,
                price_id: r.string(3)?,
                current_period_start: r.int(4)?,
                current_period_end: r.int(5)?,
                cancel_at_period_end: r.flag(6)?,
                payment_method_id: r.string(7)?,
                card: (brand.is_some() || last4.is_some()).then_some(Card { brand, last4 }),
                created: required(r.int(10)?, "subscription's creation time")?,
            };
            Ok((sub, r.flag(11)?))
        },
    )
}
