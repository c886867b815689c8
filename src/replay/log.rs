//! The store's event log, written last: an event is marked processed only
//! once its customer is committed, so a crash means rework, never a lost event.
//!
//! It is written on a thread of its own while the decisions stream out on
//! the caller's (see [`alongside`]): the two are the last serial stretch of
//! a replay into a store, and each takes about half of it.

use std::borrow::Cow;
use std::collections::HashSet;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use serde::Deserialize;

use super::decision::Decision;
use crate::routing::Route;
use crate::store::{EventLogger, LoggedEvent};
use crate::sync::SyncError;

/// The fields of a spooled decision the event log needs, borrowed from the
/// line: cheaper than a whole `Decision` when the line is printed as is.
#[derive(Deserialize)]
pub(crate) struct LogView<'a> {
    #[serde(borrow)]
    event_id: Option<Cow<'a, str>>,
    #[serde(borrow, rename = "type")]
    kind: Option<Cow<'a, str>>,
    created: Option<i64>,
    route: Route,
    #[serde(borrow)]
    user_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    customer_id: Option<Cow<'a, str>>,
}

impl LogView<'_> {
    /// The same fields, owned, to cross to the log's thread.
    fn into_owned(self) -> LogView<'static> {
        let own = |c: Option<Cow<'_, str>>| c.map(|c| Cow::Owned(c.into_owned()));
        LogView {
            event_id: own(self.event_id),
            kind: own(self.kind),
            created: self.created,
            route: self.route,
            user_id: own(self.user_id),
            customer_id: own(self.customer_id),
        }
    }
}

impl<'a> From<&'a Decision> for LogView<'a> {
    fn from(d: &'a Decision) -> LogView<'a> {
        LogView {
            event_id: d.event_id.as_deref().map(Cow::Borrowed),
            kind: d.kind.as_deref().map(Cow::Borrowed),
            created: d.created,
            route: d.route,
            user_id: d.user_id.as_deref().map(Cow::Borrowed),
            customer_id: d.customer_id.as_deref().map(Cow::Borrowed),
        }
    }
}

/// Which decisions the store's event log keeps, written as they stream
/// out, in one transaction (see [`crate::store::Store::logging`]).
pub(crate) struct EventLog<'a, 'l> {
    pub logger: &'a mut EventLogger<'l>,
    /// Customers whose sync failed: their events come again next time.
    pub failed: &'a HashSet<String>,
}

impl EventLog<'_, '_> {
    pub(crate) fn record(&mut self, d: &LogView<'_>) -> anyhow::Result<()> {
        let route = match d.route {
            Route::Sync => "sync",
            Route::Ignored => "ignored",
            // Rejected and unresolved events may succeed on a later run; the
            // rest are not events, or were logged already.
            _ => return Ok(()),
        };
        if d.route == Route::Sync
            && d.customer_id
                .as_deref()
                .is_some_and(|c| self.failed.contains(c))
        {
            return Ok(());
        }
        let (Some(id), Some(kind), Some(created)) = (&d.event_id, &d.kind, d.created) else {
            return Ok(());
        };
        self.logger.log(&LoggedEvent {
            id,
            kind,
            created,
            route,
            user_id: d.user_id.as_deref(),
            customer_id: d.customer_id.as_deref(),
        })
    }
}

/// Decisions sent to the log's thread at a time.
const BATCH: usize = 1024;

enum Batch {
    Rows(Vec<LogView<'static>>),
    /// Every decision was sent: the log may commit.
    Done,
}

/// The decisions' way to the log's thread (see [`alongside`]).
pub(crate) struct LogSender {
    tx: SyncSender<Batch>,
    rows: Vec<LogView<'static>>,
    /// The log's thread stopped (a store error, which it reports).
    stopped: bool,
}

/// Where the streamed decisions go to be logged: straight into the log, or
/// to the log's thread.
pub(crate) trait LogSink {
    /// Log `view` if it is an event the log keeps (see [`EventLog::record`]).
    fn send(&mut self, view: LogView<'_>) -> Result<(), SyncError>;
}

impl LogSink for EventLog<'_, '_> {
    fn send(&mut self, view: LogView<'_>) -> Result<(), SyncError> {
        self.record(&view).map_err(SyncError::Store)
    }
}

impl LogSink for LogSender {
    fn send(&mut self, view: LogView<'_>) -> Result<(), SyncError> {
        self.rows.push(view.into_owned());
        if self.rows.len() >= BATCH {
            self.flush()?;
        }
        Ok(())
    }
}

impl LogSender {
    fn flush(&mut self) -> Result<(), SyncError> {
        let rows = std::mem::replace(&mut self.rows, Vec::with_capacity(BATCH));
        self.put(Batch::Rows(rows))
    }

    fn put(&mut self, batch: Batch) -> Result<(), SyncError> {
        self.tx.send(batch).map_err(|_| {
            self.stopped = true;
            SyncError::Store(anyhow::anyhow!("the event log stopped"))
        })
    }
}

/// Run `pour` with the event log written on another thread into `store`, in
/// one transaction that commits only once `pour` has sent every decision
/// and returned `Ok`: a run's log lands whole or not at all, as before.
/// Events of the `failed` customers are not logged.
pub(crate) fn alongside<T>(
    syncer: &mut crate::sync::Syncer,
    failed: &HashSet<String>,
    pour: impl FnOnce(&mut LogSender) -> Result<T, SyncError>,
) -> Result<T, SyncError> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel(4);
        let writer = scope.spawn(move || syncer.logging(|logger| write(logger, failed, rx)));
        let mut sender = LogSender {
            tx,
            rows: Vec::with_capacity(BATCH),
            stopped: false,
        };
        let poured = pour(&mut sender).and_then(|out| {
            sender.flush()?;
            sender.put(Batch::Done)?;
            Ok(out)
        });
        let stopped = sender.stopped;
        drop(sender);
        let logged = writer
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        match (poured, logged) {
            (Ok(out), Ok(())) => Ok(out),
            // The log's own failure is the cause of the pour's.
            (_, Err(e)) if stopped => Err(SyncError::Store(e)),
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(SyncError::Store(e)),
        }
    })
}

/// The log's thread: every batch, then commit on `Done` (see [`alongside`]).
fn write(
    logger: &mut EventLogger<'_>,
    failed: &HashSet<String>,
    rx: Receiver<Batch>,
) -> anyhow::Result<()> {
    let mut log = EventLog { logger, failed };
    for batch in rx {
        match batch {
            Batch::Rows(rows) => rows.iter().try_for_each(|row| log.record(row))?,
            Batch::Done => return Ok(()),
        }
    }
    anyhow::bail!("the decisions stopped before the end; the event log was not written")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(i: usize) -> LogView<'static> {
        LogView {
            event_id: Some(Cow::Owned(format!("evt_{i}"))),
            kind: Some(Cow::Borrowed("invoice.paid")),
            created: Some(1),
            route: if i.is_multiple_of(2) {
                Route::Sync
            } else {
                Route::Ignored
            },
            user_id: None,
            customer_id: Some(Cow::Borrowed(if i.is_multiple_of(10) {
                "cus_failed"
            } else {
                "cus_ok"
            })),
        }
    }

    fn logged(store: &crate::store::Store) -> i64 {
        store.count_events().unwrap()
    }

    #[test]
    fn the_log_thread_commits_every_sent_event_only_when_the_pour_completes() {
        let dir = tempfile::tempdir().unwrap();
        let open = |name: &str| {
            crate::sync::Syncer::open(&(&dir.path().join(name)).into(), crate::sync::Mode::Write)
                .unwrap()
        };
        let mut store = open("a.db");
        let failed: HashSet<String> = ["cus_failed".to_owned()].into();
        let n = 3 * BATCH + 7;
        let out = alongside(&mut store, &failed, |log| {
            (0..n).try_for_each(|i| log.send(view(i)))?;
            Ok("poured")
        })
        .unwrap();
        assert_eq!(out, "poured");
        // Every event but the synced ones of the failed customer (i % 10 == 0).
        assert_eq!(logged(store.store()), (n - n.div_ceil(10)) as i64);

        // A pour that fails partway leaves the log as it was.
        let mut store = open("b.db");
        let err = alongside(&mut store, &failed, |log| {
            (0..n).try_for_each(|i| log.send(view(i)))?;
            Err::<(), _>(SyncError::Store(anyhow::anyhow!("the spool broke")))
        })
        .unwrap_err();
        assert!(err.to_string().contains("the spool broke"), "{err}");
        assert_eq!(logged(store.store()), 0);
    }
}
