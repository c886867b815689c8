use super::*;
use crate::objects::Card;

fn rules(fields: &[Field]) -> Rules {
    Rules {
        access: vec!["active".into(), "trialing".into()],
        fields: fields.iter().copied().collect(),
    }
}

fn all() -> Rules {
    rules(&Field::ALL)
}

fn row(customer: &str, sub: Option<&str>, status: &str) -> MappingRow {
    MappingRow {
        user_id: Some("u1".into()),
        customer_id: customer.into(),
        subscription_id: sub.map(Into::into),
        status: status.into(),
        price_id: sub.map(|_| "price_1".into()),
        current_period_start: sub.map(|_| 1_000),
        current_period_end: sub.map(|_| 2_000),
        payment_method: sub.map(|_| Card {
            brand: Some("visa".into()),
            last4: Some("4242".into()),
        }),
        ..MappingRow::default()
    }
}

/// The app's record exactly as the pattern's sync would write it from `r`.
fn mirror(r: &MappingRow) -> AppRecord {
    let card = r.payment_method.as_ref();
    AppRecord {
        user: "u1".into(),
        customer: Some(r.customer_id.clone()),
        subscription: r.subscription_id.clone(),
        status: r.subscription_id.as_ref().map(|_| r.status.clone()),
        price: r.price_id.clone(),
        period_start: r.current_period_start,
        period_end: r.current_period_end,
        cancel_at_period_end: Some(r.cancel_at_period_end),
        card_brand: card.and_then(|c| c.brand.clone()),
        card_last4: card.and_then(|c| c.last4.clone()),
    }
}

fn truth(rows: Vec<MappingRow>) -> Truth {
    Truth {
        rows,
        live_subscriptions: Vec::new(),
    }
}

fn kinds(f: &[Finding]) -> Vec<(Kind, Option<&'static str>)> {
    f.iter().map(|f| (f.finding, f.field)).collect()
}

#[test]
fn a_record_the_sync_wrote_is_in_sync() {
    for r in [
        row("cus_1", Some("sub_1"), "active"),
        row("cus_1", Some("sub_1"), "canceled"),
        row("cus_1", None, "none"),
    ] {
        let t = truth(vec![r.clone()]);
        assert_eq!(compare("u1", Some(&mirror(&r)), &t, &all()), []);
    }
}

#[test]
fn access_the_app_grants_and_stripe_does_not_is_unpaid_access() {
    let r = row("cus_1", Some("sub_1"), "canceled");
    let mut app = mirror(&r);
    app.status = Some("active".into());
    let f = compare("u1", Some(&app), &truth(vec![r]), &all());
    assert_eq!(kinds(&f), [(Kind::UnpaidAccess, Some("status"))]);
    assert_eq!(f[0].app, Value::from("active"));
    assert_eq!(f[0].stripe, Value::from("canceled"));
    assert_eq!(f[0].customer_id.as_deref(), Some("cus_1"));
}

#[test]
fn a_deleted_customer_grants_nothing_and_keeps_no_fields() {
    let mut r = row("cus_1", Some("sub_1"), "active");
    r.deleted = true;
    let app = mirror(&r);
    let f = compare("u1", Some(&app), &truth(vec![r.clone()]), &all());
    assert_eq!(kinds(&f), [(Kind::UnpaidAccess, Some("status"))]);
    assert_eq!(f[0].stripe, Value::from("deleted"));
    // An app that saw the cancellation is right.
    let mut app = mirror(&r);
    app.status = Some("canceled".into());
    assert_eq!(compare("u1", Some(&app), &truth(vec![r]), &all()), []);
}

#[test]
fn stripe_billing_a_user_the_app_locks_out_is_paid_no_access() {
    let r = row("cus_1", Some("sub_1"), "trialing");
    let mut app = mirror(&r);
    app.status = None;
    let f = compare("u1", Some(&app), &truth(vec![r.clone()]), &all());
    assert_eq!(kinds(&f), [(Kind::PaidNoAccess, Some("status"))]);
    assert_eq!(f[0].app, Value::from("none"));
    let f = compare("u1", None, &truth(vec![r]), &all());
    assert_eq!(kinds(&f), [(Kind::MissingInApp, None)]);
}

#[test]
fn a_user_without_access_and_without_a_record_is_no_finding() {
    let r = row("cus_1", Some("sub_1"), "canceled");
    assert_eq!(compare("u1", None, &truth(vec![r]), &all()), []);
}

#[test]
fn access_to_a_user_stripe_does_not_know_is_unknown_user() {
    let app = AppRecord {
        user: "u1".into(),
        status: Some("active".into()),
        ..AppRecord::default()
    };
    let f = compare("u1", Some(&app), &Truth::default(), &all());
    assert_eq!(kinds(&f), [(Kind::UnknownUser, Some("status"))]);
    assert_eq!(f[0].customer_id, None);
    let none = AppRecord {
        status: None,
        ..app
    };
    assert_eq!(compare("u1", Some(&none), &Truth::default(), &all()), []);
}

#[test]
fn only_the_fields_the_app_has_are_compared() {
    let r = row("cus_1", Some("sub_1"), "canceled");
    let app = AppRecord {
        user: "u1".into(),
        customer: Some("cus_1".into()),
        ..AppRecord::default()
    };
    // The app keeps only the customer: it cannot grant access, nor differ
    // in a field it does not have.
    let f = compare(
        "u1",
        Some(&app),
        &truth(vec![r]),
        &rules(&[Field::User, Field::Customer]),
    );
    assert_eq!(f, []);
}

#[test]
fn each_field_that_differs_is_one_finding() {
    let mut r = row("cus_1", Some("sub_1"), "active");
    r.cancel_at_period_end = true;
    let mut app = mirror(&r);
    app.customer = Some("cus_other".into());
    app.subscription = Some("sub_old".into());
    app.status = Some("trialing".into());
    app.price = Some("price_old".into());
    app.period_start = Some(1_000 + PERIOD_SLACK_SECS);
    app.period_end = Some(2_000 + PERIOD_SLACK_SECS + 1);
    app.cancel_at_period_end = Some(false);
    app.card_last4 = Some("0005".into());
    let f = compare("u1", Some(&app), &truth(vec![r]), &all());
    assert_eq!(
        kinds(&f),
        [
            (Kind::Customer, Some("customer")),
            (Kind::Status, Some("status")),
            (Kind::Subscription, Some("subscription")),
            (Kind::Price, Some("price")),
            (Kind::Period, Some("period_end")),
            (Kind::CancelAtPeriodEnd, Some("cancel_at_period_end")),
            (Kind::Card, Some("card_last4")),
        ]
    );
    assert_eq!(f[4].app, Value::from(2_061));
    assert_eq!(f[4].stripe, Value::from(2_000));
}

#[test]
fn the_customer_the_app_names_is_the_one_compared() {
    let a = row("cus_a", Some("sub_a"), "canceled");
    let b = row("cus_b", Some("sub_b"), "active");
    let app = mirror(&a);
    let t = Truth {
        rows: vec![a, b],
        live_subscriptions: vec!["sub_b".into()],
    };
    let f = compare("u1", Some(&app), &t, &all());
    assert_eq!(kinds(&f), [(Kind::SeveralCustomers, Some("customer"))]);
    assert_eq!(f[0].stripe, serde_json::json!(["cus_a", "cus_b"]));
    // Without a customer named, the one that grants access is picked.
    let picked = t.pick(None, &all()).unwrap();
    assert_eq!(picked.customer_id, "cus_b");
}

#[test]
fn two_billing_subscriptions_are_reported() {
    let r = row("cus_1", Some("sub_2"), "active");
    let t = Truth {
        rows: vec![r.clone()],
        live_subscriptions: vec!["sub_1".into(), "sub_2".into()],
    };
    let f = compare("u1", Some(&mirror(&r)), &t, &all());
    assert_eq!(
        kinds(&f),
        [(Kind::SeveralLiveSubscriptions, Some("subscription"))]
    );
    assert!(bills("past_due") && bills("active") && bills("trialing"));
    assert!(!bills("canceled") && !bills("incomplete") && !bills("unpaid") && !bills("paused"));
}

#[test]
fn kinds_are_ordered_most_serious_first_and_named_once() {
    let mut sorted = Kind::ALL;
    sorted.sort();
    assert_eq!(sorted, Kind::ALL);
    for k in Kind::ALL {
        assert_eq!(Kind::from_name(k.name()), Some(k));
        assert_eq!(serde_json::to_value(k).unwrap(), Value::from(k.name()));
    }
}
