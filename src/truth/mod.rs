//! One model of a customer's truth. Pure: no store, no network, no clock.
//!
//! Every path that reaches the store (offline replay, `--live`, `serve`,
//! `resync --events`, `--customer/--user/--all`, `--check`, `--dry-run`)
//! feeds what it knows here and writes what this decides. The rules, one
//! line each:
//!
//! 1. **Order of two snapshots of one object** ([`order`]): the later event
//!    `created` wins. Within one second (Stripe stamps whole seconds), by
//!    evidence, in this order: the position in one Stripe list (`data[]` is
//!    newest first); chained `previous_attributes` (an update whose
//!    `previous_attributes` match the other snapshot comes after it); the
//!    lifecycle (`*.created` first; `*.deleted` and the terminal statuses
//!    `canceled`/`incomplete_expired` last). With no evidence the later
//!    input (or arrival) wins, and when the two snapshots differ in what
//!    the store keeps, the pick is [`Evidence::Arrival`]: ambiguous, and
//!    reported as such.
//! 2. **The customer's subscription** ([`current_subscription`]): the one
//!    `GET /v1/subscriptions?customer=C&status=all&limit=1` lists first:
//!    the newest `created`; on a tie, the newer `*.created` event by the
//!    evidence of rule 1, else the pick the store already shows, else the
//!    greatest id (deterministic, and reported as ambiguous).
//! 3. **A deleted customer** ([`CustomerState::Deleted`]) keeps the user it
//!    was known by (its stub has no metadata), has no live subscription
//!    (Stripe cancels them on deletion) and shows the status `deleted`.
//! 4. **The customer's user** ([`user_of`]): a customer object's metadata
//!    says it (a newer object replaces an older one, also to remove it);
//!    the routing's user only fills a blank.

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::sync::Arc;

use crate::objects::{StripeObject, SubscriptionRecord, metadata_str};

/// Where an event stands in its lifecycle: evidence of order within a second.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub(crate) enum Stage {
    /// `*.created`: before anything else of its object.
    Created,
    Updated,
    /// `*.deleted`, or a terminal status (`canceled`, `incomplete_expired`):
    /// nothing follows it.
    Final,
}

impl Stage {
    /// As the store keeps it.
    pub(crate) fn number(self) -> i64 {
        self as i64
    }

    pub(crate) fn from_number(n: i64) -> Stage {
        match n {
            0 => Stage::Created,
            2 => Stage::Final,
            _ => Stage::Updated,
        }
    }

    /// The stage of an event of type `kind` whose object has `status`.
    pub(crate) fn of(kind: &str, status: Option<&str>) -> Stage {
        if kind.ends_with(".deleted") || status.is_some_and(is_terminal) {
            Stage::Final
        } else if kind.ends_with(".created") {
            Stage::Created
        } else {
            Stage::Updated
        }
    }
}

/// A subscription status nothing follows.
pub(crate) fn is_terminal(status: &str) -> bool {
    matches!(status, "canceled" | "incomplete_expired")
}

/// When and how a snapshot was seen: everything rule 1 weighs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stamp {
    /// The event's `created` (whole seconds).
    pub created: i64,
    /// The list it was listed in (a file's list object, or `GET /v1/events`)
    /// and its index there: a lower index is newer.
    pub listed: Option<(Arc<str>, usize)>,
    pub stage: Stage,
    /// Input order (or arrival order, for `serve`): the last resort.
    pub seq: u64,
    pub event_id: Arc<str>,
}

/// Which of two snapshots is the newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Newer {
    First,
    Second,
}

/// What decided an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Evidence {
    /// Different seconds.
    Time,
    ListOrder,
    PreviousAttributes,
    Lifecycle,
    /// The two say the same in every field the store keeps: order does not matter.
    Same,
    /// Nothing but input or arrival order: the pick is ambiguous.
    Arrival,
}

/// A field the store keeps, as `previous_attributes` may name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Field {
    Status,
    CancelAtPeriodEnd,
    Price,
    PeriodStart,
    PeriodEnd,
    PaymentMethod,
    User,
    Email,
}

/// What an update says the object was before it, in the fields the store
/// keeps (the others cannot be checked against a snapshot).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Previous(pub Vec<(Field, Option<String>)>);

impl Previous {
    /// A subscription's `previous_attributes`.
    pub(crate) fn of_subscription(p: &StripeObject) -> Option<Previous> {
        let mut fields = Vec::new();
        if let Some(s) = &p.status {
            fields.push((Field::Status, Some(s.clone())));
        }
        if let Some(c) = p.cancel_at_period_end {
            fields.push((Field::CancelAtPeriodEnd, Some(c.to_string())));
        }
        if let Some(item) = p.items.as_ref().and_then(|l| l.data.first()) {
            if let Some(price) = &item.price {
                fields.push((Field::Price, Some(price.id().to_owned())));
            }
            if let Some(s) = item.current_period_start {
                fields.push((Field::PeriodStart, Some(s.to_string())));
            }
            if let Some(e) = item.current_period_end {
                fields.push((Field::PeriodEnd, Some(e.to_string())));
            }
        }
        if let Some(s) = p.current_period_start {
            fields.push((Field::PeriodStart, Some(s.to_string())));
        }
        if let Some(e) = p.current_period_end {
            fields.push((Field::PeriodEnd, Some(e.to_string())));
        }
        if let Some(pm) = &p.default_payment_method {
            fields.push((Field::PaymentMethod, Some(pm.id().to_owned())));
        }
        (!fields.is_empty()).then_some(Previous(fields))
    }

    /// A customer's `previous_attributes` (`metadata` holds the changed keys).
    pub(crate) fn of_customer(p: &StripeObject, user_key: &str) -> Option<Previous> {
        let mut fields = Vec::new();
        if let Some(m) = &p.metadata
            && m.contains_key(user_key)
        {
            fields.push((
                Field::User,
                metadata_str(Some(m), user_key).map(str::to_owned),
            ));
        }
        if let Some(e) = &p.email {
            fields.push((Field::Email, Some(e.clone())));
        }
        (!fields.is_empty()).then_some(Previous(fields))
    }

    /// Whether the update `to` (carrying these previous attributes) came
    /// right after `from`: every field it names had the value it says, and
    /// every other field the store keeps is unchanged (Stripe names every
    /// changed field).
    fn follows<S: Snapshot>(&self, from: &S, to: &S) -> bool {
        !self.0.is_empty()
            && S::FIELDS
                .iter()
                .all(|f| match self.0.iter().find(|(named, _)| named == f) {
                    Some((_, v)) => from.field(*f).as_deref() == v.as_deref(),
                    None => from.field(*f) == to.field(*f),
                })
    }
}

/// A snapshot whose fields rule 1 can compare.
pub(crate) trait Snapshot {
    /// The fields of this kind that `previous_attributes` may name.
    const FIELDS: &'static [Field];
    /// The value of a field the store keeps (`None`: absent or not this kind's).
    fn field(&self, f: Field) -> Option<Cow<'_, str>>;
    /// The same in every field the store keeps.
    fn same(&self, other: &Self) -> bool;
}

impl Snapshot for SubscriptionRecord {
    const FIELDS: &'static [Field] = &[
        Field::Status,
        Field::CancelAtPeriodEnd,
        Field::Price,
        Field::PeriodStart,
        Field::PeriodEnd,
        Field::PaymentMethod,
    ];

    fn field(&self, f: Field) -> Option<Cow<'_, str>> {
        match f {
            Field::Status => Some(Cow::Borrowed(&self.status)),
            Field::CancelAtPeriodEnd => Some(Cow::Owned(self.cancel_at_period_end.to_string())),
            Field::Price => self.price_id.as_deref().map(Cow::Borrowed),
            Field::PeriodStart => self.current_period_start.map(|v| Cow::Owned(v.to_string())),
            Field::PeriodEnd => self.current_period_end.map(|v| Cow::Owned(v.to_string())),
            Field::PaymentMethod => self.payment_method_id.as_deref().map(Cow::Borrowed),
            Field::User | Field::Email => None,
        }
    }

    fn same(&self, other: &Self) -> bool {
        // The card follows the payment method: not a state of its own.
        self.customer_id == other.customer_id
            && self.status == other.status
            && self.price_id == other.price_id
            && self.current_period_start == other.current_period_start
            && self.current_period_end == other.current_period_end
            && self.cancel_at_period_end == other.cancel_at_period_end
            && self.payment_method_id == other.payment_method_id
            && self.created == other.created
    }
}

impl Snapshot for crate::store::CustomerInfo {
    const FIELDS: &'static [Field] = &[Field::User, Field::Email];

    fn field(&self, f: Field) -> Option<Cow<'_, str>> {
        match f {
            Field::User => self.user_id.as_deref().map(Cow::Borrowed),
            Field::Email => self.email.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }

    fn same(&self, other: &Self) -> bool {
        self.user_id == other.user_id && self.email == other.email && self.deleted == other.deleted
    }
}

/// One snapshot as rule 1 sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Seen<'a, S> {
    pub stamp: &'a Stamp,
    pub snapshot: &'a S,
    pub previous: Option<&'a Previous>,
}

/// Rule 1: which of two snapshots of one object is the newer, and why.
pub(crate) fn order<S: Snapshot>(a: Seen<'_, S>, b: Seen<'_, S>) -> (Newer, Evidence) {
    use std::cmp::Ordering::*;
    let by_arrival = if b.stamp.seq >= a.stamp.seq {
        Newer::Second
    } else {
        Newer::First
    };
    match a.stamp.created.cmp(&b.stamp.created) {
        Less => return (Newer::Second, Evidence::Time),
        Greater => return (Newer::First, Evidence::Time),
        Equal => {}
    }
    if let (Some((la, ia)), Some((lb, ib))) = (&a.stamp.listed, &b.stamp.listed)
        && la == lb
        && ia != ib
    {
        // `data[]` is newest first.
        let newer = if ib < ia { Newer::Second } else { Newer::First };
        return (newer, Evidence::ListOrder);
    }
    let b_follows_a = b
        .previous
        .is_some_and(|p| p.follows(a.snapshot, b.snapshot));
    let a_follows_b = a
        .previous
        .is_some_and(|p| p.follows(b.snapshot, a.snapshot));
    match (a_follows_b, b_follows_a) {
        (false, true) => return (Newer::Second, Evidence::PreviousAttributes),
        (true, false) => return (Newer::First, Evidence::PreviousAttributes),
        _ => {}
    }
    match a.stamp.stage.cmp(&b.stamp.stage) {
        Less => return (Newer::Second, Evidence::Lifecycle),
        Greater => return (Newer::First, Evidence::Lifecycle),
        Equal => {}
    }
    if a.snapshot.same(b.snapshot) {
        return (by_arrival, Evidence::Same);
    }
    (by_arrival, Evidence::Arrival)
}

/// The newest snapshot of one object seen so far, and the events it could
/// not be told apart from (rule 1's ambiguity, until a newer one decides).
///
/// Every snapshot of the newest second is kept, so the order within that
/// second is decided over all of them at once (a chain of updates is only
/// seen whole: `active -> past_due -> active` in one second).
#[derive(Debug, Clone)]
pub(crate) struct Newest<S> {
    /// The pick (a copy of one of `group`).
    pub snapshot: S,
    pub stamp: Stamp,
    pub previous: Option<Previous>,
    /// Events tied with the pick by nothing but arrival.
    pub tied: Vec<Arc<str>>,
    /// Every snapshot of the pick's second (up to [`GROUP_MAX`]).
    group: Vec<Seen0<S>>,
    /// The object as it was before this second (the newest snapshot of an
    /// earlier second, when one was seen and decided): the first update of
    /// this second follows it.
    base: Option<Seen0<S>>,
    /// A second whose snapshots nothing orders: no base from it.
    base_unknown: Option<i64>,
}

/// One snapshot, owned.
#[derive(Debug, Clone)]
struct Seen0<S> {
    snapshot: S,
    stamp: Stamp,
    previous: Option<Previous>,
}

impl<S> Seen0<S> {
    fn seen(&self) -> Seen<'_, S> {
        Seen {
            stamp: &self.stamp,
            snapshot: &self.snapshot,
            previous: self.previous.as_ref(),
        }
    }
}

/// Snapshots of one second weighed together at most; more (a pathological
/// input) are weighed two at a time against the pick.
const GROUP_MAX: usize = 7;

impl<S: Snapshot + Clone> Newest<S> {
    pub(crate) fn new(snapshot: S, stamp: Stamp, previous: Option<Previous>) -> Newest<S> {
        Newest {
            group: vec![Seen0 {
                snapshot: snapshot.clone(),
                stamp: stamp.clone(),
                previous: previous.clone(),
            }],
            snapshot,
            stamp,
            previous,
            tied: Vec::new(),
            base: None,
            base_unknown: None,
        }
    }

    /// Take another snapshot of the same object.
    pub(crate) fn offer(&mut self, snapshot: S, stamp: Stamp, previous: Option<Previous>) {
        use std::cmp::Ordering::*;
        match stamp.created.cmp(&self.stamp.created) {
            Less => {
                self.offer_base(Seen0 {
                    snapshot,
                    stamp,
                    previous,
                });
                self.redecide();
                return;
            }
            Greater => {
                let before = std::mem::replace(self, Newest::new(snapshot, stamp, previous));
                // Only a decided pick tells what the object was.
                if before.tied.is_empty() {
                    self.base = Some(Seen0 {
                        snapshot: before.snapshot,
                        stamp: before.stamp,
                        previous: before.previous,
                    });
                }
                return;
            }
            Equal => {}
        }
        if self
            .group
            .iter()
            .any(|g| g.stamp.event_id == stamp.event_id)
        {
            return;
        }
        let entry = Seen0 {
            snapshot,
            stamp,
            previous,
        };
        if self.group.len() >= GROUP_MAX {
            return self.offer_pairwise(entry);
        }
        self.group.push(entry);
        self.redecide();
    }

    /// A snapshot of an earlier second: the base if it is the newest of
    /// them, by rule 1 (none when nothing orders two of its second).
    fn offer_base(&mut self, entry: Seen0<S>) {
        let at = entry.stamp.created;
        if self.base_unknown.is_some_and(|u| u >= at) {
            return;
        }
        let Some(base) = &self.base else {
            self.base = Some(entry);
            return;
        };
        match base.stamp.created.cmp(&at) {
            std::cmp::Ordering::Greater => {}
            std::cmp::Ordering::Less => self.base = Some(entry),
            std::cmp::Ordering::Equal => match order(base.seen(), entry.seen()) {
                (_, Evidence::Arrival) => {
                    self.base = None;
                    self.base_unknown = Some(at);
                }
                (Newer::Second, _) => self.base = Some(entry),
                (Newer::First, _) => {}
            },
        }
    }

    /// The pick of the group, by [`decide`].
    fn redecide(&mut self) {
        if self.group.len() > GROUP_MAX {
            return;
        }
        let (pick, tied) = decide(&self.group, self.base.as_ref().map(|b| &b.snapshot));
        let chosen = &self.group[pick];
        self.snapshot = chosen.snapshot.clone();
        self.stamp = chosen.stamp.clone();
        self.previous = chosen.previous.clone();
        self.tied = tied;
    }

    /// Rule 1 between the pick and one more snapshot, beyond the group.
    fn offer_pairwise(&mut self, entry: Seen0<S>) {
        let pick = Seen {
            stamp: &self.stamp,
            snapshot: &self.snapshot,
            previous: self.previous.as_ref(),
        };
        let (newer, evidence) = order(pick, entry.seen());
        let ambiguous = evidence == Evidence::Arrival;
        match newer {
            Newer::First if ambiguous => self.tied.push(entry.stamp.event_id),
            Newer::First => {}
            Newer::Second => {
                if ambiguous {
                    self.tied.push(self.stamp.event_id.clone());
                }
                self.tied.retain(|e| *e != entry.stamp.event_id);
                self.snapshot = entry.snapshot;
                self.stamp = entry.stamp;
                self.previous = entry.previous;
            }
        }
    }

    /// The events whose order decided this snapshot by arrival alone
    /// (this one's first), or none.
    pub(crate) fn ambiguity(&self) -> Option<Vec<Arc<str>>> {
        if self.tied.is_empty() {
            return None;
        }
        let mut ids = vec![self.stamp.event_id.clone()];
        ids.extend(self.tied.iter().cloned());
        Some(ids)
    }
}

/// Rule 1 over every snapshot of one second: the orders (oldest first)
/// that every piece of evidence allows, and which snapshot ends them. The
/// pick's index, and the events that end another allowed order in another
/// state (ambiguous: the pick is then the latest to arrive among them).
fn decide<S: Snapshot>(group: &[Seen0<S>], base: Option<&S>) -> (usize, Vec<Arc<str>>) {
    let n = group.len();
    if n == 1 {
        return (0, Vec::new());
    }
    let mut last: Vec<bool> = vec![false; n];
    let mut order: Vec<usize> = Vec::with_capacity(n);
    let mut used = vec![false; n];
    allowed_orders(group, base, &mut order, &mut used, &mut last);
    let ends: Vec<usize> = (0..n).filter(|&i| last[i]).collect();
    if ends.is_empty() {
        // The evidence contradicts itself (an event of this second is
        // missing from the inputs): weigh two at a time for a pick, but
        // trust none of it, as the missing event may change any order.
        let (pick, _) = pairwise(group);
        let tied = group
            .iter()
            .enumerate()
            .filter(|(i, g)| *i != pick && !g.snapshot.same(&group[pick].snapshot))
            .map(|(_, g)| g.stamp.event_id.clone())
            .collect();
        return (pick, tied);
    }
    // The latest to arrive among the possible ends.
    let pick = *ends
        .iter()
        .max_by_key(|&&i| group[i].stamp.seq)
        .unwrap_or(&ends[0]);
    let tied = ends
        .iter()
        .filter(|&&i| i != pick && !group[i].snapshot.same(&group[pick].snapshot))
        .map(|&i| group[i].stamp.event_id.clone())
        .collect();
    (pick, tied)
}

/// Extend `order` in every way the evidence allows, marking the ends.
fn allowed_orders<S: Snapshot>(
    group: &[Seen0<S>],
    base: Option<&S>,
    order: &mut Vec<usize>,
    used: &mut [bool],
    last: &mut [bool],
) {
    if order.len() == group.len() {
        if let Some(&end) = order.last() {
            last[end] = true;
        }
        return;
    }
    for next in 0..group.len() {
        if used[next] || !may_follow(group, base, order, next) {
            continue;
        }
        used[next] = true;
        order.push(next);
        allowed_orders(group, base, order, used, last);
        order.pop();
        used[next] = false;
    }
}

/// Whether snapshot `next` may come after all of `order` (oldest first).
fn may_follow<S: Snapshot>(
    group: &[Seen0<S>],
    base: Option<&S>,
    order: &[usize],
    next: usize,
) -> bool {
    let b = &group[next];
    let before_ok = order.iter().all(|&i| {
        let a = &group[i];
        // A list is newest first; the lifecycle never goes back.
        let listed = match (&a.stamp.listed, &b.stamp.listed) {
            (Some((la, ia)), Some((lb, ib))) if la == lb => ia > ib,
            _ => true,
        };
        listed && a.stamp.stage <= b.stamp.stage
    });
    // An update follows the snapshot right before it (the first of the
    // second follows the object as it was before the second, when known).
    // A snapshot without `previous_attributes` (a creation, a deletion, an
    // event whose payload left them out) says nothing of what preceded it.
    let before = order.last().map(|&prev| &group[prev].snapshot).or(base);
    let chained = match (before, &b.previous) {
        (Some(before), Some(p)) => p.follows(before, &b.snapshot),
        _ => true,
    };
    before_ok && chained
}

/// Rule 1 two at a time over a group (the fallback of [`decide`]).
fn pairwise<S: Snapshot>(group: &[Seen0<S>]) -> (usize, Vec<Arc<str>>) {
    let mut pick = 0;
    let mut tied: Vec<Arc<str>> = Vec::new();
    for i in 1..group.len() {
        let (newer, evidence) = order(group[pick].seen(), group[i].seen());
        let ambiguous = evidence == Evidence::Arrival;
        match newer {
            Newer::First if ambiguous => tied.push(group[i].stamp.event_id.clone()),
            Newer::First => {}
            Newer::Second => {
                if ambiguous {
                    tied.push(group[pick].stamp.event_id.clone());
                }
                pick = i;
            }
        }
    }
    let chosen = group[pick].stamp.event_id.clone();
    tied.retain(|e| *e != chosen);
    (pick, tied)
}

/// A customer or subscription whose state the inputs cannot order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Ambiguity {
    pub customer_id: String,
    pub object_id: String,
    pub event_ids: Vec<String>,
}

/// What events say of one subscription snapshot's order (rule 1), kept
/// with it in the store so a later run weighs it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SnapshotOrder {
    pub stamp: Stamp,
    pub previous: Option<Previous>,
}

/// A customer's state, typed: what every path says about a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CustomerState {
    /// The customer object, with its user (from `metadata[user_key]`) and email.
    Live {
        user: Option<String>,
        email: Option<String>,
    },
    /// Deleted in Stripe (a stub, or `customer.deleted`): rule 3.
    Deleted,
    /// No such customer in the account (404).
    Missing,
}

impl CustomerState {
    /// A customer object (or a deleted customer's stub).
    pub(crate) fn of_object(
        deleted: bool,
        metadata: Option<&crate::objects::Metadata>,
        email: Option<&str>,
        user_key: &str,
    ) -> CustomerState {
        if deleted {
            return CustomerState::Deleted;
        }
        CustomerState::Live {
            user: metadata_str(metadata, user_key).map(str::to_owned),
            email: email.map(str::to_owned),
        }
    }

    /// The store's view of this state, as of `snapshot_at` (`None`: Missing
    /// has no view, the caller reports it).
    pub(crate) fn info(&self, snapshot_at: i64) -> Option<crate::store::CustomerInfo> {
        match self {
            CustomerState::Live { user, email } => Some(crate::store::CustomerInfo {
                user_id: user.clone(),
                email: email.clone(),
                deleted: false,
                snapshot_at: Some(snapshot_at),
            }),
            CustomerState::Deleted => Some(crate::store::CustomerInfo {
                deleted: true,
                snapshot_at: Some(snapshot_at),
                ..Default::default()
            }),
            CustomerState::Missing => None,
        }
    }
}

/// Rule 4: the user a customer's write carries: the object's word, else
/// (no object, or an object without the key that is not deleted) the
/// routing's hint, which only fills a blank.
pub(crate) fn user_of(
    object: Option<&crate::store::CustomerInfo>,
    hint: Option<&str>,
) -> crate::store::CustomerInfo {
    match object {
        Some(info) if info.deleted || info.user_id.is_some() => info.clone(),
        Some(info) => {
            // The object has no user: the hint is a guess, never stored as
            // the object's word (it fills a blank only, see the writer).
            let mut info = info.clone();
            info.user_id = hint.map(str::to_owned);
            info
        }
        None => crate::store::CustomerInfo {
            user_id: hint.map(str::to_owned),
            ..Default::default()
        },
    }
}

/// One subscription of a customer as rule 2 weighs it.
#[derive(Debug, Clone)]
pub(crate) struct Candidate<'a> {
    pub id: &'a str,
    pub created: i64,
    /// Its `*.created` event among the inputs, if any.
    pub born: Option<&'a Stamp>,
}

/// Rule 2's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pick {
    pub id: Option<String>,
    /// Subscriptions created in the same second that nothing tells apart.
    pub ambiguous: Vec<String>,
}

/// Rule 2, over what the store and the inputs know (offline): the newest
/// `created`; a tie goes by the evidence of the `*.created` events, else
/// to `shown` (the store's current pick) when it is among the tied, else
/// to the greatest id.
pub(crate) fn current_subscription(cands: &[Candidate<'_>], shown: Option<&str>) -> Pick {
    let Some(max) = cands.iter().map(|c| c.created).max() else {
        return Pick {
            id: None,
            ambiguous: Vec::new(),
        };
    };
    let mut tied: Vec<&Candidate<'_>> = cands.iter().filter(|c| c.created == max).collect();
    tied.sort_by(|a, b| b.id.cmp(a.id));
    tied.dedup_by(|a, b| a.id == b.id);
    if tied.len() == 1 {
        return Pick {
            id: Some(tied[0].id.to_owned()),
            ambiguous: Vec::new(),
        };
    }
    // The one whose creation is, by evidence, after every other's.
    let by_evidence = tied.iter().find(|c| {
        tied.iter().all(|o| {
            o.id == c.id
                || match (c.born, o.born) {
                    (Some(cb), Some(ob)) => born_after(cb, ob),
                    _ => false,
                }
        })
    });
    if let Some(c) = by_evidence {
        return Pick {
            id: Some(c.id.to_owned()),
            ambiguous: Vec::new(),
        };
    }
    let id = match shown {
        Some(s) if tied.iter().any(|c| c.id == s) => s.to_owned(),
        _ => tied[0].id.to_owned(),
    };
    Pick {
        id: Some(id),
        ambiguous: tied.iter().map(|c| c.id.to_owned()).collect(),
    }
}

/// Whether a subscription created by event `a` was created after one
/// created by event `b`, by evidence (the same list, or the later second).
fn born_after(a: &Stamp, b: &Stamp) -> bool {
    if a.created != b.created {
        return a.created > b.created;
    }
    match (&a.listed, &b.listed) {
        (Some((la, ia)), Some((lb, ib))) if la == lb => ia < ib,
        _ => false,
    }
}
