//! Reading events: files, directories, globs and stdin; one event, an array,
//! a Stripe list object or NDJSON. Every error names the file and position.

use std::borrow::Cow;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::objects::StripeObject;

/// Where an event came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub file: Arc<str>,
    pub pos: Pos,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pos {
    /// The whole file is one event.
    Whole,
    /// 0-based index in a JSON array.
    Index(usize),
    /// 0-based index in a Stripe list object's `data` (newest first: the
    /// index is evidence of order, see [`crate::truth`]).
    Listed(usize),
    /// 1-based line of NDJSON.
    Line(usize),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.pos {
            Pos::Whole => write!(f, "{}", self.file),
            Pos::Index(i) | Pos::Listed(i) => write!(f, "{}[{i}]", self.file),
            Pos::Line(n) => write!(f, "{}:{n}", self.file),
        }
    }
}

/// One input named on the command line, after expansion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "-".into(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

fn is_event_file(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("json" | "jsonl" | "ndjson")
    )
}

/// Expand INPUT arguments: `-`, files, directories (recursive, sorted) and
/// glob patterns (for shells that do not expand them). Problems are returned
/// beside the inputs that could be found, so the rest still run.
pub fn expand(args: &[String]) -> (Vec<Input>, Vec<(String, String)>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for arg in args {
        if arg == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = Path::new(arg);
        if path.is_dir() {
            let mut found: Vec<PathBuf> = Vec::new();
            // `serve --record DIR` keeps refused requests (bad signatures)
            // under DIR/rejected/: replaying the folder replays what was
            // accepted. Name a rejected file to read it anyway.
            for entry in walkdir::WalkDir::new(path)
                .follow_links(true)
                .sort_by_file_name()
                .into_iter()
                .filter_entry(|e| {
                    !(e.depth() > 0 && e.file_type().is_dir() && e.file_name() == "rejected")
                })
            {
                match entry {
                    Ok(e) if e.file_type().is_file() && is_event_file(e.path()) => {
                        found.push(e.into_path())
                    }
                    Ok(_) => {}
                    Err(e) => {
                        errors.push((arg.clone(), format!("{arg}: cannot read directory: {e}")))
                    }
                }
            }
            if found.is_empty() {
                errors.push((
                    arg.clone(),
                    format!("{arg}: no *.json, *.jsonl or *.ndjson files in this directory"),
                ));
            }
            inputs.extend(found.into_iter().map(Input::File));
        } else if path.exists() {
            inputs.push(Input::File(path.to_path_buf()));
        } else if arg.contains(['*', '?', '[']) {
            match glob::glob(arg) {
                Ok(paths) => {
                    let mut found: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
                    found.sort();
                    let before = inputs.len();
                    for p in found {
                        if p.is_dir() {
                            let (sub, errs) = expand(&[p.display().to_string()]);
                            inputs.extend(sub);
                            errors.extend(errs);
                        } else {
                            inputs.push(Input::File(p));
                        }
                    }
                    if inputs.len() == before {
                        errors.push((arg.clone(), format!("{arg}: the pattern matches no file")));
                    }
                }
                Err(e) => errors.push((arg.clone(), format!("{arg}: bad glob pattern: {e}"))),
            }
        } else {
            errors.push((arg.clone(), format!("{arg}: no such file or directory")));
        }
    }
    (inputs, errors)
}

/// One raw element: the exact bytes of an event as they stand in the input.
pub struct RawItem<'a> {
    pub source: Source,
    pub text: &'a str,
}

/// Visit every element of one input, as its exact text. An element that is
/// not UTF-8 is passed as `Err(message)` (whether the text is an event is
/// `parse_event`'s to say); a file that cannot be read or split at all is
/// the function's error (the message names the file).
pub fn for_each_item(
    input: &Input,
    f: &mut dyn FnMut(Source, Result<&str, String>),
) -> Result<(), String> {
    let name: Arc<str> = Arc::from(input.display());
    match input {
        Input::Stdin => {
            let mut stdin = std::io::stdin().lock();
            match sniff_stdin(&mut stdin)? {
                Stdin::Whole(buf) => split_document(&name, &buf, f),
                Stdin::Lines(start) => read_chunks_from(
                    &name,
                    &mut stdin,
                    start,
                    &mut || None,
                    &mut |first, chunk| {
                        for_each_line(&name, first, &chunk, LineTrim::Document, f);
                        true
                    },
                ),
            }
        }
        Input::File(path) if is_ndjson(path) => {
            read_chunks(&name, path, &mut || None, &mut |first, chunk| {
                for_each_line(&name, first, &chunk, LineTrim::File, f);
                true
            })
        }
        Input::File(path) => {
            let buf = std::fs::read(path).map_err(|e| format!("{name}: cannot read: {e}"))?;
            split_document(&name, &buf, f)
        }
    }
}

/// Whether a file is read as newline-delimited JSON (by its extension).
pub(crate) fn is_ndjson(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl")
    )
}

/// Bytes read from an NDJSON file at a time: with the chunks in flight
/// (see `parallel`), a few MB, and each still holds ~90 events.
const CHUNK: usize = 1 << 18;

/// Read an NDJSON file in large chunks of whole lines: `f` gets the number
/// of the chunk's first line (1-based) and the chunk, and returns whether
/// to go on. Memory stays at a chunk (or one line, when a line is longer).
/// `spare` hands back buffers the consumer is done with, to read into again.
pub(crate) fn read_chunks(
    name: &str,
    path: &Path,
    spare: &mut dyn FnMut() -> Option<Vec<u8>>,
    f: &mut dyn FnMut(usize, Vec<u8>) -> bool,
) -> Result<(), String> {
    let mut file = std::fs::File::open(path).map_err(|e| format!("{name}: cannot open: {e}"))?;
    read_chunks_from(name, &mut file, Vec::new(), spare, f)
}

/// [`read_chunks`] of any reader, `start` holding what was read of it
/// already (from its first line on).
pub(crate) fn read_chunks_from(
    name: &str,
    file: &mut dyn Read,
    start: Vec<u8>,
    spare: &mut dyn FnMut() -> Option<Vec<u8>>,
    f: &mut dyn FnMut(usize, Vec<u8>) -> bool,
) -> Result<(), String> {
    let mut line = 1usize;
    // The start of a line the last chunk cut; `long`: a whole chunk of it.
    let mut carry: Vec<u8> = start;
    let mut long = false;
    loop {
        let mut buf = if long {
            std::mem::take(&mut carry)
        } else {
            let mut buf = spare().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(&carry);
            carry.clear();
            buf
        };
        let got =
            fill(file, &mut buf, CHUNK).map_err(|e| format!("{name}:{line}: cannot read: {e}"))?;
        if got == 0 {
            if !buf.is_empty() {
                f(line, buf);
            }
            return Ok(());
        }
        // A chunk ends at its last newline; a line longer than the chunk
        // waits (moved, not copied) for the rest of it.
        let Some(last) = memchr::memrchr(b'\n', &buf) else {
            carry = buf;
            long = true;
            continue;
        };
        long = false;
        carry.extend_from_slice(&buf[last + 1..]);
        buf.truncate(last + 1);
        let lines = memchr::memchr_iter(b'\n', &buf).count();
        if !f(line, buf) {
            return Ok(());
        }
        line += lines;
    }
}

/// Append up to `want` bytes of `file` to `buf`; 0 at the end of the file.
/// (`read_to_end` fills the spare capacity without zeroing it first.)
fn fill(file: &mut dyn Read, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    buf.reserve(want);
    file.take(want as u64).read_to_end(buf)
}

/// Standard input, as far as it had to be read to know how to split it.
pub(crate) enum Stdin {
    /// One JSON document (an event, an array, a list object; or text that
    /// is none of these, for `split_document` to say so): all of it.
    Whole(Vec<u8>),
    /// NDJSON: its start (from line 1, byte-order mark removed); the rest
    /// is still to read, in chunks of lines (see [`read_chunks_from`]).
    Lines(Vec<u8>),
}

/// Read the start of stdin and tell NDJSON, which streams, from a single
/// document, which is read whole, by `split_document`'s own rule: the
/// input is NDJSON when its first line is a JSON value on its own and more
/// than whitespace follows it. Deciding takes the first line and the first
/// non-blank byte after it, so a million events are never held at once.
pub(crate) fn sniff_stdin(input: &mut dyn Read) -> Result<Stdin, String> {
    const BOM: &[u8] = b"\xef\xbb\xbf";
    let cannot = |e: std::io::Error| format!("-: cannot read stdin: {e}");
    let mut buf: Vec<u8> = Vec::new();
    // Where the first line ends (its newline), once it has been read.
    let first_line = loop {
        let at_end = fill(input, &mut buf, CHUNK).map_err(cannot)? == 0;
        // A byte-order mark needs its 3 bytes to be told from text.
        if !at_end && buf.len() < BOM.len() && BOM.starts_with(&buf) {
            continue;
        }
        let body = buf.strip_prefix(BOM).unwrap_or(&buf);
        let skip = buf.len() - body.len();
        let (start, newline) = match body.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(start) => (start, memchr::memchr(b'\n', &body[start..])),
            None => (0, None),
        };
        match newline {
            _ if body.get(start) == Some(&b'[') => break None,
            Some(n) => {
                let alone = std::str::from_utf8(&body[start..start + n])
                    .is_ok_and(|l| serde_json::from_str::<&RawValue>(l).is_ok());
                break alone.then_some(skip + start + n);
            }
            None if at_end => return Ok(Stdin::Whole(buf)),
            None => {}
        }
    };
    // Not NDJSON: the rest of the document, whole.
    let Some(mut seen) = first_line else {
        input.read_to_end(&mut buf).map_err(cannot)?;
        return Ok(Stdin::Whole(buf));
    };
    // NDJSON if anything but whitespace follows the first line.
    loop {
        if buf[seen..].iter().any(|b| !b.is_ascii_whitespace()) {
            if buf.starts_with(BOM) {
                buf.drain(..BOM.len());
            }
            return Ok(Stdin::Lines(buf));
        }
        seen = buf.len();
        if fill(input, &mut buf, CHUNK).map_err(cannot)? == 0 {
            return Ok(Stdin::Whole(buf));
        }
    }
}

/// How the lines of NDJSON are trimmed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineTrim {
    /// A `.ndjson` or `.jsonl` file: ASCII whitespace and a byte-order mark.
    File,
    /// Lines of a document that turned out to be NDJSON (stdin, or a file
    /// named `.json`): Unicode whitespace, as `split_document` trims them.
    Document,
}

/// Visit the lines of an NDJSON chunk whose first line is number `first`:
/// blank lines are skipped (and counted), each line is trimmed, a line that
/// is not UTF-8 is passed as `Err(message)` naming the file and line.
pub(crate) fn for_each_line(
    name: &Arc<str>,
    first: usize,
    chunk: &[u8],
    trim: LineTrim,
    f: &mut dyn FnMut(Source, Result<&str, String>),
) {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    for (i, end) in ends.enumerate() {
        let line = &chunk[start..end];
        start = end + 1;
        let text = match trim {
            LineTrim::File => match trim_ascii(line) {
                [] => continue,
                bytes => std::str::from_utf8(bytes),
            },
            LineTrim::Document => match std::str::from_utf8(line).map(str::trim) {
                Ok("") => continue,
                text => text,
            },
        };
        let source = Source {
            file: name.clone(),
            pos: Pos::Line(first + i),
        };
        // The decision names the file and line (see `Source`): the message
        // says only what is wrong with the line.
        f(
            source,
            text.map(unwrap_eventbridge).map_err(|e| not_utf8(&e)),
        );
    }
}

fn not_utf8(e: &std::str::Utf8Error) -> String {
    format!(
        "not UTF-8 text (invalid byte at offset {})",
        e.valid_up_to()
    )
}

fn utf8<'a>(name: &str, bytes: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| format!("{name}: {}", not_utf8(&e)))
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    trimmed(b).1
}

/// `b` without a leading byte-order mark and surrounding whitespace, and
/// the number of lines that were cut from its start (so that a position
/// in the trimmed text is still a line of the file).
fn trimmed(b: &[u8]) -> (usize, &[u8]) {
    let body = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = body.len() - body.trim_ascii_start().len();
    let lines = memchr::memchr_iter(b'\n', &body[..start]).count();
    (lines, body.trim_ascii())
}

#[derive(Deserialize)]
struct ListProbe<'a> {
    object: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Vec<&'a RawValue>>,
}

/// The `object` an element names, if any (the rest of it is skipped).
#[derive(Deserialize)]
struct ObjectProbe<'a> {
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
}

/// `"source"` of the events Stripe's Amazon EventBridge integration puts
/// on a partner event bus (`aws.partner/stripe.com/<destination>`).
pub const EVENTBRIDGE_SOURCE: &str = "aws.partner/stripe.com";

/// An Amazon EventBridge event: `detail` holds the Stripe event.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "detail-type", borrow, default)]
    detail_type: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    detail: Option<&'a RawValue>,
}

/// The Stripe event inside an Amazon EventBridge envelope (exactly its
/// bytes: it is what `--forward-to` sends), else `text` itself. Stripe's
/// EventBridge integration delivers `{"version": "0", "id", "detail-type",
/// "source": "aws.partner/stripe.com/...", ..., "detail": <event>}`.
pub(crate) fn unwrap_eventbridge(text: &str) -> &str {
    // A quick look first: this runs on every NDJSON line.
    if memchr::memmem::find(text.as_bytes(), b"\"detail-type\"").is_none() {
        return text;
    }
    match serde_json::from_str::<Envelope<'_>>(text) {
        Ok(Envelope {
            detail_type: Some(_),
            source: Some(source),
            detail: Some(detail),
        }) if source.starts_with(EVENTBRIDGE_SOURCE) => detail.get(),
        _ => text,
    }
}

/// The kinds of object a sequence holds when none of its elements is an
/// event (each names an `object`, and none is `event`); else `None`.
fn non_event_kinds(items: &[&RawValue]) -> Option<Vec<String>> {
    let kind = |item: &RawValue| -> Option<String> {
        let probe: ObjectProbe<'_> = serde_json::from_str(item.get()).ok()?;
        probe.object.map(Cow::into_owned)
    };
    let is_event = |k: &str| k == "event" || k == THIN_EVENT;
    // The first element decides whether to look further: a file of events
    // costs one probe.
    if kind(items.first()?).is_none_or(|k| is_event(&k)) {
        return None;
    }
    let mut kinds: Vec<String> = Vec::new();
    for item in items {
        let k = kind(item)?;
        if is_event(&k) {
            return None;
        }
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    Some(kinds)
}

/// What to do with Stripe objects that are not events.
const LIST_EVENTS: &str =
    "list the account's events instead (`stripe events list`, or GET /v1/events)";

/// A file whose elements are all Stripe objects other than events.
fn not_events(name: &str, container: &str, n: usize, kinds: &[String]) -> String {
    let mut shown: Vec<String> = kinds.iter().take(3).map(|k| shown(k)).collect();
    if kinds.len() > 3 {
        shown.push("…".into());
    }
    let what = match (shown.as_slice(), n) {
        ([one], 1) => format!("{one} object"),
        ([one], _) => format!("{one} objects"),
        _ => format!("objects ({})", shown.join(", ")),
    };
    format!(
        "{name}: {container} of {n} {what}, not events: stripe-sync reads Stripe events \
         (`\"object\": \"event\"`); {LIST_EVENTS}"
    )
}

/// Text from the input, for a message: control characters escaped, cut
/// at 60 characters.
pub(crate) fn shown(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(60)
        .collect::<String>()
        .escape_debug()
        .collect();
    if s.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}

/// A JSON syntax error, at its line and column of the file (`lines`: the
/// lines before the text in the file).
fn syntax_error(e: &serde_json::Error, lines: usize) -> String {
    if e.is_eof() {
        return "invalid JSON: the text ends before the JSON value does (cut short?)".into();
    }
    let what = without_position(e);
    match (e.line(), lines) {
        (1, 0) => format!("invalid JSON at column {}: {what}", e.column()),
        (line, _) => format!(
            "invalid JSON at line {}, column {}: {what}",
            line + lines,
            e.column()
        ),
    }
}

/// serde_json's message without its ` at line L column C`.
fn without_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    match full.strip_suffix(&at) {
        Some(what) => what.to_owned(),
        None => full,
    }
}

/// A whole document: one event, an array, a list object, or NDJSON.
/// An Amazon EventBridge envelope stands for the event in its `detail`.
pub fn split_document(
    name: &Arc<str>,
    buf: &[u8],
    f: &mut dyn FnMut(Source, Result<&str, String>),
) -> Result<(), String> {
    let (lead, bytes) = trimmed(buf);
    if bytes.is_empty() {
        return Err(format!("{name}: empty file, expected JSON events"));
    }
    let text = utf8(name, bytes)?;
    let src = |pos| Source {
        file: name.clone(),
        pos,
    };
    if text.starts_with('[') {
        let items: Vec<&RawValue> = serde_json::from_str(text)
            .map_err(|e| format!("{name}: {}", syntax_error(&e, lead)))?;
        if let Some(kinds) = non_event_kinds(&items) {
            return Err(not_events(name, "an array", items.len(), &kinds));
        }
        for (i, item) in items.into_iter().enumerate() {
            f(src(Pos::Index(i)), Ok(unwrap_eventbridge(item.get())));
        }
        return Ok(());
    }
    match serde_json::from_str::<&RawValue>(text) {
        Ok(one) => {
            if let Ok(ListProbe {
                object: Some("list"),
                data: Some(items),
            }) = serde_json::from_str::<ListProbe<'_>>(one.get())
            {
                if let Some(kinds) = non_event_kinds(&items) {
                    return Err(not_events(name, "a Stripe list", items.len(), &kinds));
                }
                for (i, item) in items.into_iter().enumerate() {
                    f(src(Pos::Listed(i)), Ok(unwrap_eventbridge(item.get())));
                }
            } else {
                f(src(Pos::Whole), Ok(unwrap_eventbridge(one.get())));
            }
            Ok(())
        }
        Err(whole_err) => {
            // Several values: newline-delimited if the first line stands alone.
            let first = text.lines().next().unwrap_or("");
            if serde_json::from_str::<&RawValue>(first).is_err() {
                return Err(format!("{name}: {}", syntax_error(&whole_err, lead)));
            }
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() {
                    f(src(Pos::Line(lead + i + 1)), Ok(unwrap_eventbridge(line)));
                }
            }
            Ok(())
        }
    }
}

/// A webhook event, as much of it as routing and sync read.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created: i64,
    #[serde(default)]
    pub object: Option<String>,
    pub data: EventData,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EventData {
    pub object: StripeObject,
    /// What an update changed, as it was before (`*.updated` events):
    /// evidence of order within a second (see [`crate::truth`]).
    #[serde(default, deserialize_with = "lenient_object")]
    pub previous_attributes: Option<StripeObject>,
}

/// `previous_attributes` is evidence only: a shape this tool does not read
/// (a partial `items`, say) leaves it out rather than failing the event.
fn lenient_object<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<StripeObject>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value.and_then(|v| serde_json::from_value(v).ok()))
}

/// `"object"` of a Stripe thin event (event destinations, API v2).
pub const THIN_EVENT: &str = "v2.core.event";

impl Event {
    /// A thin event: no snapshot of the object, `created` in RFC 3339.
    pub fn is_thin(&self) -> bool {
        self.object.as_deref() == Some(THIN_EVENT)
    }
}

/// The envelope of a thin event: what a decision shows of it.
#[derive(Deserialize)]
struct ThinEnvelope {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    object: String,
    created: String,
}

fn parse_thin(text: &str) -> Option<Event> {
    let t: ThinEnvelope = serde_json::from_str(text).ok()?;
    if t.object != THIN_EVENT || t.id.is_empty() || t.kind.is_empty() {
        return None;
    }
    let created =
        time::OffsetDateTime::parse(&t.created, &time::format_description::well_known::Rfc3339)
            .ok()?
            .unix_timestamp();
    Some(Event {
        id: t.id,
        kind: t.kind,
        created,
        object: Some(t.object),
        data: EventData {
            object: StripeObject::default(),
            previous_attributes: None,
        },
    })
}

/// Parse one element as an event; the error says which field is wrong, or
/// what the element is when it is something else Stripe writes (a customer
/// or other object, a list, a stripe-cli fixture file, an Amazon
/// EventBridge event), and what to do. A thin event parses too (see
/// [`Event::is_thin`]): it is a real Stripe payload, which replay reports
/// as `ignored`. An Amazon EventBridge envelope from Stripe is read as the
/// event in its `detail`.
pub fn parse_event(text: &str) -> Result<Event, String> {
    match serde_json::from_str::<Event>(text) {
        Ok(ev) => {
            if let Some(o) = &ev.object
                && o != "event"
                && o != THIN_EVENT
            {
                return Err(what_it_is(text)
                    .unwrap_or_else(|| format!("not an event: \"object\" is \"{}\"", shown(o))));
            }
            if ev.id.is_empty() || ev.kind.is_empty() {
                return Err("not an event: empty \"id\" or \"type\"".into());
            }
            Ok(ev)
        }
        Err(first) => {
            if let Some(thin) = parse_thin(text) {
                return Ok(thin);
            }
            let inner = unwrap_eventbridge(text);
            if inner.len() != text.len() {
                return parse_event(inner).map_err(|e| {
                    format!("an Amazon EventBridge event whose `detail` is not a Stripe event: {e}")
                });
            }
            if first.is_syntax() || first.is_eof() {
                return Err(syntax_error(&first, 0));
            }
            // Slow path, errors only: find the field path for the message.
            let de = &mut serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, Event>(de) {
                Ok(_) => Err(format!("not an event: {}", without_position(&first))),
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if inner.is_syntax() || inner.is_eof() {
                        return Err(syntax_error(&inner, 0));
                    }
                    if let Some(what) = what_it_is(text) {
                        return Err(what);
                    }
                    // The parser's position of a missing field is the end
                    // of the object: the field's name says it all.
                    let what = without_position(&inner);
                    Err(match path.as_str() {
                        "." => format!(
                            "not an event: {what} (an event has `id`, `type`, `created` and `data.object`)"
                        ),
                        _ => format!("not an event: field `{path}`: {what}"),
                    })
                }
            }
        }
    }
}

/// The event type whose `data.object` is an object of this kind, for the
/// advice to wrap one.
fn event_type_of(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "customer" => "customer.updated",
        "subscription" => "customer.subscription.updated",
        "invoice" => "invoice.paid",
        "checkout.session" => "checkout.session.completed",
        "payment_intent" => "payment_intent.succeeded",
        _ => return None,
    })
}

/// What a JSON value that is not an event is, and what to do, when it can
/// be told; `None` for anything else (the field error then speaks).
fn what_it_is(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let map = value.as_object()?;
    let string = |key: &str| map.get(key).and_then(serde_json::Value::as_str);
    if map.contains_key("_meta") && map.get("fixtures").is_some_and(|f| f.is_array()) {
        return Some(
            "a stripe-cli fixture file (API requests for `stripe fixtures`), not events: \
             run it with `stripe fixtures FILE` on a test account and replay the events it \
             causes (`stripe events list`), or receive them as they happen \
             (`stripe listen --forward-to`)"
                .into(),
        );
    }
    if map.contains_key("detail-type") && map.contains_key("detail") {
        let source = string("source").unwrap_or("");
        return Some(format!(
            "an Amazon EventBridge event from \"{}\", not from Stripe: only Stripe's \
             (source `{EVENTBRIDGE_SOURCE}/...`) carry a Stripe event in `detail`",
            shown(source)
        ));
    }
    let kind = string("object")?;
    if kind == "event" || kind == THIN_EVENT {
        return None;
    }
    if kind == "list" {
        return Some(format!(
            "a Stripe list whose items are not events: {LIST_EVENTS}"
        ));
    }
    let id = string("id")
        .map(|id| format!(" ({})", shown(id)))
        .unwrap_or_default();
    let advice = match (kind, event_type_of(kind), string("id")) {
        ("customer", _, Some(id)) => format!(
            "wrap it as `data.object` of a `customer.updated` event, or sync the customer \
             from the API (`stripe-sync resync --customer {}`)",
            shown(id)
        ),
        (_, Some(t), _) => format!("wrap it as `data.object` of a `{t}` event, or {LIST_EVENTS}"),
        _ => LIST_EVENTS.to_owned(),
    };
    Some(format!(
        "a {} object{id}, not an event: stripe-sync reads Stripe events (`\"object\": \"event\"`); {advice}",
        shown(kind)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Items = Vec<(String, Result<String, String>)>;

    fn collect(name: &str, text: &str) -> Result<Items, String> {
        let mut out = Vec::new();
        split_document(&Arc::from(name), text.as_bytes(), &mut |s, r| {
            out.push((s.to_string(), r.map(str::to_owned)))
        })?;
        Ok(out)
    }

    #[test]
    fn single_array_list_and_ndjson() {
        let one = collect("a.json", r#" {"id":"evt_1"} "#).unwrap();
        assert_eq!(
            one,
            [("a.json".to_string(), Ok(r#"{"id":"evt_1"}"#.to_string()))]
        );
        let arr = collect("b.json", r#"[{"id":"e1"}, 5]"#).unwrap();
        assert_eq!(arr[1], ("b.json[1]".to_string(), Ok("5".to_string())));
        let list = collect(
            "c.json",
            r#"{"object":"list","data":[{"id":"e1"},{"id":"e2"}],"has_more":false}"#,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].0, "c.json[1]");
        let nd = collect("d.json", "{\"id\":\"e1\"}\n\n{\"id\":\"e2\"}\n{bad\n").unwrap();
        assert_eq!(nd.len(), 3);
        assert_eq!(nd[1].0, "d.json:3");
        assert_eq!(nd[2].0, "d.json:4");
    }

    #[test]
    fn empty_truncated_and_binary_files() {
        assert!(
            collect("e.json", "  \n")
                .unwrap_err()
                .contains("e.json: empty file")
        );
        let e = collect("t.json", "{\"id\": \"evt_1\",\n \"type\":").unwrap_err();
        assert!(e.starts_with("t.json: invalid JSON"), "{e}");
        let e =
            split_document(&Arc::from("bin.json"), b"\x00\xff\xfe", &mut |_, _| {}).unwrap_err();
        assert!(e.contains("bin.json: not UTF-8"), "{e}");
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for (_, item) in collect("deep.json", &deep).unwrap() {
            assert!(parse_event(&item.unwrap()).is_err());
        }
        let deep_obj = format!(
            "{{\"id\":\"e\",\"x\":{}{}}}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let r = collect("deep2.json", &deep_obj);
        assert!(
            r.is_err()
                || r.unwrap()
                    .iter()
                    .all(|(_, x)| parse_event(x.as_deref().unwrap_or("")).is_err())
        );
    }

    /// What `replay -` reads of `text`, streamed (see `sniff_stdin`).
    fn via_stdin(text: &[u8]) -> Result<Items, String> {
        let name: Arc<str> = Arc::from("-");
        let mut out = Vec::new();
        let mut push =
            |s: Source, r: Result<&str, String>| out.push((s.to_string(), r.map(str::to_owned)));
        let mut input = text;
        match sniff_stdin(&mut input)? {
            Stdin::Whole(buf) => split_document(&name, &buf, &mut push)?,
            Stdin::Lines(start) => read_chunks_from(
                &name,
                &mut input,
                start,
                &mut || None,
                &mut |first, chunk| {
                    for_each_line(&name, first, &chunk, LineTrim::Document, &mut push);
                    true
                },
            )?,
        }
        Ok(out)
    }

    #[test]
    fn stdin_streams_ndjson_and_splits_the_rest_as_a_document_would() {
        let long = format!("{{\"pad\":\"{}\"}}", "z".repeat(CHUNK + 3));
        let cases: Vec<String> = vec![
            format!("{EVENT}\n{EVENT}\n"),
            format!("\n\n  {EVENT}\r\n\r\n{EVENT}\n\n"),
            format!("\u{feff}{EVENT}\n{EVENT}"),
            format!("\u{feff}\n{EVENT}\n5\n"),
            format!("{EVENT}\n\u{a0}{EVENT}\u{2003}\n\u{a0}\n\u{b}{EVENT}\u{b}\n"),
            format!("{EVENT}\n{{bad}}\n\n{EVENT}x\n"),
            format!("{EVENT}\n \n\t\n"),
            format!(" {EVENT}"),
            format!("[{EVENT},\n{EVENT}]\n"),
            format!("{{\"object\":\"list\",\"data\":[{EVENT}]}}\n\n"),
            "{\n  \"id\": \"evt_1\"\n}\n".into(),
            "{bad}\n{\"id\":1}\n".into(),
            "\n\n{\"id\": 1,\n  nul}".into(),
            "  \n".into(),
            String::new(),
            "\u{feff}".into(),
            format!("{long}\n{EVENT}\n{long}\n"),
            format!("{EVENT}\n{}\n{EVENT}", "y".repeat(2 * CHUNK)),
        ];
        for text in &cases {
            let want = collect("-", text);
            assert_eq!(via_stdin(text.as_bytes()), want, "{:?}", shown(text));
        }
        // Text that is not UTF-8: a document's error, or (NDJSON, which
        // streams) the line's own.
        let bad = b"{\"a\":1}\n\xff\n{\"b\":2}\n";
        let got = via_stdin(bad).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!(got[1].0, "-:2");
        assert!(got[1].1.as_ref().unwrap_err().starts_with("not UTF-8"));
        let e = via_stdin(b"\xff\xfe{}").unwrap_err();
        assert!(e.starts_with("-: not UTF-8"), "{e}");
    }

    #[test]
    fn ndjson_lines_stream_with_numbers() {
        let text = "{\"a\":1}\n\r\n{\"b\":2}\r\n";
        let mut seen = Vec::new();
        for_each_line(
            &Arc::from("x.ndjson"),
            1,
            text.as_bytes(),
            LineTrim::File,
            &mut |s, r| seen.push((s.to_string(), r.unwrap().to_string())),
        );
        assert_eq!(
            seen,
            [
                ("x.ndjson:1".into(), "{\"a\":1}".into()),
                ("x.ndjson:3".into(), "{\"b\":2}".into())
            ]
        );
    }

    #[test]
    fn ndjson_chunks_keep_line_numbers_and_long_lines() {
        // Lines across several chunks, one line longer than a chunk, blank
        // lines, no newline at the end: every line once, with its number.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.ndjson");
        let mut text = String::new();
        let mut want = Vec::new();
        for n in 1..=3000usize {
            let line = match n {
                1500 => format!("{{\"long\":\"{}\"}}", "x".repeat(CHUNK * 2 + 7)),
                _ if n % 7 == 0 => String::new(),
                _ => format!("{{\"n\":{n},\"pad\":\"{}\"}}", "y".repeat(n % 900)),
            };
            if !line.is_empty() {
                want.push((format!("big.ndjson:{n}"), line.len()));
            }
            text.push_str(&line);
            if n < 3000 {
                text.push('\n');
            }
        }
        std::fs::write(&path, &text).unwrap();
        let name: Arc<str> = Arc::from("big.ndjson");
        let mut got = Vec::new();
        let mut spares = vec![Vec::with_capacity(16)];
        read_chunks(&name, &path, &mut || spares.pop(), &mut |first, chunk| {
            for_each_line(&name, first, &chunk, LineTrim::File, &mut |s, r| {
                got.push((s.to_string(), r.unwrap().len()))
            });
            true
        })
        .unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn event_errors_name_the_field() {
        let e = parse_event(
            r#"{"id":"evt_1","type":"invoice.paid","created":"yesterday","data":{"object":{}}}"#,
        )
        .unwrap_err();
        assert!(e.contains("created"), "{e}");
        let e = parse_event(r#"{"id":"evt_1","type":"x","created":1}"#).unwrap_err();
        assert!(e.contains("data"), "{e}");
        let e = parse_event("5").unwrap_err();
        assert!(e.starts_with("not an event"), "{e}");
        let e = parse_event(
            r#"{"id":"cus_1","object":"customer","type":"x","created":1,"data":{"object":{}}}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("a customer object (cus_1), not an event"),
            "{e}"
        );
        let ok = parse_event(r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":5,"data":{"object":{"id":"in_1","customer":"cus_1"}}}"#).unwrap();
        assert_eq!(ok.data.object.customer_id(), Some("cus_1"));
    }

    const EVENT: &str = r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":5,"data":{"object":{"id":"in_1","customer":"cus_1"}}}"#;

    fn envelope(source: &str, detail: &str) -> String {
        format!(
            r#"{{"version":"0","id":"6f1c","detail-type":"invoice.paid","source":"{source}","account":"1","time":"2026-01-01T00:00:00Z","region":"us-west-2","resources":[],"detail":{detail}}}"#
        )
    }

    #[test]
    fn an_eventbridge_envelope_from_stripe_is_its_detail() {
        let wrapped = envelope("aws.partner/stripe.com/ed_61T", EVENT);
        // The exact bytes of the event, wherever the envelope stands.
        assert_eq!(unwrap_eventbridge(&wrapped), EVENT);
        let one = collect("eb.json", &wrapped).unwrap();
        assert_eq!(one, [("eb.json".to_string(), Ok(EVENT.to_string()))]);
        let arr = collect("eb.json", &format!("[{wrapped},{EVENT}]")).unwrap();
        assert_eq!(arr[0].1, Ok(EVENT.to_string()));
        let mut lines = Vec::new();
        let text = format!("{wrapped}\n{wrapped}\n");
        for_each_line(
            &Arc::from("eb.ndjson"),
            1,
            text.as_bytes(),
            LineTrim::File,
            &mut |s, r| lines.push((s.to_string(), r.map(str::to_owned))),
        );
        assert_eq!(lines[1], ("eb.ndjson:2".to_string(), Ok(EVENT.to_string())));
        // parse_event reads one too (a body that was not split).
        assert_eq!(parse_event(&wrapped).unwrap().id, "evt_1");
        // Another source's event is not unwrapped, and is named.
        let other = envelope("aws.ec2", r#"{"instance-id":"i-1"}"#);
        assert_eq!(unwrap_eventbridge(&other), other);
        let e = parse_event(&other).unwrap_err();
        assert!(
            e.starts_with("an Amazon EventBridge event from \"aws.ec2\""),
            "{e}"
        );
        // Stripe's envelope around something that is not an event.
        let e = parse_event(&envelope("aws.partner/stripe.com/ed_1", "5")).unwrap_err();
        assert!(e.contains("`detail` is not a Stripe event"), "{e}");
    }

    #[test]
    fn what_a_file_that_is_not_events_is() {
        let fixture = r#"{"_meta":{"template_version":0},"fixtures":[{"name":"customer","path":"/v1/customers","method":"post","params":{}}]}"#;
        let e = parse_event(fixture).unwrap_err();
        assert!(e.starts_with("a stripe-cli fixture file"), "{e}");
        assert!(e.contains("stripe fixtures"), "{e}");
        assert!(!e.contains("line 1"), "{e}");
        let e = parse_event(r#"{"id":"cus_9","object":"customer","metadata":{}}"#).unwrap_err();
        assert!(
            e.starts_with("a customer object (cus_9), not an event"),
            "{e}"
        );
        assert!(e.contains("resync --customer cus_9"), "{e}");
        let e = parse_event(r#"{"id":"sub_1","object":"subscription"}"#).unwrap_err();
        assert!(e.contains("`customer.subscription.updated` event"), "{e}");
        // Text from the input is escaped in the message.
        let e = parse_event(r#"{"id":"x\u001b]0;t\u0007","object":"thing"}"#).unwrap_err();
        assert!(!e.contains('\u{1b}') && e.contains("\\u{1b}"), "{e}");
        // Anything else: which field, without the parser's position.
        let e = parse_event(r#"{"hello":1}"#).unwrap_err();
        assert_eq!(
            e,
            "not an event: missing field `id` (an event has `id`, `type`, `created` and `data.object`)"
        );
    }

    #[test]
    fn a_list_or_array_of_non_events_is_one_error_saying_so() {
        let e = collect(
            "l.json",
            r#"{"object":"list","data":[{"id":"cus_1","object":"customer"},{"id":"cus_2","object":"customer"}]}"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("l.json: a Stripe list of 2 customer objects, not events"),
            "{e}"
        );
        let e = collect(
            "a.json",
            r#"[{"id":"cus_1","object":"customer"},{"object":"invoice"}]"#,
        )
        .unwrap_err();
        assert!(
            e.starts_with("a.json: an array of 2 objects (customer, invoice), not events"),
            "{e}"
        );
        // One event among them: each element is judged on its own.
        let mixed = collect("m.json", &format!(r#"[{{"object":"customer"}},{EVENT}]"#)).unwrap();
        assert_eq!(mixed.len(), 2);
    }

    #[test]
    fn syntax_errors_give_the_line_of_the_file() {
        // Two blank lines before the document: line 4 of the file.
        let e = collect("t.json", "\n\n{\"id\": 1,\n  nul}").unwrap_err();
        assert_eq!(
            e,
            "t.json: invalid JSON at line 4, column 3: key must be a string"
        );
        let nd = collect("d.json", &format!("\n{EVENT}\n{{bad}}\n")).unwrap();
        assert_eq!(nd[1].0, "d.json:3");
        // One NDJSON line: its column (the line is the decision's source).
        let e = parse_event("{bad}").unwrap_err();
        assert_eq!(e, "invalid JSON at column 2: key must be a string");
        let e = parse_event(r#"{"id":"evt_1","#).unwrap_err();
        assert!(e.contains("ends before the JSON value does"), "{e}");
        let e = parse_event(&format!("{EVENT}x")).unwrap_err();
        assert_eq!(
            e,
            format!(
                "invalid JSON at column {}: trailing characters",
                EVENT.len() + 1
            )
        );
    }

    #[test]
    fn expand_reports_missing_paths_and_empty_globs() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.json"), "{}").unwrap();
        std::fs::write(dir.path().join("b.txt"), "x").unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/c.ndjson"), "{}").unwrap();
        let d = dir.path().display().to_string();
        let (inputs, errors) = expand(&[
            d.clone(),
            format!("{d}/*.nothing"),
            format!("{d}/missing.json"),
        ]);
        assert_eq!(inputs.len(), 2);
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(errors[0].1.contains("matches no file"));
        assert!(errors[1].1.contains("no such file"));
        let (inputs, _) = expand(&[format!("{d}/*.json")]);
        assert_eq!(inputs, [Input::File(dir.path().join("a.json"))]);
    }
}
