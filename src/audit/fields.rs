//! Which key of an app's record holds which audit field, and one record read
//! through that map into an `AppRecord` (or the `Problem` that keeps it out).
//!
//! Paths are dotted (`paymentMethod.brand` reaches into a nested object); a
//! literal key containing dots (a CSV header `paymentMethod.brand`) matches
//! too. A field may have several candidate paths: the first one holding a
//! value wins.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::audit::record::{AppRecord, Field, Item, Origin, Problem};

/// Candidate paths for each field, indexed by `Field as usize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldMap {
    paths: [Vec<String>; Field::ALL.len()],
}

/// Values a record's key supplies: a JSON object keyed by user id names the
/// user; a KV dump's `stripe:customer:<id>` key names the customer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Keyed<'a> {
    pub user: Option<&'a str>,
    pub customer: Option<&'a str>,
}

/// Whether the names offered for `--field user=` are columns (CSV, SQL) or
/// the keys of a JSON record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Columns,
    Keys,
}

fn defaults(field: Field, user_key: &str) -> Vec<String> {
    let names: &[&str] = match field {
        Field::User => &["userId", "user_id", "clerkUserId", "subject"],
        Field::Customer => &[
            "stripeCustomerId",
            "customerId",
            "customer_id",
            "stripe_customer_id",
        ],
        Field::Subscription => &[
            "subscriptionId",
            "subscription_id",
            "stripeSubscriptionId",
            "stripe_subscription_id",
        ],
        Field::Status => &["status", "subscriptionStatus", "subscription_status"],
        Field::Price => &["priceId", "price_id", "stripePriceId", "stripe_price_id"],
        Field::PeriodStart => &["currentPeriodStart", "current_period_start"],
        Field::PeriodEnd => &["currentPeriodEnd", "current_period_end"],
        Field::CancelAtPeriodEnd => &["cancelAtPeriodEnd", "cancel_at_period_end"],
        Field::CardBrand => &["paymentMethod.brand", "card_brand"],
        Field::CardLast4 => &["paymentMethod.last4", "card_last4"],
    };
    let mut paths: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    if field == Field::User && !user_key.is_empty() && !paths.iter().any(|p| p == user_key) {
        paths.push(user_key.to_owned());
    }
    paths
}

fn field_names() -> String {
    Field::ALL.map(Field::name).join(", ")
}

impl FieldMap {
    /// The defaults, then `[audit.fields]` from the config, then `--field
    /// NAME=PATH` flags; each override replaces the defaults of its field.
    pub(crate) fn new(
        user_key: &str,
        config: &[(String, String)],
        flags: &[String],
    ) -> anyhow::Result<FieldMap> {
        let mut map = FieldMap {
            paths: Field::ALL.map(|f| defaults(f, user_key)),
        };
        for (name, path) in config {
            let shown = format!("[audit.fields] {name} = {path:?}");
            map.set(&shown, name, path)?;
        }
        for flag in flags {
            let shown = format!("--field {flag}");
            let Some((name, path)) = flag.split_once('=') else {
                return Err(crate::usage(format!(
                    "{shown}: expected NAME=PATH, e.g. --field user=ownerId; the names are {}",
                    field_names()
                )));
            };
            map.set(&shown, name, path)?;
        }
        Ok(map)
    }

    fn set(&mut self, shown: &str, name: &str, path: &str) -> anyhow::Result<()> {
        let name = name.trim();
        let Some(field) = Field::from_name(name) else {
            return Err(crate::usage(format!(
                "{shown}: unknown field {name:?}; the names are {}",
                field_names()
            )));
        };
        let path = path.trim();
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(crate::usage(format!(
                "{shown}: the path is empty or has an empty part; give the record's key, \
                 dotted for a nested one (e.g. {name}=paymentMethod.brand)"
            )));
        }
        self.paths[field as usize] = vec![path.to_owned()];
        Ok(())
    }

    /// The candidate paths of `field`, in the order they are tried.
    pub(crate) fn paths(&self, field: Field) -> &[String] {
        &self.paths[field as usize]
    }

    /// Whether `key`, a top-level key of a record, is (the start of) one of
    /// the mapped paths: how a record is told from a map of records.
    pub(crate) fn is_field_key(&self, key: &str) -> bool {
        self.paths
            .iter()
            .flatten()
            .any(|p| p == key || (p.starts_with(key) && p.as_bytes().get(key.len()) == Some(&b'.')))
    }

    /// Add to `present` each field one of whose paths resolves in `record`
    /// (even to null).
    pub(crate) fn mark_present(&self, record: &Map<String, Value>, present: &mut BTreeSet<Field>) {
        for field in Field::ALL {
            if !present.contains(&field) && self.resolves(record, field) {
                present.insert(field);
            }
        }
    }

    /// Whether one of `field`'s paths resolves in `record` (even to null).
    pub(crate) fn resolves(&self, record: &Map<String, Value>, field: Field) -> bool {
        self.paths(field)
            .iter()
            .any(|p| lookup(record, p).is_some())
    }

    /// The fields that a source with these columns has.
    pub(crate) fn columns_present(&self, columns: &[String]) -> BTreeSet<Field> {
        Field::ALL
            .into_iter()
            .filter(|&f| self.paths(f).iter().any(|p| columns.contains(p)))
            .collect()
    }

    /// The usage error for a source none of whose names is a user field.
    /// `names` are its columns, or the keys of its first record.
    pub(crate) fn no_user_field(
        &self,
        label: &str,
        shape: Shape,
        names: &[String],
    ) -> anyhow::Error {
        let (what, placeholder) = match shape {
            Shape::Columns => ("its columns are", "<column>"),
            Shape::Keys => ("its first record has the keys", "<path>"),
        };
        // Stripe's own objects are the commonest wrong file: say what it is.
        let has = |k: &str| names.iter().any(|n| n == k);
        if has("object") && has("type") && names.iter().any(|n| n.starts_with("data.object")) {
            return crate::usage(format!(
                "audit: {label} holds Stripe events, not the app's records: audit reads what the \
                 app's sync wrote (its table, export or KV dump); events go to `stripe-sync replay`"
            ));
        }
        match guess_user(names) {
            Some(guess) => crate::usage(format!(
                "audit: no user field in {label}: {what} {}; add --field user={placeholder}, \
                 e.g. --field user={guess}",
                listed(names)
            )),
            None => crate::usage(format!(
                "audit: no user field in {label}: it has no {}; add --field user={placeholder} \
                 naming the one that holds the app's user id",
                if shape == Shape::Columns {
                    "columns"
                } else {
                    "keys"
                }
            )),
        }
    }

    /// One record as an `Item`: its values read and normalized, `keyed`
    /// filling in (and checked against) what the record's key says.
    pub(crate) fn item(&self, record: &Value, origin: Origin, keyed: Keyed<'_>) -> Item {
        let Value::Object(map) = record else {
            return Item::Problem(Problem {
                origin,
                field: None,
                message: format!(
                    "expected a record (a JSON object), found {}",
                    describe(record)
                ),
            });
        };
        let result = self
            .extract(map)
            .and_then(|r| with_keys(r, keyed))
            .and_then(|r| match r.user.is_empty() {
                false => Ok(r),
                true => Err((None, self.no_user(map))),
            });
        match result {
            Ok(r) => Item::Record(r, origin),
            Err((field, message)) => Item::Problem(Problem {
                origin,
                field,
                message,
            }),
        }
    }

    /// The record's values, normalized; `user` is empty when it has none.
    /// The error names the field at fault and says why.
    pub(crate) fn extract(
        &self,
        record: &Map<String, Value>,
    ) -> Result<AppRecord, (Option<Field>, String)> {
        let get = |field: Field| self.value(record, field);
        let fail = |field: Field| move |message: String| (Some(field), message);
        Ok(AppRecord {
            user: user(get(Field::User))
                .map_err(fail(Field::User))?
                .unwrap_or_default(),
            customer: text(get(Field::Customer)).map_err(fail(Field::Customer))?,
            subscription: text(get(Field::Subscription)).map_err(fail(Field::Subscription))?,
            status: status(get(Field::Status)).map_err(fail(Field::Status))?,
            price: text(get(Field::Price)).map_err(fail(Field::Price))?,
            period_start: time(get(Field::PeriodStart)).map_err(fail(Field::PeriodStart))?,
            period_end: time(get(Field::PeriodEnd)).map_err(fail(Field::PeriodEnd))?,
            cancel_at_period_end: boolean(get(Field::CancelAtPeriodEnd))
                .map_err(fail(Field::CancelAtPeriodEnd))?,
            card_brand: text(get(Field::CardBrand)).map_err(fail(Field::CardBrand))?,
            card_last4: last4(get(Field::CardLast4)).map_err(fail(Field::CardLast4))?,
        })
    }

    /// The value of `field`: the first path holding something other than
    /// null or an empty string, else null.
    fn value<'v>(&self, record: &'v Map<String, Value>, field: Field) -> &'v Value {
        self.paths(field)
            .iter()
            .filter_map(|p| lookup(record, p))
            .find(|v| !is_blank(v))
            .unwrap_or(&Value::Null)
    }

    fn no_user(&self, record: &Map<String, Value>) -> String {
        let paths = self.paths(Field::User);
        if let Some((path, v)) = paths.iter().find_map(|p| Some((p, lookup(record, p)?))) {
            let what = if v.is_null() { "null" } else { "empty" };
            return format!("no user: {path} is {what}; the record cannot be tied to a user");
        }
        let keys: Vec<String> = record.keys().cloned().collect();
        format!(
            "no user: the record has none of {}; keys: {} (map the user with --field user=PATH)",
            paths.join(", "),
            listed(&keys)
        )
    }
}

/// Fill in what the key says, and refuse a record that says otherwise.
pub(crate) fn with_keys(
    mut r: AppRecord,
    keyed: Keyed<'_>,
) -> Result<AppRecord, (Option<Field>, String)> {
    if let Some(user) = keyed.user {
        if r.user.is_empty() {
            r.user = user.to_owned();
        } else if r.user != user {
            return Err((
                Some(Field::User),
                format!(
                    "the record says {} but its key says {}; fix one of them",
                    quoted(&r.user),
                    quoted(user)
                ),
            ));
        }
    }
    if let Some(customer) = keyed.customer {
        match &r.customer {
            None => r.customer = Some(customer.to_owned()),
            Some(own) if own != customer => {
                return Err((
                    Some(Field::Customer),
                    format!(
                        "the record says {} but its key says {}; fix one of them",
                        quoted(own),
                        quoted(customer)
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    Ok(r)
}

/// The value at a dotted `path`, trying the literal key first and then
/// every split at a dot, so that `a.b.c` finds `{"a": {"b.c": 1}}` too.
pub(crate) fn lookup<'v>(record: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    if let Some(v) = record.get(path) {
        return Some(v);
    }
    for (i, _) in path.match_indices('.') {
        if let Some(Value::Object(inner)) = record.get(&path[..i])
            && let Some(v) = lookup(inner, &path[i + 1..])
        {
            return Some(v);
        }
    }
    None
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

/// A plausible user key among `names`, for the hint: a user id first, then
/// anything naming a user, then an id that is not a database's own (`_id`).
fn guess_user(names: &[String]) -> Option<&str> {
    let lower = |n: &String| n.to_ascii_lowercase();
    let is_id = |n: &String| lower(n).ends_with("id");
    let is_user = |n: &String| lower(n).contains("user");
    names
        .iter()
        .find(|n| is_user(n) && is_id(n))
        .or_else(|| names.iter().find(|n| is_user(n)))
        .or_else(|| names.iter().find(|n| is_id(n) && !n.starts_with('_')))
        .or_else(|| names.iter().find(|n| is_id(n)))
        .or_else(|| names.first())
        .map(String::as_str)
}

fn listed(names: &[String]) -> String {
    const SHOWN: usize = 20;
    let mut text = names
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > SHOWN {
        text.push_str(&format!(" and {} more", names.len() - SHOWN));
    }
    text
}

/// A value as a message shows it: quoted, and cut when long.
fn quoted(s: &str) -> String {
    const LONG: usize = 40;
    if s.chars().count() > LONG {
        let cut: String = s.chars().take(LONG).collect();
        format!("{:?}…", cut)
    } else {
        format!("{s:?}")
    }
}

pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("a boolean ({b})"),
        Value::Number(n) => format!("a number ({n})"),
        Value::String(s) => format!("a string ({})", quoted(s)),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A string field: kept exactly; null and "" are none.
fn text(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        other => Err(format!("expected a string, found {}", describe(other))),
    }
}

fn user(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Number(n) => Err(format!(
            "a number ({n}), but user ids are strings: quote it in the source, or map the \
             user to the key holding the app's user id with --field user=PATH"
        )),
        other => text(other),
    }
}

/// `none` (any case), null, absent or "" is no subscription.
fn status(v: &Value) -> Result<Option<String>, String> {
    Ok(text(v)?.filter(|s| !s.eq_ignore_ascii_case("none")))
}

/// Card digits; a number (the app stored 4242 as a number) is zero-padded.
fn last4(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Number(n) => match n.as_u64() {
            Some(d) if d <= 9999 => Ok(Some(format!("{d:04}"))),
            _ => Err(format!("expected the card's last 4 digits, found {n}")),
        },
        other => text(other),
    }
}

fn boolean(v: &Value) -> Result<Option<bool>, String> {
    let bad = || format!("expected true or false, found {}", describe(v));
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(*b)),
        Value::Number(n) => match n.as_u64() {
            Some(1) => Ok(Some(true)),
            Some(0) => Ok(Some(false)),
            _ => Err(bad()),
        },
        Value::String(s) => {
            let t = s.trim().to_ascii_lowercase();
            match t.as_str() {
                "" => Ok(None),
                "true" | "t" | "1" | "yes" => Ok(Some(true)),
                "false" | "f" | "0" | "no" => Ok(Some(false)),
                _ => Err(bad()),
            }
        }
        _ => Err(bad()),
    }
}

/// Above this a number is unix milliseconds (Convex's `_creationTime`,
/// JavaScript's `Date.now()`); below, unix seconds (year 5138 and before).
const MILLIS_ABOVE: i64 = 100_000_000_000;

const TIME_FORMS: &str = "unix seconds or milliseconds, RFC 3339 (2026-01-05T10:00:00Z) \
                          or a SQL timestamp (2026-01-05 10:00:00+00)";

/// A time as unix seconds.
fn time(v: &Value) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(Some(from_int(i))),
            None => from_float(n.as_f64().unwrap_or(f64::NAN))
                .map(Some)
                .ok_or_else(|| format!("expected a time ({TIME_FORMS}), found {n}")),
        },
        Value::String(s) => time_text(s),
        other => Err(format!(
            "expected a time ({TIME_FORMS}), found {}",
            describe(other)
        )),
    }
}

fn from_int(i: i64) -> i64 {
    if i.unsigned_abs() > MILLIS_ABOVE as u64 {
        i / 1000
    } else {
        i
    }
}

fn from_float(f: f64) -> Option<i64> {
    let secs = if f.abs() > MILLIS_ABOVE as f64 {
        f / 1000.0
    } else {
        f
    }
    .trunc();
    // i64::MAX as f64 rounds up to 2^63, itself out of range.
    (secs.is_finite() && secs >= i64::MIN as f64 && secs < i64::MAX as f64).then_some(secs as i64)
}

fn time_text(s: &str) -> Result<Option<i64>, String> {
    let t = s.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let bad = || format!("expected a time ({TIME_FORMS}), found {}", quoted(s));
    let digits = t.strip_prefix('-').unwrap_or(t);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return t
            .parse::<i64>()
            .map(|i| Some(from_int(i)))
            .map_err(|_| bad());
    }
    if let Some((whole, frac)) = digits.split_once('.')
        && !whole.is_empty()
        && !frac.is_empty()
        && (whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit())
    {
        return t
            .parse::<f64>()
            .ok()
            .and_then(from_float)
            .map(Some)
            .ok_or_else(bad);
    }
    if is_date(t.as_bytes()) {
        return Err(format!(
            "{} is a date without a time: store a time ({TIME_FORMS})",
            quoted(s)
        ));
    }
    let parsed = OffsetDateTime::parse(t, &Rfc3339)
        .ok()
        .or_else(|| OffsetDateTime::parse(&as_rfc3339(t)?, &Rfc3339).ok());
    parsed.map(|dt| Some(dt.unix_timestamp())).ok_or_else(bad)
}

fn is_date(b: &[u8]) -> bool {
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// A SQL timestamp (`2026-01-05 10:00:00[.fff][+HH[[:]MM]]`, no zone meaning
/// UTC) rewritten as RFC 3339, for `time` to parse.
fn as_rfc3339(t: &str) -> Option<String> {
    const DATE_TIME: usize = "2026-01-05 10:00:00".len();
    if t.len() < DATE_TIME || !t.is_char_boundary(DATE_TIME) || !is_date(&t.as_bytes()[..10]) {
        return None;
    }
    let (head, rest) = t.split_at(DATE_TIME);
    let frac_len = match rest.strip_prefix('.') {
        Some(f) => 1 + f.bytes().take_while(u8::is_ascii_digit).count(),
        None => 0,
    };
    let (frac, zone) = rest.split_at(frac_len);
    let zone = match zone.as_bytes() {
        [] => "Z".to_owned(),
        [b'Z' | b'z'] => zone.to_owned(),
        [b'+' | b'-', h1, h2] if h1.is_ascii_digit() && h2.is_ascii_digit() => format!("{zone}:00"),
        [b'+' | b'-', h1, h2, m1, m2] if [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()) => {
            format!("{}:{}", &zone[..3], &zone[3..])
        }
        [b'+' | b'-', _, _, b':', _, _] => zone.to_owned(),
        _ => return None,
    };
    Some(format!("{}T{}{frac}{zone}", &head[..10], &head[11..]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn origin() -> Origin {
        Origin {
            source: "users.json".into(),
            unit: "element",
            at: "1".into(),
        }
    }

    fn defaults_map() -> FieldMap {
        FieldMap::new("clerkUserId", &[], &[]).unwrap()
    }

    fn record(v: Value) -> AppRecord {
        match defaults_map().item(&v, origin(), Keyed::default()) {
            Item::Record(r, _) => r,
            Item::Problem(p) => panic!("unexpected problem: {p}"),
        }
    }

    fn problem(fields: &FieldMap, v: Value) -> Problem {
        match fields.item(&v, origin(), Keyed::default()) {
            Item::Problem(p) => p,
            Item::Record(r, _) => panic!("expected a problem, got {r:?}"),
        }
    }

    fn usage_text(err: anyhow::Error) -> String {
        match err.downcast_ref::<crate::Fatal>() {
            Some(crate::Fatal::Usage(m)) => m.clone(),
            _ => panic!("not a usage error: {err:#}"),
        }
    }

    #[test]
    fn t3_record_with_defaults() {
        let r = record(json!({
            "userId": "user_2abc",
            "stripeCustomerId": "cus_1",
            "subscriptionId": "sub_1",
            "status": "active",
            "priceId": "price_1",
            "currentPeriodStart": 1767607200,
            "currentPeriodEnd": 1770285600,
            "cancelAtPeriodEnd": false,
            "paymentMethod": {"brand": "visa", "last4": "4242"}
        }));
        assert_eq!(
            r,
            AppRecord {
                user: "user_2abc".into(),
                customer: Some("cus_1".into()),
                subscription: Some("sub_1".into()),
                status: Some("active".into()),
                price: Some("price_1".into()),
                period_start: Some(1767607200),
                period_end: Some(1770285600),
                cancel_at_period_end: Some(false),
                card_brand: Some("visa".into()),
                card_last4: Some("4242".into()),
            }
        );
    }

    #[test]
    fn strings_are_kept_exactly_and_empty_is_none() {
        let r = record(json!({"user_id": " u1 ", "customerId": "", "price_id": "Price_X"}));
        assert_eq!(r.user, " u1 ");
        assert_eq!(r.customer, None);
        assert_eq!(r.price.as_deref(), Some("Price_X"));
    }

    #[test]
    fn first_candidate_with_a_value_wins() {
        let r = record(json!({"userId": null, "user_id": "u2", "subject": "u3"}));
        assert_eq!(r.user, "u2");
        let r = record(json!({"clerkUserId": "u4"}));
        assert_eq!(r.user, "u4");
        let custom = FieldMap::new("ownerKey", &[], &[]).unwrap();
        assert_eq!(custom.paths(Field::User).last().unwrap(), "ownerKey");
    }

    #[test]
    fn overrides_replace_defaults_config_then_flags() {
        let config = vec![
            ("user".to_string(), "owner".to_string()),
            ("status".to_string(), "billing.state".to_string()),
        ];
        let flags = vec![
            "user=account.id".to_string(),
            "card_brand=pm.brand".to_string(),
        ];
        let fields = FieldMap::new("clerkUserId", &config, &flags).unwrap();
        assert_eq!(fields.paths(Field::User), ["account.id"]);
        assert_eq!(fields.paths(Field::Status), ["billing.state"]);
        assert_eq!(fields.paths(Field::CardBrand), ["pm.brand"]);
        let item = fields.item(
            &json!({"userId": "ignored", "account": {"id": "acc_1"}, "billing": {"state": "trialing"},
                    "pm": {"brand": "amex"}}),
            origin(),
            Keyed::default(),
        );
        let Item::Record(r, _) = item else {
            panic!("{item:?}")
        };
        assert_eq!(r.user, "acc_1");
        assert_eq!(r.status.as_deref(), Some("trialing"));
        assert_eq!(r.card_brand.as_deref(), Some("amex"));
    }

    #[test]
    fn literal_dotted_key_matches_like_a_nested_path() {
        let r = record(
            json!({"userId": "u1", "paymentMethod.brand": "visa", "paymentMethod.last4": "0005"}),
        );
        assert_eq!(r.card_brand.as_deref(), Some("visa"));
        assert_eq!(r.card_last4.as_deref(), Some("0005"));
        let m = map(json!({"a": {"b.c": 1}}));
        assert_eq!(lookup(&m, "a.b.c"), Some(&json!(1)));
        assert_eq!(lookup(&m, "a.b"), None);
    }

    #[test]
    fn bad_field_flags_are_usage_errors_listing_the_names() {
        let text = usage_text(FieldMap::new("clerkUserId", &[], &["plan".into()]).unwrap_err());
        assert_eq!(
            text,
            "--field plan: expected NAME=PATH, e.g. --field user=ownerId; the names are user, \
             customer, subscription, status, price, period_start, period_end, \
             cancel_at_period_end, card_brand, card_last4"
        );
        let text =
            usage_text(FieldMap::new("clerkUserId", &[], &["plan=tier".into()]).unwrap_err());
        assert!(
            text.starts_with("--field plan=tier: unknown field \"plan\"; the names are user, "),
            "{text}"
        );
        let config = vec![("usr".to_string(), "id".to_string())];
        let text = usage_text(FieldMap::new("clerkUserId", &config, &[]).unwrap_err());
        assert!(
            text.starts_with("[audit.fields] usr = \"id\": unknown field \"usr\""),
            "{text}"
        );
        let text = usage_text(FieldMap::new("clerkUserId", &[], &["user=".into()]).unwrap_err());
        assert!(
            text.starts_with("--field user=: the path is empty"),
            "{text}"
        );
    }

    #[test]
    fn presence_counts_null_and_columns() {
        let fields = defaults_map();
        let mut present = BTreeSet::new();
        fields.mark_present(
            &map(json!({"userId": "u", "status": null, "paymentMethod": {"brand": "visa"}})),
            &mut present,
        );
        assert_eq!(
            present,
            BTreeSet::from([Field::User, Field::Status, Field::CardBrand])
        );
        let cols = [
            "user_id",
            "paymentMethod.last4",
            "current_period_end",
            "email",
        ]
        .map(String::from);
        assert_eq!(
            fields.columns_present(&cols),
            BTreeSet::from([Field::User, Field::PeriodEnd, Field::CardLast4])
        );
        assert!(fields.is_field_key("paymentMethod"));
        assert!(!fields.is_field_key("payment"));
        assert!(!fields.is_field_key("user_2abc"));
    }

    #[test]
    fn every_time_form() {
        let at = 1767607200; // 2026-01-05T10:00:00Z
        let cases = [
            json!(1767607200),
            json!("1767607200"),
            json!(1767607200123i64),
            json!("1767607200999"),
            json!(1767607200123.456),
            json!(1767607200.75),
            json!("2026-01-05T10:00:00Z"),
            json!("2026-01-05t10:00:00z"),
            json!("2026-01-05T12:00:00+02:00"),
            json!("2026-01-05T10:00:00.123456Z"),
            json!("2026-01-05 10:00:00"),
            json!("2026-01-05 10:00:00+00"),
            json!("2026-01-05 05:00:00-05"),
            json!("2026-01-05 12:00:00.123+02:00"),
            json!("2026-01-05 12:00:00+0200"),
            json!("2026-01-05T10:00:00"),
            json!(" 1767607200 "),
        ];
        for v in cases {
            assert_eq!(time(&v), Ok(Some(at)), "{v}");
        }
        assert_eq!(time(&json!(null)), Ok(None));
        assert_eq!(time(&json!("")), Ok(None));
        let date = time(&json!("2026-01-05")).unwrap_err();
        assert!(
            date.starts_with("\"2026-01-05\" is a date without a time"),
            "{date}"
        );
        for bad in [
            json!("soon"),
            json!("2026-01-05T10:00"),
            json!(true),
            json!({"s": 1}),
        ] {
            let err = time(&bad).unwrap_err();
            assert!(
                err.starts_with("expected a time (unix seconds"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn booleans() {
        for t in [
            json!(true),
            json!("true"),
            json!("TRUE"),
            json!("t"),
            json!(1),
            json!("1"),
            json!("yes"),
        ] {
            assert_eq!(boolean(&t), Ok(Some(true)), "{t}");
        }
        for f in [
            json!(false),
            json!("false"),
            json!("f"),
            json!(0),
            json!("0"),
            json!("no"),
        ] {
            assert_eq!(boolean(&f), Ok(Some(false)), "{f}");
        }
        assert_eq!(boolean(&json!(null)), Ok(None));
        assert_eq!(boolean(&json!("")), Ok(None));
        let fields = defaults_map();
        let p = problem(
            &fields,
            json!({"userId": "u1", "cancelAtPeriodEnd": "maybe"}),
        );
        assert_eq!(p.field, Some(Field::CancelAtPeriodEnd));
        assert_eq!(
            p.to_string(),
            "users.json, element 1: cancel_at_period_end: expected true or false, found a string (\"maybe\")"
        );
        assert!(boolean(&json!(2)).is_err());
    }

    #[test]
    fn status_none_null_absent_empty() {
        for v in [
            json!({"userId": "u"}),
            json!({"userId": "u", "status": null}),
            json!({"userId": "u", "status": ""}),
            json!({"userId": "u", "status": "none"}),
            json!({"userId": "u", "status": "None"}),
        ] {
            assert_eq!(record(v.clone()).status, None, "{v}");
        }
        assert_eq!(
            record(json!({"userId": "u", "status": "Active"}))
                .status
                .as_deref(),
            Some("Active")
        );
    }

    #[test]
    fn last4_numbers_are_padded() {
        assert_eq!(
            record(json!({"userId": "u", "card_last4": 4242}))
                .card_last4
                .as_deref(),
            Some("4242")
        );
        assert_eq!(
            record(json!({"userId": "u", "card_last4": 5}))
                .card_last4
                .as_deref(),
            Some("0005")
        );
        let p = problem(&defaults_map(), json!({"userId": "u", "card_last4": 12345}));
        assert_eq!(p.message, "expected the card's last 4 digits, found 12345");
    }

    #[test]
    fn wrong_types_are_problems() {
        let fields = defaults_map();
        let p = problem(
            &fields,
            json!({"userId": "u", "customerId": {"id": "cus_1"}}),
        );
        assert_eq!(p.field, Some(Field::Customer));
        assert_eq!(p.message, "expected a string, found an object");
        let p = problem(&fields, json!({"userId": "u", "priceId": ["a"]}));
        assert_eq!(
            (p.field, p.message.as_str()),
            (Some(Field::Price), "expected a string, found an array")
        );
        let p = problem(&fields, json!({"userId": 42}));
        assert_eq!(p.field, Some(Field::User));
        assert!(
            p.message
                .starts_with("a number (42), but user ids are strings"),
            "{}",
            p.message
        );
        let p = problem(&fields, json!("user_1"));
        assert_eq!(
            p.message,
            "expected a record (a JSON object), found a string (\"user_1\")"
        );
    }

    #[test]
    fn records_without_a_user() {
        let fields = defaults_map();
        let p = problem(&fields, json!({"email": "a@b.c", "plan": "pro"}));
        assert_eq!(p.field, None);
        assert_eq!(
            p.message,
            "no user: the record has none of userId, user_id, clerkUserId, subject; keys: email, \
             plan (map the user with --field user=PATH)"
        );
        let p = problem(&fields, json!({"userId": null}));
        assert_eq!(
            p.message,
            "no user: userId is null; the record cannot be tied to a user"
        );
    }

    #[test]
    fn keyed_values_fill_in_and_must_agree() {
        let fields = defaults_map();
        let item = fields.item(
            &json!({"status": "active"}),
            origin(),
            Keyed {
                user: Some("u1"),
                customer: Some("cus_1"),
            },
        );
        let Item::Record(r, _) = item else {
            panic!("{item:?}")
        };
        assert_eq!(
            (r.user.as_str(), r.customer.as_deref()),
            ("u1", Some("cus_1"))
        );
        let item = fields.item(
            &json!({"userId": "u2"}),
            origin(),
            Keyed {
                user: Some("u1"),
                customer: None,
            },
        );
        let Item::Problem(p) = item else {
            panic!("{item:?}")
        };
        assert_eq!(p.field, Some(Field::User));
        assert_eq!(
            p.message,
            "the record says \"u2\" but its key says \"u1\"; fix one of them"
        );
    }

    #[test]
    fn no_user_field_hint() {
        let fields = defaults_map();
        let cols = ["id", "email", "plan"].map(String::from);
        let text = usage_text(fields.no_user_field("orders.csv", Shape::Columns, &cols));
        assert_eq!(
            text,
            "audit: no user field in orders.csv: its columns are id, email, plan; add --field \
             user=<column>, e.g. --field user=id"
        );
        let keys = ["_id", "_creationTime", "email", "ownerId"].map(String::from);
        let text = usage_text(fields.no_user_field("s.zip table users", Shape::Keys, &keys));
        assert!(
            text.ends_with(
                "its first record has the keys _id, _creationTime, email, ownerId; add \
                                --field user=<path>, e.g. --field user=ownerId"
            ),
            "{text}"
        );
        let keys = ["_id", "accountUser"].map(String::from);
        assert_eq!(guess_user(&keys), Some("accountUser"));
        let text = usage_text(fields.no_user_field("x.json", Shape::Keys, &[]));
        assert!(text.contains("it has no keys"), "{text}");
    }
}
