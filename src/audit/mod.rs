//! `audit`: the app's own billing records held to the store's truth, user
//! by user, and repaired through the app's own webhook.
//!
//! The app's records are read first (every source streams) and sorted by
//! user through temporary files ([`spill`]), so memory holds a few MB of
//! them whatever their number. Then the store's mapping is walked once in
//! user order beside the app's users in the same order (a merge), and each
//! user's record meets that user's rows in [`compare::compare`], the
//! rules; two records for one user come out of the sort together, and
//! none of them is compared. What the app has and the store lacks
//! (unknown users) is judged last.

pub(crate) mod appdb;
pub(crate) mod compare;
pub(crate) mod fields;
pub(crate) mod live;
pub(crate) mod record;
pub(crate) mod repair;
pub(crate) mod source;
pub(crate) mod spill;

use std::collections::BTreeMap;
use std::hash::BuildHasher;

use serde::Serialize;

use compare::{Finding, Kind, Rules, Truth};
use record::{AppRecord, Field, Item, Origin, Problem};
use spill::{AppUser, AppUsers, Sorted, Sorter, Spool};

use crate::store::{Filter, MappingRow, Store};

/// The app's records, as read from the source, sorted by user.
pub(crate) struct AppSide {
    records: Sorted,
    problems: Vec<Problem>,
    pub read: source::Read,
}

impl AppSide {
    /// Read the whole source; records that cannot be audited become
    /// problems (named by file and line or row).
    pub(crate) fn read(spec: &source::Spec) -> anyhow::Result<AppSide> {
        AppSide::gather(spill::RUN_BYTES, |each| source::read(spec, each))
    }

    /// The items `read` hands out, sorted in runs of `run_bytes`.
    fn gather(
        run_bytes: usize,
        read: impl FnOnce(&mut dyn FnMut(Item) -> anyhow::Result<()>) -> anyhow::Result<source::Read>,
    ) -> anyhow::Result<AppSide> {
        let mut sorter = Sorter::new(run_bytes);
        let mut problems = Vec::new();
        let read = read(&mut |item| match item {
            Item::Problem(p) => {
                problems.push(p);
                Ok(())
            }
            Item::Record(r, origin) => sorter.push(&r, &origin),
        })?;
        Ok(AppSide {
            records: sorter.finish()?,
            problems,
            read,
        })
    }

    /// The users the app has one record for, sorted.
    pub(crate) fn users(&self) -> anyhow::Result<Vec<String>> {
        let mut all = self.records.users()?;
        let mut users = Vec::new();
        while let Some(u) = all.next()? {
            if let AppUser::One(r) = u {
                users.push(r.user);
            }
        }
        Ok(users)
    }
}

/// Two or more records for one user, as a problem naming each.
fn several_records(user: &str, all: &[Origin]) -> Problem {
    Problem {
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

/// The readers of the store's walk keep this much of the file between
/// them (KiB): the walk meets the subscriptions' pages in no order, and
/// this holds the upper levels of the trees of a million customers, which
/// saves most reads; more (16 MiB a reader was tried) bought little at
/// 100,000 users and cost a third of the audit's memory.
const READER_CACHE_KIB: i64 = 8 * 1024;

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

/// How many subscriptions that bill each customer has, as a sorted list
/// with a 32-bit hash of the customer for each such subscription: 4 bytes
/// a subscription, where a map by customer id took some 60. A hash that
/// two customers share can only make a count too high, and a user whose
/// count passes one has their subscriptions read from the store, so what
/// is reported stays exact (at a million customers, some 150 reads more
/// are to be expected: 1 in 2^32 per subscription that bills, per user).
struct Billing {
    hashes: Vec<u32>,
    hasher: foldhash::fast::FixedState,
}

impl Billing {
    fn read(store: &Store) -> anyhow::Result<Billing> {
        let hasher = foldhash::fast::FixedState::default();
        let mut hashes = Vec::new();
        store.for_each_billing_customer(compare::bills, |c| {
            hashes.push(Billing::hash(&hasher, c));
        })?;
        hashes.sort_unstable();
        Ok(Billing { hashes, hasher })
    }

    fn hash(hasher: &foldhash::fast::FixedState, customer: &str) -> u32 {
        (hasher.hash_one(customer) >> 32) as u32
    }

    /// The subscriptions that bill `customer` (or more, see [`Billing`]).
    fn of(&self, customer: &str) -> usize {
        let h = Billing::hash(&self.hasher, customer);
        let from = self.hashes.partition_point(|&x| x < h);
        self.hashes[from..].iter().take_while(|&&x| x == h).count()
    }
}

/// The store's walk in user order beside the app's users in the same order.
struct Walk<'a> {
    store: &'a Store,
    rules: &'a Rules,
    billing: Billing,
    /// The app's users, and the next one not yet met.
    app: AppUsers<'a>,
    next: Option<AppUser>,
    /// The app's users the store has no customer for, in order.
    unknown: Spool,
    /// Users with several records, in order.
    problems: Vec<Problem>,
    judged: Judged,
    /// The store's last user, to check the walk's order.
    last: Option<String>,
}

impl Walk<'_> {
    /// Pass the app's users before `user` (all that are left: None): the
    /// store has no customer for them.
    fn app_before(&mut self, user: Option<&str>) -> anyhow::Result<()> {
        while let Some(next) = &self.next {
            if user.is_some_and(|u| next.user() >= u) {
                break;
            }
            match self.next.take() {
                Some(AppUser::One(r)) => self.unknown.push(&r)?,
                Some(AppUser::Many(u, all)) => self.problems.push(several_records(&u, &all)),
                None => {}
            }
            self.next = self.app.next()?;
        }
        Ok(())
    }

    /// One user's rows (all of them: the mapping shows a user's rows
    /// together), held to the app's record for that user.
    fn store_user(&mut self, group: &mut Vec<MappingRow>) -> anyhow::Result<()> {
        let Some(user) = group.first().and_then(|r| r.user_id.clone()) else {
            return Ok(());
        };
        // The merge needs the same order as `&str`'s; SQLite's BINARY
        // collation (memcmp, then length) on UTF-8 is that order.
        if self.last.as_ref().is_some_and(|last| *last >= user) {
            anyhow::bail!(
                "the store's mapping is not in user order (user {} after {}): check the store with `sqlite3 PATH 'PRAGMA integrity_check'`",
                crate::output::escape_text(&user),
                crate::output::escape_text(self.last.as_deref().unwrap_or_default())
            );
        }
        self.app_before(Some(&user))?;
        let met = self.next.take_if(|a| a.user() == user);
        if met.is_some() {
            self.next = self.app.next()?;
        }
        let app = match met {
            Some(AppUser::One(r)) => Some(r),
            Some(AppUser::Many(u, all)) => {
                self.problems.push(several_records(&u, &all));
                group.clear();
                self.last = Some(user);
                return Ok(());
            }
            None => None,
        };
        // Deleted customers' subscriptions were canceled with them.
        let billed: usize = group
            .iter()
            .filter(|r| !r.deleted)
            .map(|r| self.billing.of(&r.customer_id))
            .sum();
        let truth = Truth {
            rows: std::mem::take(group),
            live_subscriptions: match billed > 1 {
                true => self.store.billing_subscriptions_of(&user, compare::bills)?,
                false => Vec::new(),
            },
        };
        self.judged.judge(&user, app.as_ref(), &truth, self.rules);
        self.last = Some(user);
        Ok(())
    }
}

/// Hold the app's records to the store, user by user.
pub(crate) fn hold(store: &Store, app: AppSide, rules: &Rules) -> anyhow::Result<Report> {
    let AppSide {
        records,
        mut problems,
        read,
    } = app;
    let mut users = records.users()?;
    let mut walk = Walk {
        store,
        rules,
        billing: Billing::read(store)?,
        next: users.next()?,
        app: users,
        unknown: Spool::default(),
        problems: Vec::new(),
        judged: Judged::default(),
        last: None,
    };
    // The mapping comes in user order: one user's rows are together.
    let mut group: Vec<MappingRow> = Vec::new();
    store.cache_readers(READER_CACHE_KIB);
    store.for_each_mapping(&Filter::default(), |row| {
        if row.user_id.is_none() {
            return Ok(());
        }
        if group.first().is_some_and(|g| g.user_id != row.user_id) {
            walk.store_user(&mut group)?;
        }
        group.push(row.clone());
        Ok(())
    })?;
    walk.store_user(&mut group)?;
    walk.app_before(None)?;
    let Walk {
        billing,
        unknown,
        problems: several,
        mut judged,
        ..
    } = walk;
    drop(billing);
    problems.extend(several);
    // Users the store has no customer for, in order.
    let mut unknown = unknown.read_back()?;
    while let Some(r) = unknown.next()? {
        let truth = Truth {
            rows: adopted(store, &r)?.into_iter().collect(),
            live_subscriptions: Vec::new(),
        };
        judged.judge(&r.user, Some(&r), &truth, rules);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::objects::SubscriptionRecord;
    use crate::store::{Current, CustomerInfo, CustomerWrite, RecordSource};

    const STATUSES: [&str; 6] = [
        "active", "trialing", "past_due", "canceled", "unpaid", "none",
    ];

    /// A customer of the store: its user, whether deleted, and its
    /// subscriptions' statuses (the first is the mapping's).
    struct Customer<'a> {
        id: String,
        user: Option<String>,
        deleted: bool,
        subscriptions: Vec<&'a str>,
    }

    fn store_of(customers: &[Customer<'_>]) -> Store {
        let mut store = Store::in_memory().unwrap();
        for c in customers {
            let subs: Vec<(SubscriptionRecord, i64)> = c
                .subscriptions
                .iter()
                .enumerate()
                .map(|(i, status)| {
                    let sub = SubscriptionRecord {
                        id: format!("sub_{}_{i}", c.id),
                        customer_id: c.id.clone(),
                        status: (*status).into(),
                        price_id: Some(format!("price_{}", i % 2)),
                        current_period_start: Some(1_000),
                        current_period_end: Some(2_000),
                        cancel_at_period_end: false,
                        payment_method_id: None,
                        card: None,
                        created: 100 - i as i64,
                    };
                    (sub, 1)
                })
                .collect();
            let current = subs.first().map(|(s, _)| s.id.clone());
            let write = CustomerWrite {
                customer_id: c.id.clone(),
                info: CustomerInfo {
                    user_id: c.user.clone(),
                    email: None,
                    deleted: c.deleted,
                    snapshot_at: Some(1),
                },
                user_key: "clerkUserId".into(),
                subscriptions: subs,
                evidence: Vec::new(),
                customer_evidence: None,
                current: Current::Listed(current, 1),
                source: RecordSource::Api,
            };
            store.apply(&[write]).unwrap();
        }
        store
    }

    fn rules() -> Rules {
        Rules {
            access: vec!["active".into(), "trialing".into()],
            fields: Field::ALL.into_iter().collect(),
        }
    }

    fn read_of(items: &[Item]) -> source::Read {
        source::Read {
            fields: Field::ALL.into_iter().collect(),
            records: items.len() as u64,
            label: "app.csv".into(),
        }
    }

    /// The app's side from `items`, sorted in runs of `run_bytes`.
    fn app_of(items: &[Item], run_bytes: usize) -> AppSide {
        AppSide::gather(run_bytes, |each| {
            for item in items {
                each(item.clone())?;
            }
            Ok(read_of(items))
        })
        .unwrap()
    }

    /// The audit as it was before the sort: every record held in a map by
    /// user, duplicates found first, the store's users in its walk's
    /// order, then the rest of the app's users in order.
    fn held_in_memory(store: &Store, items: &[Item], rules: &Rules) -> Report {
        let mut records: BTreeMap<String, Vec<(AppRecord, Origin)>> = BTreeMap::new();
        let mut problems = Vec::new();
        for item in items {
            match item {
                Item::Problem(p) => problems.push(p.clone()),
                Item::Record(r, o) => records
                    .entry(r.user.clone())
                    .or_default()
                    .push((r.clone(), o.clone())),
            }
        }
        for (user, all) in &records {
            if all.len() > 1 {
                let origins: Vec<Origin> = all.iter().map(|(_, o)| o.clone()).collect();
                problems.push(several_records(user, &origins));
            }
        }
        let mut judged = Judged::default();
        let rows = store.mapping(&Filter::default()).unwrap();
        for group in rows.chunk_by(|a, b| a.user_id == b.user_id) {
            let Some(user) = &group[0].user_id else {
                continue;
            };
            let live = store
                .billing_subscriptions_of(user, compare::bills)
                .unwrap();
            let truth = Truth {
                rows: group.to_vec(),
                live_subscriptions: if live.len() > 1 { live } else { Vec::new() },
            };
            match records.remove(user).as_deref() {
                Some([(r, _)]) => judged.judge(user, Some(r), &truth, rules),
                Some(_) => {}
                None => judged.judge(user, None, &truth, rules),
            }
        }
        for (user, all) in records {
            if let [(r, _)] = all.as_slice() {
                let truth = Truth {
                    rows: adopted(store, r).unwrap().into_iter().collect(),
                    live_subscriptions: Vec::new(),
                };
                judged.judge(&user, Some(r), &truth, rules);
            }
        }
        judged.findings.sort_by_key(|f| f.finding);
        Report {
            findings: judged.findings,
            problems,
            summary: Summary {
                users: judged.users,
                in_sync: judged.users - judged.drifted,
                drifted: judged.drifted,
                findings: BTreeMap::new(),
                fields_compared: Vec::new(),
                problems: 0,
                source: String::new(),
            },
        }
    }

    fn same(got: &Report, want: &Report, what: &str) {
        assert_eq!(got.findings, want.findings, "{what}: findings");
        assert_eq!(got.problems, want.problems, "{what}: problems");
        let s = |r: &Report| (r.summary.users, r.summary.in_sync, r.summary.drifted);
        assert_eq!(s(got), s(want), "{what}: users, in sync, drifted");
        assert_eq!(got.summary.problems, got.problems.len() as u64);
        let counted: u64 = got.summary.findings.values().sum();
        assert_eq!(counted, got.findings.len() as u64, "{what}: counts");
    }

    fn record(rng: &mut fastrand::Rng, user: String) -> AppRecord {
        let status = STATUSES[rng.usize(..STATUSES.len())];
        AppRecord {
            user,
            customer: rng.bool().then(|| format!("cus_{:02}", rng.usize(..60))),
            subscription: None,
            status: (status != "none").then(|| status.into()),
            price: rng.bool().then(|| "price_0".into()),
            period_start: Some(1_000),
            period_end: Some(2_000),
            cancel_at_period_end: Some(false),
            card_brand: None,
            card_last4: None,
        }
    }

    #[test]
    fn the_sorted_audit_finds_what_holding_every_record_found() {
        let mut seen: BTreeMap<Kind, usize> = BTreeMap::new();
        let (mut several, mut adopted) = (0, 0);
        for seed in 0..24 {
            let mut rng = fastrand::Rng::with_seed(seed);
            // Users that sort differently as numbers and as text, in
            // either case, and not ASCII (the store's order must be `&str`'s).
            let user = |rng: &mut fastrand::Rng, of: usize| {
                let n = rng.usize(..of);
                match n % 5 {
                    0 => format!("Üser_{n}"),
                    1 => format!("User_{n}"),
                    _ => format!("user_{n}"),
                }
            };
            let customers: Vec<Customer<'_>> = (0..50)
                .map(|i| Customer {
                    id: format!("cus_{i:02}"),
                    user: (i % 10 != 3).then(|| user(&mut rng, 40)),
                    deleted: rng.usize(..10) == 0,
                    subscriptions: (0..rng.usize(..3))
                        .map(|_| STATUSES[rng.usize(..STATUSES.len() - 1)])
                        .collect(),
                })
                .collect();
            let store = store_of(&customers);
            let mut items: Vec<Item> = (0..70)
                .map(|i| {
                    let origin = Origin {
                        source: "app.csv".into(),
                        unit: "row",
                        at: (i + 2).to_string(),
                    };
                    let user = user(&mut rng, 60);
                    Item::Record(record(&mut rng, user), origin)
                })
                .collect();
            items.insert(
                5,
                Item::Problem(Problem {
                    origin: Origin {
                        source: "app.csv".into(),
                        unit: "row",
                        at: "99".into(),
                    },
                    field: Some(Field::Status),
                    message: "not a status".into(),
                }),
            );
            let rules = rules();
            let want = held_in_memory(&store, &items, &rules);
            for run_bytes in [1, 200, spill::RUN_BYTES] {
                let got = hold(&store, app_of(&items, run_bytes), &rules).unwrap();
                same(
                    &got,
                    &want,
                    &format!("seed {seed}, runs of {run_bytes} bytes"),
                );
            }
            for f in &want.findings {
                *seen.entry(f.finding).or_default() += 1;
            }
            several += want.problems.len() - 1;
            let mapped = |u: &str| customers.iter().any(|c| c.user.as_deref() == Some(u));
            adopted += want
                .findings
                .iter()
                .filter(|f| !mapped(&f.user_id) && f.customer_id.is_some())
                .count();
        }
        // The cases worth checking came up.
        for kind in [
            Kind::UnpaidAccess,
            Kind::PaidNoAccess,
            Kind::MissingInApp,
            Kind::UnknownUser,
            Kind::SeveralLiveSubscriptions,
            Kind::SeveralCustomers,
        ] {
            assert!(
                seen.get(&kind).is_some_and(|n| *n > 0),
                "no {kind:?}: {seen:?}"
            );
        }
        assert!(
            several > 0 && adopted > 0,
            "{several} duplicates, {adopted} adopted"
        );
    }

    #[test]
    fn users_the_store_lacks_are_judged_last_and_duplicates_are_left_out() {
        let customers = [
            Customer {
                id: "cus_b".into(),
                user: Some("user_b".into()),
                deleted: false,
                subscriptions: vec!["active"],
            },
            Customer {
                id: "cus_d".into(),
                user: Some("user_d".into()),
                deleted: false,
                subscriptions: vec!["active"],
            },
            // Known to the store without a user: the app's link is taken.
            Customer {
                id: "cus_x".into(),
                user: None,
                deleted: false,
                subscriptions: vec!["trialing"],
            },
        ];
        let store = store_of(&customers);
        let row = |i: usize| Origin {
            source: "app.csv".into(),
            unit: "row",
            at: i.to_string(),
        };
        let app = |user: &str, customer: Option<&str>, status: Option<&str>| AppRecord {
            user: user.into(),
            customer: customer.map(Into::into),
            status: status.map(Into::into),
            ..AppRecord::default()
        };
        let items = vec![
            // Sorts first, judged last: paid without access through cus_x.
            Item::Record(app("user_a", Some("cus_x"), None), row(2)),
            Item::Record(app("user_d", Some("cus_d"), Some("active")), row(3)),
            // Twice, in runs of their own.
            Item::Record(app("user_b", Some("cus_b"), Some("active")), row(4)),
            Item::Record(app("user_c", None, Some("active")), row(5)),
            Item::Record(app("user_b", Some("cus_b"), None), row(6)),
        ];
        let fields = [Field::User, Field::Customer, Field::Status];
        let rules = Rules {
            access: vec!["active".into(), "trialing".into()],
            fields: fields.into_iter().collect(),
        };
        let report = hold(&store, app_of(&items, 1), &rules).unwrap();
        let found: Vec<(&str, Kind)> = report
            .findings
            .iter()
            .map(|f| (f.user_id.as_str(), f.finding))
            .collect();
        assert_eq!(
            found,
            [
                ("user_a", Kind::PaidNoAccess),
                ("user_c", Kind::UnknownUser)
            ]
        );
        assert_eq!(report.findings[0].customer_id.as_deref(), Some("cus_x"));
        assert_eq!(report.problems.len(), 1);
        assert_eq!(report.problems[0].origin, row(4));
        assert!(
            report.problems[0]
                .message
                .starts_with("user user_b has 2 records (row 4, row 6)"),
            "{}",
            report.problems[0].message
        );
        // user_a, user_c (unknown), user_d; user_b is left out.
        assert_eq!(
            (
                report.summary.users,
                report.summary.drifted,
                report.summary.in_sync
            ),
            (3, 2, 1)
        );
    }

    #[test]
    fn an_empty_source_reports_every_billed_user_missing() {
        let customers = [
            Customer {
                id: "cus_1".into(),
                user: Some("user_1".into()),
                deleted: false,
                subscriptions: vec!["active", "past_due"],
            },
            Customer {
                id: "cus_2".into(),
                user: Some("user_2".into()),
                deleted: false,
                subscriptions: vec!["canceled"],
            },
        ];
        let store = store_of(&customers);
        let report = hold(&store, app_of(&[], 1), &rules()).unwrap();
        let found: Vec<(&str, Kind)> = report
            .findings
            .iter()
            .map(|f| (f.user_id.as_str(), f.finding))
            .collect();
        assert_eq!(
            found,
            [
                ("user_1", Kind::MissingInApp),
                ("user_1", Kind::SeveralLiveSubscriptions)
            ]
        );
        assert_eq!(report.summary.users, 1);
    }
}
