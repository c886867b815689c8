//! Every rule of the model, without a store or a network.

use super::*;
use crate::store::CustomerInfo;

fn sub(status: &str) -> SubscriptionRecord {
    SubscriptionRecord {
        id: "sub_1".into(),
        customer_id: "cus_1".into(),
        status: status.into(),
        price_id: Some("price_1".into()),
        current_period_start: Some(1),
        current_period_end: Some(2),
        cancel_at_period_end: false,
        payment_method_id: None,
        card: None,
        created: 100,
    }
}

fn stamp(created: i64, kind: &str, status: &str, seq: u64, id: &str) -> Stamp {
    Stamp {
        created,
        listed: None,
        stage: Stage::of(kind, Some(status)),
        seq,
        event_id: Arc::from(id),
    }
}

fn listed(mut s: Stamp, list: &str, i: usize) -> Stamp {
    s.listed = Some((Arc::from(list), i));
    s
}

fn prev_status(s: &str) -> Option<Previous> {
    Some(Previous(vec![(Field::Status, Some(s.into()))]))
}

/// Offer snapshots in this order; the winner's status and the ambiguity.
fn settle(
    offers: Vec<(SubscriptionRecord, Stamp, Option<Previous>)>,
) -> (String, Option<Vec<String>>) {
    let mut it = offers.into_iter();
    let (s, st, p) = it.next().unwrap();
    let mut n = Newest::new(s, st, p);
    for (s, st, p) in it {
        n.offer(s, st, p);
    }
    let amb = n
        .ambiguity()
        .map(|v| v.iter().map(|e| e.to_string()).collect());
    (n.snapshot.status.clone(), amb)
}

#[test]
fn a_later_second_wins_whatever_the_order() {
    let (status, amb) = settle(vec![
        (
            sub("past_due"),
            stamp(200, "x.updated", "past_due", 0, "e2"),
            None,
        ),
        (
            sub("active"),
            stamp(100, "x.updated", "active", 1, "e1"),
            None,
        ),
    ]);
    assert_eq!((status.as_str(), amb), ("past_due", None));
}

#[test]
fn a_list_object_is_newest_first() {
    // As GET /v1/events lists them: the update first, then the creation.
    let updated = listed(
        stamp(100, "customer.subscription.updated", "active", 0, "e_upd"),
        "page.json",
        0,
    );
    let created = listed(
        stamp(
            100,
            "customer.subscription.updated",
            "incomplete",
            1,
            "e_cre",
        ),
        "page.json",
        1,
    );
    let (status, amb) = settle(vec![
        (sub("active"), updated, None),
        (sub("incomplete"), created, None),
    ]);
    assert_eq!((status.as_str(), amb), ("active", None));
}

#[test]
fn previous_attributes_chain_updates() {
    // Both updates, same second, newer first in the input: the one whose
    // previous_attributes match the other comes after it.
    let (status, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 0, "e2"),
            prev_status("past_due"),
        ),
        (
            sub("past_due"),
            stamp(100, "customer.subscription.updated", "past_due", 1, "e1"),
            prev_status("incomplete"),
        ),
    ]);
    assert_eq!((status.as_str(), amb), ("active", None));
}

#[test]
fn created_comes_first_and_terminal_last() {
    let (status, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 0, "e2"),
            None,
        ),
        (
            sub("incomplete"),
            stamp(100, "customer.subscription.created", "incomplete", 1, "e1"),
            None,
        ),
    ]);
    assert_eq!((status.as_str(), amb), ("active", None));
    let (status, amb) = settle(vec![
        (
            sub("canceled"),
            stamp(100, "customer.subscription.deleted", "canceled", 0, "e2"),
            None,
        ),
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 1, "e1"),
            None,
        ),
    ]);
    assert_eq!((status.as_str(), amb), ("canceled", None));
}

#[test]
fn no_evidence_is_ambiguous_and_deterministic() {
    let (status, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 0, "e1"),
            None,
        ),
        (
            sub("past_due"),
            stamp(100, "customer.subscription.updated", "past_due", 1, "e2"),
            None,
        ),
    ]);
    assert_eq!(status, "past_due", "later input wins");
    assert_eq!(amb, Some(vec!["e2".to_string(), "e1".to_string()]));
}

#[test]
fn identical_snapshots_are_not_ambiguous() {
    let (_, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "invoice.paid", "active", 0, "e1"),
            None,
        ),
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 1, "e2"),
            None,
        ),
    ]);
    assert_eq!(amb, None);
}

#[test]
fn a_later_second_settles_an_ambiguity() {
    let (status, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "x.updated", "active", 0, "e1"),
            None,
        ),
        (
            sub("past_due"),
            stamp(100, "x.updated", "past_due", 1, "e2"),
            None,
        ),
        (
            sub("unpaid"),
            stamp(101, "x.updated", "unpaid", 2, "e3"),
            None,
        ),
    ]);
    assert_eq!((status.as_str(), amb), ("unpaid", None));
}

#[test]
fn evidence_that_contradicts_itself_is_ambiguous() {
    // An update of this second is missing: the created snapshot, and an
    // update whose previous_attributes follow neither it nor any other.
    let (_, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "customer.subscription.updated", "active", 0, "e3"),
            prev_status("past_due"),
        ),
        (
            sub("incomplete"),
            stamp(100, "customer.subscription.created", "incomplete", 1, "e1"),
            None,
        ),
    ]);
    assert!(amb.is_some(), "a missing event may change any order");
}

#[test]
fn contradicting_previous_attributes_decide_nothing() {
    let (_, amb) = settle(vec![
        (
            sub("active"),
            stamp(100, "x.updated", "active", 0, "e1"),
            prev_status("past_due"),
        ),
        (
            sub("past_due"),
            stamp(100, "x.updated", "past_due", 1, "e2"),
            prev_status("active"),
        ),
    ]);
    assert!(amb.is_some());
}

#[test]
fn customer_previous_attributes_name_the_user() {
    let old = CustomerInfo {
        user_id: Some("user_old".into()),
        snapshot_at: Some(100),
        ..Default::default()
    };
    let new = CustomerInfo {
        user_id: Some("user_new".into()),
        snapshot_at: Some(100),
        ..Default::default()
    };
    let p = Previous(vec![(Field::User, Some("user_old".into()))]);
    let mut n = Newest::new(new, stamp(100, "customer.updated", "", 0, "e2"), Some(p));
    n.offer(old, stamp(100, "customer.created", "", 1, "e1"), None);
    assert_eq!(n.snapshot.user_id.as_deref(), Some("user_new"));
    assert!(n.ambiguity().is_none());
    // An update that names the old user, and an older one that names the
    // user before it: the chain decides whatever the input order.
    let u1 = CustomerInfo {
        user_id: Some("user_mid".into()),
        snapshot_at: Some(100),
        ..Default::default()
    };
    let mut n = Newest::new(
        CustomerInfo {
            user_id: Some("user_new".into()),
            snapshot_at: Some(100),
            ..Default::default()
        },
        stamp(100, "customer.updated", "", 0, "e3"),
        Some(Previous(vec![(Field::User, Some("user_mid".into()))])),
    );
    n.offer(
        u1,
        stamp(100, "customer.updated", "", 1, "e2"),
        Some(Previous(vec![(Field::User, Some("user_old".into()))])),
    );
    assert_eq!(n.snapshot.user_id.as_deref(), Some("user_new"));
    assert!(n.ambiguity().is_none());
}

#[test]
fn the_stage_of_an_event() {
    assert_eq!(
        Stage::of("customer.subscription.created", Some("incomplete")),
        Stage::Created
    );
    assert_eq!(
        Stage::of("customer.subscription.updated", Some("canceled")),
        Stage::Final
    );
    assert_eq!(Stage::of("customer.deleted", None), Stage::Final);
    assert_eq!(Stage::of("invoice.paid", Some("active")), Stage::Updated);
}

fn cand<'a>(id: &'a str, created: i64, born: Option<&'a Stamp>) -> Candidate<'a> {
    Candidate { id, created, born }
}

#[test]
fn the_newest_subscription_is_the_customers() {
    let p = current_subscription(
        &[cand("sub_a", 10, None), cand("sub_b", 20, None)],
        Some("sub_a"),
    );
    assert_eq!(
        p,
        Pick {
            id: Some("sub_b".into()),
            ambiguous: vec![]
        }
    );
    assert_eq!(current_subscription(&[], None).id, None);
}

#[test]
fn a_tie_goes_by_the_creation_events_evidence() {
    let a = listed(
        stamp(10, "customer.subscription.created", "active", 0, "ea"),
        "l",
        1,
    );
    let b = listed(
        stamp(10, "customer.subscription.created", "active", 1, "eb"),
        "l",
        0,
    );
    let p = current_subscription(
        &[cand("sub_z", 10, Some(&a)), cand("sub_a", 10, Some(&b))],
        Some("sub_z"),
    );
    assert_eq!(
        p,
        Pick {
            id: Some("sub_a".into()),
            ambiguous: vec![]
        }
    );
}

#[test]
fn a_tie_without_evidence_keeps_the_shown_pick_and_says_so() {
    let p = current_subscription(
        &[cand("sub_a", 10, None), cand("sub_b", 10, None)],
        Some("sub_a"),
    );
    assert_eq!(p.id.as_deref(), Some("sub_a"));
    assert_eq!(p.ambiguous, vec!["sub_b".to_string(), "sub_a".to_string()]);
    let p = current_subscription(&[cand("sub_a", 10, None), cand("sub_b", 10, None)], None);
    assert_eq!(p.id.as_deref(), Some("sub_b"), "else the greatest id");
}

#[test]
fn customer_state_and_user_rules() {
    let m: crate::objects::Metadata = serde_json::from_str(r#"{"uid":"user_1"}"#).unwrap();
    assert_eq!(
        CustomerState::of_object(false, Some(&m), Some("a@b.c"), "uid"),
        CustomerState::Live {
            user: Some("user_1".into()),
            email: Some("a@b.c".into())
        }
    );
    assert_eq!(
        CustomerState::of_object(true, Some(&m), None, "uid"),
        CustomerState::Deleted
    );
    assert!(CustomerState::Missing.info(5).is_none());
    let deleted = CustomerState::Deleted.info(5).unwrap();
    assert!(deleted.deleted);
    assert_eq!(
        user_of(Some(&deleted), Some("hint")).user_id,
        None,
        "a deleted stub takes no hint"
    );
    let blank = CustomerState::Live {
        user: None,
        email: None,
    }
    .info(5)
    .unwrap();
    assert_eq!(
        user_of(Some(&blank), Some("hint")).user_id.as_deref(),
        Some("hint")
    );
    assert_eq!(
        user_of(None, Some("hint")).snapshot_at,
        None,
        "a hint alone is no snapshot"
    );
}
