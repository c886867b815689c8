//! The few Stripe object fields this tool reads, typed, for both webhook
//! events and API responses. Unknown fields are ignored (the next API
//! version adds some); expandable fields accept an id or the object.

use std::collections::BTreeMap;

use serde::Deserialize;

/// An expandable field: `"cus_123"` or `{"id": "cus_123", ...}`.
#[derive(Debug, Clone)]
pub enum Expandable<T> {
    Id(String),
    Object(Box<T>),
}

// By hand rather than `#[serde(untagged)]`, which buffers every expanded
// object before trying the variants: this is on the replay hot path.
impl<'de, T: Deserialize<'de>> Deserialize<'de> for Expandable<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> serde::de::Visitor<'de> for V<T> {
            type Value = Expandable<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an id string or an expanded object")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Expandable::Id(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<Self::Value, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|o| Expandable::Object(Box::new(o)))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Anything with an id, for expandables whose body we do not read.
#[derive(Debug, Clone, Deserialize)]
pub struct IdOnly {
    pub id: String,
}

impl<T: HasId> Expandable<T> {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) => id,
            Expandable::Object(o) => o.id(),
        }
    }

    pub fn object(&self) -> Option<&T> {
        match self {
            Expandable::Id(_) => None,
            Expandable::Object(o) => Some(o),
        }
    }
}

pub trait HasId {
    fn id(&self) -> &str;
}

impl HasId for IdOnly {
    fn id(&self) -> &str {
        &self.id
    }
}

/// Stripe metadata: string values; anything else is read as absent.
pub type Metadata = BTreeMap<String, serde_json::Value>;

/// A metadata value as the app reads it: exactly as written, whitespace
/// included (the app does not trim: `" user_e37 "` is that user, not
/// `user_e37`). Absent, `null`, empty, blank (whitespace only) or not a
/// string: none. [`metadata_oddity`] says what to warn about.
pub fn metadata_str<'a>(m: Option<&'a Metadata>, key: &str) -> Option<&'a str> {
    m?.get(key)?.as_str().filter(|s| !s.trim().is_empty())
}

/// What is odd about a metadata value (Stripe's are strings, written by
/// the app that made the object: a hand-written fixture may hold anything).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Oddity {
    /// Whitespace around the value: kept, as the app keeps it.
    Padded(String),
    /// Whitespace only: read as absent (the app would take it as an id).
    Blank(String),
    /// Not a string (`"a number"`, ...): read as absent.
    NotString(&'static str),
}

/// The oddity of `m[key]`, if any (absent, `null` and `""` are plainly absent).
pub fn metadata_oddity(m: Option<&Metadata>, key: &str) -> Option<Oddity> {
    use serde_json::Value;
    Some(match m?.get(key)? {
        Value::Null => return None,
        Value::String(s) if s.is_empty() => return None,
        Value::String(s) if s.trim().is_empty() => Oddity::Blank(s.clone()),
        Value::String(s) if s.trim() != s => Oddity::Padded(s.clone()),
        Value::String(_) => return None,
        Value::Bool(_) => Oddity::NotString("a boolean"),
        Value::Number(_) => Oddity::NotString("a number"),
        Value::Array(_) => Oddity::NotString("an array"),
        Value::Object(_) => Oddity::NotString("an object"),
    })
}

/// The union of the object fields routing and sync look at. One struct for
/// every object type keeps event parsing to a single pass.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StripeObject {
    pub id: Option<String>,
    pub object: Option<String>,
    pub metadata: Option<Metadata>,
    pub customer: Option<Expandable<Customer>>,
    pub created: Option<i64>,
    // subscription
    pub status: Option<String>,
    pub cancel_at_period_end: Option<bool>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub items: Option<List<SubscriptionItem>>,
    pub default_payment_method: Option<Expandable<PaymentMethod>>,
    // invoice (basil: parent.subscription_details; older: top level)
    pub parent: Option<InvoiceParent>,
    pub subscription_details: Option<SubscriptionDetails>,
    pub subscription: Option<Expandable<IdOnly>>,
    // customer
    pub email: Option<String>,
    pub deleted: Option<bool>,
    // payment method
    pub card: Option<Card>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct List<T> {
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    #[serde(default)]
    pub has_more: bool,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionItem {
    pub price: Option<Expandable<IdOnly>>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InvoiceParent {
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SubscriptionDetails {
    pub metadata: Option<Metadata>,
    pub subscription: Option<Expandable<IdOnly>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub metadata: Option<Metadata>,
    #[serde(default)]
    pub deleted: bool,
    pub created: Option<i64>,
}

impl HasId for Customer {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    pub card: Option<Card>,
}

impl HasId for PaymentMethod {
    fn id(&self) -> &str {
        &self.id
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct Card {
    pub brand: Option<String>,
    pub last4: Option<String>,
}

impl StripeObject {
    pub fn kind(&self) -> &str {
        self.object.as_deref().unwrap_or("")
    }

    /// The customer the object belongs to; a blank id (`"customer": ""`,
    /// a hand-written fixture) is none.
    pub fn customer_id(&self) -> Option<&str> {
        self.customer
            .as_ref()
            .map(Expandable::id)
            .filter(|id| !id.trim().is_empty())
    }

    /// Subscription metadata carried by an invoice, basil shape first.
    pub fn invoice_subscription_metadata(&self) -> Option<&Metadata> {
        self.parent
            .as_ref()
            .and_then(|p| p.subscription_details.as_ref())
            .and_then(|d| d.metadata.as_ref())
            .or_else(|| self.subscription_details.as_ref()?.metadata.as_ref())
    }
}

/// The stored summary of one subscription.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SubscriptionRecord {
    pub id: String,
    pub customer_id: String,
    pub status: String,
    pub price_id: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub payment_method_id: Option<String>,
    pub card: Option<Card>,
    pub created: i64,
}

impl SubscriptionRecord {
    /// Read a subscription object (either API shape). `None` when it lacks
    /// what makes it a subscription (id, customer, status, created).
    pub fn from_object(o: &StripeObject) -> Option<SubscriptionRecord> {
        let item = o.items.as_ref().and_then(|l| l.data.first());
        let pm = o.default_payment_method.as_ref();
        Some(SubscriptionRecord {
            id: o.id.clone()?,
            customer_id: o.customer_id()?.to_owned(),
            status: o.status.clone()?,
            price_id: item
                .and_then(|i| i.price.as_ref())
                .map(|p| p.id().to_owned()),
            // basil moved the period to the items; older data has it on the subscription.
            current_period_start: item
                .and_then(|i| i.current_period_start)
                .or(o.current_period_start),
            current_period_end: item
                .and_then(|i| i.current_period_end)
                .or(o.current_period_end),
            cancel_at_period_end: o.cancel_at_period_end.unwrap_or(false),
            payment_method_id: pm.map(|p| p.id().to_owned()),
            card: pm.and_then(Expandable::object).and_then(|p| p.card.clone()),
            created: o.created?,
        })
    }
}

/// The customer's "latest subscription" as `status=all&limit=1` returns it:
/// newest by `created`, ties broken by id like Stripe's list order.
pub fn latest(subs: &[SubscriptionRecord]) -> Option<&SubscriptionRecord> {
    subs.iter()
        .max_by(|a, b| a.created.cmp(&b.created).then_with(|| a.id.cmp(&b.id)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One of Stripe's published example objects, kept in `tests/data`
    /// (copies of the shared `stripe-objects/`, so a bare crate build has them).
    fn example(name: &str) -> StripeObject {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/stripe-objects")
            .join(name);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    #[test]
    fn reads_basil_subscription_shape() {
        let json = r#"{"id":"sub_1","object":"subscription","customer":"cus_1","status":"active",
            "created":100,"cancel_at_period_end":true,
            "items":{"object":"list","data":[{"price":{"id":"price_1","object":"price"},
            "current_period_start":10,"current_period_end":20}]},
            "default_payment_method":{"id":"pm_1","card":{"brand":"visa","last4":"4242"}}}"#;
        let o: StripeObject = serde_json::from_str(json).unwrap();
        let r = SubscriptionRecord::from_object(&o).unwrap();
        assert_eq!(r.price_id.as_deref(), Some("price_1"));
        assert_eq!(
            (r.current_period_start, r.current_period_end),
            (Some(10), Some(20))
        );
        assert!(r.cancel_at_period_end);
        assert_eq!(r.card.unwrap().last4.as_deref(), Some("4242"));
    }

    #[test]
    fn reads_pre_basil_subscription_shape() {
        let json = r#"{"id":"sub_1","customer":{"id":"cus_1","object":"customer"},"status":"past_due",
            "created":100,"current_period_start":1,"current_period_end":2,
            "items":{"data":[{"price":"price_9"}]},"default_payment_method":"pm_2"}"#;
        let o: StripeObject = serde_json::from_str(json).unwrap();
        let r = SubscriptionRecord::from_object(&o).unwrap();
        assert_eq!(r.customer_id, "cus_1");
        assert_eq!(r.price_id.as_deref(), Some("price_9"));
        assert_eq!(
            (r.current_period_start, r.current_period_end),
            (Some(1), Some(2))
        );
        assert_eq!(r.payment_method_id.as_deref(), Some("pm_2"));
        assert_eq!(r.card, None);
    }

    #[test]
    fn subscription_without_items() {
        let json = r#"{"id":"sub_1","customer":"cus_1","status":"incomplete","created":1,"items":{"data":[]}}"#;
        let o: StripeObject = serde_json::from_str(json).unwrap();
        let r = SubscriptionRecord::from_object(&o).unwrap();
        assert_eq!(r.price_id, None);
    }

    #[test]
    fn real_example_objects_parse() {
        for (name, kind) in [
            ("subscription.json", "subscription"),
            ("invoice.json", "invoice"),
            ("checkout.session.json", "checkout.session"),
            ("payment_intent.json", "payment_intent"),
            ("customer.json", "customer"),
            ("deleted_customer.json", "customer"),
            ("payment_method.json", "payment_method"),
        ] {
            let o = example(name);
            assert!(o.id.is_some(), "{name}");
            assert_eq!(o.kind(), kind, "{name}");
        }
    }

    #[test]
    fn real_subscription_reads_basil_fields() {
        let r = SubscriptionRecord::from_object(&example("subscription.json"))
            .expect("a subscription record");
        assert_eq!(r.id, "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw");
        assert_eq!(r.customer_id, "cus_QXg1o8vcGmoR32");
        assert_eq!(r.status, "active");
        assert_eq!(
            r.price_id.as_deref(),
            Some("price_1PgafmB7WZ01zgkW6dKueIc5")
        );
        // basil+: the period comes from the first item.
        assert_eq!(r.current_period_start, Some(1_896_570_518));
        assert!(r.cancel_at_period_end);
        assert_eq!(r.created, 1_234_567_890);
    }

    #[test]
    fn real_customer_payment_method_and_invoice() {
        assert_eq!(example("deleted_customer.json").deleted, Some(true));
        assert_eq!(example("customer.json").deleted, None);
        let pm = example("payment_method.json");
        let card = pm.card.expect("a card");
        assert_eq!(
            (card.brand.as_deref(), card.last4.as_deref()),
            (Some("visa"), Some("4242"))
        );
        let invoice = example("invoice.json");
        assert_eq!(invoice.customer_id(), Some("cus_QXg1o8vcGmoR32"));
        // `parent.subscription_details.metadata` is null in this example.
        assert!(invoice.parent.is_some());
        assert!(invoice.invoice_subscription_metadata().is_none());
    }

    #[test]
    fn metadata_values_are_read_exactly() {
        let m: Metadata = serde_json::from_str(
            r#"{"a":" user_e37 ","b":"  ","c":42,"d":"","e":null,"f":"user_1","g":true}"#,
        )
        .unwrap();
        let m = Some(&m);
        assert_eq!(metadata_str(m, "a"), Some(" user_e37 "));
        assert_eq!(
            metadata_oddity(m, "a"),
            Some(Oddity::Padded(" user_e37 ".into()))
        );
        assert_eq!(metadata_str(m, "b"), None);
        assert_eq!(metadata_oddity(m, "b"), Some(Oddity::Blank("  ".into())));
        assert_eq!(metadata_str(m, "c"), None);
        assert_eq!(metadata_oddity(m, "c"), Some(Oddity::NotString("a number")));
        assert_eq!(
            metadata_oddity(m, "g"),
            Some(Oddity::NotString("a boolean"))
        );
        for plain in ["d", "e", "missing"] {
            assert_eq!(metadata_str(m, plain), None, "{plain}");
            assert_eq!(metadata_oddity(m, plain), None, "{plain}");
        }
        assert_eq!(metadata_str(m, "f"), Some("user_1"));
        assert_eq!(metadata_oddity(m, "f"), None);
    }

    #[test]
    fn latest_is_newest_created() {
        let mk = |id: &str, created| SubscriptionRecord {
            id: id.into(),
            customer_id: "c".into(),
            status: "active".into(),
            price_id: None,
            current_period_start: None,
            current_period_end: None,
            cancel_at_period_end: false,
            payment_method_id: None,
            card: None,
            created,
        };
        let subs = [mk("sub_a", 5), mk("sub_b", 9), mk("sub_c", 7)];
        assert_eq!(latest(&subs).unwrap().id, "sub_b");
        assert!(latest(&[]).is_none());
    }
}
