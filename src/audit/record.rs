//! The app's own billing record for one user, as `audit` reads it from any
//! source (a file, a Convex export, a KV dump, the app's database), and
//! where it came from, for messages.

use std::fmt;

/// The fields `audit` knows, in the order findings and summaries name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Field {
    User,
    Customer,
    Subscription,
    Status,
    Price,
    PeriodStart,
    PeriodEnd,
    CancelAtPeriodEnd,
    CardBrand,
    CardLast4,
}

impl Field {
    pub(crate) const ALL: [Field; 10] = [
        Field::User,
        Field::Customer,
        Field::Subscription,
        Field::Status,
        Field::Price,
        Field::PeriodStart,
        Field::PeriodEnd,
        Field::CancelAtPeriodEnd,
        Field::CardBrand,
        Field::CardLast4,
    ];

    /// The name used by `--field NAME=PATH`, `[audit.fields]` and the JSON.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::User => "user",
            Field::Customer => "customer",
            Field::Subscription => "subscription",
            Field::Status => "status",
            Field::Price => "price",
            Field::PeriodStart => "period_start",
            Field::PeriodEnd => "period_end",
            Field::CancelAtPeriodEnd => "cancel_at_period_end",
            Field::CardBrand => "card_brand",
            Field::CardLast4 => "card_last4",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a record came from: the source's name (a path, `stdin`, a table
/// of a Convex export, `query`) and the line or row within it (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Origin {
    pub source: String,
    /// "line" for text files, "row" for CSV and query results, "key" for
    /// records keyed by a name (a JSON object's key, a KV key).
    pub unit: &'static str,
    pub at: String,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {} {}", self.source, self.unit, self.at)
    }
}

/// One user's record in the app, normalized: times are unix seconds, a
/// status of `none`, null or absent is `None` (no subscription), strings
/// are kept exactly as the app holds them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct AppRecord {
    pub user: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub status: Option<String>,
    pub price: Option<String>,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
    pub cancel_at_period_end: Option<bool>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
}

/// A record that cannot be audited, and why; the record is left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Problem {
    pub origin: Origin,
    /// The field at fault, when one is.
    pub field: Option<Field>,
    /// What is wrong, and what to do, in words (no secret, no parser jargon).
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.field {
            Some(field) => write!(f, "{}: {}: {}", self.origin, field, self.message),
            None => write!(f, "{}: {}", self.origin, self.message),
        }
    }
}

/// What a source yields, in source order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Record(AppRecord, Origin),
    Problem(Problem),
}

/// An [`AppRecord`] as the audit holds it between reading the source and
/// walking the store: its strings in one allocation (a hundred thousand
/// records in a few tens of MB), the user kept by the map that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    /// customer, subscription, status, price, card_brand, card_last4, one
    /// after the other.
    text: Box<str>,
    /// Where each of those ends in `text`; `u32::MAX` when absent.
    ends: [u32; 6],
    period_start: Option<i64>,
    period_end: Option<i64>,
    cancel_at_period_end: Option<bool>,
}

impl Packed {
    pub(crate) fn pack(r: &AppRecord) -> Packed {
        let parts = [
            &r.customer,
            &r.subscription,
            &r.status,
            &r.price,
            &r.card_brand,
            &r.card_last4,
        ];
        let mut text = String::with_capacity(
            parts
                .iter()
                .map(|p| p.as_ref().map_or(0, String::len))
                .sum(),
        );
        let mut ends = [u32::MAX; 6];
        for (end, part) in ends.iter_mut().zip(parts) {
            if let Some(p) = part {
                text.push_str(p);
                *end = u32::try_from(text.len()).unwrap_or(u32::MAX - 1);
            }
        }
        Packed {
            text: text.into_boxed_str(),
            ends,
            period_start: r.period_start,
            period_end: r.period_end,
            cancel_at_period_end: r.cancel_at_period_end,
        }
    }

    /// The record again, for `user`.
    pub(crate) fn unpack(&self, user: &str) -> AppRecord {
        let mut start = 0usize;
        let mut part = |i: usize| -> Option<String> {
            let end = self.ends[i];
            if end == u32::MAX {
                return None;
            }
            let end = end as usize;
            let s = self.text.get(start..end).map(str::to_owned);
            start = end;
            s
        };
        AppRecord {
            user: user.to_owned(),
            customer: part(0),
            subscription: part(1),
            status: part(2),
            price: part(3),
            card_brand: part(4),
            card_last4: part(5),
            period_start: self.period_start,
            period_end: self.period_end,
            cancel_at_period_end: self.cancel_at_period_end,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_packed_record_unpacks_to_itself() {
        let full = AppRecord {
            user: "user_1".into(),
            customer: Some("cus_1".into()),
            subscription: None,
            status: Some("active".into()),
            price: Some(String::new()),
            period_start: Some(1),
            period_end: None,
            cancel_at_period_end: Some(true),
            card_brand: Some("visa".into()),
            card_last4: Some("4242".into()),
        };
        assert_eq!(Packed::pack(&full).unpack("user_1"), full);
        let empty = AppRecord {
            user: "u".into(),
            ..AppRecord::default()
        };
        assert_eq!(Packed::pack(&empty).unpack("u"), empty);
    }
}
