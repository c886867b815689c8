//! The audit's rules, pure: one user's record in the app against what the
//! store holds for that user, as findings (no store, no files, no clock).

use std::collections::BTreeSet;

use serde::Serialize;
use serde_json::Value;

use super::record::{AppRecord, Field};
use crate::store::MappingRow;

/// Two periods closer than this are the same (clocks, rounding, ms).
pub(crate) const PERIOD_SLACK_SECS: i64 = 60;

/// What is wrong with one user, most serious first (the order of this enum
/// is the order of the report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// The app grants access that Stripe does not bill.
    UnpaidAccess,
    /// Stripe bills for access the app does not grant.
    PaidNoAccess,
    /// Stripe bills a user the app has no record of.
    MissingInApp,
    /// The app grants access to a user Stripe has no customer for.
    UnknownUser,
    Subscription,
    Customer,
    Status,
    Price,
    Period,
    CancelAtPeriodEnd,
    Card,
    SeveralLiveSubscriptions,
    SeveralCustomers,
}

impl Kind {
    pub(crate) const ALL: [Kind; 13] = [
        Kind::UnpaidAccess,
        Kind::PaidNoAccess,
        Kind::MissingInApp,
        Kind::UnknownUser,
        Kind::Subscription,
        Kind::Customer,
        Kind::Status,
        Kind::Price,
        Kind::Period,
        Kind::CancelAtPeriodEnd,
        Kind::Card,
        Kind::SeveralLiveSubscriptions,
        Kind::SeveralCustomers,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::UnpaidAccess => "unpaid_access",
            Kind::PaidNoAccess => "paid_no_access",
            Kind::MissingInApp => "missing_in_app",
            Kind::UnknownUser => "unknown_user",
            Kind::Subscription => "subscription",
            Kind::Customer => "customer",
            Kind::Status => "status",
            Kind::Price => "price",
            Kind::Period => "period",
            Kind::CancelAtPeriodEnd => "cancel_at_period_end",
            Kind::Card => "card",
            Kind::SeveralLiveSubscriptions => "several_live_subscriptions",
            Kind::SeveralCustomers => "several_customers",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// `--fail-on`: the findings that count for the exit status (none named:
    /// all). `paid_no_access` takes `missing_in_app` with it: no record at
    /// all is the extreme of paid without access.
    pub(crate) fn counted(named: &[String]) -> Result<Vec<Kind>, String> {
        let named: Vec<&str> = named
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if named.is_empty() {
            return Ok(Kind::ALL.to_vec());
        }
        let mut kinds = named
            .into_iter()
            .map(|n| {
                Kind::from_name(n).ok_or_else(|| {
                    format!(
                        "--fail-on: `{}` is not a finding; findings are {}",
                        crate::output::escape_text(n),
                        Kind::ALL.map(Kind::name).join(", ")
                    )
                })
            })
            .collect::<Result<Vec<Kind>, String>>()?;
        if kinds.contains(&Kind::PaidNoAccess) {
            kinds.push(Kind::MissingInApp);
        }
        Ok(kinds)
    }

    /// How the summary names a count of it.
    pub(crate) fn phrase(self) -> &'static str {
        match self {
            Kind::UnpaidAccess => "unpaid access",
            Kind::PaidNoAccess => "paid without access",
            Kind::MissingInApp => "missing in the app",
            Kind::UnknownUser => "unknown to Stripe",
            Kind::Subscription => "subscription",
            Kind::Customer => "customer",
            Kind::Status => "status",
            Kind::Price => "price",
            Kind::Period => "period",
            Kind::CancelAtPeriodEnd => "cancel at period end",
            Kind::Card => "card",
            Kind::SeveralLiveSubscriptions => "several live subscriptions",
            Kind::SeveralCustomers => "several customers",
        }
    }
}

/// One finding: a user, a field, and both sides' values (JSON: strings,
/// unix seconds, booleans, or null for "none").
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Finding {
    pub user_id: String,
    pub customer_id: Option<String>,
    pub finding: Kind,
    pub field: Option<&'static str>,
    pub app: Value,
    pub stripe: Value,
}

/// What the store holds for one user: each of their customers' mapping
/// row (by customer id), and their live subscriptions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Truth {
    pub rows: Vec<MappingRow>,
    /// Subscription ids of the user's that still bill (see [`bills`]).
    pub live_subscriptions: Vec<String>,
}

/// How the rules are applied: which statuses grant access, and which
/// fields the app's source has (only those are compared).
#[derive(Debug, Clone)]
pub(crate) struct Rules {
    pub access: Vec<String>,
    pub fields: BTreeSet<Field>,
}

impl Rules {
    /// `--access`: the statuses that grant access, trimmed, none blank.
    pub(crate) fn access(named: &[String]) -> Result<Vec<String>, String> {
        let access: Vec<String> = named
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        match access.is_empty() {
            true => Err("--access is empty: name the statuses that grant access, e.g. --access active,trialing".into()),
            false => Ok(access),
        }
    }

    fn grants(&self, status: &str) -> bool {
        self.access.iter().any(|a| a == status)
    }

    fn has(&self, f: Field) -> bool {
        self.fields.contains(&f)
    }
}

/// Whether a subscription in this status charges the customer (or will at
/// the trial's end, or is retrying a payment): two of these for one user
/// is a double charge. `unpaid`, `paused` and `incomplete` subscriptions
/// make no payment attempt, and ended ones none at all.
pub(crate) fn bills(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

/// Stripe's status for a mapping row: `deleted` for a deleted customer,
/// `none` without a subscription.
pub(crate) fn stripe_status(row: &MappingRow) -> &str {
    if row.deleted {
        "deleted"
    } else if row.subscription_id.is_none() {
        "none"
    } else {
        &row.status
    }
}

impl Truth {
    /// The customer the app's record is held to: the one it names, if the
    /// user has it; else one whose subscription grants access; else one not
    /// deleted; else the first.
    pub(crate) fn pick(&self, app: Option<&AppRecord>, rules: &Rules) -> Option<&MappingRow> {
        let named = app.and_then(|a| a.customer.as_deref());
        named
            .and_then(|c| self.rows.iter().find(|r| r.customer_id == c))
            .or_else(|| self.rows.iter().find(|r| rules.grants(stripe_status(r))))
            .or_else(|| self.rows.iter().find(|r| !r.deleted))
            .or_else(|| self.rows.first())
    }
}

fn text(v: Option<&str>) -> Value {
    v.map_or(Value::Null, |s| Value::String(s.to_owned()))
}

fn time(v: Option<i64>) -> Value {
    v.map_or(Value::Null, Value::from)
}

/// The findings for one user (`user`), in report order. `app` is None when
/// the app has no record of the user.
pub(crate) fn compare(
    user: &str,
    app: Option<&AppRecord>,
    truth: &Truth,
    rules: &Rules,
) -> Vec<Finding> {
    let row = truth.pick(app, rules);
    let mut out = Vec::new();
    let mut say = |finding: Kind, field: Option<&'static str>, app: Value, stripe: Value| {
        out.push(Finding {
            user_id: user.to_owned(),
            customer_id: row.map(|r| r.customer_id.clone()),
            finding,
            field,
            app,
            stripe,
        });
    };
    let stripe_state = row.map(stripe_status);
    let stripe_access = stripe_state.is_some_and(|s| rules.grants(s));
    let several = |say: &mut dyn FnMut(Kind, Option<&'static str>, Value, Value)| {
        if truth.live_subscriptions.len() > 1 {
            say(
                Kind::SeveralLiveSubscriptions,
                Some("subscription"),
                text(app.and_then(|a| a.subscription.as_deref())),
                Value::from(truth.live_subscriptions.clone()),
            );
        }
        let customers: Vec<&str> = truth
            .rows
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| r.customer_id.as_str())
            .collect();
        if customers.len() > 1 {
            say(
                Kind::SeveralCustomers,
                Some("customer"),
                text(app.and_then(|a| a.customer.as_deref())),
                Value::from(customers),
            );
        }
    };

    let Some(app) = app else {
        if stripe_access {
            say(Kind::MissingInApp, None, Value::Null, text(stripe_state));
            several(&mut say);
        }
        return out;
    };
    let app_state = app.status.as_deref().unwrap_or("none");
    let app_access = rules.has(Field::Status) && rules.grants(app_state);
    let Some(row) = row else {
        if app_access {
            say(
                Kind::UnknownUser,
                Some("status"),
                text(Some(app_state)),
                Value::Null,
            );
        }
        return out;
    };
    let stripe_state = stripe_status(row);

    if rules.has(Field::Customer) && app.customer.as_deref() != Some(row.customer_id.as_str()) {
        say(
            Kind::Customer,
            Some("customer"),
            text(app.customer.as_deref()),
            text(Some(&row.customer_id)),
        );
    }
    if rules.has(Field::Status) {
        if app_access && !stripe_access {
            say(
                Kind::UnpaidAccess,
                Some("status"),
                text(Some(app_state)),
                text(Some(stripe_state)),
            );
        } else if !app_access && stripe_access {
            say(
                Kind::PaidNoAccess,
                Some("status"),
                text(Some(app_state)),
                text(Some(stripe_state)),
            );
        } else if !same_status(app_state, stripe_state) {
            say(
                Kind::Status,
                Some("status"),
                text(Some(app_state)),
                text(Some(stripe_state)),
            );
        }
    }
    // A deleted customer has nothing else to hold the app to: Stripe
    // canceled its subscriptions with it.
    if !row.deleted {
        subscription_fields(app, row, rules, &mut say);
    }
    several(&mut say);
    out
}

/// A status the app may keep for a customer Stripe deleted (the app saw
/// the cancellation, or nothing) is not a difference.
fn same_status(app: &str, stripe: &str) -> bool {
    app == stripe || (stripe == "deleted" && matches!(app, "canceled" | "none"))
}

/// The subscription's own fields, each compared when the app has it.
fn subscription_fields(
    app: &AppRecord,
    row: &MappingRow,
    rules: &Rules,
    say: &mut dyn FnMut(Kind, Option<&'static str>, Value, Value),
) {
    let strings = [
        (
            Field::Subscription,
            Kind::Subscription,
            app.subscription.as_deref(),
            row.subscription_id.as_deref(),
        ),
        (
            Field::Price,
            Kind::Price,
            app.price.as_deref(),
            row.price_id.as_deref(),
        ),
    ];
    for (field, kind, a, s) in strings {
        if rules.has(field) && a != s {
            say(kind, Some(field.name()), text(a), text(s));
        }
    }
    let periods = [
        (
            Field::PeriodStart,
            app.period_start,
            row.current_period_start,
        ),
        (Field::PeriodEnd, app.period_end, row.current_period_end),
    ];
    for (field, a, s) in periods {
        let apart = match (a, s) {
            (Some(a), Some(s)) => (a - s).abs() > PERIOD_SLACK_SECS,
            (None, None) => false,
            _ => true,
        };
        if rules.has(field) && apart {
            say(Kind::Period, Some(field.name()), time(a), time(s));
        }
    }
    // An app without a subscription keeps no flag: absent is false.
    let cancel = app.cancel_at_period_end.unwrap_or(false);
    if rules.has(Field::CancelAtPeriodEnd) && cancel != row.cancel_at_period_end {
        say(
            Kind::CancelAtPeriodEnd,
            Some("cancel_at_period_end"),
            app.cancel_at_period_end.map_or(Value::Null, Value::Bool),
            Value::Bool(row.cancel_at_period_end),
        );
    }
    let card = row.payment_method.as_ref();
    let cards = [
        (
            Field::CardBrand,
            app.card_brand.as_deref(),
            card.and_then(|c| c.brand.as_deref()),
        ),
        (
            Field::CardLast4,
            app.card_last4.as_deref(),
            card.and_then(|c| c.last4.as_deref()),
        ),
    ];
    for (field, a, s) in cards {
        if rules.has(field) && a != s {
            say(Kind::Card, Some(field.name()), text(a), text(s));
        }
    }
}

#[cfg(test)]
mod tests;
