//! One tokio runtime and one Ctrl-C handler, set up in one place for every
//! command that works on the store or the API. Engines check
//! [`Runtime::check`] between units of work (a page, a batch of customers,
//! an event) and wait on the network through [`Runtime::block_on`], so
//! Ctrl-C stops them at a consistent point and the run exits 130.

use std::future::Future;

use crate::Fatal;

pub(crate) struct Runtime {
    rt: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Receiver<bool>,
}

impl Runtime {
    pub(crate) fn new() -> anyhow::Result<Runtime> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let (tx, stop) = tokio::sync::watch::channel(false);
        // The handler is in place before this returns: `ctrl_c()` would
        // only install it when its task is first polled, and a Ctrl-C
        // before that (a busy machine, right after `serve` says it is
        // listening) killed the process instead of stopping it.
        #[cfg(unix)]
        let interrupted = {
            let _context = rt.enter();
            let mut interrupt =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
            async move { interrupt.recv().await.is_some() }
        };
        #[cfg(not(unix))]
        let interrupted = async { tokio::signal::ctrl_c().await.is_ok() };
        rt.spawn(async move {
            if interrupted.await {
                crate::output::ctrl_c_pressed();
                let _ = tx.send(true);
            }
        });
        Ok(Runtime { rt, stop })
    }

    /// Whether Ctrl-C was pressed.
    pub(crate) fn interrupted(&self) -> bool {
        *self.stop.borrow()
    }

    /// `Err(Interrupted)` once Ctrl-C was pressed.
    pub(crate) fn check(&self) -> Result<(), Fatal> {
        match self.interrupted() {
            true => Err(Fatal::Interrupted),
            false => Ok(()),
        }
    }

    /// Run a future to completion, or stop at Ctrl-C.
    pub(crate) fn block_on<F: Future>(&self, f: F) -> Result<F::Output, Fatal> {
        self.check()?;
        let mut stop = self.stop.clone();
        self.rt.block_on(async move {
            tokio::select! {
                biased;
                _ = async {
                    // No handler (the signal could not be hooked): never fires.
                    if stop.wait_for(|v| *v).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                } => Err(Fatal::Interrupted),
                out = f => Ok(out),
            }
        })
    }

    /// A future that completes at Ctrl-C (never, if the signal could not be hooked).
    pub(crate) fn interrupt(&self) -> impl Future<Output = ()> + use<> {
        let mut stop = self.stop.clone();
        async move {
            if stop.wait_for(|v| *v).await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }

    pub(crate) fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }
}
