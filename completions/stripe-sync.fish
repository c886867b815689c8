# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_stripe_sync_global_optspecs
    string join \n db= config= json q/quiet v/verbose color= no-input h/help V/version
end

function __fish_stripe_sync_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_stripe_sync_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_stripe_sync_using_subcommand
    set -l cmd (__fish_stripe_sync_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "verify" -d 'Check a webhook payload against its Stripe-Signature header, and say why it fails'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "sign" -d 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "replay" -d 'Run events through the routing logic and sync routed customers into the store'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "resync" -d 'Pull the truth from the Stripe API into the store (one user, one customer, or all)'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "serve" -d 'Receive Stripe\'s webhooks like the app\'s endpoint, sync them into the store, record them'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "inspect" -d 'Show the resolved user -> customer -> subscription mapping'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "audit" -d 'Hold the app\'s own billing records to the store\'s truth, user by user; repair drift'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "completions" -d 'Print a shell completion script'
complete -c stripe-sync -n "__fish_stripe_sync_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -s s -l secret -d 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, during rotation' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l signature -d 'The Stripe-Signature header value (a leading "Stripe-Signature:" is dropped)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l tolerance -d 'Maximum age of the timestamp in seconds; 0 disables the age check' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l now -d 'Judge the age as of this unix time instead of the clock' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand verify" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -s s -l secret -d 'Webhook signing secret (whsec_...); repeat it, or comma-separate the env var, for one v1= each (rotation: new one first)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l timestamp -d 'Unix timestamp to sign with [default: now]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand sign" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l user-key -d 'Metadata key holding the app\'s user id [default: from config, else clerkUserId]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l forward-to -d 'POST each event, signed now, to this webhook endpoint (the store is not written)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s s -l secret -d 'Endpoint\'s signing secret for --forward-to' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l concurrency -d 'Deliveries in flight at once (1 keeps input order)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l timeout -d 'Per-request timeout in seconds' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s H -l header -d 'Extra header on every delivery, `Name: value` (repeatable)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l delay -d 'Pause between deliveries, in milliseconds' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l api-key -d 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l api-key-file -d 'Read the key from a file (first line)' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l api-base -d 'API base URL; plain http:// only for loopback hosts' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l api-version -d 'Stripe-Version header [default: from config, else 2025-06-30.basil]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l max-rps -d 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l max-retries -d 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l dry-run -d 'Route and resolve only; write nothing, send nothing; the summary says what a real run would do (would sync)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l live -d 'Sync routed customers from the Stripe API instead of from the events'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l strict -d 'Count unresolved events as failures (exit 1)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l allow-remote -d 'Allow plain http:// to a host that is not loopback'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l allow-header-override -d 'Let -H replace headers stripe-sync sets (Stripe-Signature, Content-Type, User-Agent): for testing how the endpoint rejects a forged signature'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand replay" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l user -d 'The user\'s customers: store mapping, else Customer Search, else a scan (repeatable)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l customer -d 'One customer (repeatable)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l since -d 'Start here instead of the checkpoint: unix time, RFC 3339, or a duration back from now (90m, 36h, 7d)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l interval -d 'Seconds between polls with --follow' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l user-key -d 'Metadata key for the user id [default: from config, else clerkUserId]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l api-key -d 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l api-key-file -d 'Read the key from a file (first line)' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l api-base -d 'API base URL; plain http:// only for loopback hosts' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l api-version -d 'Stripe-Version header [default: from config, else 2025-06-30.basil]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l max-rps -d 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l max-retries -d 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l all -d 'Backfill every customer and subscription; resumes an interrupted backfill'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l no-wait -d 'With --all on a shared (PostgreSQL) store: when another backfill holds the store, exit 2 instead of waiting for it'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l restart -d 'With --all: start over instead of resuming'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l check -d 'Fetch and compare exactly as the real run would, write nothing; list differences; exit 1 on any drift'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l yes -d 'Skip the confirmation --all asks for on a live key'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l all-rows -d 'List every customer; by default a run of more than 50 lists only those that changed or failed'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l events -d 'Catch up from Stripe\'s event log since the checkpoint: route each event as replay does, resync each affected customer once'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l follow -d 'Keep polling the event log; a failing API is waited out (SIGTERM finishes the batch and exits 0)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand resync" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l listen -d 'Address and port to listen on (or localhost:PORT); a non-loopback address has no TLS (a warning says so)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l path -d 'The webhook route; any other path is 404' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -s s -l secret -d 'Endpoint signing secret (whsec_...); repeatable, comma-separated in the env var (rotation)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l tolerance -d 'Maximum age of a signature; 0 disables the check' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l record -d 'Keep every request\'s exact body: DIR/<created>-<arrival>-<event id>.json (unique, in arrival order); bad signatures under DIR/rejected/' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l max-body -d 'Larger bodies are refused with 413' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l max-connections -d 'Concurrent connections accepted; more wait in the listen queue [default: 512, or half the open-file limit if lower]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l user-key -d 'Metadata key for the user id' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l read-timeout -d 'Seconds a client may take to send the request headers, and then the body' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l api-key -d 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l api-key-file -d 'Read the key from a file (first line)' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l api-base -d 'API base URL; plain http:// only for loopback hosts' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l api-version -d 'Stripe-Version header [default: from config, else 2025-06-30.basil]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l max-rps -d 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l max-retries -d 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l live -d 'Sync routed customers from the Stripe API instead of from the events'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand serve" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l user -d 'Only this user (repeatable)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l customer -d 'Only this customer (repeatable)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l status -d 'Only these statuses, comma-separated (`none`: no subscription; `deleted`: the customer is deleted in Stripe)' -r -f -a "incomplete\t''
incomplete_expired\t''
trialing\t''
active\t''
past_due\t''
canceled\t''
unpaid\t''
paused\t''
none\t''
deleted\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l unmapped -d 'Only customers with no user id'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l csv -d 'CSV instead of a table; control characters are escaped, and a text cell starting with = + - @ gets a leading \' (no spreadsheet formula)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand inspect" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l app-db -d 'The app\'s database instead of SOURCE: postgres://... or sqlite:PATH (read only)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l query -d 'SQL returning one row per user, for --app-db' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l format -d 'The format of SOURCE [default: by extension, else by content]' -r -f -a "json\t''
ndjson\t''
csv\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l table -d 'The table of a Convex export (.zip) holding the records' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l field -d 'Where a record keeps a field, as a dotted path (repeatable): --field user=subject' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l access -d 'Statuses that grant access' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l fail-on -d 'Which findings make the exit status 1 [default: all]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l user-key -d 'Metadata key holding the app\'s user id [default: from config, else clerkUserId]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l repair-via -d 'Send each drifted user one signed event to this webhook endpoint, so the app\'s own sync runs' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -s s -l secret -d 'The endpoint\'s signing secret for --repair-via (comma-separate several during a rotation)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l recheck -d 'After the repairs, wait this long, read the source again and report what remains' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l timeout -d 'Per-delivery timeout in seconds' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l api-key -d 'Secret or restricted key [env: STRIPE_API_KEY, then STRIPE_SECRET_KEY]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l api-key-file -d 'Read the key from a file (first line)' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l api-base -d 'API base URL; plain http:// only for loopback hosts' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l api-version -d 'Stripe-Version header [default: from config, else 2025-06-30.basil]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l max-rps -d 'Request rate ceiling, requests per second (> 0) [default: 20 for test keys, 80 for live keys]' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l max-retries -d 'Retries of network errors, timeouts, 409, 429 and 5xx (0 to 20)' -r
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l live -d 'Resync the audited users from the API first (as resync --user, paced)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l csv -d 'CSV instead of a table (the findings; after --recheck, what remains)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l dry-run -d 'List the events a repair would send; send nothing'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l allow-remote -d 'Allow plain http:// to a host that is not loopback'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand audit" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -l db -d 'The store: a file (PATH or sqlite:PATH, created with mode 0600 on first write), or a postgres:// URL for one shared by a team' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -l config -d 'Routing config [default: stripe-sync.toml in the current directory, if present]' -r -F
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -l color -d 'When to use colour (auto: NO_COLOR turns it off, CLICOLOR_FORCE on)' -r -f -a "auto\t''
always\t''
never\t''"
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -l json -d 'Machine output: exactly one JSON document on stdout'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -s q -l quiet -d 'Print less on stderr'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -s v -l verbose -d 'Print more on stderr (-vv for debug)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -l no-input -d 'Never prompt (implied by CI, or when stdin or stderr is not a terminal)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -s h -l help -d 'Print help'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand completions" -s V -l version -d 'Print version'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "verify" -d 'Check a webhook payload against its Stripe-Signature header, and say why it fails'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "sign" -d 'Produce a Stripe-Signature header for a payload (accepted by the official SDKs)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "replay" -d 'Run events through the routing logic and sync routed customers into the store'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "resync" -d 'Pull the truth from the Stripe API into the store (one user, one customer, or all)'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "serve" -d 'Receive Stripe\'s webhooks like the app\'s endpoint, sync them into the store, record them'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "inspect" -d 'Show the resolved user -> customer -> subscription mapping'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "audit" -d 'Hold the app\'s own billing records to the store\'s truth, user by user; repair drift'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "completions" -d 'Print a shell completion script'
complete -c stripe-sync -n "__fish_stripe_sync_using_subcommand help; and not __fish_seen_subcommand_from verify sign replay resync serve inspect audit completions help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
