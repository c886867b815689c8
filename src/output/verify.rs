//! Rendering `verify`: the verdict for a person, and the `--json` document.

use serde::Serialize;

use super::Printer;
use crate::output;
use crate::signature::{Hint, HintCode, Reason, Verdict};

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

pub(crate) fn human(
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
            Reason::PayloadBom => "the payload starts with a UTF-8 byte-order mark",
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
