//! `audit`: the app's own billing records held to the store's truth, user
//! by user, and repaired through the app's own webhook.
//!
//! The app's records are read first (every source streams; each record is
//! kept in its compact, normalized form, so two records for one user are
//! found before either is judged), then the store's mapping is walked once
//! in user order, and each user's record meets that user's rows in
//! [`compare::compare`], the rules. What the app has and the store lacks
//! (unknown users) is judged last.

pub(crate) mod appdb;
pub(crate) mod compare;
pub(crate) mod fields;
pub(crate) mod live;
pub(crate) mod record;
pub(crate) mod repair;
pub(crate) mod source;

use std::collections::BTreeMap;

use serde::Serialize;

use compare::{Finding, Kind, Rules, Truth};
use record::{AppRecord, Field, Item, Origin, Packed, Problem};

use crate::store::{Filter, MappingRow, Store};

/// The app's records by user, as read from the source.
pub(crate) struct AppSide {
    records: Records,
    problems: Vec<Problem>,
    pub read: source::Read,
}

/// foldhash: one look-up per record and per user of the store; SipHash
/// was a tenth of the audit's time.
type Records = foldhash::HashMap<Box<str>, Slot>;

enum Slot {
    /// The record, and where it is (`Origin::unit`, `Origin::at`), should a
    /// second record for its user turn up.
    One(Packed, &'static str, Box<str>),
    /// Two or more records for one user: none is compared.
    Many(Vec<Origin>),
}

impl AppSide {
    /// Read the whole source; records that cannot be audited become
    /// problems (named by file and line or row).
    pub(crate) fn read(spec: &source::Spec) -> anyhow::Result<AppSide> {
        let mut records = Records::default();
        let mut problems = Vec::new();
        let mut label = String::new();
        let read = source::read(spec, &mut |item| {
            match item {
                Item::Problem(p) => problems.push(p),
                Item::Record(r, origin) => match records.get_mut(r.user.as_str()) {
                    None => {
                        if label.is_empty() {
                            label.clone_from(&origin.source);
                        }
                        let slot = Slot::One(Packed::pack(&r), origin.unit, origin.at.into());
                        records.insert(r.user.into_boxed_str(), slot);
                    }
                    Some(slot) => match slot {
                        Slot::One(_, unit, at) => {
                            let first = Origin {
                                source: label.clone(),
                                unit,
                                at: at.to_string(),
                            };
                            *slot = Slot::Many(vec![first, origin]);
                        }
                        Slot::Many(all) => all.push(origin),
                    },
                },
            }
            Ok(())
        })?;
        let mut twice: Vec<(&Box<str>, &Vec<Origin>)> = records
            .iter()
            .filter_map(|(user, slot)| match slot {
                Slot::Many(all) => Some((user, all)),
                Slot::One(..) => None,
            })
            .collect();
        twice.sort_by(|a, b| a.0.cmp(b.0));
        for (user, all) in twice {
            problems.push(Problem {
                origin: all[0].clone(),
                field: Some(Field::User),
                message: format!(
                    "user {} has {} records ({}): none of them is compared; keep one record per user, or narrow the source (--query, --table)",
                    crate::output::escape_text(user),
                    all.len(),
                    all.iter()
                        .map(|o| format!("{} {}", o.unit, o.at))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        Ok(AppSide {
            records,
            problems,
            read,
        })
    }

    /// The users the app has one record for, sorted.
    pub(crate) fn users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .records
            .iter()
            .filter(|(_, s)| matches!(s, Slot::One(..)))
            .map(|(u, _)| u.to_string())
            .collect();
        users.sort();
        users
    }
}

/// What the audit found.
pub(crate) struct Report {
    /// Most serious first, then by user.
    pub findings: Vec<Finding>,
    pub problems: Vec<Problem>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// Users audited: every user with one record in the app, and every user
    /// Stripe bills that the app has no record of.
    pub users: u64,
    pub in_sync: u64,
    pub drifted: u64,
    /// Every kind, in report order, with its count.
    pub findings: BTreeMap<Kind, u64>,
    pub fields_compared: Vec<&'static str>,
    /// Records that could not be audited (see `problems`).
    pub problems: u64,
    /// The source, as it may be shown (a database URL without its password).
    pub source: String,
}

impl Report {
    /// Whether a finding of a kind in `fail_on` was made.
    pub(crate) fn fails(&self, fail_on: &[Kind]) -> bool {
        self.findings.iter().any(|f| fail_on.contains(&f.finding))
    }

    /// The drifted users, most serious first, each with the customer its
    /// findings are about.
    pub(crate) fn drifted(&self) -> Vec<(&str, Option<&str>)> {
        let mut seen = std::collections::HashSet::new();
        self.findings
            .iter()
            .filter(|f| seen.insert(f.user_id.as_str()))
            .map(|f| (f.user_id.as_str(), f.customer_id.as_deref()))
            .collect()
    }
}

/// Each reader of the store's walk keeps this much of the file (KiB): the
/// walk meets pages in no order, and SQLite's 2 MiB default made most rows
/// a read from the file (a third of the audit's time at 100,000 users).
const READER_CACHE_KIB: i64 = 16 * 1024;

/// The findings so far, and how many users they are about.
#[derive(Default)]
struct Judged {
    findings: Vec<Finding>,
    users: u64,
    drifted: u64,
}

impl Judged {
    fn judge(&mut self, user: &str, app: Option<&AppRecord>, truth: &Truth, rules: &Rules) {
        let found = compare::compare(user, app, truth, rules);
        // A user the app does not know counts only when Stripe bills them.
        if app.is_some() || !found.is_empty() {
            self.users += 1;
        }
        self.drifted += u64::from(!found.is_empty());
        self.findings.extend(found);
    }
}

/// The customer the app's record names for a user the store maps to no
/// customer, when the store knows that customer without a user: its
/// metadata never named one, or it was deleted before the store saw it
/// (Stripe lists no deleted customer, so a backfill learns only its id).
/// The app's own link is then the only one, and the customer's truth is
/// the user's. A customer mapped to another user is not taken.
fn adopted(store: &Store, r: &AppRecord) -> anyhow::Result<Option<MappingRow>> {
    let Some(c) = r.customer.as_deref() else {
        return Ok(None);
    };
    Ok(store.mapping_of(c)?.filter(|row| row.user_id.is_none()))
}

/// Read the source again and hold it to the store (`--recheck`); the
/// source as read, and the report.
pub(crate) fn again(
    store: &Store,
    spec: &source::Spec,
    access: Vec<String>,
) -> anyhow::Result<(source::Read, Report)> {
    let app = AppSide::read(spec)?;
    let read = app.read.clone();
    let rules = Rules {
        access,
        fields: read.fields.clone(),
    };
    Ok((read, hold(store, app, &rules)?))
}

/// Hold the app's records to the store, user by user.
pub(crate) fn hold(store: &Store, app: AppSide, rules: &Rules) -> anyhow::Result<Report> {
    let AppSide {
        mut records,
        problems,
        read,
    } = app;
    let billing = store.billing_subscriptions(compare::bills)?;
    let mut judged = Judged::default();
    // The mapping comes in user order: one user's rows are together.
    let mut group: Vec<MappingRow> = Vec::new();
    let mut flush = |group: &mut Vec<MappingRow>, judged: &mut Judged| -> anyhow::Result<()> {
        let Some(user) = group.first().and_then(|r| r.user_id.clone()) else {
            return Ok(());
        };
        // Deleted customers' subscriptions were canceled with them.
        let billed: u32 = group
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| billing.get(r.customer_id.as_str()).copied().unwrap_or(0))
            .sum();
        let truth = Truth {
            rows: std::mem::take(group),
            live_subscriptions: match billed > 1 {
                true => store.billing_subscriptions_of(&user, compare::bills)?,
                false => Vec::new(),
            },
        };
        match records.remove(user.as_str()) {
            Some(Slot::Many(_)) => {}
            Some(Slot::One(r, ..)) => judged.judge(&user, Some(&r.unpack(&user)), &truth, rules),
            None => judged.judge(&user, None, &truth, rules),
        }
        Ok(())
    };
    store.cache_readers(READER_CACHE_KIB);
    store.for_each_mapping(&Filter::default(), |row| {
        if row.user_id.is_none() {
            return Ok(());
        }
        if group.first().is_some_and(|g| g.user_id != row.user_id) {
            flush(&mut group, &mut judged)?;
        }
        group.push(row.clone());
        Ok(())
    })?;
    flush(&mut group, &mut judged)?;
    drop(billing);
    // Users the store has no customer for.
    let mut unknown: Vec<(String, AppRecord)> = records
        .into_iter()
        .filter_map(|(u, slot)| match slot {
            Slot::One(r, ..) => Some((u.to_string(), r.unpack(&u))),
            Slot::Many(_) => None,
        })
        .collect();
    unknown.sort_by(|a, b| a.0.cmp(&b.0));
    for (user, r) in unknown {
        let truth = Truth {
            rows: adopted(store, &r)?.into_iter().collect(),
            live_subscriptions: Vec::new(),
        };
        judged.judge(&user, Some(&r), &truth, rules);
    }
    let Judged {
        mut findings,
        users,
        drifted,
    } = judged;
    // Stable: within a kind, users stay in order.
    findings.sort_by_key(|f| f.finding);
    let mut counts: BTreeMap<Kind, u64> = Kind::ALL.into_iter().map(|k| (k, 0)).collect();
    for f in &findings {
        *counts.entry(f.finding).or_default() += 1;
    }
    let summary = Summary {
        users,
        in_sync: users - drifted,
        drifted,
        findings: counts,
        fields_compared: rules
            .fields
            .iter()
            .filter(|f| **f != Field::User)
            .map(|f| f.name())
            .collect(),
        problems: problems.len() as u64,
        source: read.label.clone(),
    };
    Ok(Report {
        findings,
        problems,
        summary,
    })
}
