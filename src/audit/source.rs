//! Reading an audit source: a JSON array of records, a JSON object keyed by
//! user id, a KV dump (`stripe:user:<id>` and `stripe:customer:<id>` keys,
//! the T3 pattern), NDJSON, CSV, a Convex snapshot export (zip) or the app's
//! database, handed out one `Item` at a time in source order.
//!
//! Records are handed out as they are parsed: a JSON array is split into
//! its elements by a scan of a reader, each parsed on its own; another JSON
//! document is walked one entry at a time, from memory when the file is at
//! most `IN_MEMORY` bytes, else from a reader. A KV dump keeps its user ->
//! customer pairs; a customer record that comes before the user key naming
//! it is handed out after a second read of the file (or, from stdin, held
//! until the key comes).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Cursor, Read as _, Seek};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, anyhow};
use serde::Deserializer as _;
use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::audit::appdb::{self, RowSink};
use crate::audit::fields::{FieldMap, Keyed, Shape, describe, with_keys};
use crate::audit::record::{AppRecord, Field, Item, Origin, Problem};

/// `--format`: how to read a file whose name and content do not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Ndjson,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// A file; `-` is stdin.
    File(PathBuf),
    /// `--app-db URL --query SQL`.
    AppDb { url: String, query: String },
}

#[derive(Debug, Clone)]
pub(crate) struct Spec {
    pub source: Source,
    pub format: Option<Format>,
    /// `--table`: the table of a Convex export.
    pub table: Option<String>,
    pub fields: FieldMap,
}

/// What a read found, besides the items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Read {
    /// The fields the source has (only these are compared).
    pub fields: BTreeSet<Field>,
    /// Items handed out: records and problems.
    pub records: u64,
    /// The source as messages name it: `users.csv`, `stdin`, `snapshot.zip
    /// table users`, a database URL without its password.
    pub label: String,
}

type Each<'a> = &'a mut dyn FnMut(Item) -> anyhow::Result<()>;

/// Read the source of `spec`, handing each item to `each` in source order;
/// an error from `each` stops the read and is returned.
pub(crate) fn read(spec: &Spec, each: Each<'_>) -> anyhow::Result<Read> {
    static STDIN_TAKEN: AtomicBool = AtomicBool::new(false);
    let mut stdin = || -> anyhow::Result<Box<dyn io::Read>> {
        take_stdin(&STDIN_TAKEN)?;
        Ok(Box::new(io::stdin().lock()))
    };
    read_with(spec, &mut stdin, each)
}

/// Stdin can be read once per process; a recheck reads the source again.
fn take_stdin(taken: &AtomicBool) -> anyhow::Result<()> {
    if taken.swap(true, Ordering::SeqCst) {
        return Err(crate::usage(
            "cannot read stdin twice: audit reads its source again to recheck; save the \
             records to a file and pass its path instead of -",
        ));
    }
    Ok(())
}

type OpenStdin<'a> = &'a mut dyn FnMut() -> anyhow::Result<Box<dyn io::Read>>;

fn read_with(spec: &Spec, stdin: OpenStdin<'_>, each: Each<'_>) -> anyhow::Result<Read> {
    match &spec.source {
        Source::AppDb { url, query } => {
            if spec.table.is_some() {
                return Err(crate::usage(
                    "--table picks a table of a Convex export (.zip); with --app-db, \
                     --query picks the rows",
                ));
            }
            if spec.format.is_some() {
                return Err(crate::usage(
                    "--format says how to read a file; --app-db rows need none",
                ));
            }
            let mut sink = Sink::new(&spec.fields, appdb::shown(url), each);
            appdb::read_rows(url, query, &mut DbRows(&mut sink))?;
            sink.finish()
        }
        Source::File(path) => read_file(spec, path, stdin, each),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Json,
    Ndjson,
    Csv,
    Zip,
}

impl From<Format> for Kind {
    fn from(f: Format) -> Kind {
        match f {
            Format::Json => Kind::Json,
            Format::Ndjson => Kind::Ndjson,
            Format::Csv => Kind::Csv,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Json => "JSON",
            Kind::Ndjson => "NDJSON",
            Kind::Csv => "CSV",
            Kind::Zip => "a zip file",
        })
    }
}

fn kind_by_extension(path: &Path) -> Option<Kind> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    match ext.as_str() {
        "json" => Some(Kind::Json),
        "ndjson" | "jsonl" => Some(Kind::Ndjson),
        "csv" => Some(Kind::Csv),
        "zip" => Some(Kind::Zip),
        _ => None,
    }
}

fn cannot_read(label: &str) -> String {
    format!("cannot read audit source {label}")
}

fn read_file(
    spec: &Spec,
    path: &Path,
    stdin: OpenStdin<'_>,
    each: Each<'_>,
) -> anyhow::Result<Read> {
    let is_stdin = path.as_os_str() == "-";
    let label = match is_stdin {
        true => "stdin".to_owned(),
        false => path.display().to_string(),
    };
    let by_name = if is_stdin {
        None
    } else {
        kind_by_extension(path)
    };
    let forced = spec.format.map(Kind::from);
    let open = || File::open(path).with_context(|| cannot_read(&label));
    if forced.is_none() && by_name == Some(Kind::Zip) {
        return read_zip(BufReader::new(open()?), spec, &label, each);
    }
    let raw: Box<dyn io::Read> = if is_stdin {
        stdin()?
    } else {
        Box::new(open()?)
    };
    let mut input = Input::new(raw).with_context(|| cannot_read(&label))?;
    // The size of a regular file (not stdin, not a named pipe).
    let regular = match is_stdin {
        true => None,
        false => path
            .metadata()
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len()),
    };
    let kind = match (forced, by_name) {
        (Some(kind), _) => kind,
        // NDJSON is often named .json; a single JSON document never holds
        // two top-level values, so the content settles it.
        (None, Some(Kind::Json)) => match input.sniff().with_context(|| cannot_read(&label))? {
            Kind::Ndjson => Kind::Ndjson,
            _ => Kind::Json,
        },
        (None, Some(kind)) => kind,
        (None, None) => input.sniff().with_context(|| cannot_read(&label))?,
    };
    if kind != Kind::Zip
        && let Some(table) = &spec.table
    {
        return Err(crate::usage(format!(
            "--table {table} picks a table of a Convex export (.zip), but {label} is {kind}; \
             drop --table"
        )));
    }
    match kind {
        Kind::Zip if is_stdin => {
            let bytes = input.into_bytes().with_context(|| cannot_read(&label))?;
            read_zip(Cursor::new(bytes), spec, &label, each)
        }
        Kind::Zip => {
            drop(input);
            read_zip(BufReader::new(open()?), spec, &label, each)
        }
        // serde_json parses a slice faster than a reader (most for the
        // escaped strings of a KV dump), and the second read is free. An
        // array is streamed whatever its size: its elements are parsed as
        // slices one at a time (`read_array`), as fast.
        Kind::Json
            if regular.is_some_and(|len| len <= IN_MEMORY)
                && !input.is_array().with_context(|| cannot_read(&label))? =>
        {
            let text = input.into_text().with_context(|| cannot_read(&label))?;
            let mut sink = Sink::new(&spec.fields, label, each);
            sink.kv.early = Early::Defer;
            read_json(serde_json::Deserializer::from_slice(&text), &mut sink)?;
            if sink.needs_replay() {
                sink.kv.early = Early::Replay;
                read_json(serde_json::Deserializer::from_slice(&text), &mut sink)?;
            }
            sink.finish()
        }
        Kind::Json | Kind::Ndjson | Kind::Csv => {
            let mut sink = Sink::new(&spec.fields, label.clone(), each);
            // A pipe cannot be read again: there, early records are held.
            if regular.is_some() {
                sink.kv.early = Early::Defer;
            }
            read_text(kind, input, &mut sink)?;
            if sink.needs_replay() {
                sink.kv.early = Early::Replay;
                let input = Input::new(Box::new(open()?)).with_context(|| cannot_read(&label))?;
                read_text(kind, input, &mut sink)?;
            }
            sink.finish()
        }
    }
}

fn read_text(kind: Kind, mut input: Input, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    match kind {
        Kind::Json => {
            let array = input.is_array().with_context(|| cannot_read(&sink.label))?;
            let reader = input.into_reader();
            match array {
                true => read_array(reader, sink),
                false => read_json(serde_json::Deserializer::from_reader(reader), sink),
            }
        }
        Kind::Ndjson => read_ndjson(input.into_reader(), sink),
        Kind::Csv => read_csv(input.into_reader(), sink),
        Kind::Zip => unreachable!("a zip is read by read_zip"),
    }
}

const CHUNK: u64 = 64 * 1024;

/// How much of a first line starting with `{` is read to tell NDJSON from
/// a JSON document.
const SNIFF_LINE: usize = 1024 * 1024;

/// A JSON document file up to this size, unless an array, is read into
/// memory first (faster: an object keyed by user, a KV dump); a larger one,
/// or stdin, is parsed from a reader in constant memory. (At 64 MiB a 36 MB
/// file peaked at 89 MB.)
const IN_MEMORY: u64 = 16 * 1024 * 1024;

/// The start of a stream, kept for detection, then given back in front of
/// the rest.
struct Input {
    buf: Vec<u8>,
    /// Past a UTF-8 byte order mark.
    start: usize,
    eof: bool,
    rest: Box<dyn io::Read>,
}

impl Input {
    fn new(rest: Box<dyn io::Read>) -> io::Result<Input> {
        let mut input = Input {
            buf: Vec::new(),
            start: 0,
            eof: false,
            rest,
        };
        while input.buf.len() < 4 && input.more()? {}
        if input.buf.starts_with(b"\xEF\xBB\xBF") {
            input.start = 3;
        }
        Ok(input)
    }

    /// Read another chunk; false at the end.
    fn more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        let n = (&mut self.rest).take(CHUNK).read_to_end(&mut self.buf)?;
        self.eof = n == 0;
        Ok(n > 0)
    }

    /// The first non-blank byte at or after `from`, reading as needed.
    fn non_blank(&mut self, mut from: usize) -> io::Result<Option<usize>> {
        loop {
            if let Some(p) = self.buf[from..]
                .iter()
                .position(|b| !b.is_ascii_whitespace())
            {
                return Ok(Some(from + p));
            }
            from = self.buf.len();
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Whether the first non-blank byte opens an array.
    fn is_array(&mut self) -> io::Result<bool> {
        let first = self.non_blank(self.start)?;
        Ok(first.is_some_and(|at| self.buf[at] == b'['))
    }

    /// What the content looks like: a zip, a JSON array (or any JSON
    /// document), NDJSON (a whole object on the first line, and more lines),
    /// else CSV.
    fn sniff(&mut self) -> io::Result<Kind> {
        if self.buf.starts_with(b"PK\x03\x04") {
            return Ok(Kind::Zip);
        }
        let Some(first) = self.non_blank(self.start)? else {
            return Ok(Kind::Ndjson); // empty: no records, whatever the format
        };
        match self.buf[first] {
            b'[' => return Ok(Kind::Json),
            b'{' => {}
            _ => return Ok(Kind::Csv),
        }
        let mut scanned = first;
        let end = loop {
            if let Some(p) = memchr::memchr(b'\n', &self.buf[scanned..]) {
                break scanned + p;
            }
            scanned = self.buf.len();
            // A line this long is a JSON document, not one NDJSON record.
            if scanned - first > SNIFF_LINE || !self.more()? {
                return Ok(Kind::Json);
            }
        };
        if end - first > SNIFF_LINE
            || serde_json::from_slice::<de::IgnoredAny>(&self.buf[first..end]).is_err()
        {
            return Ok(Kind::Json);
        }
        Ok(match self.non_blank(end)? {
            Some(_) => Kind::Ndjson,
            None => Kind::Json,
        })
    }

    fn into_reader(self) -> impl BufRead {
        let mut head = Cursor::new(self.buf);
        head.set_position(self.start as u64);
        BufReader::with_capacity(CHUNK as usize, head.chain(self.rest))
    }

    /// All of it, past the byte order mark.
    fn into_text(self) -> io::Result<Vec<u8>> {
        let start = self.start;
        let mut bytes = self.into_bytes()?;
        bytes.drain(..start);
        Ok(bytes)
    }

    fn into_bytes(mut self) -> io::Result<Vec<u8>> {
        self.rest.read_to_end(&mut self.buf)?;
        Ok(self.buf)
    }
}

/// How the elements of an array or the lines of NDJSON are read, decided by
/// the first: records, or `{"key": ..., "value": ...}` pairs of a KV dump.
enum Elements {
    Undecided,
    Records,
    Pairs,
}

/// How the entries of a JSON object are read. Undecided until an entry
/// tells: a `stripe:` key makes a KV dump (other keys of the app's store are
/// skipped); a key that is one of the mapped fields makes the object one
/// record; a record value makes an object keyed by user id.
enum Entries {
    Undecided(Vec<(String, Value)>),
    Kv,
    Keyed,
    Single(Map<String, Value>),
}

/// What becomes of a KV dump's customer record that comes before the user
/// key naming its customer (a sorted dump puts every `stripe:customer:` key
/// before the `stripe:user:` ones).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Early {
    /// Kept, read, until the key comes: stdin can be read only once.
    #[default]
    Hold,
    /// Only its customer is noted; the file is read again for it.
    Defer,
    /// That second read: only the deferred records are handed out.
    Replay,
}

/// The T3 pattern's KV store: `stripe:user:<user>` -> customer id, and
/// `stripe:customer:<customer>` -> the synced record.
#[derive(Default)]
struct Kv {
    seen: bool,
    early: Early,
    /// customer -> the user whose key names it.
    named: HashMap<String, Named>,
    arrivals: u64,
    /// Held records: customer -> (arrival, the record read).
    /// (Boxed: a table of 100,000 slots reserves its capacity in full.)
    held: HashMap<String, (u64, Box<Extracted>)>,
    /// Deferred records' customers.
    deferred: HashSet<String>,
}

struct Named {
    user: String,
    arrival: u64,
    /// Its record was handed out, or comes in the second read.
    has_record: bool,
}

type Extracted = Result<AppRecord, (Option<Field>, String)>;

const USER_KEY: &str = "stripe:user:";
const CUSTOMER_KEY: &str = "stripe:customer:";

/// Where a source's records go: it tracks the fields present, counts, and
/// turns raw values into items for `each`.
struct Sink<'a> {
    fields: &'a FieldMap,
    label: String,
    each: Each<'a>,
    present: BTreeSet<Field>,
    records: u64,
    user_checked: bool,
    elements: Elements,
    entries: Entries,
    kv: Kv,
}

impl<'a> Sink<'a> {
    fn new(fields: &'a FieldMap, label: String, each: Each<'a>) -> Sink<'a> {
        Sink {
            fields,
            label,
            each,
            present: BTreeSet::new(),
            records: 0,
            user_checked: false,
            elements: Elements::Undecided,
            entries: Entries::Undecided(Vec::new()),
            kv: Kv::default(),
        }
    }

    fn origin(&self, unit: &'static str, at: impl ToString) -> Origin {
        Origin {
            source: self.label.clone(),
            unit,
            at: at.to_string(),
        }
    }

    /// Hand out an item, unless this is a second read of a KV dump (which
    /// hands out only the records it was for).
    fn emit(&mut self, item: Item) -> anyhow::Result<()> {
        match self.kv.early {
            Early::Replay => Ok(()),
            _ => self.hand_out(item),
        }
    }

    fn hand_out(&mut self, item: Item) -> anyhow::Result<()> {
        self.records += 1;
        (self.each)(item)
    }

    fn problem(
        &mut self,
        unit: &'static str,
        at: impl ToString,
        field: Option<Field>,
        message: String,
    ) -> anyhow::Result<()> {
        let origin = self.origin(unit, at);
        self.emit(Item::Problem(Problem {
            origin,
            field,
            message,
        }))
    }

    /// The columns of a CSV file or a query: they decide the fields.
    fn columns(&mut self, names: &[String]) -> anyhow::Result<()> {
        self.present = self.fields.columns_present(names);
        self.user_checked = true;
        if !self.present.contains(&Field::User) {
            return Err(self
                .fields
                .no_user_field(&self.label, Shape::Columns, names));
        }
        Ok(())
    }

    /// A row of a CSV file or a query.
    fn row(&mut self, row: Map<String, Value>, at: u64) -> anyhow::Result<()> {
        let origin = self.origin("row", at);
        let item = self
            .fields
            .item(&Value::Object(row), origin, Keyed::default());
        self.emit(item)
    }

    /// A record of a JSON source; the first one settles whether the source
    /// has a user field at all.
    fn record(
        &mut self,
        value: Value,
        unit: &'static str,
        at: impl ToString,
    ) -> anyhow::Result<()> {
        if let Value::Object(map) = &value {
            self.fields.mark_present(map, &mut self.present);
            if !self.user_checked {
                self.user_checked = true;
                if !self.present.contains(&Field::User) {
                    let names = key_paths(map);
                    return Err(self.fields.no_user_field(&self.label, Shape::Keys, &names));
                }
            }
        }
        let origin = self.origin(unit, at);
        let item = self.fields.item(&value, origin, Keyed::default());
        self.emit(item)
    }

    /// An element of a JSON array or a line of NDJSON.
    fn element(&mut self, value: Value, unit: &'static str, at: u64) -> anyhow::Result<()> {
        if let Elements::Undecided = self.elements {
            self.elements = match kv_pair(&value) {
                Some(_) => Elements::Pairs,
                None => Elements::Records,
            };
        }
        match self.elements {
            Elements::Pairs => match kv_pair(&value) {
                Some(key) => {
                    let key = key.to_owned();
                    let Value::Object(mut pair) = value else {
                        unreachable!("kv_pair accepts objects only")
                    };
                    let value = pair.remove("value").unwrap_or(Value::Null);
                    self.kv(key, value)
                }
                None => self.problem(
                    unit,
                    at,
                    None,
                    format!(
                        "expected a {{\"key\": ..., \"value\": ...}} pair like the rest of this \
                         key/value dump, found {}",
                        describe(&value)
                    ),
                ),
            },
            _ => self.record(value, unit, at),
        }
    }

    /// An entry of a JSON object.
    fn entry(&mut self, key: String, value: Value) -> anyhow::Result<()> {
        match &mut self.entries {
            Entries::Kv => return self.kv(key, value),
            Entries::Keyed => return self.keyed(key, value),
            Entries::Single(map) => {
                map.insert(key, value);
                return Ok(());
            }
            Entries::Undecided(_) => {}
        }
        let Entries::Undecided(mut before) = mem::replace(&mut self.entries, Entries::Kv) else {
            unreachable!("matched above")
        };
        if key.starts_with("stripe:") {
            self.entries = Entries::Kv;
            self.kv(key, value)
        } else if self.fields.is_field_key(&key) {
            before.push((key, value));
            self.entries = Entries::Single(before.into_iter().collect());
            Ok(())
        } else if value.is_object() {
            self.entries = Entries::Keyed;
            for (k, v) in before {
                self.keyed(k, v)?;
            }
            self.keyed(key, value)
        } else {
            before.push((key, value));
            self.entries = Entries::Undecided(before);
            Ok(())
        }
    }

    /// The end of a JSON object: an object that never showed a user key or a
    /// record value is one record.
    fn end_object(&mut self) -> anyhow::Result<()> {
        match mem::replace(&mut self.entries, Entries::Keyed) {
            Entries::Undecided(entries) if entries.is_empty() => Ok(()),
            Entries::Undecided(entries) => {
                self.record(Value::Object(entries.into_iter().collect()), "element", 1)
            }
            Entries::Single(map) => self.record(Value::Object(map), "element", 1),
            other => {
                self.entries = other;
                Ok(())
            }
        }
    }

    /// A record of an object keyed by user id.
    fn keyed(&mut self, key: String, value: Value) -> anyhow::Result<()> {
        self.present.insert(Field::User);
        if let Value::Object(map) = &value {
            self.fields.mark_present(map, &mut self.present);
        }
        let origin = self.origin("key", &key);
        let keyed = Keyed {
            user: Some(&key),
            customer: None,
        };
        let item = self.fields.item(&value, origin, keyed);
        self.emit(item)
    }

    /// An entry of a KV dump.
    fn kv(&mut self, key: String, value: Value) -> anyhow::Result<()> {
        if let Some(user) = key.strip_prefix(USER_KEY) {
            self.kv_user(user, &key, value)
        } else if let Some(customer) = key.strip_prefix(CUSTOMER_KEY) {
            self.kv_customer(customer, &key, value)
        } else {
            Ok(()) // the app's other keys
        }
    }

    fn kv_seen(&mut self) {
        self.kv.seen = true;
        self.present
            .extend([Field::User, Field::Customer, Field::Status]);
    }

    fn kv_user(&mut self, user: &str, key: &str, value: Value) -> anyhow::Result<()> {
        self.kv_seen();
        if self.kv.early == Early::Replay {
            return Ok(());
        }
        if user.is_empty() {
            let message = format!("no user: nothing follows {USER_KEY} in the key");
            return self.problem("key", key, None, message);
        }
        let customer = match customer_id(value) {
            Ok(Some(customer)) => customer,
            Ok(None) => {
                let record = AppRecord {
                    user: user.to_owned(),
                    ..AppRecord::default()
                };
                let origin = self.origin("key", key);
                return self.emit(Item::Record(record, origin));
            }
            Err(message) => return self.problem("key", key, Some(Field::Customer), message),
        };
        if let Some(named) = self.kv.named.get(&customer) {
            let message = format!(
                "{customer} is also the customer of {USER_KEY}{}; each user needs a Stripe \
                 customer of their own",
                named.user
            );
            return self.problem("key", key, Some(Field::Customer), message);
        }
        self.kv.arrivals += 1;
        let named = Named {
            user: user.to_owned(),
            arrival: self.kv.arrivals,
            has_record: self.kv.deferred.contains(&customer),
        };
        let held = self.kv.held.remove(&customer);
        let named = self
            .kv
            .named
            .entry(customer.clone())
            .insert_entry(named)
            .into_mut();
        if let Some((_, extracted)) = held {
            named.has_record = true;
            let key = format!("{CUSTOMER_KEY}{customer}");
            self.kv_record(&key, *extracted, user, &customer)?;
        }
        Ok(())
    }

    fn kv_customer(&mut self, customer: &str, key: &str, value: Value) -> anyhow::Result<()> {
        self.kv_seen();
        match self.kv.early {
            Early::Replay if !self.kv.deferred.remove(customer) => {
                return Ok(()); // handed out in the first read
            }
            Early::Replay => {}
            early => {
                if customer.is_empty() {
                    let message = format!("nothing follows {CUSTOMER_KEY} in the key");
                    return self.problem("key", key, Some(Field::Customer), message);
                }
                if value.is_null() {
                    return Ok(()); // no record: as if the customer was never synced
                }
                let kv = &self.kv;
                let twice = kv.named.get(customer).is_some_and(|n| n.has_record)
                    || kv.held.contains_key(customer)
                    || kv.deferred.contains(customer);
                if twice {
                    let message =
                        format!("a second record for customer {customer}; the first one is kept");
                    return self.problem("key", key, None, message);
                }
                if early == Early::Defer && !self.kv.named.contains_key(customer) {
                    self.kv.deferred.insert(customer.to_owned());
                    return Ok(());
                }
            }
        }
        let extracted = self.kv_extract(value);
        if let Some(named) = self.kv.named.get_mut(customer) {
            named.has_record = true;
            let user = named.user.clone();
            return self.kv_record(key, extracted, &user, customer);
        }
        match self.kv.early {
            Early::Hold => {
                self.kv.arrivals += 1;
                let held = (self.kv.arrivals, Box::new(extracted));
                self.kv.held.insert(customer.to_owned(), held);
                Ok(())
            }
            _ => self.kv_unnamed(key, customer),
        }
    }

    /// A customer record's values; one that is not a record (nor a string
    /// holding one, as Redis stores them) is a problem of its own.
    fn kv_extract(&mut self, value: Value) -> Extracted {
        let record = match value {
            Value::Object(map) => map,
            Value::String(text) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(map)) => map,
                _ => return Err((None, not_a_record(&Value::String(text)))),
            },
            other => return Err((None, not_a_record(&other))),
        };
        self.fields.mark_present(&record, &mut self.present);
        self.fields.extract(&record)
    }

    fn kv_unnamed(&mut self, key: &str, customer: &str) -> anyhow::Result<()> {
        let message = format!(
            "no {USER_KEY}<id> key names customer {customer}, so the record cannot be tied to \
             a user (the app writes that key when it creates the customer)"
        );
        let origin = self.origin("key", key);
        self.hand_out(Item::Problem(Problem {
            origin,
            field: None,
            message,
        }))
    }

    fn kv_record(
        &mut self,
        key: &str,
        extracted: Extracted,
        user: &str,
        customer: &str,
    ) -> anyhow::Result<()> {
        let keyed = Keyed {
            user: Some(user),
            customer: Some(customer),
        };
        let origin = self.origin("key", key);
        let item = match extracted.and_then(|r| with_keys(r, keyed)) {
            Ok(r) => Item::Record(r, origin),
            Err((field, message)) => Item::Problem(Problem {
                origin,
                field,
                message,
            }),
        };
        self.hand_out(item)
    }

    /// Whether a KV dump's file must be read again for deferred records.
    fn needs_replay(&self) -> bool {
        self.kv.early == Early::Defer && !self.kv.deferred.is_empty()
    }

    /// Hand out what a KV dump left waiting: held customer records no user
    /// key names (problems), and users whose customer has no record (not
    /// synced: no subscription).
    fn end_kv(&mut self) -> anyhow::Result<()> {
        let mut unnamed_held: Vec<_> = mem::take(&mut self.kv.held).into_iter().collect();
        unnamed_held.sort_by_key(|(_, (arrival, _))| *arrival);
        for (customer, _) in unnamed_held {
            self.kv_unnamed(&format!("{CUSTOMER_KEY}{customer}"), &customer)?;
        }
        let mut without: Vec<_> = mem::take(&mut self.kv.named)
            .into_iter()
            .filter(|(_, named)| !named.has_record)
            .collect();
        without.sort_by_key(|(_, named)| named.arrival);
        for (customer, named) in without {
            let origin = self.origin("key", format!("{USER_KEY}{}", named.user));
            let record = AppRecord {
                user: named.user,
                customer: Some(customer),
                ..AppRecord::default()
            };
            self.emit(Item::Record(record, origin))?;
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<Read> {
        let kv_shaped =
            matches!(self.elements, Elements::Pairs) || matches!(self.entries, Entries::Kv);
        if kv_shaped && !self.kv.seen {
            return Err(crate::usage(format!(
                "audit: {} looks like a key/value dump but has no {USER_KEY}<id> or \
                 {CUSTOMER_KEY}<id> keys; pass the dump of the app's Stripe keys",
                self.label
            )));
        }
        self.kv.early = Early::Hold; // any second read is over
        self.end_kv()?;
        Ok(Read {
            fields: self.present,
            records: self.records,
            label: self.label,
        })
    }
}

fn not_a_record(value: &Value) -> String {
    format!(
        "expected a record (a JSON object, or a string holding one), found {}",
        describe(value)
    )
}

/// The key of a `{"key": "...", "value": ...}` pair.
fn kv_pair(value: &Value) -> Option<&str> {
    match value {
        Value::Object(map) if map.len() == 2 && map.contains_key("value") => {
            map.get("key")?.as_str()
        }
        _ => None,
    }
}

/// The customer id a `stripe:user:` key holds; Redis dumps may hold it
/// JSON-encoded (`"\"cus_1\""`).
fn customer_id(value: Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => {
            let s = match s.starts_with('"') {
                true => serde_json::from_str::<String>(&s).unwrap_or(s),
                false => s,
            };
            Ok(Some(s).filter(|s| !s.is_empty()))
        }
        other => Err(format!(
            "expected a customer id (a string), found {}",
            describe(&other)
        )),
    }
}

/// A record's keys for a hint, with a nested object's keys as dotted paths.
fn key_paths(map: &Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    for (key, value) in map {
        match value {
            Value::Object(inner) if !inner.is_empty() => {
                names.extend(inner.keys().map(|k| format!("{key}.{k}")));
            }
            _ => names.push(key.clone()),
        }
    }
    names
}

fn read_json<'de, R: serde_json::de::Read<'de>>(
    mut de: serde_json::Deserializer<R>,
    sink: &mut Sink<'_>,
) -> anyhow::Result<()> {
    let mut failed = None;
    let visitor = Document {
        sink: &mut *sink,
        failed: &mut failed,
    };
    let result = de.deserialize_any(visitor).and_then(|()| de.end());
    if let Some(err) = failed {
        return Err(err);
    }
    result.map_err(|e| json_error(&sink.label, e))
}

fn json_error(label: &str, e: serde_json::Error) -> anyhow::Error {
    if e.is_io() {
        return anyhow::Error::new(io::Error::from(e)).context(cannot_read(label));
    }
    let at = Pos {
        line: e.line(),
        column: e.column(),
    };
    invalid_json(label, at, &json_reason(&e))
}

/// serde_json's message without its position.
fn json_reason(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let at = format!(" at line {} column {}", e.line(), e.column());
    text.strip_suffix(&at).unwrap_or(&text).to_owned()
}

/// A place in a JSON document as serde_json names one: the line, and the
/// bytes before on it (an error at the next byte is one column further).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    /// Past `bytes`.
    fn advance(&mut self, bytes: &[u8]) {
        match memchr::memrchr(b'\n', bytes) {
            Some(last) => {
                self.line += memchr::memchr_iter(b'\n', &bytes[..=last]).count();
                self.column = bytes.len() - last - 1;
            }
            None => self.column += bytes.len(),
        }
    }

    /// Where an error at the next byte is.
    fn next(self) -> Pos {
        Pos {
            column: self.column + 1,
            ..self
        }
    }

    /// Where an error of a slice that starts here is.
    fn of(self, e: &serde_json::Error) -> Pos {
        match e.line() {
            0 | 1 => Pos {
                column: self.column + e.column(),
                ..self
            },
            line => Pos {
                line: self.line + line - 1,
                column: e.column(),
            },
        }
    }
}

fn invalid_json(label: &str, at: Pos, reason: &str) -> anyhow::Error {
    anyhow!(
        "{label} is not valid JSON at line {} column {}: {reason}",
        at.line,
        at.column
    )
}

/// Past blanks, keeping `pos`: the next byte, not consumed.
fn skip_blank(reader: &mut impl BufRead, pos: &mut Pos) -> io::Result<Option<u8>> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(None);
        }
        let blank = buf
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(buf.len());
        pos.advance(&buf[..blank]);
        let next = buf.get(blank).copied();
        reader.consume(blank);
        if next.is_some() {
            return Ok(next);
        }
    }
}

/// An element of an array that starts at `start` of the document, and
/// then, the error of what follows it before the `,` or `]`, if anything.
fn parse_element(
    element: &[u8],
    start: Pos,
    label: &str,
) -> anyhow::Result<(Value, anyhow::Result<()>)> {
    use serde::Deserialize as _;
    let error = |e: serde_json::Error, reason: &str| invalid_json(label, start.of(&e), reason);
    let mut de = serde_json::Deserializer::from_slice(element);
    let value = Value::deserialize(&mut de).map_err(|e| {
        let reason = json_reason(&e);
        error(e, &reason)
    })?;
    let after = de.end().map_err(|e| error(e, "expected `,` or `]`"));
    Ok((value, after))
}

/// A JSON array read from a reader, one element at a time: a scan for the
/// byte that ends each element (a `,` or the `]` outside any string or
/// nesting) and a parse of its bytes alone, as fast as from memory and held
/// to one element. Errors name the place in the whole document, as a parse
/// of all of it would.
fn read_array(mut reader: impl BufRead, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    let label = sink.label.clone();
    let io_error = |e: io::Error| anyhow::Error::new(e).context(cannot_read(&label));
    let mut pos = Pos { line: 1, column: 0 };
    match skip_blank(&mut reader, &mut pos).map_err(io_error)? {
        Some(b'[') => {
            reader.consume(1);
            pos.column += 1;
        }
        _ => return Err(invalid_json(&label, pos.next(), "expected `[`")),
    }
    let mut element = Vec::new();
    let mut n = 0;
    // Within the element: the nesting of `[]{}`, and in a string, after a
    // backslash.
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    loop {
        let buf = reader.fill_buf().map_err(io_error)?;
        if buf.is_empty() {
            // The end came within the array: a last element whole is read.
            let start = pos;
            pos.advance(&element);
            let reason = match element.iter().all(u8::is_ascii_whitespace) {
                true if n > 0 => "EOF while parsing a value",
                true => "EOF while parsing a list",
                false => {
                    let (value, after) = parse_element(&element, start, &label)?;
                    sink.element(value, "element", n + 1)?;
                    after?;
                    "EOF while parsing a list"
                }
            };
            return Err(invalid_json(&label, pos, reason));
        }
        let mut i = 0;
        let mut end = None;
        while i < buf.len() {
            if in_string {
                if escaped {
                    escaped = false;
                    i += 1;
                    continue;
                }
                match memchr::memchr2(b'"', b'\\', &buf[i..]) {
                    None => i = buf.len(),
                    Some(p) => {
                        i += p + 1;
                        match buf[i - 1] {
                            b'\\' => escaped = true,
                            _ => in_string = false,
                        }
                    }
                }
                continue;
            }
            match buf[i] {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' if depth > 0 => depth -= 1,
                b',' | b']' | b'}' if depth == 0 => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
            i += 1;
        }
        let Some(i) = end else {
            element.extend_from_slice(buf);
            let len = buf.len();
            reader.consume(len);
            continue;
        };
        let close = buf[i];
        element.extend_from_slice(&buf[..i]);
        reader.consume(i + 1);
        let start = pos;
        pos.advance(&element);
        if element.iter().all(u8::is_ascii_whitespace) {
            let reason = match close {
                b']' if n == 0 => break, // empty
                b']' => "trailing comma",
                _ => "expected value",
            };
            return Err(invalid_json(&label, pos.next(), reason));
        }
        let (value, after) = parse_element(&element, start, &label)?;
        n += 1;
        sink.element(value, "element", n)?;
        after?;
        if close == b'}' {
            return Err(invalid_json(&label, pos.next(), "expected `,` or `]`"));
        }
        pos.column += 1;
        element.clear();
        if close == b']' {
            break;
        }
    }
    match skip_blank(&mut reader, &mut pos).map_err(io_error)? {
        Some(_) => Err(invalid_json(&label, pos.next(), "trailing characters")),
        None => Ok(()),
    }
}

/// The top level of a JSON document, walked one element or entry at a time.
struct Document<'s, 'a> {
    sink: &'s mut Sink<'a>,
    /// Why the walk stopped, when not for bad JSON.
    failed: &'s mut Option<anyhow::Error>,
}

impl Document<'_, '_> {
    fn stop<E: de::Error>(self, err: anyhow::Error) -> Result<(), E> {
        *self.failed = Some(err);
        Err(E::custom("stopped"))
    }

    fn not_records<E: de::Error>(self, found: &str) -> Result<(), E> {
        let err = anyhow!(
            "{} holds {found}, not records: expected an array of records, an object of records \
             keyed by user id, or a key/value dump",
            self.sink.label
        );
        self.stop(err)
    }
}

impl<'de> Visitor<'de> for Document<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array or an object")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut n = 0;
        while let Some(value) = seq.next_element::<Value>()? {
            n += 1;
            if let Err(err) = self.sink.element(value, "element", n) {
                return self.stop(err);
            }
        }
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<Value>()?;
            if let Err(err) = self.sink.entry(key, value) {
                return self.stop(err);
            }
        }
        match self.sink.end_object() {
            Ok(()) => Ok(()),
            Err(err) => self.stop(err),
        }
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_records("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_records("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_records("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_records("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_records("a string")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_records("null")
    }
}

fn read_ndjson(mut reader: impl BufRead, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    let mut line = Vec::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader.read_until(b'\n', &mut line);
        if read.with_context(|| cannot_read(&sink.label))? == 0 {
            return Ok(());
        }
        n += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        // Without its line end, so that an error's column is on this line.
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        match serde_json::from_slice::<Value>(text) {
            Ok(value) => sink.element(value, "line", n)?,
            Err(e) => {
                let message = format!(
                    "not valid JSON at column {}: {}; fix or remove the line",
                    e.column(),
                    json_reason(&e)
                );
                sink.problem("line", n, None, message)?;
            }
        }
    }
}

fn read_csv(reader: impl io::Read, sink: &mut Sink<'_>) -> anyhow::Result<()> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let columns: Vec<String> = match csv.headers() {
        Ok(headers) => headers.iter().map(str::to_owned).collect(),
        Err(e) => return Err(csv_error(&sink.label, e)),
    };
    if columns.iter().all(String::is_empty) {
        return Ok(()); // an empty file
    }
    sink.columns(&columns)?;
    // Only the columns a field's path names go into a row's record (a value
    // is a string, so a path matches a column by name only): the others
    // (email, timestamps) cost nothing.
    let mapped: Vec<(usize, &String)> = columns
        .iter()
        .enumerate()
        .filter(|(_, column)| {
            Field::ALL
                .into_iter()
                .any(|f| sink.fields.paths(f).contains(column))
        })
        .collect();
    let mut row = csv::StringRecord::new();
    loop {
        match csv.read_record(&mut row) {
            Ok(false) => return Ok(()),
            Ok(true) => {
                let line = row.position().map_or(0, csv::Position::line);
                if row.len() != columns.len() {
                    let message = format!(
                        "{} values where the header has {} columns; fix the row (a value \
                         holding a comma needs double quotes)",
                        row.len(),
                        columns.len()
                    );
                    sink.problem("row", line, None, message)?;
                    continue;
                }
                let map = mapped
                    .iter()
                    .map(|&(i, column)| {
                        let value = &row[i];
                        let value = match value.is_empty() {
                            true => Value::Null,
                            false => Value::String(value.to_owned()),
                        };
                        (column.clone(), value)
                    })
                    .collect();
                sink.row(map, line)?;
            }
            Err(e) => match e.kind() {
                csv::ErrorKind::Utf8 { pos: Some(pos), .. } => {
                    let message = "not valid UTF-8; save the file as UTF-8".to_owned();
                    sink.problem("row", pos.line(), None, message)?;
                }
                _ => return Err(csv_error(&sink.label, e)),
            },
        }
    }
}

fn csv_error(label: &str, e: csv::Error) -> anyhow::Error {
    if e.is_io_error() {
        let csv::ErrorKind::Io(io) = e.into_kind() else {
            unreachable!("is_io_error")
        };
        return anyhow::Error::new(io).context(cannot_read(label));
    }
    anyhow!("{label} is not valid CSV: {e}")
}

/// A Convex snapshot export: `<table>/documents.jsonl` per table.
fn read_zip<R: io::Read + Seek>(
    reader: R,
    spec: &Spec,
    label: &str,
    each: Each<'_>,
) -> anyhow::Result<Read> {
    let zip_error = |e: zip::result::ZipError| match e {
        zip::result::ZipError::Io(io) => anyhow::Error::new(io).context(cannot_read(label)),
        other => anyhow!("{label} is not a readable zip file: {other}"),
    };
    let mut zip = zip::ZipArchive::new(reader).map_err(zip_error)?;
    let mut tables: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .filter_map(|name| name.strip_suffix("/documents.jsonl").map(str::to_owned))
        .collect();
    tables.sort();
    // Convex's own tables (_tables, _storage, _components/...) are not the app's.
    let shown = tables
        .iter()
        .filter(|t| !t.starts_with('_'))
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if tables.is_empty() {
        return Err(crate::usage(format!(
            "audit: {label} holds no <table>/documents.jsonl; expected a Convex export \
             (npx convex export --path snapshot.zip)"
        )));
    }
    let Some(table) = spec.table.as_deref() else {
        return Err(crate::usage(format!(
            "audit: {label} is a Convex export; pick the table holding one record per user with \
             --table NAME: its tables are {shown}"
        )));
    };
    if !tables.iter().any(|t| t == table) {
        return Err(crate::usage(format!(
            "audit: no table {table} in {label}: its tables are {shown}; pick one with --table NAME"
        )));
    }
    let documents = zip
        .by_name(&format!("{table}/documents.jsonl"))
        .map_err(zip_error)?;
    let mut sink = Sink::new(&spec.fields, format!("{label} table {table}"), each);
    read_ndjson(BufReader::new(documents), &mut sink)?;
    sink.finish()
}

/// Query rows into the sink.
struct DbRows<'s, 'a>(&'s mut Sink<'a>);

impl RowSink for DbRows<'_, '_> {
    fn columns(&mut self, names: &[String]) -> anyhow::Result<()> {
        self.0.columns(names)
    }

    fn row(&mut self, n: u64, row: Map<String, Value>) -> anyhow::Result<()> {
        self.0.row(row, n)
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }

        fn file(&self, name: &str, content: &[u8]) -> PathBuf {
            let path = self.0.path().join(name);
            std::fs::write(&path, content).unwrap();
            path
        }
    }

    fn spec(path: &Path) -> Spec {
        Spec {
            source: Source::File(path.to_owned()),
            format: None,
            table: None,
            fields: FieldMap::new("clerkUserId", &[], &[]).unwrap(),
        }
    }

    fn no_stdin() -> anyhow::Result<Box<dyn io::Read>> {
        panic!("stdin is not read in this test")
    }

    fn run(spec: &Spec) -> anyhow::Result<(Read, Vec<Item>)> {
        let mut items = Vec::new();
        let read = read_with(spec, &mut no_stdin, &mut |item| {
            items.push(item);
            Ok(())
        })?;
        assert_eq!(read.records, items.len() as u64);
        Ok((read, items))
    }

    fn read_all(spec: &Spec) -> (Read, Vec<Item>) {
        run(spec).unwrap_or_else(|e| panic!("{e:#}"))
    }

    fn usage_text(err: anyhow::Error) -> String {
        match err.downcast_ref::<crate::Fatal>() {
            Some(crate::Fatal::Usage(m)) => m.clone(),
            _ => panic!("not a usage error: {err:#}"),
        }
    }

    /// Each item as one line: `origin => user customer status` or `origin: problem`.
    fn lines(items: &[Item]) -> Vec<String> {
        items
            .iter()
            .map(|item| match item {
                Item::Record(r, origin) => format!(
                    "{} => {} {} {}",
                    origin.to_string().rsplit_once(", ").unwrap().1,
                    r.user,
                    r.customer.as_deref().unwrap_or("-"),
                    r.status.as_deref().unwrap_or("-"),
                ),
                Item::Problem(p) => {
                    let text = p.to_string();
                    text.split_once(", ").unwrap().1.to_owned()
                }
            })
            .collect()
    }

    fn fields(list: &[Field]) -> BTreeSet<Field> {
        list.iter().copied().collect()
    }

    #[test]
    fn json_array() {
        let dir = Dir::new();
        let path = dir.file(
            "users.json",
            br#"[
              {"userId": "u1", "stripeCustomerId": "cus_1", "status": "active"},
              {"userId": "u2", "status": null},
              7
            ]"#,
        );
        let (read, items) = read_all(&spec(&path));
        assert_eq!(read.label, path.display().to_string());
        assert_eq!(
            read.fields,
            fields(&[Field::User, Field::Customer, Field::Status])
        );
        assert_eq!(
            lines(&items),
            [
                "element 1 => u1 cus_1 active",
                "element 2 => u2 - -",
                "element 3: expected a record (a JSON object), found a number (7)",
            ]
        );
        let Item::Record(_, origin) = &items[0] else {
            panic!()
        };
        assert_eq!(origin.source, path.display().to_string());
        assert_eq!(origin.unit, "element");
    }

    #[test]
    fn json_object_keyed_by_user() {
        let dir = Dir::new();
        let path = dir.file(
            "users.json",
            br#"{"u1": {"status": "active", "priceId": "price_1"},
                 "u2": {"userId": "u9", "status": "trialing"},
                 "u3": {"userId": "u3"},
                 "u4": "active"}"#,
        );
        let (read, items) = read_all(&spec(&path));
        assert_eq!(
            read.fields,
            fields(&[Field::User, Field::Status, Field::Price])
        );
        assert_eq!(
            lines(&items),
            [
                "key u1 => u1 - active",
                "key u2: user: the record says \"u9\" but its key says \"u2\"; fix one of them",
                "key u3 => u3 - -",
                "key u4: expected a record (a JSON object), found a string (\"active\")",
            ]
        );
    }

    #[test]
    fn json_single_record_document() {
        let dir = Dir::new();
        let path = dir.file(
            "one.json",
            b"{\n  \"userId\": \"u1\",\n  \"paymentMethod\": {\"brand\": \"visa\"}\n}\n",
        );
        let (read, items) = read_all(&spec(&path));
        assert_eq!(read.fields, fields(&[Field::User, Field::CardBrand]));
        assert_eq!(lines(&items), ["element 1 => u1 - -"]);
    }

    #[test]
    fn ndjson_with_a_bad_line() {
        let dir = Dir::new();
        let path = dir.file(
            "users.ndjson",
            b"{\"userId\": \"u1\", \"status\": \"active\"}\n\n{\"userId\": \"u2\", \n[1]\r\n{\"userId\": \"u3\"}",
        );
        let (read, items) = read_all(&spec(&path));
        assert_eq!(read.fields, fields(&[Field::User, Field::Status]));
        assert_eq!(
            lines(&items),
            [
                "line 1 => u1 - active",
                "line 3: not valid JSON at column 17: EOF while parsing a value; fix or remove the line",
                "line 4: expected a record (a JSON object), found an array",
                "line 5 => u3 - -",
            ]
        );
    }

    #[test]
    fn csv_with_header_and_a_short_row() {
        let dir = Dir::new();
        let path = dir.file(
            "users.csv",
            b"\xEF\xBB\xBFuserId,stripeCustomerId,status,paymentMethod.last4,current_period_end\n\
              u1,cus_1,active,0042,2026-01-05 10:00:00+00\n\
              u2,cus_2\n\
              u3,,,,\n\
              \"u,4\",cus_4,\"past_due\",4242,1767607200000\n",
        );
        let (read, items) = read_all(&spec(&path));
        assert_eq!(
            read.fields,
            fields(&[
                Field::User,
                Field::Customer,
                Field::Status,
                Field::PeriodEnd,
                Field::CardLast4
            ])
        );
        assert_eq!(
            lines(&items),
            [
                "row 2 => u1 cus_1 active",
                "row 3: 2 values where the header has 5 columns; fix the row (a value holding a comma needs double quotes)",
                "row 4 => u3 - -",
                "row 5 => u,4 cus_4 past_due",
            ]
        );
        let Item::Record(first, _) = &items[0] else {
            panic!()
        };
        assert_eq!(first.card_last4.as_deref(), Some("0042"));
        assert_eq!(first.period_end, Some(1767607200));
        let Item::Record(last, _) = &items[3] else {
            panic!()
        };
        assert_eq!(last.period_end, Some(1767607200));
    }

    #[test]
    fn csv_without_a_user_column_is_a_usage_error() {
        let dir = Dir::new();
        let path = dir.file("orders.csv", b"id,email,plan\n1,a@b.c,pro\n");
        let mut spec = spec(&path);
        let text = usage_text(run(&spec).unwrap_err());
        let label = path.display();
        assert_eq!(
            text,
            format!(
                "audit: no user field in {label}: its columns are id, email, plan; add --field \
                 user=<column>, e.g. --field user=id"
            )
        );
        spec.fields = FieldMap::new("clerkUserId", &[], &["user=id".into()]).unwrap();
        let (read, items) = read_all(&spec);
        assert_eq!(read.fields, fields(&[Field::User]));
        assert_eq!(lines(&items), ["row 2 => 1 - -"]);
    }

    #[test]
    fn json_without_a_user_field_stops_at_the_first_record() {
        let dir = Dir::new();
        let path = dir.file(
            "users.json",
            br#"[{"_id": "k1", "ownerId": "u1", "billing": {"status": "active"}}, {"userId": "u2"}]"#,
        );
        let mut count = 0;
        let err = read_with(&spec(&path), &mut no_stdin, &mut |_| {
            count += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(count, 0);
        assert_eq!(
            usage_text(err),
            format!(
                "audit: no user field in {}: its first record has the keys _id, ownerId, \
                 billing.status; add --field user=<path>, e.g. --field user=ownerId",
                path.display()
            )
        );
    }

    #[test]
    fn t3_kv_dump_as_an_object_with_string_values() {
        let dir = Dir::new();
        let record = r#"{"subscriptionId":"sub_2","status":"active","priceId":"price_1","currentPeriodStart":1767607200,"currentPeriodEnd":1770285600,"cancelAtPeriodEnd":false,"paymentMethod":{"brand":"visa","last4":"4242"}}"#;
        let dump = serde_json::json!({
            "ratelimit:abc": "3",
            "stripe:user:u5": "cus_5",
            "stripe:customer:cus_2": record,
            "stripe:user:u1": "cus_1",
            "stripe:user:u2": "\"cus_2\"",
            "stripe:customer:cus_3": {"status": "none"},
            "stripe:user:u3": "cus_3",
            "stripe:customer:cus_9": {"status": "active"},
            "stripe:user:u4": "cus_3",
            "stripe:customer:cus_5": "not json",
            "stripe:customer:cus_6": 42,
        });
        let path = dir.file("kv.json", dump.to_string().as_bytes());
        // A file: records that come before their user key are read again
        // at the end, after what the first read could hand out.
        let (read, items) = read_all(&spec(&path));
        assert_eq!(read.fields, Field::ALL.into_iter().collect());
        let shared = "key stripe:user:u4: customer: cus_3 is also the customer of \
                      stripe:user:u3; each user needs a Stripe customer of their own";
        let not_json = "key stripe:customer:cus_5: expected a record (a JSON object, or a \
                        string holding one), found a string (\"not json\")";
        let unnamed = |c: &str| {
            format!(
                "key stripe:customer:{c}: no stripe:user:<id> key names customer {c}, so the \
                 record cannot be tied to a user (the app writes that key when it creates the \
                 customer)"
            )
        };
        assert_eq!(
            lines(&items),
            [
                shared,
                not_json,
                "key stripe:customer:cus_2 => u2 cus_2 active",
                "key stripe:customer:cus_3 => u3 cus_3 -",
                &unnamed("cus_9"),
                &unnamed("cus_6"),
                "key stripe:user:u1 => u1 cus_1 -",
            ]
        );
        let Item::Record(r, _) = &items[2] else {
            panic!()
        };
        assert_eq!(r.period_end, Some(1770285600));
        assert_eq!(r.card_last4.as_deref(), Some("4242"));
        assert_eq!(r.cancel_at_period_end, Some(false));

        // Stdin is read once: those records are held until their key comes.
        let stdin_spec = Spec {
            source: Source::File("-".into()),
            ..spec(&path)
        };
        let bytes = dump.to_string().into_bytes();
        let mut stdin =
            || -> anyhow::Result<Box<dyn io::Read>> { Ok(Box::new(Cursor::new(bytes.clone()))) };
        let mut got = Vec::new();
        let read = read_with(&stdin_spec, &mut stdin, &mut |item| {
            got.push(item);
            Ok(())
        })
        .unwrap();
        assert_eq!(read.fields, Field::ALL.into_iter().collect());
        assert_eq!(
            lines(&got),
            [
                "key stripe:customer:cus_2 => u2 cus_2 active",
                "key stripe:customer:cus_3 => u3 cus_3 -",
                shared,
                not_json,
                &unnamed("cus_9"),
                &unnamed("cus_6"),
                "key stripe:user:u1 => u1 cus_1 -",
            ]
        );
        let (Item::Record(from_stdin, _), Item::Record(from_file, _)) = (&got[0], &items[2]) else {
            panic!()
        };
        assert_eq!(from_stdin, from_file);
    }

    #[test]
    fn kv_dump_duplicates_and_user_first_order() {
        let dir = Dir::new();
        let path = dir.file(
            "kv.ndjson",
            b"{\"key\": \"stripe:customer:cus_1\", \"value\": {\"status\": \"active\"}}\n\
              {\"key\": \"stripe:customer:cus_1\", \"value\": {\"status\": \"canceled\"}}\n\
              {\"key\": \"stripe:user:u1\", \"value\": \"cus_1\"}\n\
              {\"key\": \"stripe:user:u2\", \"value\": \"cus_2\"}\n\
              {\"key\": \"stripe:customer:cus_2\", \"value\": {\"status\": \"trialing\", \"userId\": \"u2\"}}\n\
              {\"key\": \"stripe:user:u3\", \"value\": null}\n",
        );
        let (_, items) = read_all(&spec(&path));
        assert_eq!(
            lines(&items),
            [
                "key stripe:customer:cus_1: a second record for customer cus_1; the first one is kept",
                "key stripe:customer:cus_2 => u2 cus_2 trialing",
                "key stripe:user:u3 => u3 - -",
                "key stripe:customer:cus_1 => u1 cus_1 active",
            ]
        );
    }

    #[test]
    fn kv_dump_as_key_value_ndjson_and_array() {
        let dir = Dir::new();
        let ndjson = dir.file(
            "kv.jsonl",
            b"{\"key\": \"stripe:user:u1\", \"value\": \"cus_1\"}\n\
              {\"key\": \"session:x\", \"value\": \"...\"}\n\
              {\"key\": \"stripe:customer:cus_1\", \"value\": \"{\\\"status\\\":\\\"canceled\\\"}\"}\n\
              {\"userId\": \"u2\"}\n",
        );
        let (read, items) = read_all(&spec(&ndjson));
        assert_eq!(
            read.fields,
            fields(&[Field::User, Field::Customer, Field::Status])
        );
        assert_eq!(
            lines(&items),
            [
                "key stripe:customer:cus_1 => u1 cus_1 canceled",
                "line 4: expected a {\"key\": ..., \"value\": ...} pair like the rest of this key/value dump, found an object",
            ]
        );
        let array = dir.file(
            "kv.json",
            br#"[{"key": "stripe:customer:cus_1", "value": {"status": "active"}}, {"value": "cus_1", "key": "stripe:user:u1"}]"#,
        );
        let (_, items) = read_all(&spec(&array));
        assert_eq!(
            lines(&items),
            ["key stripe:customer:cus_1 => u1 cus_1 active"]
        );
        let empty = dir.file("other.json", br#"[{"key": "session:x", "value": "1"}]"#);
        let text = usage_text(run(&spec(&empty)).unwrap_err());
        assert!(
            text.contains("looks like a key/value dump but has no stripe:user:<id>"),
            "{text}"
        );
    }

    fn convex_zip(dir: &Dir) -> PathBuf {
        use zip::write::SimpleFileOptions;
        let path = dir.0.path().join("snapshot.zip");
        let mut zip = zip::ZipWriter::new(File::create(&path).unwrap());
        let stored =
            SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        let files: [(&str, &str); 5] = [
            ("README.md", "This is a Convex snapshot export."),
            (
                "_tables/documents.jsonl",
                "{\"name\":\"users\",\"id\":10001}\n",
            ),
            ("_storage/documents.jsonl", ""),
            (
                "messages/documents.jsonl",
                "{\"_id\":\"m1\",\"body\":\"hi\"}\n",
            ),
            (
                "users/documents.jsonl",
                "{\"_creationTime\":1767607200123.4,\"_id\":\"k1\",\"clerkUserId\":\"user_1\",\"stripeCustomerId\":\"cus_1\",\"status\":\"active\",\"currentPeriodEnd\":1770285600000}\n\
                 {\"_creationTime\":1767607201000.0,\"_id\":\"k2\",\"clerkUserId\":\"user_2\"}\n",
            ),
        ];
        for (name, content) in files {
            zip.start_file(name, stored).unwrap();
            zip.write_all(content.as_bytes()).unwrap();
        }
        zip.finish().unwrap();
        path
    }

    #[test]
    fn convex_snapshot_zip() {
        let dir = Dir::new();
        let path = convex_zip(&dir);
        let label = path.display().to_string();
        let mut spec = spec(&path);
        assert_eq!(
            usage_text(run(&spec).unwrap_err()),
            format!(
                "audit: {label} is a Convex export; pick the table holding one record per user \
                 with --table NAME: its tables are messages, users"
            )
        );
        spec.table = Some("accounts".into());
        assert_eq!(
            usage_text(run(&spec).unwrap_err()),
            format!(
                "audit: no table accounts in {label}: its tables are messages, users; pick one \
                 with --table NAME"
            )
        );
        spec.table = Some("users".into());
        let (read, items) = read_all(&spec);
        assert_eq!(read.label, format!("{label} table users"));
        assert_eq!(
            read.fields,
            fields(&[
                Field::User,
                Field::Customer,
                Field::Status,
                Field::PeriodEnd
            ])
        );
        assert_eq!(
            lines(&items),
            ["line 1 => user_1 cus_1 active", "line 2 => user_2 - -"]
        );
        let Item::Record(r, origin) = &items[0] else {
            panic!()
        };
        assert_eq!(r.period_end, Some(1770285600));
        assert_eq!(origin.source, format!("{label} table users"));
        // Sniffed without the extension, too.
        let renamed = dir.0.path().join("snapshot");
        std::fs::rename(&path, &renamed).unwrap();
        spec.source = Source::File(renamed);
        assert_eq!(read_all(&spec).1.len(), 2);
    }

    #[test]
    fn detection_by_content() {
        let dir = Dir::new();
        let cases: [(&str, &[u8], &[&str]); 6] = [
            (
                "array",
                b"\n  [{\"userId\": \"u1\"}]",
                &["element 1 => u1 - -"],
            ),
            (
                "ndjson",
                b"{\"userId\": \"u1\"}\n\n{\"userId\": \"u2\"}\n",
                &["line 1 => u1 - -", "line 3 => u2 - -"],
            ),
            (
                "one-line-object",
                b"{\"u1\": {\"status\": \"active\"}}\n\n",
                &["key u1 => u1 - active"],
            ),
            (
                "pretty-object",
                b"{\n \"u1\": {\"status\": \"active\"}\n}\n",
                &["key u1 => u1 - active"],
            ),
            (
                "csv",
                b"user_id,status\nu1,active\n",
                &["row 2 => u1 - active"],
            ),
            (
                "bom-array",
                b"\xEF\xBB\xBF[{\"userId\": \"u1\"}]",
                &["element 1 => u1 - -"],
            ),
        ];
        for (name, content, expected) in cases {
            let path = dir.file(name, content);
            assert_eq!(lines(&read_all(&spec(&path)).1), expected, "{name}");
        }
        let empty = dir.file("empty", b"");
        let (read, items) = read_all(&spec(&empty));
        assert_eq!((read.records, read.fields.len()), (0, 0));
        assert!(items.is_empty());
        // A first line longer than SNIFF_LINE is taken for a JSON document.
        let long = format!(
            "{{\"userId\": \"u1\", \"note\": \"{}\"}}\n",
            "x".repeat(SNIFF_LINE)
        );
        let path = dir.file("long", format!("{long}{long}").as_bytes());
        let err = run(&spec(&path)).unwrap_err().to_string();
        assert!(
            err.ends_with("is not valid JSON at line 2 column 1: trailing characters"),
            "{err}"
        );
        let path = dir.file("short", long.as_bytes());
        assert_eq!(lines(&read_all(&spec(&path)).1), ["element 1 => u1 - -"]);
        // NDJSON named .json is read as NDJSON.
        let path = dir.file(
            "users.json",
            b"{\"userId\": \"u1\"}\n{\"userId\": \"u2\"}\n",
        );
        assert_eq!(read_all(&spec(&path)).1.len(), 2);
    }

    #[test]
    fn format_flag_forces() {
        let dir = Dir::new();
        let path = dir.file("users.json", b"userId,status\nu1,active\n");
        let mut spec = spec(&path);
        assert!(
            run(&spec)
                .unwrap_err()
                .to_string()
                .contains("is not valid JSON at line 1 column 1")
        );
        spec.format = Some(Format::Csv);
        assert_eq!(lines(&read_all(&spec).1), ["row 2 => u1 - active"]);
        let path = dir.file("data.txt", b"{\"userId\": \"u1\"}");
        let mut spec = self::spec(&path);
        spec.format = Some(Format::Ndjson);
        assert_eq!(lines(&read_all(&spec).1), ["line 1 => u1 - -"]);
        spec.table = Some("users".into());
        let text = usage_text(run(&spec).unwrap_err());
        assert!(
            text.starts_with("--table users picks a table of a Convex export (.zip), but"),
            "{text}"
        );
        assert!(text.ends_with("is NDJSON; drop --table"), "{text}");
    }

    /// A streamed array reads and fails as a parse of the whole document.
    #[test]
    fn streamed_arrays_read_as_the_whole_document() {
        let fields = FieldMap::new("clerkUserId", &[], &[]).unwrap();
        let read = |text: &[u8], streamed: bool| {
            let mut got = Vec::new();
            let mut each = |item| {
                got.push(item);
                Ok(())
            };
            let mut sink = Sink::new(&fields, "a.json".into(), &mut each);
            let result = match streamed {
                true => read_array(BufReader::with_capacity(3, text), &mut sink),
                false => read_json(serde_json::Deserializer::from_slice(text), &mut sink),
            };
            let result = result.and_then(|()| sink.finish().map(|_| ()));
            (result.map_err(|e| e.to_string()), lines(&got))
        };
        let cases: &[&str] = &[
            "[]",
            " [ ] \n",
            "[{\"userId\": \"u1\"}, 2, \"x\", null, [1, {\"a\": \"]\"}]]",
            "[\n {\"userId\": \"u\\\"1,]}\", \"n\": {\"a\": [1, 2]}},\n {\"userId\": \"u2\"}\n]\n\n",
            "[{\"userId\": \"u1\"}",
            "[{\"userId\": \"u1\"},",
            "[{\"userId\": \"u1\"},]",
            "[,{\"userId\": \"u1\"}]",
            "[{\"userId\": \"u1\"},,]",
            "[{\"userId\": \"u1\"} {\"userId\": \"u2\"}]",
            "[{\"userId\": \"u1\"}}",
            "[\n{\"userId\": \"u1\"},\n  {\"userId\" \"u2\"}\n]",
            "[{\"userId\": \"u1\"},\n {\"userId\": \"u2\n\"}]",
            "[{\"userId\": \"u1\"}, {\"userId\": \"u",
            "[{\"userId\": \"u1\"}, {\"a\": [1}]",
            "[{\"userId\": \"u1\"}]\n x",
            "[{\"userId\": \"u1\"}],",
            "[{\"userId\": \"u1\"}] []",
            "[",
            "[ \n ",
            "[1, 2",
            "[}",
            "[{\"key\": \"stripe:customer:cus_1\", \"value\": {\"status\": \"active\"}}, {\"key\": \"stripe:user:u1\", \"value\": \"cus_1\"}, 3]",
        ];
        for case in cases {
            assert_eq!(
                read(case.as_bytes(), true),
                read(case.as_bytes(), false),
                "{case:?}"
            );
        }
    }

    #[test]
    fn unreadable_and_invalid_json_name_the_file() {
        let dir = Dir::new();
        let missing = dir.0.path().join("missing.json");
        let err = run(&spec(&missing)).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.starts_with(&format!("cannot read audit source {}: ", missing.display())),
            "{text}"
        );
        let path = dir.file(
            "users.json",
            b"[\n  {\"userId\": \"u1\"},\n  {\"userId\" \"u2\"}\n]",
        );
        let mut seen = 0;
        let err = read_with(&spec(&path), &mut no_stdin, &mut |_| {
            seen += 1;
            Ok(())
        })
        .unwrap_err();
        assert_eq!(seen, 1);
        assert_eq!(
            err.to_string(),
            format!(
                "{} is not valid JSON at line 3 column 13: expected `:`",
                path.display()
            )
        );
        let path = dir.file("s.json", b"\"users\"");
        let err = run(&spec(&path)).unwrap_err();
        assert!(err.to_string().ends_with("s.json holds a string, not records: expected an array of records, an object of records keyed by user id, or a key/value dump"), "{err}");
        let path = dir.file("bad.zip", b"PK\x03\x04 not really");
        let err = run(&spec(&path)).unwrap_err();
        assert!(
            err.to_string()
                .contains("bad.zip is not a readable zip file: "),
            "{err}"
        );
    }

    #[test]
    fn an_error_from_each_stops_the_read() {
        let dir = Dir::new();
        let path = dir.file(
            "users.ndjson",
            b"{\"userId\": \"u1\"}\n{\"userId\": \"u2\"}\n",
        );
        let mut seen = 0;
        let err = read_with(&spec(&path), &mut no_stdin, &mut |_| {
            seen += 1;
            anyhow::bail!("enough")
        })
        .unwrap_err();
        assert_eq!((seen, err.to_string().as_str()), (1, "enough"));
    }

    #[test]
    fn files_read_twice_stdin_once() {
        let dir = Dir::new();
        let path = dir.file("users.csv", b"userId\nu1\n");
        let spec = spec(&path);
        assert_eq!(read_all(&spec).1, read_all(&spec).1);

        let stdin_spec = Spec {
            source: Source::File("-".into()),
            ..spec
        };
        let taken = AtomicBool::new(false);
        let mut stdin = || -> anyhow::Result<Box<dyn io::Read>> {
            take_stdin(&taken)?;
            Ok(Box::new(Cursor::new(b"[{\"userId\": \"u1\"}]".to_vec())))
        };
        let mut got = Vec::new();
        let read = read_with(&stdin_spec, &mut stdin, &mut |item| {
            got.push(item);
            Ok(())
        })
        .unwrap();
        assert_eq!(read.label, "stdin");
        assert_eq!(lines(&got), ["element 1 => u1 - -"]);
        let err = read_with(&stdin_spec, &mut stdin, &mut |_| Ok(())).unwrap_err();
        assert!(usage_text(err).starts_with("cannot read stdin twice: "));
    }

    #[test]
    fn stdin_zip_is_read_from_memory() {
        let dir = Dir::new();
        let bytes = std::fs::read(convex_zip(&dir)).unwrap();
        let spec = Spec {
            source: Source::File("-".into()),
            table: Some("users".into()),
            ..spec(Path::new("unused"))
        };
        let mut stdin =
            || -> anyhow::Result<Box<dyn io::Read>> { Ok(Box::new(Cursor::new(bytes.clone()))) };
        let mut got = Vec::new();
        let read = read_with(&spec, &mut stdin, &mut |item| {
            got.push(item);
            Ok(())
        })
        .unwrap();
        assert_eq!(read.label, "stdin table users");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn app_db_refuses_file_flags() {
        let mut spec = spec(Path::new("unused"));
        spec.source = Source::AppDb {
            url: "sqlite:app.db".into(),
            query: "SELECT * FROM billing".into(),
        };
        spec.table = Some("users".into());
        assert!(usage_text(run(&spec).unwrap_err()).starts_with("--table picks a table"));
    }

    #[test]
    fn db_rows_go_through_the_sink() {
        let fields = FieldMap::new("clerkUserId", &[], &[]).unwrap();
        let mut got = Vec::new();
        let mut each = |item| {
            got.push(item);
            Ok(())
        };
        let mut sink = Sink::new(&fields, "postgres://app:***@db/app".into(), &mut each);
        let mut rows = DbRows(&mut sink);
        rows.columns(&[
            "user_id".into(),
            "status".into(),
            "cancel_at_period_end".into(),
        ])
        .unwrap();
        let row =
            serde_json::json!({"user_id": "u1", "status": "active", "cancel_at_period_end": "t"});
        let Value::Object(row) = row else { panic!() };
        rows.row(1, row).unwrap();
        let read = sink.finish().unwrap();
        assert_eq!(
            read.fields,
            fields_of(&[Field::User, Field::Status, Field::CancelAtPeriodEnd])
        );
        assert_eq!(lines(&got), ["row 1 => u1 - active"]);
        let Item::Record(r, _) = &got[0] else {
            panic!()
        };
        assert_eq!(r.cancel_at_period_end, Some(true));

        fn fields_of(list: &[Field]) -> BTreeSet<Field> {
            list.iter().copied().collect()
        }
    }

    /// 100,000 T3-shaped records as a JSON array, NDJSON, CSV and a sorted KV
    /// dump; run with
    /// `cargo test --release --lib audit::source::tests::reads_100k -- --ignored`
    /// under `/usr/bin/time -v` to see the rate and the peak memory.
    #[test]
    #[ignore = "a measurement, not a check"]
    fn reads_100k_records() {
        let dir = Dir::new();
        let n = 100_000;
        let record = |i: u32| {
            format!(
                "{{\"userId\":\"user_{i:08}\",\"stripeCustomerId\":\"cus_{i:08}\",\"subscriptionId\":\"sub_{i:08}\",\
                 \"status\":\"active\",\"priceId\":\"price_1\",\"currentPeriodStart\":1767607200,\
                 \"currentPeriodEnd\":1770285600,\"cancelAtPeriodEnd\":false,\
                 \"paymentMethod\":{{\"brand\":\"visa\",\"last4\":\"4242\"}}}}"
            )
        };
        let ndjson: String = (0..n).map(|i| record(i) + "\n").collect();
        let array = format!("[{}]", (0..n).map(record).collect::<Vec<_>>().join(",\n"));
        let mut csv = String::from("userId,stripeCustomerId,status,current_period_end\n");
        for i in 0..n {
            csv.push_str(&format!("user_{i:08},cus_{i:08},active,1770285600\n"));
        }
        // A sorted KV dump: every customer record before the user keys.
        let mut kv = Map::new();
        for i in 0..n {
            let record = r#"{"subscriptionId":"sub_1","status":"active","priceId":"price_1","currentPeriodEnd":1770285600}"#;
            kv.insert(
                format!("stripe:customer:cus_{i:08}"),
                Value::String(record.into()),
            );
        }
        for i in 0..n {
            kv.insert(
                format!("stripe:user:user_{i:08}"),
                Value::String(format!("cus_{i:08}")),
            );
        }
        let kv = Value::Object(kv).to_string();
        let files = [
            ("a.ndjson", ndjson),
            ("a.json", array),
            ("a.csv", csv),
            ("kv.json", kv),
        ];
        for (name, content) in files {
            let path = dir.file(name, content.as_bytes());
            drop(content);
            let mut records = 0;
            let read = read_with(&spec(&path), &mut no_stdin, &mut |item| {
                records += u64::from(matches!(item, Item::Record(..)));
                Ok(())
            })
            .unwrap();
            assert_eq!(
                (read.records, records),
                (u64::from(n), u64::from(n)),
                "{name}"
            );
        }
    }
}
