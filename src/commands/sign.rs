//! `stripe-sync sign [PAYLOAD]`

use crate::cli::SignArgs;
use crate::output::Printer;
use crate::secret;
use crate::{Status, signature, usage};

pub fn run(args: &SignArgs, printer: &Printer) -> anyhow::Result<Status> {
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
    if let Some(i) = secret::first_blank(&secrets) {
        return Err(usage(format!(
            "webhook secret #{} is blank (check --secret and STRIPE_WEBHOOK_SECRET for empty entries)",
            i + 1
        )));
    }
    let payload = super::read_payload(&args.payload)?;
    let timestamp = args.timestamp.unwrap_or_else(super::unix_now);
    if !signature::signable_timestamp(timestamp) {
        return Err(usage(format!(
            "--timestamp {timestamp}: the official SDKs cannot verify it (stripe-node reads -1 as missing and rounds past 2^53)"
        )));
    }
    // Sign anyway (a test may want exactly this), but say why the SDKs or
    // the endpoint will not accept it. Only the key's kind is named.
    for (i, s) in secrets.iter().enumerate() {
        if let Some(prefix) = signature::api_key_prefix(s.expose()) {
            let which = match secrets.len() {
                1 => "the secret".to_owned(),
                _ => format!("secret #{}", i + 1),
            };
            printer.warn(&format!(
                "{which} is an API key ({prefix}…), not a webhook signing secret (whsec_…): \
                 Stripe signs webhooks with the endpoint's whsec_ secret, so an app that \
                 verifies with it will reject this header"
            ));
        }
    }
    if payload.is_empty() {
        printer.warn(
            "the payload is empty: stripe-node refuses an empty body (\"No webhook payload was \
             provided\") whatever the signature, and `verify` reports empty_payload",
        );
    }
    if payload.starts_with(signature::UTF8_BOM) {
        printer.warn(&format!(
            "the payload starts with a UTF-8 byte-order mark, signed as is: {} \
             (`verify` reports payload_bom)",
            signature::BOM_DISAGREEMENT
        ));
    }
    let signed = signature::sign_all(&secrets, timestamp, &payload);
    if printer.json {
        printer.out_json(&signed)?;
    } else {
        printer.out(&format!("{}\n", signed.header))?;
    }
    Ok(Status::Ok)
}
