//! `stripe-sync verify [PAYLOAD]`

use crate::cli::VerifyArgs;
use crate::output::verify::{EventRef, VerifyReport};
use crate::output::{self, Printer};
use crate::signature::{self, HintCode, UnixTime};
use crate::{Status, secret, usage};

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
/// event (`"object": "event"`, or a thin `v2.core.event`), and whether it
/// is a thin event. Any other signed object (an account with an `id` and a
/// `type`) is no event.
fn event_head(payload: &[u8]) -> (Option<EventRef>, bool) {
    let head = serde_json::from_slice::<EventHead>(payload).unwrap_or_default();
    let thin = head.object.as_deref() == Some(signature::THIN_EVENT_OBJECT);
    let is_event = thin || head.object.as_deref() == Some("event");
    let event = match (head.id, head.kind) {
        (Some(id), Some(kind)) if is_event => Some(EventRef { id, kind }),
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
    if let Some(i) = secret::first_blank(&args.secrets) {
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
    // `--now` is a whole second, as both SDKs would judge at that instant.
    let now = args
        .now
        .map_or_else(super::precise_now, UnixTime::from_secs);
    printer.debug(&format!(
        "verifying {} payload bytes against {} secret(s), tolerance {} s, now {}.{:09}",
        payload.len(),
        args.secrets.len(),
        args.tolerance,
        now.secs,
        now.nanos
    ));

    // The path `serve` runs too (and `benches/verify.rs` measures).
    let verifier = signature::Verifier::new(&args.secrets, args.tolerance);
    let mut verdict = verifier.verify_at(&payload, header, now);
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
        let text = output::verify::human(
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
