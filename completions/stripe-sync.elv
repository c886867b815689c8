
use builtin;
use str;

set edit:completion:arg-completer[stripe-sync] = {|@words|
    fn spaces {|n|
        builtin:repeat $n ' ' | str:join ''
    }
    fn cand {|text desc|
        edit:complex-candidate $text &display=$text' '(spaces (- 14 (wcswidth $text)))$desc
    }
    var command = 'stripe-sync'
    for word $words[1..-1] {
        if (str:has-prefix $word '-') {
            break
        }
        set command = $command';'$word
    }
    var completions = [
        &'stripe-sync'= {
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
            cand verify 'Check a webhook payload against its Stripe-Signature header, and say why it fails'
            cand sign 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)'
            cand replay 'Run events through the routing logic and sync routed customers into the store'
            cand resync 'Pull the truth from the Stripe API into the store (one user, one customer, or all)'
            cand serve 'Receive Stripe''s webhooks like the app''s endpoint, sync them into the store, record them'
            cand inspect 'Show the resolved user -> customer -> subscription mapping'
            cand audit 'Hold the app''s own billing records to the store''s truth, user by user; repair drift'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'stripe-sync;verify'= {
            cand -s 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation'
            cand --secret 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation'
            cand --signature 'The Stripe-Signature header value (a leading "Stripe-Signature:" is dropped)'
            cand --tolerance 'Maximum age of the timestamp in seconds; 0 disables the age check'
            cand --now 'Judge the age as of this unix time instead of the clock'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;sign'= {
            cand -s 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)'
            cand --secret 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)'
            cand --timestamp 'Unix timestamp to sign with [default: now]'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;replay'= {
            cand --user-key 'Metadata key holding the app''s user id [default: from config, else clerkUserId]'
            cand --forward-to 'POST each event, signed now, to this webhook endpoint (the store is not written)'
            cand -s 'Endpoint''s signing secret for --forward-to'
            cand --secret 'Endpoint''s signing secret for --forward-to'
            cand --concurrency 'Deliveries in flight at once (1 keeps input order)'
            cand --timeout 'Per-request timeout in seconds'
            cand -H 'Extra header on every delivery, `Name: value` (repeatable)'
            cand --header 'Extra header on every delivery, `Name: value` (repeatable)'
            cand --delay 'Pause between deliveries, in milliseconds'
            cand --api-key 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]'
            cand --api-key-file 'Read the key from a file (first line)'
            cand --api-base 'API base URL; plain http:// only for loopback hosts'
            cand --api-version 'Stripe-Version header [default: from config, else 2025-06-30.basil]'
            cand --max-rps 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]'
            cand --max-retries 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --dry-run 'Route and resolve only; write nothing, send nothing; the summary says what a real run would do (would sync)'
            cand --live 'Sync routed customers from the Stripe API instead of from the events'
            cand --strict 'Count unresolved events as failures (exit 1)'
            cand --allow-remote 'Allow plain http:// to a host that is not loopback'
            cand --allow-header-override 'Let -H replace headers stripe-sync sets (Stripe-Signature, Content-Type, User-Agent): for testing how the endpoint rejects a forged signature'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;resync'= {
            cand --user 'The user''s customers: store mapping, else Customer Search, else a scan (repeatable)'
            cand --customer 'One customer (repeatable)'
            cand --since 'Start here instead of the checkpoint: unix time, RFC 3339, or a duration back from now (90m, 36h, 7d)'
            cand --interval 'Seconds between polls with --follow'
            cand --user-key 'Metadata key for the user id [default: from config, else clerkUserId]'
            cand --api-key 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]'
            cand --api-key-file 'Read the key from a file (first line)'
            cand --api-base 'API base URL; plain http:// only for loopback hosts'
            cand --api-version 'Stripe-Version header [default: from config, else 2025-06-30.basil]'
            cand --max-rps 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]'
            cand --max-retries 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --all 'Backfill every customer and subscription; resumes an interrupted backfill'
            cand --no-wait 'With --all on a shared (PostgreSQL) store: when another backfill holds the store, exit 2 instead of waiting for it'
            cand --restart 'With --all: start over instead of resuming'
            cand --check 'Fetch and compare exactly as the real run would, write nothing; list differences; exit 1 on any drift'
            cand --yes 'Skip the confirmation --all asks for on a live key'
            cand --all-rows 'List every customer; by default a run of more than 50 lists only those that changed or failed'
            cand --events 'Catch up from Stripe''s event log since the checkpoint: route each event as replay does, resync each affected customer once'
            cand --follow 'Keep polling the event log; a failing API is waited out (SIGTERM finishes the batch and exits 0)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;serve'= {
            cand --listen 'Address and port to listen on (or localhost:PORT); a non-loopback address has no TLS (a warning says so)'
            cand --path 'The webhook route; any other path is 404'
            cand -s 'Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)'
            cand --secret 'Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)'
            cand --tolerance 'Maximum age of a signature; 0 disables the check'
            cand --record 'Keep every request''s exact body: DIR/<created>-<arrival>-<event id>.json (unique, in arrival order); bad signatures under DIR/rejected/'
            cand --max-body 'Larger bodies are refused with 413'
            cand --max-connections 'Concurrent connections accepted; more wait in the listen queue [default: 512, or half the open-file limit if lower]'
            cand --user-key 'Metadata key for the user id'
            cand --read-timeout 'Seconds a client may take to send the request headers, and then the body'
            cand --api-key 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]'
            cand --api-key-file 'Read the key from a file (first line)'
            cand --api-base 'API base URL; plain http:// only for loopback hosts'
            cand --api-version 'Stripe-Version header [default: from config, else 2025-06-30.basil]'
            cand --max-rps 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]'
            cand --max-retries 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --live 'Sync routed customers from the Stripe API instead of from the events'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;inspect'= {
            cand --user 'Only this user (repeatable)'
            cand --customer 'Only this customer (repeatable)'
            cand --status 'Only these statuses, comma-separated (`none`: no subscription; `deleted`: the customer is deleted in Stripe)'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --unmapped 'Only customers with no user id'
            cand --csv 'CSV instead of a table; control characters are escaped, and a text cell starting with = + - @ gets a leading '' (no spreadsheet formula)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;audit'= {
            cand --app-db 'The app''s database instead of SOURCE: postgres://... or sqlite:PATH (read only)'
            cand --query 'SQL returning one row per user, for --app-db'
            cand --format 'The format of SOURCE [default: by extension, else by content]'
            cand --table 'The table of a Convex export (.zip) holding the records'
            cand --field 'Where a record keeps a field, as a dotted path (repeatable): --field user=subject'
            cand --access 'Statuses that grant access'
            cand --fail-on 'Which findings make the exit status 1 [default: all]'
            cand --user-key 'Metadata key holding the app''s user id [default: from config, else clerkUserId]'
            cand --repair-via 'Send each drifted user one signed event to this webhook endpoint, so the app''s own sync runs'
            cand -s 'The endpoint''s signing secret for --repair-via (comma-separate several during a rotation)'
            cand --secret 'The endpoint''s signing secret for --repair-via (comma-separate several during a rotation)'
            cand --recheck 'After the repairs, wait this long, read the source again and report what remains'
            cand --timeout 'Per-delivery timeout in seconds'
            cand --api-key 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]'
            cand --api-key-file 'Read the key from a file (first line)'
            cand --api-base 'API base URL; plain http:// only for loopback hosts'
            cand --api-version 'Stripe-Version header [default: from config, else 2025-06-30.basil]'
            cand --max-rps 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]'
            cand --max-retries 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)'
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --live 'Resync the audited users from the API first (as resync --user, paced)'
            cand --csv 'CSV instead of a table (the findings; after --recheck, what remains)'
            cand --dry-run 'List the events a repair would send; send nothing'
            cand --allow-remote 'Allow plain http:// to a host that is not loopback'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;completions'= {
            cand --db 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team'
            cand --config 'Routing config [default: stripe-sync.toml in the current directory, if present]'
            cand --color 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)'
            cand --json 'Machine output: exactly one JSON document on stdout'
            cand -q 'Print less on stderr'
            cand --quiet 'Print less on stderr'
            cand -v 'Print more on stderr (-vv for debug)'
            cand --verbose 'Print more on stderr (-vv for debug)'
            cand --no-input 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
            cand -h 'Print help'
            cand --help 'Print help'
            cand -V 'Print version'
            cand --version 'Print version'
        }
        &'stripe-sync;help'= {
            cand verify 'Check a webhook payload against its Stripe-Signature header, and say why it fails'
            cand sign 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)'
            cand replay 'Run events through the routing logic and sync routed customers into the store'
            cand resync 'Pull the truth from the Stripe API into the store (one user, one customer, or all)'
            cand serve 'Receive Stripe''s webhooks like the app''s endpoint, sync them into the store, record them'
            cand inspect 'Show the resolved user -> customer -> subscription mapping'
            cand audit 'Hold the app''s own billing records to the store''s truth, user by user; repair drift'
            cand completions 'Print a shell completion script'
            cand help 'Print this message or the help of the given subcommand(s)'
        }
        &'stripe-sync;help;verify'= {
        }
        &'stripe-sync;help;sign'= {
        }
        &'stripe-sync;help;replay'= {
        }
        &'stripe-sync;help;resync'= {
        }
        &'stripe-sync;help;serve'= {
        }
        &'stripe-sync;help;inspect'= {
        }
        &'stripe-sync;help;audit'= {
        }
        &'stripe-sync;help;completions'= {
        }
        &'stripe-sync;help;help'= {
        }
    ]
    $completions[$command]
}
