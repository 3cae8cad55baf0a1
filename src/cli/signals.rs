//! The one shutdown source: Ctrl-C and SIGTERM on Unix; Ctrl-C, Ctrl-Break and the
//! console window closing on Windows. The first interrupt asks the command to stop (it
//! finishes what is in flight); a second one exits at once, which is safe because every
//! send is on the ledger before it leaves.

use std::future::Future;

use crate::error::EXIT_ABORTED;

/// Resolves at the first interrupt. A second interrupt ends the process. Needs a Tokio
/// runtime; if no interrupt can be listened for, it never resolves.
pub fn interrupted() -> impl Future<Output = ()> + Send + 'static {
    let (first, wait) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if !next_signal().await {
            return;
        }
        let _ = first.send(());
        if next_signal().await {
            super::output::error(
                "interrupted twice: exiting now; `--resume` settles what was in flight",
            );
            std::process::exit(EXIT_ABORTED.into());
        }
    });
    async move {
        if wait.await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(unix)]
async fn next_signal() -> bool {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.is_ok(),
        r = term.recv() => r.is_some(),
    }
}

/// Ctrl-C, Ctrl-Break, or the console window being closed: each asks the run to stop
/// as Ctrl-C does on Unix.
#[cfg(windows)]
async fn next_signal() -> bool {
    use tokio::signal::windows::{ctrl_break, ctrl_c, ctrl_close};
    let (Ok(mut c), Ok(mut b), Ok(mut x)) = (ctrl_c(), ctrl_break(), ctrl_close()) else {
        return tokio::signal::ctrl_c().await.is_ok();
    };
    tokio::select! {
        r = c.recv() => r.is_some(),
        r = b.recv() => r.is_some(),
        r = x.recv() => r.is_some(),
    }
}

#[cfg(not(any(unix, windows)))]
async fn next_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}
