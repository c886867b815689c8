//! `serve`: the app's webhook endpoint as a local service. Each request is
//! verified as `verify` does, routed and synced as `replay` does (the same
//! engine, through one writer thread that commits concurrent requests
//! together), and answered only after the commit:
//!
//! - no secret configured: 500 `Webhook secret not configured.` (the seed app's answer);
//! - a bad signature: 400 `Webhook Error: <reason>`;
//! - a transfer coding other than `chunked`: 501, a content coding other
//!   than `identity`: 415 (see [`unsupported_coding`]);
//! - a valid event: 200 with its decision, once committed (duplicates,
//!   rejected, unresolved and ignored events too);
//! - a failed sync or store write: 500, the event not logged, so Stripe's
//!   retry is processed;
//! - no answer within [`ANSWER_BOUND`]: 500 (see there).
//!
//! `--record DIR` keeps the exact bytes of every request before answering.
//! With `--live`, each request fetches from the API what its event needs
//! before queueing it (see [`fetch`]): the writer never waits on the network.
//!
//! At most `--max-connections` connections are served at once (more wait in
//! the kernel's listen queue); a failing `accept` (out of file descriptors)
//! is retried with backoff. The first SIGTERM or Ctrl-C stops accepting and
//! waits for the work in flight; a second one stops the wait.

mod fetch;
mod record;
pub(crate) mod writer;

pub(crate) use fetch::Live;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde::Serialize;

use crate::output::RequestSink;
use crate::replay::Decision;
use crate::runtime::Runtime;
use crate::signature;

/// How the server was asked to run.
pub(crate) struct Settings {
    pub listen: SocketAddr,
    pub path: String,
    /// The secrets and tolerance, each secret keyed once at start.
    pub verifier: signature::Verifier,
    pub record: Option<PathBuf>,
    pub max_body: usize,
    pub read_timeout: Duration,
    /// Connections served at once; more wait in the kernel's listen queue.
    pub max_connections: usize,
    /// A valid event's time from its request to its answer, at most (see
    /// [`ANSWER_BOUND`]).
    pub answer_bound: Duration,
    /// `--live`: the API part of each request.
    pub live: Option<Live>,
}

/// How long a valid event may take, from its request to its answer: the
/// API calls its sync needs and the wait for its commit. Past it the
/// request is answered 500 (the event was not processed, or not yet: a
/// retry is processed, or answered `duplicate` if the commit came after),
/// so that every answer comes well within Stripe's own wait. Stripe asks
/// that an endpoint "quickly return a successful status code (2xx) prior to
/// any complex logic that could cause a timeout"
/// (<https://docs.stripe.com/webhooks#acknowledge-events-immediately>), and
/// counts a delivery as "Timed out" when "it took too long for your server
/// to provide a response"
/// (<https://support.stripe.com/questions/webhooks-how-to-investigate-and-fix-timed-out>):
/// a failure, retried. It documents no number; integrators report 20 to
/// 30 s. Without this bound, one API call that never answered held a
/// request for 189 s (30 s a try, 5 retries).
pub(crate) const ANSWER_BOUND: Duration = Duration::from_secs(15);

/// Test-only and undocumented: [`ANSWER_BOUND`] in milliseconds, so that
/// tests of a stalled API or a locked store do not wait for real (see
/// [`answer_bound`]).
pub(crate) const TEST_ANSWER_BOUND_ENV: &str = "STRIPE_SYNC_TEST_ANSWER_BOUND_MS";

/// The bound in force: [`ANSWER_BOUND`], or the value of
/// [`TEST_ANSWER_BOUND_ENV`] (whole milliseconds, 100 ms to a minute;
/// anything else is ignored).
pub(crate) fn answer_bound(test_value: Option<&str>) -> Duration {
    test_value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| (100..=60_000).contains(ms))
        .map_or(ANSWER_BOUND, Duration::from_millis)
}

/// How long the writer waits for another process's write lock: two thirds
/// of the answer's bound (10 s), leaving the rest for the queue and the
/// commit, so that a busy store is answered with its reason rather than
/// with the bound's.
pub(crate) fn lock_wait(answer_bound: Duration) -> Duration {
    answer_bound * 2 / 3
}

/// Connections served at once without `--max-connections`: 512, or half the
/// open-file limit when that is lower, so that SQLite, `--record` and the API
/// client still get file descriptors when every connection slot is taken.
pub(crate) fn default_max_connections(open_files: Option<u64>) -> usize {
    const MOST: u64 = 512;
    let n = open_files.map_or(MOST, |n| (n / 2).clamp(1, MOST));
    usize::try_from(n).unwrap_or(1)
}

/// Raise the soft open-file limit to the hard one where the system allows
/// (a server's descriptors are its connections); the soft limit now in
/// force, `None` when unlimited.
#[cfg(unix)]
pub(crate) fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let was = getrlimit(Resource::Nofile);
    // macOS refuses a soft limit above OPEN_MAX (10,240) when the hard one is
    // unlimited: then that is the most it can be.
    for target in [was.maximum, Some(10_240)] {
        let higher = match (target, was.current) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(t), Some(c)) => t > c && was.maximum.is_none_or(|m| t <= m),
        };
        let raised = Rlimit {
            current: target,
            maximum: was.maximum,
        };
        if higher && setrlimit(Resource::Nofile, raised).is_ok() {
            break;
        }
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(not(unix))]
pub(crate) fn raise_open_files_limit() -> Option<u64> {
    None
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM, or a [`Halt`] (the caller knows why): a normal stop.
    Terminated,
    /// Ctrl-C (status 130).
    Interrupted,
}

/// A stop asked from inside the process (the writer found the store lost):
/// the server stops as at SIGTERM. Any thread may ask; asking twice is asking once.
#[derive(Clone)]
pub(crate) struct Halt(Arc<tokio::sync::watch::Sender<bool>>);

impl Halt {
    pub(crate) fn new() -> Halt {
        Halt(Arc::new(tokio::sync::watch::channel(false).0))
    }

    /// Stop the server.
    pub(crate) fn now(&self) {
        self.0.send_replace(true);
    }

    /// Completes once a stop was asked (at once if it already was).
    fn asked(&self) -> impl std::future::Future<Output = ()> + use<> {
        let mut asked = self.0.subscribe();
        async move {
            // The sender lives as long as this `Halt`'s clones: never closed here.
            let _ = asked.wait_for(|a| *a).await;
        }
    }
}

/// Requests by status and by route, for the summary.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub requests: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub by_route: BTreeMap<String, u64>,
}

/// Arrival numbers: unique, increasing, and increasing across restarts
/// too (nanoseconds since the epoch at the first request, then one more
/// each), for `--record`'s names and the writer's order within a batch.
pub(crate) struct Arrivals(AtomicU64);

impl Arrivals {
    fn new() -> Arrivals {
        Arrivals(AtomicU64::new(0))
    }

    fn next(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        let prev = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |p| Some(now.max(p + 1)))
            .unwrap_or_default();
        now.max(prev + 1)
    }
}

struct State {
    settings: Settings,
    arrivals: Arrivals,
    /// Taken at shutdown, so the writer sees the end of the queue.
    jobs: Mutex<Option<mpsc::Sender<writer::Job>>>,
    sink: RequestSink,
    tally: Mutex<Tally>,
    seq: AtomicU64,
    /// `DIR/rejected/` with `--record`, kept within its caps.
    rejected: Option<Arc<Mutex<record::Rejected>>>,
}

/// What one request is answered, and what its log line says.
struct Answer {
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    decision: Option<Decision>,
    note: Option<String>,
}

impl Answer {
    fn text(status: StatusCode, body: impl Into<String>) -> Answer {
        Answer {
            status,
            body: Bytes::from(body.into()),
            content_type: "text/plain; charset=utf-8",
            decision: None,
            note: None,
        }
    }

    /// `Webhook Error: <why>`, the log line saying why too.
    fn error(status: StatusCode, why: String) -> Answer {
        let mut a = Answer::text(status, format!("Webhook Error: {why}"));
        a.note = Some(why);
        a
    }
}

/// The line `--json` prints per request: the decision's fields (null when
/// there is none), the HTTP status and the time taken.
#[derive(Serialize)]
struct RequestRecord<'a> {
    http_status: u16,
    ms: u64,
    #[serde(flatten)]
    decision: DecisionOrNone<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum DecisionOrNone<'a> {
    Some(&'a Decision),
    None {
        event_id: Option<&'a str>,
        #[serde(rename = "type")]
        kind: Option<&'a str>,
        created: Option<i64>,
        route: Option<&'a str>,
        user_id: Option<&'a str>,
        customer_id: Option<&'a str>,
        resolved_via: Option<&'a str>,
        reason: Option<&'a str>,
        source: Option<&'a str>,
    },
}

/// Bind, print where, and serve until SIGTERM or Ctrl-C; then stop
/// accepting, let the requests in flight finish, and return the tally. A
/// second signal stops the wait (status 130): what is still in flight gets
/// no answer, so Stripe retries it. A [`Halt`] stops the server as SIGTERM
/// does.
pub(crate) fn run(
    settings: Settings,
    writer: writer::Writer,
    rt: &Arc<Runtime>,
    sink: RequestSink,
    halt: &Halt,
    on_listen: impl FnOnce(SocketAddr),
) -> anyhow::Result<(Stop, Tally)> {
    if let Some(dir) = &settings.record {
        // Bodies a `kill -9` caught before their rename: never acknowledged.
        match record::remove_leftovers(dir) {
            Ok(0) => {}
            Ok(n) => sink.warn(&format!(
                "--record: removed {} left by an earlier run in {} (never acknowledged: Stripe retries those events)",
                crate::output::fmt::plural(n as u64, "unfinished recording"),
                dir.display()
            )),
            Err(e) => sink.warn(&format!("--record: {e:#}")),
        }
    }
    let (jobs, queue) = mpsc::channel::<writer::Job>();
    let listener = rt
        .handle()
        .block_on(tokio::net::TcpListener::bind(settings.listen))
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    // SIGTERM is hooked before `listening on` is printed: a supervisor that
    // signals as soon as it reads that line stops the server (summary, exit
    // status) rather than killing it. Hooking needs the runtime's context.
    let term = {
        let _inside = rt.handle().enter();
        hook_term()
    };
    on_listen(addr);

    let rejected = settings
        .record
        .as_deref()
        .map(|dir| Arc::new(Mutex::new(record::Rejected::new(dir))));
    let state = Arc::new(State {
        settings,
        jobs: Mutex::new(Some(jobs)),
        sink,
        tally: Mutex::new(Tally::default()),
        seq: AtomicU64::new(0),
        arrivals: Arrivals::new(),
        rejected,
    });
    // Not a scoped thread: after a second signal the process ends without
    // waiting for it (it may be waiting for another process's write lock;
    // what it has not committed was not acknowledged).
    let (wrote, writer_done) = tokio::sync::oneshot::channel::<()>();
    let writer_rt = Arc::clone(rt);
    let writer_thread = std::thread::Builder::new()
        .name("serve-writer".into())
        .spawn(move || {
            writer.run(queue, &writer_rt);
            let _ = wrote.send(());
        })?;
    let (stop, ending) = rt.handle().block_on(serve_until_stopped(
        listener,
        state.clone(),
        term,
        rt.interrupt(),
        halt.asked(),
        writer_done,
    ));
    match ending {
        Ending::Finished => {
            let _ = writer_thread.join();
        }
        Ending::Abandoned => state.sink.warn(
            "stopped without waiting (second signal): requests still in flight got no answer, \
             so Stripe retries them; the store is consistent",
        ),
    }
    let tally = match Arc::try_unwrap(state) {
        Ok(s) => s.tally.into_inner().unwrap_or_default(),
        Err(s) => std::mem::take(&mut *s.tally.lock().unwrap_or_else(|p| p.into_inner())),
    };
    Ok((stop, tally))
}

/// How the wait for the work in flight ended.
enum Ending {
    /// Every request in flight was answered and the writer closed the store.
    Finished,
    /// A second signal: the process ends without them.
    Abandoned,
}

/// SIGTERM and Ctrl-C: the first stops the server, a second stops the wait.
/// A [`Halt`] stops the server as SIGTERM does.
struct Signals<I, H> {
    term: Term,
    /// The runtime's Ctrl-C (the first one).
    interrupt: std::pin::Pin<Box<I>>,
    halt: std::pin::Pin<Box<H>>,
}

#[cfg(unix)]
type Term = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Term = ();

#[cfg(unix)]
fn hook_term() -> Term {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

#[cfg(not(unix))]
fn hook_term() -> Term {}

/// The next SIGTERM (never, where it could not be hooked).
#[cfg(unix)]
async fn terminated(term: &mut Term) {
    match term {
        Some(t) => {
            t.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

#[cfg(not(unix))]
async fn terminated(_: &mut Term) {
    std::future::pending::<()>().await
}

impl<I: std::future::Future<Output = ()>, H: std::future::Future<Output = ()>> Signals<I, H> {
    fn new(term: Term, interrupt: I, halt: H) -> Signals<I, H> {
        Signals {
            term,
            interrupt: Box::pin(interrupt),
            halt: Box::pin(halt),
        }
    }

    /// The first signal (or a halt). Cancel-safe: a select may drop it and
    /// call again.
    async fn first(&mut self) -> Stop {
        tokio::select! {
            () = terminated(&mut self.term) => Stop::Terminated,
            () = self.interrupt.as_mut() => Stop::Interrupted,
            () = self.halt.as_mut() => Stop::Terminated,
        }
    }

    /// Another SIGTERM or Ctrl-C after the first.
    async fn second(&mut self) {
        // A listener made now: the Ctrl-C that stopped the server does not count.
        let ctrl_c = async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
            crate::output::ctrl_c_pressed();
        };
        tokio::select! {
            () = terminated(&mut self.term) => {}
            () = ctrl_c => {}
        }
    }
}

/// Serve until the first signal, then wait for the work in flight (the
/// requests, then the writer's queue) unless a second signal comes.
async fn serve_until_stopped<
    I: std::future::Future<Output = ()>,
    H: std::future::Future<Output = ()>,
>(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    term: Term,
    interrupt: I,
    halt: H,
    writer_done: tokio::sync::oneshot::Receiver<()>,
) -> (Stop, Ending) {
    let mut signals = Signals::new(term, interrupt, halt);
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let stop = accept_loop(&listener, &state, &mut signals, &closing, &mut connections).await;
    drop(listener);
    let _ = closing.send(true);
    let finish = async {
        // In-flight requests finish (each is answered after its commit).
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        // The store's reader closes first: the writer's close is the last.
        if let Some(live) = &state.settings.live {
            live.close();
        }
        // The writer finishes what is queued, then ends with the queue.
        drop(state.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        let _ = writer_done.await;
    };
    tokio::pin!(finish);
    let said = tokio::time::sleep(Duration::from_secs(1));
    tokio::pin!(said);
    loop {
        tokio::select! {
            () = &mut finish => return (stop, Ending::Finished),
            () = signals.second() => return (Stop::Interrupted, Ending::Abandoned),
            () = &mut said, if !said.is_elapsed() => state.sink.warn(
                "stopping: waiting for the requests in flight \
                 (a second Ctrl-C or SIGTERM stops without them)",
            ),
        }
    }
}

/// Failed accepts wait this long before the next try, doubling to
/// [`ACCEPT_BACKOFF_MAX`]: out of file descriptors, `accept` fails at once
/// for as long as it lasts, and retrying at once would spin.
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);

/// Since when, and how often, accepting has failed.
struct AcceptFailing {
    since: Instant,
    times: u64,
}

/// Accept connections, at most `--max-connections` at once, until the first signal.
async fn accept_loop<I: std::future::Future<Output = ()>, H: std::future::Future<Output = ()>>(
    listener: &tokio::net::TcpListener,
    state: &Arc<State>,
    signals: &mut Signals<I, H>,
    closing: &tokio::sync::watch::Sender<bool>,
    connections: &mut tokio::task::JoinSet<()>,
) -> Stop {
    // A slot is taken before `accept`, so connections beyond the cap wait in
    // the kernel's listen queue instead of taking file descriptors here.
    let slots = Arc::new(tokio::sync::Semaphore::new(
        state.settings.max_connections.max(1),
    ));
    let mut backoff = ACCEPT_BACKOFF_MIN;
    let mut failing: Option<AcceptFailing> = None;
    loop {
        let slot = tokio::select! {
            stop = signals.first() => return stop,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        // The semaphore is never closed.
        let Ok(slot) = slot else {
            continue;
        };
        let accepted = tokio::select! {
            stop = signals.first() => return stop,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            // One client gave up before it was accepted: nothing to wait for.
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                drop(slot);
                match failing.as_mut() {
                    Some(f) => f.times += 1,
                    None => {
                        state
                            .sink
                            .warn(&accept_failure(&e, state.settings.max_connections));
                        failing = Some(AcceptFailing {
                            since: Instant::now(),
                            times: 1,
                        });
                    }
                }
                tokio::select! {
                    stop = signals.first() => return stop,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(ACCEPT_BACKOFF_MAX);
                continue;
            }
        };
        if let Some(f) = failing.take() {
            state.sink.warn(&format!(
                "accepting connections again (accept failed {} over {:.1} s)",
                crate::output::fmt::plural(f.times, "time"),
                f.since.elapsed().as_secs_f64()
            ));
        }
        backoff = ACCEPT_BACKOFF_MIN;
        let state = state.clone();
        let mut closing = closing.subscribe();
        connections.spawn(async move {
            let _slot = slot;
            let timeout = state.settings.read_timeout;
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { handle(req, state).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(timeout)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = async { let _ = closing.wait_for(|c| *c).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
        // Reap finished connections so the set stays small.
        while connections.try_join_next().is_some() {}
    }
}

/// An accept error about one connection (the client left first), not about
/// the server.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// The warning, said once, when accepting starts failing.
fn accept_failure(e: &std::io::Error, max_connections: usize) -> String {
    // EMFILE (24) and ENFILE (23): the process's or the system's open files.
    let hint = match e.raw_os_error() {
        Some(23 | 24) => format!(
            ": out of file descriptors; lower --max-connections (now {max_connections}) \
             or raise the open-file limit (ulimit -n)"
        ),
        _ => String::new(),
    };
    format!(
        "cannot accept connections: {e}{hint}; new connections wait in the listen queue, \
         retrying every second at most"
    )
}

/// A closed connection: hyper drops it without an answer.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Closed(String);

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Closed> {
    let started = Instant::now();
    let path = req.uri().path().to_owned();
    let answer = match (req.method(), path.as_str()) {
        // HEAD is GET without the body (hyper sends none to a HEAD).
        (&Method::GET | &Method::HEAD, "/healthz") => Answer::text(StatusCode::OK, "ok"),
        (&Method::POST, p) if p == state.settings.path => {
            let deadline = tokio::time::Instant::from_std(started) + state.settings.answer_bound;
            webhook(req, &state, deadline).await?
        }
        (_, p) if p == state.settings.path => {
            let mut a = Answer::text(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
            a.note = Some(format!("{} is not allowed: POST only", req.method()));
            a
        }
        _ => {
            let mut a = Answer::text(StatusCode::NOT_FOUND, "Not Found");
            a.note = Some(format!(
                "no route {path} (the webhook is at {})",
                state.settings.path
            ));
            a
        }
    };
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    report(&state, &answer, &path, ms);
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = answer.status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(answer.content_type),
    );
    if answer.status == StatusCode::METHOD_NOT_ALLOWED {
        response.headers_mut().insert(
            hyper::header::ALLOW,
            hyper::header::HeaderValue::from_static("POST"),
        );
    }
    if answer.status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        // The content codings that would have been accepted (RFC 9110 §15.5.16).
        response.headers_mut().insert(
            hyper::header::ACCEPT_ENCODING,
            hyper::header::HeaderValue::from_static("identity"),
        );
    }
    Ok(response)
}

/// The log line, the NDJSON line and the tally of one answered request.
fn report(state: &State, a: &Answer, path: &str, ms: u64) {
    let status = a.status.as_u16();
    {
        let mut t = state.tally.lock().unwrap_or_else(|p| p.into_inner());
        t.requests += 1;
        *t.by_status.entry(status).or_default() += 1;
        if let Some(d) = &a.decision {
            *t.by_route.entry(d.route.as_str().to_owned()).or_default() += 1;
        }
    }
    let esc = |s: &Option<String>| {
        s.as_deref()
            .map(|v| crate::output::escape_text(v).into_owned())
            .unwrap_or_else(|| "-".into())
    };
    let line = match &a.decision {
        Some(d) => format!(
            "{} {} {} {} {ms} ms",
            esc(&d.event_id),
            esc(&d.kind),
            d.route.as_str(),
            esc(&d.user_id)
        ),
        None => format!(
            "{path} {}{ms} ms",
            a.note
                .as_deref()
                .map(|n| format!("{} ", crate::output::escape_text(n)))
                .unwrap_or_default()
        ),
    };
    state.sink.log(status, &line);
    let decision = match &a.decision {
        Some(d) => DecisionOrNone::Some(d),
        None => DecisionOrNone::None {
            event_id: None,
            kind: None,
            created: None,
            route: None,
            user_id: None,
            customer_id: None,
            resolved_via: None,
            reason: a.note.as_deref(),
            source: None,
        },
    };
    state.sink.ndjson(&RequestRecord {
        http_status: status,
        ms,
        decision,
    });
}

/// `POST PATH`: the seed app's endpoint, with the sync committed before 200,
/// answered by `deadline`.
async fn webhook(
    req: Request<Incoming>,
    state: &State,
    deadline: tokio::time::Instant,
) -> Result<Answer, Closed> {
    let s = &state.settings;
    if s.verifier.secrets().is_empty() {
        let mut a = Answer::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Webhook secret not configured.",
        );
        a.note = Some("no webhook secret configured (pass --secret)".into());
        return Ok(a);
    }
    if let Some(refused) = unsupported_coding(req.headers()) {
        return Ok(refused);
    }
    let header = req
        .headers()
        .get("stripe-signature")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match read_body(req, s).await? {
        Ok(body) => body,
        Err(answer) => return Ok(answer),
    };
    let n = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    let event = match verified_event(state, n, body.clone(), header.as_deref().unwrap_or("")).await
    {
        Ok(event) => event,
        Err(answer) => return Ok(answer),
    };
    let arrival = state.arrivals.next();
    if let Some(dir) = &s.record
        && let Err(e) = record::accepted(dir, event.created, arrival, &event.id, &body)
    {
        // Nothing is acknowledged that was not kept as asked.
        let mut a = Answer::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Webhook Error: could not record the request",
        );
        a.note = Some(format!("--record: {e:#}"));
        return Ok(a);
    }
    // With `--live`, what the sync needs from the API is fetched here, not
    // in the writer; the customers' turns are kept until the job is queued.
    let (fetched, turns) = match &s.live {
        None => (Default::default(), None),
        Some(live) => match live.fetch(&event, deadline, s.answer_bound).await {
            Ok((fetched, turns)) => (fetched, Some(turns)),
            Err(fetch::NotFetched::Stopping) => {
                return Err(Closed("the server is stopping".into()));
            }
            Err(fetch::NotFetched::Failed(why)) => {
                return Ok(Answer::error(StatusCode::INTERNAL_SERVER_ERROR, why));
            }
        },
    };
    let job = |answer| writer::Job {
        source: crate::event::Source {
            file: Arc::from(format!("request #{n}")),
            pos: crate::event::Pos::Whole,
        },
        event,
        arrival,
        answer,
        fetched,
    };
    committed(state, job, turns, deadline).await
}

/// The body, within `--max-body` and the read timeout: the bytes, or the
/// answer that refuses them (an error closes the connection).
async fn read_body(req: Request<Incoming>, s: &Settings) -> Result<Result<Bytes, Answer>, Closed> {
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body as u64) {
        return Ok(Err(too_large(s.max_body)));
    }
    match tokio::time::timeout(
        s.read_timeout,
        Limited::new(req.into_body(), s.max_body).collect(),
    )
    .await
    {
        Err(_) => Err(Closed("the body did not arrive in time".into())),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Ok(Err(too_large(s.max_body)))
        }
        Ok(Err(e)) => Err(Closed(format!("the body could not be read: {e}"))),
        Ok(Ok(collected)) => Ok(Ok(collected.to_bytes())),
    }
}

/// The event a correctly signed body holds, or the 400 that refuses it
/// (a bad signature is kept under `rejected/` with `--record`).
async fn verified_event(
    state: &State,
    n: u64,
    body: Bytes,
    raw_header: &str,
) -> Result<crate::event::Event, Answer> {
    let s = &state.settings;
    // The sub-second clock, as `verify`: nothing passes that stripe-python refuses.
    let now = crate::commands::precise_now();
    let verdict = s
        .verifier
        .verify_at(&body, signature::strip_header_name(raw_header), now);
    if !verdict.valid {
        keep_rejected(state, now.secs, n, body, raw_header).await;
        return Err(refused(&verdict));
    }
    // Signed, but not an event: the SDKs' constructEvent throws too. Kept
    // under `rejected/` as a bad signature is: what was sent, to look at.
    match crate::event::parse_event(&String::from_utf8_lossy(&body)) {
        Ok(event) => Ok(event),
        Err(e) => {
            keep_rejected(state, now.secs, n, body, raw_header).await;
            Err(Answer::error(StatusCode::BAD_REQUEST, e))
        }
    }
}

/// Queue the job for the writer (releasing the customers' turns once it
/// is queued) and answer what the writer says, within the request's bound.
async fn committed(
    state: &State,
    job: impl FnOnce(tokio::sync::oneshot::Sender<Result<Decision, writer::Failure>>) -> writer::Job,
    turns: Option<fetch::Held<'_>>,
    deadline: tokio::time::Instant,
) -> Result<Answer, Closed> {
    let (answer, result) = tokio::sync::oneshot::channel();
    let job = job(answer);
    let sent = match &*state.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(jobs) => jobs.send(job).is_ok(),
        None => false,
    };
    drop(turns);
    if !sent {
        return Err(Closed("the server is stopping".into()));
    }
    match tokio::time::timeout_at(deadline, result).await {
        Ok(result) => Ok(answer_of(result)),
        Err(_) => Ok(Answer::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "not committed within {} (the request's bound: the store is slow or busy); \
                 a retry will be processed (or answered `duplicate` if the commit comes after)",
                crate::output::fmt::elapsed(state.settings.answer_bound)
            ),
        )),
    }
}

/// With `--record`, keep a refused request (a bad signature, a signed body
/// that is not an event) under `rejected/`, within its caps.
async fn keep_rejected(state: &State, now: i64, n: u64, body: Bytes, raw_header: &str) {
    if let Some(rejected) = &state.rejected {
        let rejected = Arc::clone(rejected);
        let header = raw_header.to_owned();
        // Off the connection threads: it writes and syncs files.
        let kept = tokio::task::spawn_blocking(move || {
            rejected
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .keep(now, n, &body, &header)
        })
        .await;
        match kept {
            Ok(Ok(None)) => {}
            Ok(Ok(Some(notice))) => state.sink.warn(&format!("--record: {notice}")),
            Ok(Err(e)) => state.sink.warn(&format!("--record: {e:#}")),
            Err(e) => state.sink.warn(&format!("--record: {e}")),
        }
    }
}

/// The answer to a request whose signature failed.
fn refused(verdict: &signature::Verdict) -> Answer {
    let hints: Vec<&str> = verdict.hints.iter().map(|h| h.code.as_str()).collect();
    let mut a = Answer::text(
        StatusCode::BAD_REQUEST,
        format!("Webhook Error: {}", verdict.reason.as_str()),
    );
    a.note = Some(match hints.is_empty() {
        true => format!("bad signature: {}", verdict.reason.as_str()),
        false => format!(
            "bad signature: {} (hints: {}; `stripe-sync verify` tells more)",
            verdict.reason.as_str(),
            hints.join(", ")
        ),
    });
    a
}

/// What the writer said, as an answer: 200 with the decision once it is
/// committed, 500 when it was not (the event is not logged: Stripe retries).
fn answer_of(
    result: Result<Result<Decision, writer::Failure>, tokio::sync::oneshot::error::RecvError>,
) -> Answer {
    match result {
        Ok(Ok(decision)) => Answer {
            status: StatusCode::OK,
            body: Bytes::from(serde_json::to_vec(&decision).unwrap_or_default()),
            content_type: "application/json",
            note: None,
            decision: Some(decision),
        },
        Ok(Err(failure)) => Answer::error(StatusCode::INTERNAL_SERVER_ERROR, failure),
        Err(_) => {
            let mut a = Answer::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Webhook Error: the server stopped before the event was processed",
            );
            a.note = Some("writer stopped".into());
            a
        }
    }
}

/// Codings the server cannot undo, refused before the body is read (its
/// signature is over the decoded bytes, which this server would never see):
///
/// - a transfer coding other than `chunked` (hyper decodes only that one, and
///   refuses with 400 a request whose last coding is not `chunked`): 501, as
///   RFC 9112 §6.1 says ("A server that receives a request message with a
///   transfer coding it does not understand SHOULD respond with 501 (Not
///   Implemented)");
/// - a content coding other than `identity`: 415 with `Accept-Encoding:
///   identity`, as RFC 9110 §15.5.16 says for an unsupported content coding.
fn unsupported_coding(headers: &hyper::HeaderMap) -> Option<Answer> {
    let other = |name: hyper::header::HeaderName, understood: &str| {
        headers
            .get_all(name)
            .iter()
            .flat_map(|v| v.as_bytes().split(|b| *b == b','))
            .map(|c| {
                let c = c.split(|b| *b == b';').next().unwrap_or_default();
                String::from_utf8_lossy(c).trim().to_ascii_lowercase()
            })
            .find(|c| !c.is_empty() && c != understood)
    };
    if let Some(coding) = other(hyper::header::TRANSFER_ENCODING, "chunked") {
        let mut a = Answer::text(
            StatusCode::NOT_IMPLEMENTED,
            format!("Webhook Error: Transfer-Encoding {coding} is not supported (only chunked)"),
        );
        a.note = Some(format!("Transfer-Encoding {coding} is not supported"));
        return Some(a);
    }
    if let Some(coding) = other(hyper::header::CONTENT_ENCODING, "identity") {
        let mut a = Answer::text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Webhook Error: Content-Encoding {coding} is not supported (send the body as is)"
            ),
        );
        a.note = Some(format!("Content-Encoding {coding} is not supported"));
        return Some(a);
    }
    None
}

fn too_large(max: usize) -> Answer {
    let mut a = Answer::text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Webhook Error: the body is larger than {max} bytes (--max-body)"),
    );
    a.note = Some("body too large".into());
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_answer_bound_and_the_lock_wait_within_it() {
        assert_eq!(answer_bound(None), Duration::from_secs(15));
        assert_eq!(lock_wait(ANSWER_BOUND), Duration::from_secs(10));
        assert_eq!(answer_bound(Some(" 3000 ")), Duration::from_secs(3));
        assert_eq!(lock_wait(Duration::from_secs(3)), Duration::from_secs(2));
        for ignored in ["", "abc", "-5", "99", "60001"] {
            assert_eq!(answer_bound(Some(ignored)), ANSWER_BOUND, "{ignored:?}");
        }
    }
}
