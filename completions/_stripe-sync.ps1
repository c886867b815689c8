
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'stripe-sync' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'stripe-sync'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'stripe-sync' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a webhook payload against its Stripe-Signature header, and say why it fails')
            [CompletionResult]::new('sign', 'sign', [CompletionResultType]::ParameterValue, 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Run events through the routing logic and sync routed customers into the store')
            [CompletionResult]::new('resync', 'resync', [CompletionResultType]::ParameterValue, 'Pull the truth from the Stripe API into the store (one user, one customer, or all)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Receive Stripe''s webhooks like the app''s endpoint, sync them into the store, record them')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show the resolved user -> customer -> subscription mapping')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Hold the app''s own billing records to the store''s truth, user by user; repair drift')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'stripe-sync;verify' {
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation')
            [CompletionResult]::new('--signature', '--signature', [CompletionResultType]::ParameterName, 'The Stripe-Signature header value (a leading "Stripe-Signature:" is dropped)')
            [CompletionResult]::new('--tolerance', '--tolerance', [CompletionResultType]::ParameterName, 'Maximum age of the timestamp in seconds; 0 disables the age check')
            [CompletionResult]::new('--now', '--now', [CompletionResultType]::ParameterName, 'Judge the age as of this unix time instead of the clock')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;sign' {
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)')
            [CompletionResult]::new('--timestamp', '--timestamp', [CompletionResultType]::ParameterName, 'Unix timestamp to sign with [default: now]')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;replay' {
            [CompletionResult]::new('--user-key', '--user-key', [CompletionResultType]::ParameterName, 'Metadata key holding the app''s user id [default: from config, else clerkUserId]')
            [CompletionResult]::new('--forward-to', '--forward-to', [CompletionResultType]::ParameterName, 'POST each event, signed now, to this webhook endpoint (the store is not written)')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Endpoint''s signing secret for --forward-to')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Endpoint''s signing secret for --forward-to')
            [CompletionResult]::new('--concurrency', '--concurrency', [CompletionResultType]::ParameterName, 'Deliveries in flight at once (1 keeps input order)')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-request timeout in seconds')
            [CompletionResult]::new('-H', '-H ', [CompletionResultType]::ParameterName, 'Extra header on every delivery, `Name: value` (repeatable)')
            [CompletionResult]::new('--header', '--header', [CompletionResultType]::ParameterName, 'Extra header on every delivery, `Name: value` (repeatable)')
            [CompletionResult]::new('--delay', '--delay', [CompletionResultType]::ParameterName, 'Pause between deliveries, in milliseconds')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the key from a file (first line)')
            [CompletionResult]::new('--api-base', '--api-base', [CompletionResultType]::ParameterName, 'API base URL; plain http:// only for loopback hosts')
            [CompletionResult]::new('--api-version', '--api-version', [CompletionResultType]::ParameterName, 'Stripe-Version header [default: from config, else 2025-06-30.basil]')
            [CompletionResult]::new('--max-rps', '--max-rps', [CompletionResultType]::ParameterName, 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]')
            [CompletionResult]::new('--max-retries', '--max-retries', [CompletionResultType]::ParameterName, 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'Route and resolve only; write nothing, send nothing; the summary says what a real run would do (would sync)')
            [CompletionResult]::new('--live', '--live', [CompletionResultType]::ParameterName, 'Sync routed customers from the Stripe API instead of from the events')
            [CompletionResult]::new('--strict', '--strict', [CompletionResultType]::ParameterName, 'Count unresolved events as failures (exit 1)')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'Allow plain http:// to a host that is not loopback')
            [CompletionResult]::new('--allow-header-override', '--allow-header-override', [CompletionResultType]::ParameterName, 'Let -H replace headers stripe-sync sets (Stripe-Signature, Content-Type, User-Agent): for testing how the endpoint rejects a forged signature')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;resync' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'The user''s customers: store mapping, else Customer Search, else a scan (repeatable)')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'One customer (repeatable)')
            [CompletionResult]::new('--since', '--since', [CompletionResultType]::ParameterName, 'Start here instead of the checkpoint: unix time, RFC 3339, or a duration back from now (90m, 36h, 7d)')
            [CompletionResult]::new('--interval', '--interval', [CompletionResultType]::ParameterName, 'Seconds between polls with --follow')
            [CompletionResult]::new('--user-key', '--user-key', [CompletionResultType]::ParameterName, 'Metadata key for the user id [default: from config, else clerkUserId]')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the key from a file (first line)')
            [CompletionResult]::new('--api-base', '--api-base', [CompletionResultType]::ParameterName, 'API base URL; plain http:// only for loopback hosts')
            [CompletionResult]::new('--api-version', '--api-version', [CompletionResultType]::ParameterName, 'Stripe-Version header [default: from config, else 2025-06-30.basil]')
            [CompletionResult]::new('--max-rps', '--max-rps', [CompletionResultType]::ParameterName, 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]')
            [CompletionResult]::new('--max-retries', '--max-retries', [CompletionResultType]::ParameterName, 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--all', '--all', [CompletionResultType]::ParameterName, 'Backfill every customer and subscription; resumes an interrupted backfill')
            [CompletionResult]::new('--no-wait', '--no-wait', [CompletionResultType]::ParameterName, 'With --all on a shared (PostgreSQL) store: when another backfill holds the store, exit 2 instead of waiting for it')
            [CompletionResult]::new('--restart', '--restart', [CompletionResultType]::ParameterName, 'With --all: start over instead of resuming')
            [CompletionResult]::new('--check', '--check', [CompletionResultType]::ParameterName, 'Fetch and compare exactly as the real run would, write nothing; list differences; exit 1 on any drift')
            [CompletionResult]::new('--yes', '--yes', [CompletionResultType]::ParameterName, 'Skip the confirmation --all asks for on a live key')
            [CompletionResult]::new('--all-rows', '--all-rows', [CompletionResultType]::ParameterName, 'List every customer; by default a run of more than 50 lists only those that changed or failed')
            [CompletionResult]::new('--events', '--events', [CompletionResultType]::ParameterName, 'Catch up from Stripe''s event log since the checkpoint: route each event as replay does, resync each affected customer once')
            [CompletionResult]::new('--follow', '--follow', [CompletionResultType]::ParameterName, 'Keep polling the event log; a failing API is waited out (SIGTERM finishes the batch and exits 0)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address and port to listen on (or localhost:PORT); a non-loopback address has no TLS (a warning says so)')
            [CompletionResult]::new('--path', '--path', [CompletionResultType]::ParameterName, 'The webhook route; any other path is 404')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)')
            [CompletionResult]::new('--tolerance', '--tolerance', [CompletionResultType]::ParameterName, 'Maximum age of a signature; 0 disables the check')
            [CompletionResult]::new('--record', '--record', [CompletionResultType]::ParameterName, 'Keep every request''s exact body: DIR/<created>-<arrival>-<event id>.json (unique, in arrival order); bad signatures under DIR/rejected/')
            [CompletionResult]::new('--max-body', '--max-body', [CompletionResultType]::ParameterName, 'Larger bodies are refused with 413')
            [CompletionResult]::new('--max-connections', '--max-connections', [CompletionResultType]::ParameterName, 'Concurrent connections accepted; more wait in the listen queue [default: 512, or half the open-file limit if lower]')
            [CompletionResult]::new('--user-key', '--user-key', [CompletionResultType]::ParameterName, 'Metadata key for the user id')
            [CompletionResult]::new('--read-timeout', '--read-timeout', [CompletionResultType]::ParameterName, 'Seconds a client may take to send the request headers, and then the body')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the key from a file (first line)')
            [CompletionResult]::new('--api-base', '--api-base', [CompletionResultType]::ParameterName, 'API base URL; plain http:// only for loopback hosts')
            [CompletionResult]::new('--api-version', '--api-version', [CompletionResultType]::ParameterName, 'Stripe-Version header [default: from config, else 2025-06-30.basil]')
            [CompletionResult]::new('--max-rps', '--max-rps', [CompletionResultType]::ParameterName, 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]')
            [CompletionResult]::new('--max-retries', '--max-retries', [CompletionResultType]::ParameterName, 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--live', '--live', [CompletionResultType]::ParameterName, 'Sync routed customers from the Stripe API instead of from the events')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;inspect' {
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Only this user (repeatable)')
            [CompletionResult]::new('--customer', '--customer', [CompletionResultType]::ParameterName, 'Only this customer (repeatable)')
            [CompletionResult]::new('--status', '--status', [CompletionResultType]::ParameterName, 'Only these statuses, comma-separated (`none`: no subscription; `deleted`: the customer is deleted in Stripe)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--unmapped', '--unmapped', [CompletionResultType]::ParameterName, 'Only customers with no user id')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'CSV instead of a table; control characters are escaped, and a text cell starting with = + - @ gets a leading '' (no spreadsheet formula)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;audit' {
            [CompletionResult]::new('--app-db', '--app-db', [CompletionResultType]::ParameterName, 'The app''s database instead of SOURCE: postgres://... or sqlite:PATH (read only)')
            [CompletionResult]::new('--query', '--query', [CompletionResultType]::ParameterName, 'SQL returning one row per user, for --app-db')
            [CompletionResult]::new('--format', '--format', [CompletionResultType]::ParameterName, 'The format of SOURCE [default: by extension, else by content]')
            [CompletionResult]::new('--table', '--table', [CompletionResultType]::ParameterName, 'The table of a Convex export (.zip) holding the records')
            [CompletionResult]::new('--field', '--field', [CompletionResultType]::ParameterName, 'Where a record keeps a field, as a dotted path (repeatable): --field user=subject')
            [CompletionResult]::new('--access', '--access', [CompletionResultType]::ParameterName, 'Statuses that grant access')
            [CompletionResult]::new('--fail-on', '--fail-on', [CompletionResultType]::ParameterName, 'Which findings make the exit status 1 [default: all]')
            [CompletionResult]::new('--user-key', '--user-key', [CompletionResultType]::ParameterName, 'Metadata key holding the app''s user id [default: from config, else clerkUserId]')
            [CompletionResult]::new('--repair-via', '--repair-via', [CompletionResultType]::ParameterName, 'Send each drifted user one signed event to this webhook endpoint, so the app''s own sync runs')
            [CompletionResult]::new('-s', '-s', [CompletionResultType]::ParameterName, 'The endpoint''s signing secret for --repair-via (comma-separate several during a rotation)')
            [CompletionResult]::new('--secret', '--secret', [CompletionResultType]::ParameterName, 'The endpoint''s signing secret for --repair-via (comma-separate several during a rotation)')
            [CompletionResult]::new('--recheck', '--recheck', [CompletionResultType]::ParameterName, 'After the repairs, wait this long, read the source again and report what remains')
            [CompletionResult]::new('--timeout', '--timeout', [CompletionResultType]::ParameterName, 'Per-delivery timeout in seconds')
            [CompletionResult]::new('--api-key', '--api-key', [CompletionResultType]::ParameterName, 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]')
            [CompletionResult]::new('--api-key-file', '--api-key-file', [CompletionResultType]::ParameterName, 'Read the key from a file (first line)')
            [CompletionResult]::new('--api-base', '--api-base', [CompletionResultType]::ParameterName, 'API base URL; plain http:// only for loopback hosts')
            [CompletionResult]::new('--api-version', '--api-version', [CompletionResultType]::ParameterName, 'Stripe-Version header [default: from config, else 2025-06-30.basil]')
            [CompletionResult]::new('--max-rps', '--max-rps', [CompletionResultType]::ParameterName, 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]')
            [CompletionResult]::new('--max-retries', '--max-retries', [CompletionResultType]::ParameterName, 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)')
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--live', '--live', [CompletionResultType]::ParameterName, 'Resync the audited users from the API first (as resync --user, paced)')
            [CompletionResult]::new('--csv', '--csv', [CompletionResultType]::ParameterName, 'CSV instead of a table (the findings; after --recheck, what remains)')
            [CompletionResult]::new('--dry-run', '--dry-run', [CompletionResultType]::ParameterName, 'List the events a repair would send; send nothing')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'Allow plain http:// to a host that is not loopback')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;completions' {
            [CompletionResult]::new('--db', '--db', [CompletionResultType]::ParameterName, 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Routing config [default: stripe-sync.toml in the current directory, if present]')
            [CompletionResult]::new('--color', '--color', [CompletionResultType]::ParameterName, 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Machine output: exactly one JSON document on stdout')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Print less on stderr')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'Print more on stderr (-vv for debug)')
            [CompletionResult]::new('--no-input', '--no-input', [CompletionResultType]::ParameterName, 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'stripe-sync;help' {
            [CompletionResult]::new('verify', 'verify', [CompletionResultType]::ParameterValue, 'Check a webhook payload against its Stripe-Signature header, and say why it fails')
            [CompletionResult]::new('sign', 'sign', [CompletionResultType]::ParameterValue, 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)')
            [CompletionResult]::new('replay', 'replay', [CompletionResultType]::ParameterValue, 'Run events through the routing logic and sync routed customers into the store')
            [CompletionResult]::new('resync', 'resync', [CompletionResultType]::ParameterValue, 'Pull the truth from the Stripe API into the store (one user, one customer, or all)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'Receive Stripe''s webhooks like the app''s endpoint, sync them into the store, record them')
            [CompletionResult]::new('inspect', 'inspect', [CompletionResultType]::ParameterValue, 'Show the resolved user -> customer -> subscription mapping')
            [CompletionResult]::new('audit', 'audit', [CompletionResultType]::ParameterValue, 'Hold the app''s own billing records to the store''s truth, user by user; repair drift')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print a shell completion script')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'stripe-sync;help;verify' {
            break
        }
        'stripe-sync;help;sign' {
            break
        }
        'stripe-sync;help;replay' {
            break
        }
        'stripe-sync;help;resync' {
            break
        }
        'stripe-sync;help;serve' {
            break
        }
        'stripe-sync;help;inspect' {
            break
        }
        'stripe-sync;help;audit' {
            break
        }
        'stripe-sync;help;completions' {
            break
        }
        'stripe-sync;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
