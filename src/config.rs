//! The routing config (`stripe-sync.toml`): which events sync, where the user id lives.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

pub const DEFAULT_API_VERSION: &str = "2025-06-30.basil";

/// The 18 event types the pattern tracks (SPEC.md).
pub const DEFAULT_SYNC_EVENTS: [&str; 18] = [
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.trial_will_end",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.upcoming",
    "invoice.marked_uncollectible",
    "invoice.payment_succeeded",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub user_key: String,
    pub checkout_required_metadata: Vec<String>,
    pub sync_events: Vec<String>,
    pub api_version: String,
    /// `[audit.fields]`: the app record's field for each of audit's names
    /// (`user = "subject"`, `status = "subscription.status"`).
    pub audit_fields: Vec<(String, String)>,
    /// `db`: the store, when neither `--db` nor `STRIPE_SYNC_DB` names one.
    pub db: Option<String>,
    /// Where it was read from, for messages.
    pub path: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            user_key: "clerkUserId".into(),
            checkout_required_metadata: vec!["clerkUserId".into(), "tier".into()],
            sync_events: DEFAULT_SYNC_EVENTS.iter().map(|s| s.to_string()).collect(),
            api_version: DEFAULT_API_VERSION.into(),
            audit_fields: Vec::new(),
            db: None,
            path: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    user_key: Option<String>,
    checkout_required_metadata: Option<Vec<String>>,
    sync_events: Option<Vec<String>>,
    api_version: Option<String>,
    db: Option<String>,
    audit: Option<AuditFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditFile {
    fields: Option<toml::Table>,
}

impl Config {
    /// `--config PATH` (must exist), else `./stripe-sync.toml` if present, else defaults.
    pub fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
        let (path, required) = match explicit {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("stripe-sync.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default());
            }
            Err(e) => {
                return Err(e).with_context(|| format!("cannot read config {}", path.display()));
            }
        };
        Self::parse(&text)
            .with_context(|| format!("bad config {}", path.display()))
            .map(|mut c| {
                c.path = Some(path);
                c
            })
    }

    pub fn parse(text: &str) -> anyhow::Result<Config> {
        let file: File =
            toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim()))?;
        let mut c = Config::default();
        if let Some(k) = file.user_key {
            if k.trim().is_empty() {
                anyhow::bail!(
                    "`user_key` is blank: set it to the metadata key that holds the app's user id, or drop the line for the default `clerkUserId`"
                );
            }
            c.checkout_required_metadata = c
                .checkout_required_metadata
                .iter()
                .map(|m| {
                    if m == "clerkUserId" {
                        k.clone()
                    } else {
                        m.clone()
                    }
                })
                .collect();
            c.user_key = k;
        }
        if let Some(m) = file.checkout_required_metadata {
            c.checkout_required_metadata = m;
        }
        if let Some(e) = file.sync_events {
            c.sync_events = e;
        }
        if let Some(v) = file.api_version {
            if v.trim().is_empty() {
                anyhow::bail!("`api_version` is empty");
            }
            c.api_version = v;
        }
        if let Some(db) = file.db {
            if db.trim().is_empty() {
                anyhow::bail!(
                    "`db` is empty: give the store's path or postgres:// URL, or drop the line for ./stripe-sync.db"
                );
            }
            c.db = Some(db);
        }
        for (name, path) in file.audit.and_then(|a| a.fields).unwrap_or_default() {
            let Some(path) = path.as_str() else {
                anyhow::bail!(
                    "[audit.fields] `{name}` must be a string: the record's field (a dotted path), e.g. {name} = \"stripeCustomerId\""
                );
            };
            c.audit_fields.push((name, path.to_owned()));
        }
        Ok(c)
    }

    /// Non-fatal problems worth telling the user, one message each: today, the
    /// `sync_events` entries that are not Stripe event types (a typo there
    /// would otherwise pass silently, and no event would ever match it).
    pub fn warnings(&self) -> Vec<String> {
        let path = self
            .path
            .as_deref()
            .unwrap_or(Path::new("stripe-sync.toml"))
            .display();
        self.sync_events
            .iter()
            .filter(|t| !crate::event_types::is_event_type(t))
            .map(|t| {
                let hint = crate::event_types::closest(t)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                format!(
                    "{path}: sync_events: `{}` is not a Stripe event type{hint}",
                    crate::output::escape_text(t)
                )
            })
            .collect()
    }

    /// Apply `--user-key`.
    pub fn with_user_key(mut self, key: Option<&str>) -> Config {
        if let Some(k) = key {
            for m in &mut self.checkout_required_metadata {
                if *m == self.user_key {
                    *m = k.to_owned();
                }
            }
            self.user_key = k.to_owned();
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_when_empty() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.sync_events.len(), 18);
        assert_eq!(c.user_key, "clerkUserId");
        assert_eq!(c.api_version, "2025-06-30.basil");
    }

    #[test]
    fn user_key_carries_into_checkout_requirement() {
        let c = Config::parse("user_key = \"appUserId\"").unwrap();
        assert_eq!(c.checkout_required_metadata, ["appUserId", "tier"]);
        let c = Config::default().with_user_key(Some("uid"));
        assert_eq!(c.user_key, "uid");
        assert_eq!(c.checkout_required_metadata, ["uid", "tier"]);
    }

    #[test]
    fn blank_user_key_is_an_error_naming_the_key() {
        for text in ["user_key = \"\"", "user_key = \"  \""] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains("`user_key` is blank"), "{e}");
        }
    }

    #[test]
    fn audit_fields_are_read_and_must_be_strings() {
        let mut c =
            Config::parse("[audit.fields]\nuser = \"subject\"\nstatus = \"sub.status\"\n").unwrap();
        c.audit_fields.sort();
        assert_eq!(
            c.audit_fields,
            [
                ("status".into(), "sub.status".into()),
                ("user".into(), "subject".into())
            ]
        );
        let e = Config::parse("[audit.fields]\nuser = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`user` must be a string"), "{e}");
    }

    #[test]
    fn defaults_have_no_warnings() {
        assert_eq!(Config::default().warnings(), Vec::<String>::new());
        assert_eq!(Config::parse("").unwrap().warnings(), Vec::<String>::new());
    }

    #[test]
    fn warnings_name_unknown_event_types_with_a_suggestion() {
        let mut c = Config::parse(
            "sync_events = [\"invoice.paidd\", \"invoice.paid\", \"subscription.updated\", \"charge.succeeded\", \"nonsense\", \"bad\\u001b[2J\"]",
        )
        .unwrap();
        c.path = Some(PathBuf::from("conf/billing.toml"));
        assert_eq!(
            c.warnings(),
            [
                "conf/billing.toml: sync_events: `invoice.paidd` is not a Stripe event type (did you mean `invoice.paid`?)",
                "conf/billing.toml: sync_events: `subscription.updated` is not a Stripe event type (did you mean `customer.subscription.updated`?)",
                "conf/billing.toml: sync_events: `nonsense` is not a Stripe event type",
                "conf/billing.toml: sync_events: `bad\\u{1b}[2J` is not a Stripe event type",
            ]
        );
        c.path = None;
        assert_eq!(
            c.warnings()[0],
            "stripe-sync.toml: sync_events: `invoice.paidd` is not a Stripe event type (did you mean `invoice.paid`?)"
        );
    }

    #[test]
    fn unknown_key_and_wrong_type_name_the_key() {
        let e = Config::parse("user_keys = \"x\"").unwrap_err().to_string();
        assert!(e.contains("user_keys"), "{e}");
        let e = Config::parse("sync_events = \"invoice.paid\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sync_events"), "{e}");
    }
}
