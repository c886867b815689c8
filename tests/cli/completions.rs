//! The committed scripts in completions/ must match what the CLI generates.
//! Regenerate them with: `cargo run -- completions <shell> > completions/<file>`
//! for each shell, or `STRIPE_SYNC_BLESS=1 cargo test completions`.

use std::path::Path;

use crate::common::keys;
use crate::harness::Test;

const SHELLS: &[(&str, &str)] = &[
    ("bash", "stripe-sync.bash"),
    ("zsh", "_stripe-sync"),
    ("fish", "stripe-sync.fish"),
    ("powershell", "_stripe-sync.ps1"),
    ("elvish", "stripe-sync.elv"),
];

#[test]
fn committed_completions_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    let bless = std::env::var_os("STRIPE_SYNC_BLESS").is_some();
    let mut stale = Vec::new();
    for (shell, file) in SHELLS {
        let out = Test::new()
            .args(["completions", shell])
            .stdout_has("stripe-sync")
            .run();
        let path = root.join(file);
        if bless {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&path, &out.stdout).unwrap();
        } else if std::fs::read_to_string(&path).ok().as_deref() != Some(out.stdout.as_str()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "completion scripts are stale or missing: {stale:?}\nregenerate them with: STRIPE_SYNC_BLESS=1 cargo test --test cli completions"
    );
}

#[test]
fn unknown_shell_is_usage_error() {
    Test::new()
        .args(["completions", "tcsh"])
        .status(2)
        .stderr_has("invalid value 'tcsh'")
        .run();
}

#[test]
fn json_wraps_the_script_in_one_document() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (args, shell, file) in [
        (&["completions", "zsh", "--json"][..], "zsh", "_stripe-sync"),
        (
            &["--json", "completions", "bash"][..],
            "bash",
            "stripe-sync.bash",
        ),
    ] {
        let plain = Test::new()
            .args(["completions", shell])
            .stdout_has("stripe-sync")
            .run();
        let v = Test::new().args(args).stdout_json().stderr("").run().json();
        assert_eq!(keys(&v), ["shell", "script"], "{args:?}");
        assert_eq!(v["shell"], shell);
        assert_eq!(v["script"].as_str(), Some(plain.stdout.as_str()));
        if std::env::var_os("STRIPE_SYNC_BLESS").is_none() {
            let committed = std::fs::read_to_string(root.join(file)).unwrap();
            assert_eq!(v["script"].as_str(), Some(committed.as_str()), "{file}");
        }
    }
}
