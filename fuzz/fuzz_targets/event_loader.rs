//! Fuzz the event loader: `event::split_document` over arbitrary bytes (one
//! event, an array, a list object or NDJSON), then `event::parse_event` on
//! every item, then the object accessors and `SubscriptionRecord::from_object`
//! on each parsed event's `data.object`. `parse_event` also gets the whole
//! input when it is UTF-8.
//!
//! Checks, besides "never panics, never hangs":
//! - items are non-empty slices of the input, named after the input;
//! - `split_document` fails only before it has handed out any item, and its
//!   error names the input;
//! - an accepted event has a non-empty id and type and `object` absent or "event";
//! - a `SubscriptionRecord` agrees with the object it came from.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use stripe_sync::event::{Pos, Source, parse_event, split_document};
use stripe_sync::objects::{SubscriptionRecord, metadata_str};

const NAME: &str = "fuzz.json";

fn is_within(outer: &[u8], inner: &[u8]) -> bool {
    let o = outer.as_ptr_range();
    let i = inner.as_ptr_range();
    o.start <= i.start && i.end <= o.end
}

fuzz_target!(|data: &[u8]| {
    let name: Arc<str> = Arc::from(NAME);
    let mut items = 0usize;
    let mut last_index: Option<usize> = None;
    let mut last_line = 0usize;
    let result = split_document(&name, data, &mut |source: Source, item| {
        items += 1;
        assert_eq!(&*source.file, NAME);
        let shown = source.to_string();
        assert!(shown.starts_with(NAME));
        // Positions come in input order.
        match source.pos {
            Pos::Whole => assert_eq!(items, 1),
            Pos::Index(i) => {
                assert_eq!(i, last_index.map_or(0, |j| j + 1));
                last_index = Some(i);
            }
            Pos::Line(n) => {
                assert!(n > last_line);
                last_line = n;
            }
        }
        match item {
            Ok(text) => {
                assert!(!text.is_empty(), "{shown}: empty item");
                assert!(is_within(data, text.as_bytes()), "{shown}: item is not a slice of the input");
                check_event(text);
            }
            Err(msg) => assert!(msg.starts_with(NAME), "item error without the file name: {msg}"),
        }
    });
    if let Err(msg) = result {
        assert!(msg.starts_with(NAME), "error without the file name: {msg}");
        assert_eq!(items, 0, "split_document failed after handing out {items} items: {msg}");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        check_event(text);
    }
});

fn check_event(text: &str) {
    match parse_event(text) {
        Ok(ev) => {
            assert!(!ev.id.is_empty() && !ev.kind.is_empty());
            assert!(ev.object.as_deref().is_none_or(|o| o == "event"));
            let o = &ev.data.object;
            let _ = o.kind();
            let _ = metadata_str(o.metadata.as_ref(), "clerk_user_id");
            let _ = metadata_str(o.invoice_subscription_metadata(), "clerk_user_id");
            if let Some(r) = SubscriptionRecord::from_object(o) {
                assert_eq!(Some(r.id.as_str()), o.id.as_deref());
                assert_eq!(Some(r.customer_id.as_str()), o.customer_id());
                assert_eq!(Some(r.status.as_str()), o.status.as_deref());
                assert_eq!(Some(r.created), o.created);
            }
        }
        Err(msg) => assert!(!msg.is_empty()),
    }
}
