//! Reading events: files, directories, globs and stdin; one event, an array,
//! a Stripe list object or NDJSON. Every error names the file and position.

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
            let mut buf = Vec::new();
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| format!("-: cannot read stdin: {e}"))?;
            split_document(&name, &buf, f)
        }
        Input::File(path) if is_ndjson(path) => {
            read_chunks(&name, path, &mut || None, &mut |first, chunk| {
                for_each_line(&name, first, &chunk, f);
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

/// Bytes read from an NDJSON file at a time.
const CHUNK: usize = 1 << 20;

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
    let mut line = 1usize;
    // The start of a line the last chunk cut; `long`: a whole chunk of it.
    let mut carry: Vec<u8> = Vec::new();
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
        let got = fill(&mut file, &mut buf, CHUNK)
            .map_err(|e| format!("{name}:{line}: cannot read: {e}"))?;
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
fn fill(file: &mut std::fs::File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    buf.reserve(want);
    Read::by_ref(file).take(want as u64).read_to_end(buf)
}

/// Visit the lines of an NDJSON chunk whose first line is number `first`:
/// blank lines are skipped (and counted), each line is trimmed, a line that
/// is not UTF-8 is passed as `Err(message)` naming the file and line.
pub(crate) fn for_each_line(
    name: &Arc<str>,
    first: usize,
    chunk: &[u8],
    f: &mut dyn FnMut(Source, Result<&str, String>),
) {
    let mut start = 0;
    let ends = memchr::memchr_iter(b'\n', chunk).chain(std::iter::once(chunk.len()));
    for (i, end) in ends.enumerate() {
        let bytes = trim_ascii(&chunk[start..end]);
        start = end + 1;
        if bytes.is_empty() {
            continue;
        }
        let n = first + i;
        let source = Source {
            file: name.clone(),
            pos: Pos::Line(n),
        };
        f(source, utf8(name, &format!(":{n}"), bytes));
    }
}

fn utf8<'a>(name: &str, where_: &str, bytes: &'a [u8]) -> Result<&'a str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        format!(
            "{name}{where_}: not UTF-8 text (invalid byte at offset {})",
            e.valid_up_to()
        )
    })
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    b.trim_ascii()
}

#[derive(Deserialize)]
struct ListProbe<'a> {
    object: Option<&'a str>,
    #[serde(borrow)]
    data: Option<Vec<&'a RawValue>>,
}

/// A whole document: one event, an array, a list object, or NDJSON.
pub fn split_document(
    name: &Arc<str>,
    buf: &[u8],
    f: &mut dyn FnMut(Source, Result<&str, String>),
) -> Result<(), String> {
    let bytes = trim_ascii(buf);
    if bytes.is_empty() {
        return Err(format!("{name}: empty file, expected JSON events"));
    }
    let text = utf8(name, "", bytes)?;
    let src = |pos| Source {
        file: name.clone(),
        pos,
    };
    if text.starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|e| format!("{name}: invalid JSON array: {e}"))?;
        for (i, item) in items.into_iter().enumerate() {
            f(src(Pos::Index(i)), Ok(item.get()));
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
                for (i, item) in items.into_iter().enumerate() {
                    f(src(Pos::Listed(i)), Ok(item.get()));
                }
            } else {
                f(src(Pos::Whole), Ok(one.get()));
            }
            Ok(())
        }
        Err(whole_err) => {
            // Several values: newline-delimited if the first line stands alone.
            let first = text.lines().next().unwrap_or("");
            if serde_json::from_str::<&RawValue>(first).is_err() {
                return Err(format!("{name}: invalid JSON: {whole_err}"));
            }
            for (i, line) in text.lines().enumerate() {
                let line = line.trim();
                if !line.is_empty() {
                    f(src(Pos::Line(i + 1)), Ok(line));
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

/// Parse one element as an event; the error says which field is wrong.
/// A thin event parses too (see [`Event::is_thin`]): it is a real Stripe
/// payload, which replay reports as `ignored`.
pub fn parse_event(text: &str) -> Result<Event, String> {
    match serde_json::from_str::<Event>(text) {
        Ok(ev) => {
            if let Some(o) = &ev.object
                && o != "event"
                && o != THIN_EVENT
            {
                return Err(format!("not an event: \"object\" is \"{o}\""));
            }
            if ev.id.is_empty() || ev.kind.is_empty() {
                return Err("not an event: empty \"id\" or \"type\"".into());
            }
            Ok(ev)
        }
        Err(_) => {
            if let Some(thin) = parse_thin(text) {
                return Ok(thin);
            }
            // Slow path, errors only: find the field path for the message.
            let de = &mut serde_json::Deserializer::from_str(text);
            match serde_path_to_error::deserialize::<_, Event>(de) {
                Ok(_) => Err("not an event".into()),
                Err(e) => {
                    let path = e.path().to_string();
                    let inner = e.into_inner();
                    if inner.is_syntax() || inner.is_eof() {
                        Err(format!("invalid JSON: {inner}"))
                    } else if path == "." {
                        Err(format!("not an event: {inner}"))
                    } else {
                        Err(format!("not an event: field `{path}`: {inner}"))
                    }
                }
            }
        }
    }
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

    #[test]
    fn ndjson_lines_stream_with_numbers() {
        let text = "{\"a\":1}\n\r\n{\"b\":2}\r\n";
        let mut seen = Vec::new();
        for_each_line(&Arc::from("x.ndjson"), 1, text.as_bytes(), &mut |s, r| {
            seen.push((s.to_string(), r.unwrap().to_string()))
        });
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
            for_each_line(&name, first, &chunk, &mut |s, r| {
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
        assert!(e.contains("\"customer\""), "{e}");
        let ok = parse_event(r#"{"id":"evt_1","object":"event","type":"invoice.paid","created":5,"data":{"object":{"id":"in_1","customer":"cus_1"}}}"#).unwrap();
        assert_eq!(ok.data.object.customer_id(), Some("cus_1"));
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
