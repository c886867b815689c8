//! The committed man pages in man/ must match what the CLI generates.
//! Regenerate them with: `STRIPE_SYNC_BLESS=1 cargo test --test cli man`.

use std::path::Path;

#[test]
fn committed_man_pages_are_current() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("man");
    let bless = std::env::var_os("STRIPE_SYNC_BLESS").is_some();
    let pages = stripe_sync::commands::completions::man_pages();
    assert!(pages.len() >= 7, "one page per command and the main page");
    let mut stale = Vec::new();
    for (name, text) in &pages {
        let s = String::from_utf8_lossy(text);
        assert!(s.contains(".TH"), "{name} is roff");
        let path = root.join(name);
        if bless {
            std::fs::create_dir_all(&root).unwrap();
            std::fs::write(&path, text).unwrap();
        } else if std::fs::read(&path).ok().as_deref() != Some(text.as_slice()) {
            stale.push(name.clone());
        }
    }
    assert!(
        stale.is_empty(),
        "man pages are stale or missing: {stale:?}\nregenerate them with: STRIPE_SYNC_BLESS=1 cargo test --test cli man"
    );
    let main = plain(&pages[0].1);
    assert!(main.contains("replay") && main.contains("resync"));
    assert!(
        !main.contains("stripe-sync-help"),
        "no page for `help`, so none listed"
    );

    // A command's page: the synopsis is the command as typed, options show
    // their values, and the global options are there too.
    let (_, replay) = pages
        .iter()
        .find(|(name, _)| name == "stripe-sync-replay.1")
        .expect("a page for replay");
    let replay = plain(replay);
    assert!(
        replay.contains(".SH SYNOPSIS\nstripe-sync replay [OPTIONS] [INPUT]...\n"),
        "{replay}"
    );
    assert!(replay.contains("--user-key <KEY>"), "{replay}");
    for (name, text) in &pages[1..] {
        let text = plain(text);
        for global in [
            "--db <PATH|URL>",
            "--config <PATH>",
            "--json",
            "--color <WHEN>",
        ] {
            assert!(text.contains(global), "{name} lacks {global}");
        }
    }
}

/// The roff text with font changes and escaped hyphens undone.
fn plain(roff: &[u8]) -> String {
    String::from_utf8_lossy(roff)
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\-", "-")
}
