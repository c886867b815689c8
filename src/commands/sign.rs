//! `stripe-sync sign [PAYLOAD]`

use crate::cli::SignArgs;
use crate::output::Printer;
use crate::{Status, signature, usage};

pub fn run(args: &SignArgs, printer: &Printer) -> anyhow::Result<Status> {
    let asked;
    let secret = match &args.secret {
        None => match printer.ask_secret("Webhook signing secret (whsec_...)") {
            Some(s) => {
                asked = s;
                &asked
            }
            None => {
                return Err(usage(
                    "no webhook secret: pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET",
                ));
            }
        },
        Some(s) if s.is_blank() => return Err(usage("the webhook secret is blank")),
        Some(s) => s,
    };
    let payload = super::read_payload(&args.payload)?;
    let timestamp = args.timestamp.unwrap_or_else(super::unix_now);
    if !signature::signable_timestamp(timestamp) {
        return Err(usage(format!(
            "--timestamp {timestamp}: the official SDKs cannot verify it (stripe-node reads -1 as missing and rounds past 2^53)"
        )));
    }
    // Sign anyway (a test may want exactly this), but say why the SDKs or
    // the endpoint will not accept it. Only the key's kind is named.
    if let Some(prefix) = signature::api_key_prefix(secret.expose()) {
        printer.warn(&format!(
            "the secret is an API key ({prefix}…), not a webhook signing secret (whsec_…): \
             Stripe signs webhooks with the endpoint's whsec_ secret, so an app that verifies \
             with it will reject this header"
        ));
    }
    if payload.is_empty() {
        printer.warn(
            "the payload is empty: stripe-node refuses an empty body (\"No webhook payload was \
             provided\") whatever the signature, and `verify` reports empty_payload",
        );
    }
    let signed = signature::sign(secret, timestamp, &payload);
    if printer.json {
        printer.out_json(&signed)?;
    } else {
        printer.out(&format!("{}\n", signed.header))?;
    }
    Ok(Status::Ok)
}
