//! One file per subcommand: each a short function wiring the pieces together.

pub mod audit;
pub(crate) mod catchup;
pub mod completions;
pub mod inspect;
pub mod replay;
pub mod resync;
pub mod serve;
pub mod sign;
pub mod verify;

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Read a whole payload from a file, or stdin for `-`, byte for byte.
pub fn read_payload(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    if path.as_os_str() == "-" {
        if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(crate::usage(
                "no PAYLOAD: name a file, or pipe the payload in (stdin is a terminal)",
            ));
        }
        std::io::stdin()
            .lock()
            .read_to_end(&mut buf)
            .context("cannot read the payload from stdin")?;
    } else {
        buf = std::fs::read(path)
            .with_context(|| format!("cannot read payload file {}", path.display()))?;
    }
    Ok(buf)
}

/// The routing config, with `--user-key` applied; its warnings (unknown
/// event types) go to stderr.
pub fn load_config(
    global: &crate::cli::GlobalArgs,
    user_key: Option<&str>,
    printer: &crate::output::Printer,
) -> anyhow::Result<crate::config::Config> {
    let cfg = crate::config::Config::load(global.config.as_deref())?.with_user_key(user_key);
    for w in cfg.warnings() {
        printer.warn(&w);
    }
    Ok(cfg)
}

/// The store: `--db` (or `STRIPE_SYNC_DB`), else the config's `db`, else
/// `./stripe-sync.db`.
pub fn store_location(
    global: &crate::cli::GlobalArgs,
    cfg: &crate::config::Config,
) -> crate::store::Location {
    match (&global.db, &cfg.db) {
        (None, Some(db)) => crate::store::Location::from_flag(Some(std::path::Path::new(db))),
        (flag, _) => crate::store::Location::from_flag(flag.as_deref()),
    }
}

/// Seconds since the epoch, by the system clock.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The API key from `--api-key`, `--api-key-file`, `STRIPE_API_KEY` or
/// `STRIPE_SECRET_KEY`, in that order. The key never appears in a message.
pub fn api_key(
    args: &crate::cli::ApiArgs,
    printer: &crate::output::Printer,
) -> anyhow::Result<crate::secret::Secret> {
    use crate::secret::Secret;
    let key = if let Some(k) = &args.api_key {
        k.clone()
    } else if let Some(path) = &args.api_key_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read API key file {}", path.display()))?;
        Secret::new(text.lines().next().unwrap_or("").trim())
    } else {
        let env = |name| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        match env("STRIPE_API_KEY")
            .or_else(|| env("STRIPE_SECRET_KEY"))
            .map(|k| Secret::new(k.trim()))
            .or_else(|| printer.ask_secret("Stripe API key (sk_... or rk_...)"))
        {
            Some(k) => k,
            None => {
                return Err(crate::usage(
                    "no Stripe API key: pass --api-key or --api-key-file, or set STRIPE_API_KEY (or STRIPE_SECRET_KEY)",
                ));
            }
        }
    };
    let text = key.expose();
    if text.is_empty() {
        return Err(crate::usage("the Stripe API key is blank"));
    }
    if text.starts_with("pk_") {
        return Err(crate::usage(
            "a publishable key (pk_...) cannot read subscriptions: use a secret (sk_) or restricted (rk_) key",
        ));
    }
    if text.starts_with("whsec_") {
        return Err(crate::usage(
            "that is a webhook signing secret (whsec_...), not an API key: use a secret (sk_) or restricted (rk_) key",
        ));
    }
    Ok(key)
}

/// A client for `resync` and `replay --live`, checked before any request.
pub fn api_client(
    args: &crate::cli::ApiArgs,
    cfg: &crate::config::Config,
    printer: &crate::output::Printer,
) -> anyhow::Result<(crate::stripe::Client, crate::stripe::KeyMode)> {
    use crate::stripe::{Client, ClientConfig, RequestHook, key_mode, validate_api_base};
    let key = api_key(args, printer)?;
    validate_api_base(&args.api_base).map_err(crate::usage)?;
    if let Some(rps) = args.max_rps
        && !(rps.is_finite() && rps > 0.0)
    {
        return Err(crate::usage("--max-rps must be a positive number"));
    }
    let mode = key_mode(&key);
    let mut config = ClientConfig::new(key);
    config.api_base = args.api_base.clone();
    config.api_version = args
        .api_version
        .clone()
        .unwrap_or_else(|| cfg.api_version.clone());
    config.max_rps = args.max_rps;
    config.max_retries = args.max_retries;
    if printer.verbosity() >= 2 {
        let sink = printer.debug_sink();
        config.on_request = Some(RequestHook::new(move |log| sink.request(log)));
    }
    let client = Client::new(config).map_err(|e| match e {
        crate::stripe::ApiError::InvalidBase(m) => crate::usage(m),
        other => anyhow::Error::new(other),
    })?;
    Ok((client, mode))
}

/// The endpoint's signing secret for `flag` (`--forward-to`,
/// `--repair-via`): `--secret` or `STRIPE_WEBHOOK_SECRET`, else a hidden
/// prompt on a terminal; blank or missing is a usage error.
pub(crate) fn endpoint_secret(
    flag: &str,
    given: Option<&crate::secret::Secret>,
    printer: &crate::output::Printer,
) -> anyhow::Result<crate::secret::Secret> {
    match given {
        Some(s) if !s.is_blank() => Ok(s.clone()),
        Some(_) => Err(crate::usage(format!(
            "the webhook secret for {flag} is blank"
        ))),
        None => printer
            .ask_secret("Endpoint signing secret (whsec_...)")
            .ok_or_else(|| {
                crate::usage(format!(
                    "{flag} needs the endpoint's signing secret: pass --secret whsec_... or set STRIPE_WEBHOOK_SECRET"
                ))
            }),
    }
}

/// The system clock to the nanosecond (0 before the epoch): stripe-python
/// judges the age with its sub-second clock, so the fraction counts.
pub(crate) fn precise_now() -> crate::signature::UnixTime {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    crate::signature::UnixTime {
        secs: i64::try_from(since_epoch.as_secs()).unwrap_or(i64::MAX),
        nanos: since_epoch.subsec_nanos(),
    }
}
