//! `serve`: the app's webhook endpoint as a local service. Each request is
//! verified as `verify` does, routed and synced as `replay` does (the same
//! engine, through one writer thread that commits concurrent requests
//! together), and answered only after the commit:
//!
//! - no secret configured: 500 `Webhook secret not configured.` (the seed app's answer);
//! - a bad signature: 400 `Webhook Error: <reason>`;
//! - a valid event: 200 with its decision, once committed (duplicates,
//!   rejected, unresolved and ignored events too);
//! - a failed sync or store write: 500, the event not logged, so Stripe's
//!   retry is processed.
//!
//! `--record DIR` keeps the exact bytes of every request before answering.

mod record;
pub(crate) mod writer;

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
use crate::secret::Secret;
use crate::signature;

/// How the server was asked to run.
pub(crate) struct Settings {
    pub listen: SocketAddr,
    pub path: String,
    pub secrets: Vec<Secret>,
    pub tolerance: u64,
    pub record: Option<PathBuf>,
    pub max_body: usize,
    pub read_timeout: Duration,
}

/// Why the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGTERM: a normal stop (status 0).
    Terminated,
    /// Ctrl-C (status 130).
    Interrupted,
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
/// accepting, let the requests in flight finish, and return the tally.
pub(crate) fn run(
    settings: Settings,
    writer: writer::Writer,
    rt: &Runtime,
    sink: RequestSink,
    on_listen: impl FnOnce(SocketAddr),
) -> anyhow::Result<(Stop, Tally)> {
    let (jobs, queue) = mpsc::channel::<writer::Job>();
    let listener = rt
        .handle()
        .block_on(tokio::net::TcpListener::bind(settings.listen))
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.listen))?;
    let addr = listener.local_addr()?;
    on_listen(addr);

    let state = Arc::new(State {
        settings,
        jobs: Mutex::new(Some(jobs)),
        sink,
        tally: Mutex::new(Tally::default()),
        seq: AtomicU64::new(0),
        arrivals: Arrivals::new(),
    });
    let stop = std::thread::scope(|scope| -> anyhow::Result<Stop> {
        scope.spawn(|| writer.run(queue, rt));
        let stop = rt
            .handle()
            .block_on(accept_loop(listener, state.clone(), rt.interrupt()));
        // The writer finishes what is queued, then ends with the queue.
        drop(state.jobs.lock().unwrap_or_else(|p| p.into_inner()).take());
        Ok(stop)
    })?;
    let tally = match Arc::try_unwrap(state) {
        Ok(s) => s.tally.into_inner().unwrap_or_default(),
        Err(s) => std::mem::take(&mut *s.tally.lock().unwrap_or_else(|p| p.into_inner())),
    };
    Ok((stop, tally))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    interrupt: impl std::future::Future<Output = ()>,
) -> Stop {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let terminated = async {
        #[cfg(unix)]
        if let Some(t) = term.as_mut() {
            t.recv().await;
            return;
        }
        std::future::pending::<()>().await
    };
    tokio::pin!(terminated, interrupt);
    let (closing, _) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let stop = loop {
        tokio::select! {
            _ = &mut terminated => break Stop::Terminated,
            _ = &mut interrupt => break Stop::Interrupted,
            accepted = listener.accept() => {
                let Ok((stream, _peer)) = accepted else { continue };
                let state = state.clone();
                let mut closing = closing.subscribe();
                connections.spawn(async move {
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
    };
    drop(listener);
    let _ = closing.send(true);
    // In-flight requests finish (each is answered after its commit).
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    stop
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
        (&Method::GET, "/healthz") => Answer::text(StatusCode::OK, "ok"),
        (&Method::POST, p) if p == state.settings.path => webhook(req, &state).await?,
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

/// `POST PATH`: the seed app's endpoint, with the sync committed before 200.
async fn webhook(req: Request<Incoming>, state: &State) -> Result<Answer, Closed> {
    let s = &state.settings;
    if s.secrets.is_empty() {
        let mut a = Answer::text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Webhook secret not configured.",
        );
        a.note = Some("no webhook secret configured (pass --secret)".into());
        return Ok(a);
    }
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > s.max_body as u64) {
        return Ok(too_large(s.max_body));
    }
    let header = req
        .headers()
        .get("stripe-signature")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let body = match tokio::time::timeout(
        s.read_timeout,
        Limited::new(req.into_body(), s.max_body).collect(),
    )
    .await
    {
        Err(_) => return Err(Closed("the body did not arrive in time".into())),
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Ok(too_large(s.max_body));
        }
        Ok(Err(e)) => return Err(Closed(format!("the body could not be read: {e}"))),
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let n = state.seq.fetch_add(1, Ordering::Relaxed) + 1;
    // The sub-second clock, as `verify`: nothing passes that stripe-python refuses.
    let now = crate::commands::precise_now();
    let raw_header = header.as_deref().unwrap_or("");
    let verdict = signature::verify_at(
        &body,
        signature::strip_header_name(raw_header),
        &s.secrets,
        s.tolerance,
        now,
    );
    if !verdict.valid {
        return Ok(refused(state, &verdict, now.secs, n, &body, raw_header));
    }
    let text = String::from_utf8_lossy(&body);
    let event = match crate::event::parse_event(&text) {
        Ok(ev) => ev,
        Err(e) => {
            // Signed, but not an event: the SDKs' constructEvent throws too.
            let mut a = Answer::text(StatusCode::BAD_REQUEST, format!("Webhook Error: {e}"));
            a.note = Some(e);
            return Ok(a);
        }
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
    let (answer, result) = tokio::sync::oneshot::channel();
    let job = writer::Job {
        source: crate::event::Source {
            file: Arc::from(format!("request #{n}")),
            pos: crate::event::Pos::Whole,
        },
        event,
        arrival,
        answer,
    };
    let sent = match &*state.jobs.lock().unwrap_or_else(|p| p.into_inner()) {
        Some(jobs) => jobs.send(job).is_ok(),
        None => false,
    };
    if !sent {
        return Err(Closed("the server is stopping".into()));
    }
    Ok(answer_of(result.await))
}

/// The answer to a request whose signature failed (recorded with `--record`).
fn refused(
    state: &State,
    verdict: &signature::Verdict,
    now: i64,
    n: u64,
    body: &[u8],
    raw_header: &str,
) -> Answer {
    if let Some(dir) = &state.settings.record
        && let Err(e) = record::rejected(dir, now, n, body, raw_header)
    {
        state.sink.warn(&format!("--record: {e:#}"));
    }
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
        Ok(Err(failure)) => {
            let mut a = Answer::text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("Webhook Error: {failure}"),
            );
            a.note = Some(failure);
            a
        }
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

fn too_large(max: usize) -> Answer {
    let mut a = Answer::text(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Webhook Error: the body is larger than {max} bytes (--max-body)"),
    );
    a.note = Some("body too large".into());
    a
}
