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
