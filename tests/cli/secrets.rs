//! No secret or key ever reaches stdout, stderr, the store or any file the
//! tool writes: every command and flag that takes one, in success and
//! failure, with -vv and --json.

use std::path::Path;

use crate::common::tempdir;
use crate::harness::Test;
use crate::support::fake_stripe::{Account, FakeStripe};

const WHSEC: &str = "whsec_SECRETleak_91ab";
/// Distinctive middle parts: a masked or cut-down echo would still show them.
const NEEDLES: &[&str] = &["SECRETleak", "KEYleak", "fake_123"];

fn scan_dir(dir: &Path) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        let bytes = std::fs::read(&entry).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        for n in NEEDLES {
            if text.contains(n) && !entry.ends_with("key.txt") {
                hits.push(format!("{} contains {n}", entry.display()));
            }
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn secrets_never_leak() {
    let fake =
        FakeStripe::start(Account::generate(30, 30, 2).with_api_key("sk_test_KEYleak_fake_123"));
    let key = fake.api_key().to_owned();
    let bad_key = "sk_test_KEYleak_wrong_456";
    let dir = tempdir();
    let d = dir.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let one = fixtures.join("2026-04-billing/02-alan-seats-applied.json");
    std::fs::write(
        d.join("p.json"),
        "{\"id\":\"evt_1\",\"type\":\"invoice.paid\"}",
    )
    .unwrap();
    std::fs::write(d.join("key.txt"), format!("{key}\n")).unwrap();
    let sig =
        stripe_sync::signature::sign(&stripe_sync::secret::Secret::new(WHSEC), 1, b"x").header;
    let base = fake.url();
    let closed = format!(
        "http://{}/hook",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
    );

    /// Arguments, environment variables to set, and the exit status.
    type Run = (Vec<String>, Vec<(&'static str, String)>, i32);
    let mut runs: Vec<Run> = Vec::new();
    let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for extra in [
        &[][..],
        &["-vv"][..],
        &["--json"][..],
        &["-vv", "--json"][..],
    ] {
        let mut with = |args: Vec<String>, env: Vec<(&'static str, String)>, status: i32| {
            let mut all: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
            all.extend(args);
            runs.push((all, env, status));
        };
        with(
            a(&["verify", "--secret", WHSEC, "--signature", &sig, "p.json"]),
            vec![],
            1,
        );
        with(
            a(&["verify", "--signature", &sig, "p.json"]),
            vec![("STRIPE_WEBHOOK_SECRET", format!("whsec_old,{WHSEC}"))],
            1,
        );
        with(
            a(&[
                "verify",
                "--secret",
                &format!(" {WHSEC}\n"),
                "--signature",
                "t=1,v1=00",
                "p.json",
            ]),
            vec![],
            1,
        );
        with(
            a(&[
                "verify",
                "--secret",
                "sk_test_KEYleak_x",
                "--signature",
                "garbage",
                "p.json",
            ]),
            vec![],
            1,
        );
        with(a(&["sign", "--secret", WHSEC, "p.json"]), vec![], 0);
        with(
            a(&["sign", "p.json"]),
            vec![("STRIPE_WEBHOOK_SECRET", WHSEC.into())],
            0,
        );
        with(
            vec![
                "replay".into(),
                "--secret".into(),
                WHSEC.into(),
                "--forward-to".into(),
                closed.clone(),
                one.display().to_string(),
            ],
            vec![],
            1,
        );
        with(
            vec![
                "replay".into(),
                "--forward-to".into(),
                "http://example.com/x".into(),
                one.display().to_string(),
            ],
            vec![("STRIPE_WEBHOOK_SECRET", WHSEC.into())],
            2,
        );
        with(
            a(&[
                "resync",
                "--customer",
                "cus_x",
                "--api-base",
                &base,
                "--api-key",
                &key,
            ]),
            vec![],
            1,
        );
        with(
            a(&[
                "resync",
                "--all",
                "--api-base",
                &base,
                "--api-key-file",
                "key.txt",
            ]),
            vec![],
            0,
        );
        with(
            a(&["resync", "--user", "user_1", "--api-base", &base]),
            vec![("STRIPE_API_KEY", key.clone())],
            0,
        );
        with(
            a(&["resync", "--user", "user_2", "--api-base", &base]),
            vec![("STRIPE_SECRET_KEY", key.clone())],
            0,
        );
        with(
            a(&["resync", "--all", "--api-base", &base, "--api-key", bad_key]),
            vec![],
            2,
        );
        with(
            a(&[
                "resync",
                "--all",
                "--api-base",
                "http://example.com",
                "--api-key",
                &key,
            ]),
            vec![],
            2,
        );
        with(
            a(&[
                "resync",
                "--all",
                "--api-base",
                &format!("https://{key}@example.com"),
                "--api-key",
                &key,
            ]),
            vec![],
            2,
        );
        with(
            vec![
                "replay".into(),
                "--live".into(),
                "--api-base".into(),
                base.clone(),
                "--api-key".into(),
                bad_key.into(),
                one.display().to_string(),
            ],
            vec![],
            2,
        );
        with(
            vec![
                "replay".into(),
                "--live".into(),
                "--api-base".into(),
                base.clone(),
                one.display().to_string(),
            ],
            vec![("STRIPE_API_KEY", key.clone())],
            1,
        );
        with(
            a(&["inspect"]),
            vec![
                ("STRIPE_API_KEY", key.clone()),
                ("STRIPE_WEBHOOK_SECRET", WHSEC.into()),
            ],
            0,
        );
        with(
            a(&["resync", "--help"]),
            vec![
                ("STRIPE_API_KEY", key.clone()),
                ("STRIPE_WEBHOOK_SECRET", WHSEC.into()),
            ],
            0,
        );
        with(
            a(&["replay", "--help"]),
            vec![("STRIPE_WEBHOOK_SECRET", WHSEC.into())],
            0,
        );
    }
    let mut statuses = Vec::new();
    for (args, env, status) in &runs {
        // What each stream must lack is every secret; what they hold
        // varies with the command, -vv and --json.
        let mut c = Test::in_dir(d).args(args).status(*status);
        for (k, v) in env {
            c = c.env(k, v);
        }
        for n in NEEDLES {
            c = c.stdout_lacks(*n).stderr_lacks(*n);
        }
        let out = c.run();
        statuses.push(out.status);
        for n in NEEDLES {
            assert!(
                !out.stdout.contains(n),
                "{args:?}: stdout shows {n}:\n{}",
                out.stdout
            );
            assert!(
                !out.stderr.contains(n),
                "{args:?}: stderr shows {n}:\n{}",
                out.stderr
            );
        }
        assert_ne!(out.status, 101, "{args:?} panicked");
    }
    // The runs exercised success, findings and failures alike.
    assert!(
        statuses.contains(&0) && statuses.contains(&1) && statuses.contains(&2),
        "{statuses:?}"
    );
    assert!(d.join("stripe-sync.db").exists(), "the store was written");
    let hits = scan_dir(d);
    assert!(hits.is_empty(), "{hits:?}");
}
