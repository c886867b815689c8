//! `stripe-sync verify [PAYLOAD]`

use serde::Serialize;

use crate::cli::VerifyArgs;
use crate::output::{self, Printer};
use crate::signature::{self, Hint, HintCode, Reason, Verdict};
use crate::{Status, usage};

/// The `--json` document (SPEC.md field names; `detail` and `diagnosis` are additions).
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
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct EventRef {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
}

/// `{"id", "type"}` of a payload that is a JSON event, else `None`.
fn event_ref(payload: &[u8]) -> Option<EventRef> {
    serde_json::from_slice::<EventRef>(payload).ok()
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

    let verdict = signature::verify(&payload, header, &args.secrets, args.tolerance, now);
    let event = event_ref(&payload);
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
        })?;
    } else {
        printer.out(&human(
            &verdict,
            event.as_ref(),
            args.secrets.len(),
            printer,
        ))?;
    }
    Ok(Status::from_problems(!verdict.valid))
}

fn human(v: &Verdict, event: Option<&EventRef>, secrets: usize, p: &Printer) -> String {
    let mut out = String::new();
    let when = match (v.timestamp, v.age_seconds) {
        (Some(t), Some(age)) if age >= 0 => format!("t={t}, {age} s old"),
        (Some(t), Some(age)) => format!("t={t}, {} s in the future", -age),
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
            "{} {}: {what} ({when})\n",
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
    if v.reason == Reason::SignatureMismatch && v.hints.is_empty() {
        out.push_str(
            "  no tested cause matched: the secret is probably another endpoint's (each endpoint \
             and each `stripe listen` session has its own whsec_), or the payload is not the raw \
             body that was signed\n",
        );
    }
    out
}
