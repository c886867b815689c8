//! `stripe-sync verify [PAYLOAD]`

use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::output::{self, Printer};
use crate::signature::{self, Hint, HintCode, Reason, Verdict};
use crate::{Status, usage};

/// The `--json` document (SPEC.md field names; `detail`, `diagnosis` and
/// `notes` are additions).
#[derive(Debug, Serialize)]
pub struct VerifyReport<'a> {
    pub valid: bool,
    pub reason: Reason,
    pub timestamp: Option<i64>,
    pub age_seconds: Option<i64>,
    pub matched_secret: Option<usize>,
    pub event: Option<EventRef>,
    pub hints: Vec<HintCode>,
    pub detail: Option<&'a str>,
    pub diagnosis: &'a [Hint],
    /// Notices about a valid payload (hints are for failures): `thin_event`.
    pub notes: &'a [Hint],
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct EventRef {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// The top-level fields of a JSON payload that `verify` reports on. Each is
/// `None` unless it is a string, so an odd value never hides the others.
#[derive(Debug, Default, serde::Deserialize)]
struct EventHead {
    #[serde(default, deserialize_with = "string_or_none")]
    id: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "string_or_none")]
    kind: Option<String>,
    #[serde(default, deserialize_with = "string_or_none")]
    object: Option<String>,
}

fn string_or_none<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(
        match <serde_json::Value as serde::Deserialize>::deserialize(d)? {
            serde_json::Value::String(s) => Some(s),
            _ => None,
        },
    )
}

/// What the payload says about itself: `{"id", "type"}` when it is a JSON
/// event (snapshot or thin), and whether it is a thin event.
fn event_head(payload: &[u8]) -> (Option<EventRef>, bool) {
    let head = serde_json::from_slice::<EventHead>(payload).unwrap_or_default();
    let thin = head.object.as_deref() == Some(signature::THIN_EVENT_OBJECT);
    let event = match (head.id, head.kind) {
        (Some(id), Some(kind)) => Some(EventRef { id, kind }),
        _ => None,
    };
    (event, thin)
}

pub fn run(args: &VerifyArgs, printer: &Printer) -> anyhow::Result<Status> {
    let mut secrets = args.secrets.clone();
    if secrets.is_empty() {
        match printer.ask_secret("Webhook signing secret (whsec_...)") {
            Some(s) => secrets.push(s),
            None => {
                return Err(usage(
                    "no webhook secret: pass --secret whsec_... (repeatable) or set STRIPE_WEBHOOK_SECRET",
                ));
            }
        }
    }
    let args = &VerifyArgs {
        secrets,
        ..args.clone()
    };
    if let Some(i) = args.secrets.iter().position(|s| s.is_blank()) {
        return Err(usage(format!(
            "webhook secret #{} is blank (check --secret and STRIPE_WEBHOOK_SECRET for empty entries)",
            i + 1
        )));
    }
    let Some(raw_header) = &args.signature else {
        return Err(usage(
            "no signature header: pass --signature 't=...,v1=...' or set STRIPE_SIGNATURE",
        ));
    };
    let header = signature::strip_header_name(raw_header);
    let payload = super::read_payload(&args.payload)?;
    let now = args.now.unwrap_or_else(super::unix_now);
    printer.debug(&format!(
        "verifying {} payload bytes against {} secret(s), tolerance {} s, now {now}",
        payload.len(),
        args.secrets.len(),
        args.tolerance
    ));

    let mut verdict = signature::verify(&payload, header, &args.secrets, args.tolerance, now);
    let (event, thin) = event_head(&payload);
    // The SDKs' constructEvent refuses a thin event after checking its
    // signature: on a failure that is one more thing to fix (a hint), on a
    // valid signature a notice.
    let mut notes = Vec::new();
    if thin {
        if verdict.valid {
            notes.push(signature::thin_event_hint());
        } else {
            verdict.hints.push(signature::thin_event_hint());
        }
    }
    if printer.json {
        let hints: Vec<HintCode> = verdict.hints.iter().map(|h| h.code).collect();
        printer.out_json(&VerifyReport {
            valid: verdict.valid,
            reason: verdict.reason,
            timestamp: verdict.timestamp,
            age_seconds: verdict.age_seconds,
            matched_secret: verdict.matched_secret,
            event,
            hints,
            detail: verdict.detail.as_deref(),
            diagnosis: &verdict.hints,
            notes: &notes,
        })?;
    } else {
        let text = human(
            &verdict,
            &notes,
            event.as_ref(),
            args.secrets.len(),
            printer,
        );
        printer.out(&output::table::wrap_lines(&text, printer.width()))?;
    }
    Ok(Status::from_problems(!verdict.valid))
}

fn human(
    v: &Verdict,
    notes: &[Hint],
    event: Option<&EventRef>,
    secrets: usize,
    p: &Printer,
) -> String {
    let mut out = String::new();
    let when = match (v.timestamp, v.age_seconds) {
        (Some(t), Some(age)) if age >= 0 => {
            format!("t={t}, {} old", output::fmt::age(age.unsigned_abs()))
        }
        (Some(t), Some(age)) => format!(
            "t={t}, {} in the future",
            output::fmt::age(age.unsigned_abs())
        ),
        _ => String::from("no usable timestamp"),
    };
    if v.valid {
        let which = v.matched_secret.map_or(0, |i| i + 1);
        out.push_str(&format!(
            "{} signature matches secret #{which} ({when})\n",
            p.paint("valid", output::GREEN)
        ));
    } else {
        let what = match v.reason {
            Reason::NoSignatures => "no v1 signature in the header",
            Reason::MalformedHeader => "the header cannot be read",
            Reason::SignatureMismatch if secrets > 1 => {
                "no v1 signature matches any of the secrets"
            }
            Reason::SignatureMismatch => "no v1 signature matches the secret",
            Reason::TimestampOutOfTolerance => "the timestamp is too old",
            Reason::PayloadNotUtf8 => "the payload is not valid UTF-8",
            Reason::EmptyPayload => "the payload is empty",
            Reason::Ok => "",
        };
        out.push_str(&format!(
            "{} {}: {what}\n  {when}\n",
            p.paint("invalid", output::RED),
            v.reason.as_str()
        ));
        if let Some(d) = &v.detail {
            out.push_str(&format!("  {d}\n"));
        }
    }
    if let Some(e) = event {
        out.push_str(&format!(
            "event {} {}\n",
            output::escape_text(&e.id),
            output::escape_text(&e.kind)
        ));
    }
    for h in &v.hints {
        out.push_str(&format!(
            "  {} {}: {}\n",
            p.paint("hint", output::YELLOW),
            h.code.as_str(),
            h.message
        ));
    }
    for n in notes {
        out.push_str(&format!(
            "  {} {}: {}\n",
            p.paint("note", output::YELLOW),
            n.code.as_str(),
            n.message
        ));
    }
    // `thin_event` is no cause of a mismatch.
    let explained = v.hints.iter().any(|h| h.code != HintCode::ThinEvent);
    if v.reason == Reason::SignatureMismatch && !explained {
        out.push_str(
            "  no tested cause matched: the secret is probably another endpoint's (each endpoint \
             and each `stripe listen` session has its own whsec_), or the payload is not the raw \
             body that was signed\n",
        );
    }
    out
}
