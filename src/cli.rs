//! Every command, flag, environment variable and help text (SPEC.md is the contract).

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::secret::Secret;

const AFTER_HELP: &str = "\
Exit status: 0 done and nothing wrong found; 1 something checked is wrong
(invalid signature, rejected events, failed syncs, drift, empty filter);
2 could not do the job (usage, unreadable input, bad config, refused
credentials, unusable store); 130 interrupted.";

/// Verify, replay and resync Stripe webhooks and subscriptions, offline or against the API.
#[derive(Debug, Parser)]
#[command(name = "stripe-sync", version, about, after_help = AFTER_HELP)]
#[command(propagate_version = true, max_term_width = 100)]
pub struct Root<C: Subcommand> {
    #[command(flatten, next_help_heading = "Global options")]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: C,
}

/// The command line: global options and one command.
pub type Cli = Root<Command>;

/// Options accepted before or after the command name.
#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team
    #[arg(long, global = true, env = "STRIPE_SYNC_DB", value_name = "PATH|URL")]
    pub db: Option<PathBuf>,

    /// Routing config [default: stripe-sync.toml in the current directory, if present]
    #[arg(long, global = true, env = "STRIPE_SYNC_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Machine output: exactly one JSON document on stdout
    #[arg(long, global = true)]
    pub json: bool,

    /// Print less on stderr
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,

    /// Print more on stderr (-vv for debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, value_name = "WHEN")]
    pub color: ColorChoice,

    /// Never prompt (implied by CI, or when stdin or stderr is not a terminal)
    #[arg(long, global = true)]
    pub no_input: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    #[command(about = VERIFY_ABOUT, after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),

    /// Produce a Stripe-Signature header for a payload (accepted by the official SDKs)
    #[command(after_help = SIGN_EXAMPLES)]
    Sign(SignArgs),

    /// Run events through the routing logic and sync routed customers into the store
    #[command(after_help = REPLAY_EXAMPLES)]
    Replay(ReplayArgs),

    /// Pull the truth from the Stripe API into the store (one user, one customer, or all)
    #[command(after_help = RESYNC_EXAMPLES)]
    Resync(ResyncArgs),

    /// Receive Stripe's webhooks like the app's endpoint, sync them into the store, record them
    #[command(after_help = SERVE_EXAMPLES)]
    Serve(ServeArgs),

    /// Show the resolved user -> customer -> subscription mapping
    #[command(after_help = INSPECT_EXAMPLES)]
    Inspect(InspectArgs),

    /// Hold the app's own billing records to the store's truth, user by user; repair drift
    #[command(after_help = AUDIT_EXAMPLES)]
    Audit(AuditArgs),

    /// Print a shell completion script
    #[command(after_help = COMPLETIONS_EXAMPLES)]
    Completions(CompletionsArgs),
}

/// `verify` alone, the same as [`Command::Verify`], for [`Cli::try_parse_args`].
#[derive(Debug, Subcommand)]
enum VerifyOnly {
    #[command(about = VERIFY_ABOUT, after_help = VERIFY_EXAMPLES)]
    Verify(VerifyArgs),
}

const VERIFY_ABOUT: &str =
    "Check a webhook payload against its Stripe-Signature header, and say why it fails";

const VERIFY_EXAMPLES: &str = "\
Examples:
  stripe-sync verify --secret \"$WHSEC\" --signature \"$SIG\" payload.json
  stripe-sync verify -s \"$WHSEC\" --signature \"$SIG\" --now 1767225595 body.json
  stripe-sync verify --signature 'Stripe-Signature: t=...,v1=...' < body.json
  stripe-sync verify -s \"$OLD\" -s \"$NEW\" --signature \"$SIG\" --json body.json";

const REPLAY_EXAMPLES: &str = "\
Events of one object in the same second are ordered by evidence: the order of a
Stripe list object (data[] is newest first), chained previous_attributes, then the
lifecycle (*.created first, *.deleted and canceled/incomplete_expired last). What no
evidence decides takes the later input and is reported as ambiguous (--json's
\"ambiguous\", a warning on stderr); --live reads the truth from the API.

Examples:
  stripe-sync replay fixtures/
  stripe-sync replay --dry-run --json 'events/*.ndjson' > routes.json
  stripe-sync replay fixtures/ --forward-to http://localhost:3000/api/stripe
  stripe events list --limit 100 | stripe-sync replay --strict -";

const RESYNC_EXAMPLES: &str = "\
The user's subscription is the one that
GET /v1/subscriptions?customer=C&status=all&limit=1 returns first: the newest
by created, and on a tie the API's own listing order. Every path (--customer,
--user, --all, replay --live, and --check) gives that same answer. A customer
deleted in Stripe shows status `deleted`.

Examples:
  stripe-sync resync --user user_2abc --json
  stripe-sync resync --customer cus_QXg1o8vcGmoR32 --check
  STRIPE_API_KEY=rk_test_... stripe-sync resync --all --max-rps 20";

const SERVE_EXAMPLES: &str = "\
Answers like the app's endpoint: 500 without a secret, 400 `Webhook Error: ...` on a
bad signature, 200 with the decision once the sync is committed (never before).

Examples:
  stripe-sync serve --secret whsec_... --record captured/
  stripe listen --forward-to localhost:4242/stripe
  stripe-sync replay captured/";

const INSPECT_EXAMPLES: &str = "\
Examples:
  stripe-sync inspect
  stripe-sync inspect --status active,trialing --json
  stripe-sync inspect --unmapped --csv > unmapped.csv";

const AUDIT_EXAMPLES: &str = "\
Findings, most serious first: unpaid_access, paid_no_access, missing_in_app,
unknown_user, then one per field that differs (subscription, customer, status,
price, period, cancel_at_period_end, card), several_live_subscriptions,
several_customers. Only the fields the app's records have are compared.

Examples:
  stripe-sync audit snapshot.zip --table users       # npx convex export
  stripe-sync audit --app-db \"$DATABASE_URL\" --query 'SELECT * FROM billing'
  stripe-sync audit kv.json --fail-on unpaid_access,paid_no_access
  stripe-sync audit users.csv --repair-via http://localhost:3000/stripe";

const SIGN_EXAMPLES: &str = "\
Examples:
  stripe-sync sign --secret whsec_test payload.json
  stripe-sync sign -s whsec_test --timestamp 1767225590 --json payload.json
  stripe-sync sign -s \"$NEW\" -s \"$OLD\" payload.json";

const COMPLETIONS_EXAMPLES: &str = "\
Examples:
  echo 'source <(stripe-sync completions bash)' >> ~/.bashrc
  stripe-sync completions zsh > \"${fpath[1]}/_stripe-sync\"
  stripe-sync completions fish > ~/.config/fish/completions/stripe-sync.fish";

#[derive(Debug, Args, Clone)]
pub struct VerifyArgs {
    /// Payload file, or - for stdin
    #[arg(value_name = "PAYLOAD", default_value = "-")]
    pub payload: PathBuf,

    /// Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation
    #[arg(
        short,
        long = "secret",
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "SECRET"
    )]
    pub secrets: Vec<Secret>,

    /// The Stripe-Signature header value (a leading "Stripe-Signature:" is dropped)
    #[arg(
        long,
        env = "STRIPE_SIGNATURE",
        value_name = "HEADER",
        allow_hyphen_values = true
    )]
    pub signature: Option<String>,

    /// Maximum age of the timestamp in seconds; 0 disables the age check
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub tolerance: u64,

    /// Judge the age as of this unix time instead of the clock
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    pub now: Option<i64>,
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// Payload file, or - for stdin
    #[arg(value_name = "PAYLOAD", default_value = "-")]
    pub payload: PathBuf,

    /// Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)
    #[arg(
        short,
        long = "secret",
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "SECRET"
    )]
    pub secrets: Vec<Secret>,

    /// Unix timestamp to sign with [default: now]
    #[arg(long, value_name = "UNIX", allow_negative_numbers = true)]
    pub timestamp: Option<i64>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Event files, directories (recursive: *.json, *.jsonl, *.ndjson), globs, or - for stdin
    #[arg(value_name = "INPUT")]
    pub inputs: Vec<String>,

    /// Route and resolve only; write nothing, send nothing; the summary says what a real run would do (would sync)
    #[arg(long, conflicts_with = "forward_to")]
    pub dry_run: bool,

    /// Sync routed customers from the Stripe API instead of from the events
    #[arg(long)]
    pub live: bool,

    /// Count unresolved events as failures (exit 1)
    #[arg(long)]
    pub strict: bool,

    /// Metadata key holding the app's user id [default: from config, else clerkUserId]
    #[arg(long, value_name = "KEY", value_parser = non_blank_user_key)]
    pub user_key: Option<String>,

    /// POST each event, signed now, to this webhook endpoint (the store is not written)
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "live",
        help_heading = "Forwarding"
    )]
    pub forward_to: Option<String>,

    /// Endpoint's signing secret for --forward-to
    #[arg(
        short,
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Forwarding"
    )]
    pub secret: Option<Secret>,

    /// Deliveries in flight at once (1 keeps input order)
    #[arg(
        long,
        default_value_t = 1,
        value_name = "N",
        help_heading = "Forwarding"
    )]
    pub concurrency: usize,

    /// Per-request timeout in seconds
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "SECONDS",
        value_parser = positive_seconds,
        help_heading = "Forwarding"
    )]
    pub timeout: f64,

    /// Extra header on every delivery, `Name: value` (repeatable)
    #[arg(
        short = 'H',
        long = "header",
        value_name = "HEADER",
        help_heading = "Forwarding"
    )]
    pub headers: Vec<String>,

    /// Pause between deliveries, in milliseconds
    #[arg(
        long,
        default_value_t = 0,
        value_name = "MS",
        help_heading = "Forwarding"
    )]
    pub delay: u64,

    /// Allow plain http:// to a host that is not loopback
    #[arg(long, help_heading = "Forwarding")]
    pub allow_remote: bool,

    /// Let -H replace headers stripe-sync sets (Stripe-Signature, Content-Type, User-Agent): for testing how the endpoint rejects a forged signature
    #[arg(long, help_heading = "Forwarding")]
    pub allow_header_override: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// How to reach the Stripe API (resync, replay --live).
#[derive(Debug, Args, Clone)]
pub struct ApiArgs {
    /// Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]
    #[arg(long, value_name = "KEY", conflicts_with = "api_key_file")]
    pub api_key: Option<Secret>,

    /// Read the key from a file (first line)
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,

    /// API base URL; plain http:// only for loopback hosts
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        value_name = "URL",
        default_value = "https://api.stripe.com"
    )]
    pub api_base: String,

    /// Stripe-Version header [default: from config, else 2025-06-30.basil]
    #[arg(long, value_name = "V", value_parser = non_blank_api_version)]
    pub api_version: Option<String>,

    /// Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]
    #[arg(long, value_name = "N", value_parser = positive_rate)]
    pub max_rps: Option<f64>,

    /// Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)
    #[arg(
        long,
        value_name = "N",
        default_value_t = 5,
        value_parser = clap::value_parser!(u32).range(0..=MAX_RETRIES)
    )]
    pub max_retries: u32,
}

#[derive(Debug, Args)]
pub struct ResyncArgs {
    /// The user's customers: store mapping, else Customer Search, else a scan (repeatable)
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,

    /// One customer (repeatable)
    #[arg(long = "customer", value_name = "ID")]
    pub customers: Vec<String>,

    /// Backfill every customer and subscription; resumes an interrupted backfill
    #[arg(long, conflicts_with_all = ["users", "customers"])]
    pub all: bool,

    // `requires` alone lets a contradiction through: clap counts a
    // requirement as met when it conflicts with a flag given (`--all
    // --follow` ran a backfill, `--customer X --restart` ignored --restart).
    // So each mode's own flags name the modes they cannot be used with.
    /// With --all on a shared (PostgreSQL) store: when another backfill holds the store, exit 2 instead of waiting for it
    #[arg(long, requires = "all", conflicts_with_all = ["users", "customers", "events"])]
    pub no_wait: bool,

    /// With --all: start over instead of resuming
    #[arg(long, requires = "all", conflicts_with_all = ["users", "customers", "events"])]
    pub restart: bool,

    /// Fetch and compare exactly as the real run would, write nothing; list differences; exit 1 on any drift
    #[arg(long)]
    pub check: bool,

    /// Skip the confirmation --all asks for on a live key
    #[arg(long)]
    pub yes: bool,

    /// List every customer; by default a run of more than 50 lists only those that changed or failed
    #[arg(long)]
    pub all_rows: bool,

    /// Catch up from Stripe's event log since the checkpoint: route each event as replay does, resync each affected customer once
    #[arg(long, conflicts_with_all = ["users", "customers", "all"], help_heading = "Event log")]
    pub events: bool,

    /// Start here instead of the checkpoint: unix time, RFC 3339, or a duration back from now (90m, 36h, 7d)
    #[arg(
        long,
        value_name = "WHEN",
        requires = "events",
        conflicts_with_all = ["users", "customers", "all"],
        help_heading = "Event log"
    )]
    pub since: Option<String>,

    /// Keep polling the event log; a failing API is waited out (SIGTERM finishes the batch and exits 0)
    #[arg(
        long,
        requires = "events",
        conflicts_with_all = ["users", "customers", "all"],
        help_heading = "Event log"
    )]
    pub follow: bool,

    /// Seconds between polls with --follow
    #[arg(long, value_name = "SECONDS", default_value_t = 5, requires = "follow", conflicts_with_all = ["users", "customers", "all"], value_parser = clap::value_parser!(u64).range(1..), help_heading = "Event log")]
    pub interval: u64,

    /// Metadata key for the user id [default: from config, else clerkUserId]
    #[arg(long, value_name = "KEY", value_parser = non_blank_user_key)]
    pub user_key: Option<String>,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on (or localhost:PORT); a non-loopback address has no TLS (a warning says so)
    #[arg(
        long,
        env = "STRIPE_SYNC_LISTEN",
        value_name = "ADDR",
        default_value = "127.0.0.1:4242"
    )]
    pub listen: String,

    /// The webhook route; any other path is 404
    #[arg(long, value_name = "PATH", default_value = "/stripe")]
    pub path: String,

    /// Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)
    #[arg(
        short,
        long = "secret",
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_delimiter = ',',
        value_name = "SECRET"
    )]
    pub secrets: Vec<Secret>,

    /// Maximum age of a signature; 0 disables the check
    #[arg(long, default_value_t = 300, value_name = "SECONDS")]
    pub tolerance: u64,

    /// Sync routed customers from the Stripe API instead of from the events
    #[arg(long)]
    pub live: bool,

    /// Keep every request's exact body: DIR/<created>-<arrival>-<event id>.json (unique, in arrival order); bad signatures under DIR/rejected/
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,

    /// Larger bodies are refused with 413
    #[arg(long, value_name = "BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body: usize,

    /// Concurrent connections accepted; more wait in the listen queue [default: 512, or half the open-file limit if lower]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,

    /// Metadata key for the user id
    #[arg(long, value_name = "KEY", value_parser = non_blank_user_key)]
    pub user_key: Option<String>,

    /// Seconds a client may take to send the request headers, and then the body
    #[arg(long, value_name = "SECONDS", default_value_t = 10, hide = true)]
    pub read_timeout: u64,

    #[command(flatten)]
    pub api: ApiArgs,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Only this user (repeatable)
    #[arg(long = "user", value_name = "ID")]
    pub users: Vec<String>,

    /// Only this customer (repeatable)
    #[arg(long = "customer", value_name = "ID")]
    pub customers: Vec<String>,

    /// Only these statuses, comma-separated (`none`: no subscription; `deleted`: the customer is deleted in Stripe)
    #[arg(
        long,
        value_name = "S[,S...]",
        value_delimiter = ',',
        value_parser = StatusParser
    )]
    pub status: Vec<String>,

    /// Only customers with no user id
    #[arg(long)]
    pub unmapped: bool,

    /// CSV instead of a table; control characters are escaped, and a text cell starting with = + - @ gets a leading ' (no spreadsheet formula)
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The app's records: a file or - (JSON array or object, NDJSON, CSV, T3 KV dump, Convex export .zip)
    #[arg(value_name = "SOURCE", conflicts_with = "app_db")]
    pub source: Option<PathBuf>,

    /// The app's database instead of SOURCE: postgres://... or sqlite:PATH (read only)
    #[arg(long, value_name = "URL", requires = "query")]
    pub app_db: Option<String>,

    /// SQL returning one row per user, for --app-db
    #[arg(long, value_name = "SQL", requires = "app_db")]
    pub query: Option<String>,

    /// The format of SOURCE [default: by extension, else by content]
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<AuditFormat>,

    /// The table of a Convex export (.zip) holding the records
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,

    /// Where a record keeps a field, as a dotted path (repeatable): --field user=subject
    #[arg(long = "field", value_name = "NAME=PATH")]
    pub fields: Vec<String>,

    /// Statuses that grant access
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "active,trialing",
        value_name = "S[,S...]"
    )]
    pub access: Vec<String>,

    /// Resync the audited users from the API first (as resync --user, paced)
    #[arg(long)]
    pub live: bool,

    /// CSV instead of a table (the findings; after --recheck, what remains)
    #[arg(long)]
    pub csv: bool,

    /// Which findings make the exit status 1 [default: all]
    #[arg(long, value_delimiter = ',', value_name = "F[,F...]")]
    pub fail_on: Vec<String>,

    /// Metadata key holding the app's user id [default: from config, else clerkUserId]
    #[arg(long, value_name = "KEY", value_parser = non_blank_user_key)]
    pub user_key: Option<String>,

    /// Send each drifted user one signed event to this webhook endpoint, so the app's own sync runs
    #[arg(long, value_name = "URL", help_heading = "Repair")]
    pub repair_via: Option<String>,

    /// The endpoint's signing secret for --repair-via (comma-separate several during a rotation)
    #[arg(
        short,
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        help_heading = "Repair"
    )]
    pub secret: Option<Secret>,

    /// List the events a repair would send; send nothing
    #[arg(long, requires = "repair_via", help_heading = "Repair")]
    pub dry_run: bool,

    /// After the repairs, wait this long, read the source again and report what remains
    #[arg(
        long,
        value_name = "SECONDS",
        requires = "repair_via",
        conflicts_with = "dry_run",
        help_heading = "Repair"
    )]
    pub recheck: Option<u64>,

    /// Per-delivery timeout in seconds
    #[arg(
        long,
        default_value_t = 10.0,
        value_name = "SECONDS",
        value_parser = positive_seconds,
        help_heading = "Repair"
    )]
    pub timeout: f64,

    /// Allow plain http:// to a host that is not loopback
    #[arg(long, help_heading = "Repair")]
    pub allow_remote: bool,

    #[command(flatten)]
    pub api: ApiArgs,
}

/// `audit --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    Json,
    Ndjson,
    Csv,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// The values `inspect --status` accepts: Stripe's subscription statuses,
/// then `none` (no subscription) and `deleted` (the customer is deleted).
pub const STATUSES: [&str; 10] = [
    "incomplete",
    "incomplete_expired",
    "trialing",
    "active",
    "past_due",
    "canceled",
    "unpaid",
    "paused",
    "none",
    "deleted",
];

/// The most `--max-retries` allows: with backoff capped at 5 s, about a
/// hundred seconds of retrying one request.
pub const MAX_RETRIES: i64 = 20;

/// One `--status` value, checked against [`STATUSES`]; surrounding spaces
/// (`active, trialing`) are dropped. Clap's own possible-values parser does
/// the checking, so the error lists the valid values and suggests a close one.
#[derive(Debug, Clone, Copy)]
pub struct StatusParser;

impl clap::builder::TypedValueParser for StatusParser {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        let trimmed = value
            .to_str()
            .map_or(value, |v| std::ffi::OsStr::new(v.trim()));
        clap::builder::PossibleValuesParser::new(STATUSES).parse_ref(cmd, arg, trimmed)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            STATUSES
                .iter()
                .map(|s| clap::builder::PossibleValue::new(*s)),
        ))
    }
}

/// `--user-key`: a blank key would match no metadata at all.
fn non_blank_user_key(value: &str) -> Result<String, String> {
    if value.trim().is_empty() {
        Err("the user key must not be blank: name the metadata key that holds the app's user id (for example clerkUserId)".into())
    } else {
        Ok(value.to_owned())
    }
}

/// `--max-rps`: a finite number above zero.
/// `--api-version ''` is refused as the config refuses `api_version = ""`.
fn non_blank_api_version(value: &str) -> Result<String, String> {
    match value.trim() {
        "" => Err("is blank: name a Stripe API version (e.g. 2025-06-30.basil), or drop the flag for the config's".into()),
        v => Ok(v.to_owned()),
    }
}

fn positive_seconds(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        Ok(_) => Err("must be a positive number of seconds".into()),
        Err(e) => Err(format!("{e}: expected a positive number of seconds")),
    }
}

fn positive_rate(value: &str) -> Result<f64, String> {
    match value.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        Ok(_) => Err("must be a number above 0 (requests per second)".into()),
        Err(e) => Err(format!(
            "{e}: expected a number above 0 (requests per second)"
        )),
    }
}

impl Cli {
    pub fn command() -> clap::Command {
        <Self as clap::CommandFactory>::command()
    }

    /// Parse the process's arguments, as `Cli::try_parse` does.
    pub fn try_parse_args() -> Result<Cli, clap::Error> {
        Cli::try_parse_args_from(std::env::args_os().collect())
    }

    /// Parse a command line. Clap builds every command's arguments and help
    /// before it parses; when the line names `verify`, the command a CI step
    /// runs once per payload, only that one is built (a seventh of the work,
    /// and most of clap's share of the process's start-up). The result, help
    /// and errors included, are those of the whole command (tested below).
    pub fn try_parse_args_from(args: Vec<OsString>) -> Result<Cli, clap::Error> {
        if !names_verify(&args) {
            return Cli::try_parse_from(args);
        }
        let Root {
            global,
            command: VerifyOnly::Verify(verify),
        } = Root::<VerifyOnly>::try_parse_from(args)?;
        Ok(Cli {
            global,
            command: Command::Verify(verify),
        })
    }
}

/// Whether clap will read the command line's command as `verify`: its first
/// argument after the program name and any global options (which SPEC.md
/// lets stand before the command name).
fn names_verify(args: &[OsString]) -> bool {
    let mut rest = args.iter().skip(1).map(|a| a.to_str());
    while let Some(arg) = rest.next() {
        match arg {
            Some("verify") => return true,
            Some("--json" | "--quiet" | "--verbose" | "--no-input") => {}
            Some("--db" | "--config" | "--color") => {
                rest.next();
            }
            Some(a)
                if ["--db=", "--config=", "--color="]
                    .iter()
                    .any(|p| a.starts_with(p)) => {}
            // -q, -v, -vv: short global flags, alone or together.
            Some(a)
                if a.len() > 1
                    && a.starts_with('-')
                    && a[1..].bytes().all(|b| b"qv".contains(&b)) => {}
            _ => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(args: &[&str]) -> Vec<OsString> {
        std::iter::once("stripe-sync")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// What a parse gives, secrets included (their `Debug` hides them).
    fn outcome(parsed: Result<Cli, clap::Error>) -> String {
        match parsed {
            Ok(cli) => {
                let secrets = match &cli.command {
                    Command::Verify(v) => v.secrets.iter().map(|s| s.expose().to_owned()).collect(),
                    _ => Vec::new(),
                };
                format!("{cli:?} {secrets:?}")
            }
            Err(e) => format!("{:?}: {}", e.kind(), e.render()),
        }
    }

    #[test]
    fn verify_alone_parses_as_the_whole_command_line() {
        let lines: &[&[&str]] = &[
            &["verify"],
            &["verify", "--help"],
            &["verify", "-h"],
            &["verify", "--version"],
            &["verify", "-V"],
            &[
                "verify",
                "-s",
                "whsec_a,whsec_b",
                "--signature",
                "t=1,v1=ab",
                "p.json",
            ],
            &["verify", "--secret", "whsec_a", "--secret", "whsec_b", "-"],
            &[
                "verify",
                "--signature",
                "-t=1",
                "--now",
                "-5",
                "--tolerance",
                "0",
            ],
            &["verify", "--tolerance", "x"],
            &["verify", "--tolerance", "-1"],
            &["verify", "--bogus"],
            &["verify", "--sign"],
            &["verify", "a", "b"],
            &["verify", "--", "--secret"],
            &["verify", "--json", "--no-input", "-q"],
            &["verify", "-q", "-v"],
            &["verify", "--color", "sometimes"],
            &["--json", "verify", "--now", "1"],
            &["-q", "-v", "verify"],
            &["-vq", "verify"],
            &["-vv", "verify", "--help"],
            &["--db", "x.db", "verify", "--now", "7"],
            &["--db=x.db", "--config=c.toml", "--color=never", "verify"],
            &[
                "--config", "c.toml", "--color", "always", "verify", "-s", "x",
            ],
            &["--color", "sometimes", "verify"],
            &["--color=", "verify"],
        ];
        for args in lines {
            assert!(names_verify(&line(args)), "{args:?}");
            assert_eq!(
                outcome(Cli::try_parse_args_from(line(args))),
                outcome(Cli::try_parse_from(line(args))),
                "{args:?}"
            );
        }
    }

    #[test]
    fn other_command_lines_take_the_whole_command() {
        for args in [
            &[][..],
            &["--help"],
            &["--version"],
            &["sign", "verify"],
            &["replay", "verify"],
            &["--db", "verify"],
            &["--db", "verify", "replay"],
            &["--bogus", "verify"],
            &["--", "verify"],
            &["-x", "verify"],
            &["help", "verify"],
            &["verif"],
            &["Verify"],
        ] {
            assert!(!names_verify(&line(args)), "{args:?}");
        }
    }

    #[test]
    fn verify_help_is_the_whole_commands() {
        let mut whole = Cli::command();
        whole.build();
        let mut alone = <Root<VerifyOnly> as clap::CommandFactory>::command();
        alone.build();
        let (whole, alone) = (
            whole.find_subcommand_mut("verify").unwrap(),
            alone.find_subcommand_mut("verify").unwrap(),
        );
        assert_eq!(
            alone.render_long_help().to_string(),
            whole.render_long_help().to_string()
        );
        assert_eq!(
            alone.render_help().to_string(),
            whole.render_help().to_string()
        );
        assert_eq!(
            alone.render_usage().to_string(),
            whole.render_usage().to_string()
        );
    }
}
