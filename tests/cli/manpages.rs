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
    let main = String::from_utf8_lossy(&pages[0].1).into_owned();
    assert!(main.contains("replay") && main.contains("resync"));
}
