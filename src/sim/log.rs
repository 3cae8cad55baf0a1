//! The JSON Lines request log (`--log PATH`): one line a request with time, method,
//! path, status, device, client-request-id, Retry-After, the fault injected and
//! `effect` (true when the request queued an action, even one whose answer was then
//! dropped, so real resets, locks and rotations per device are counted from it with
//! `kind`), so a rehearsal can be
//! replayed and a runner's behaviour checked line by line. Tokens and
//! secrets never reach it: the path and query are logged, never headers or bodies.
//!
//! Lines go through a channel to one writer task, which flushes whenever the channel
//! runs dry; a request's answer leaves only once its line is written
//! ([`RequestLog::written`]), so whoever got the answer finds the line in the file (a
//! test reading the log right after its client exited, on a loaded machine, found it
//! missing before).

use std::path::Path;
use std::sync::Mutex;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::SimError;

pub struct RequestLog {
    /// `None` once the log is closed.
    lines: Mutex<Option<mpsc::UnboundedSender<(u64, String)>>>,
    /// Lines handed to the writer, numbered from 1.
    sent: std::sync::atomic::AtomicU64,
    /// The number of the last line the writer has written out.
    flushed: tokio::sync::watch::Receiver<u64>,
    /// The task writing the file, awaited on close.
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl RequestLog {
    /// Creates (or truncates) the log file and starts its writer; needs a Tokio runtime.
    pub fn open(path: &Path) -> Result<RequestLog, SimError> {
        let file = std::fs::File::create(path).map_err(|source| SimError::Log {
            path: path.to_owned(),
            source,
        })?;
        let (tx, mut rx) = mpsc::unbounded_channel::<(u64, String)>();
        let (flushed_tx, flushed) = tokio::sync::watch::channel(0u64);
        let writer = tokio::spawn(async move {
            let mut out = tokio::io::BufWriter::new(tokio::fs::File::from_std(file));
            while let Some((n, line)) = rx.recv().await {
                if out.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
                if rx.is_empty() {
                    if out.flush().await.is_err() {
                        break;
                    }
                    flushed_tx.send_replace(n);
                }
            }
            let _ = out.flush().await;
        });
        Ok(RequestLog {
            sent: std::sync::atomic::AtomicU64::new(0),
            flushed,
            lines: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    pub fn write(&self, record: &serde_json::Value) {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = lines.as_ref() {
            // Numbered under the lock: the writer gets the lines in their numbers' order.
            let n = self.sent.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            let _ = tx.send((n, format!("{record}\n")));
        }
    }

    /// Waits until every line written so far is in the file (or the writer stopped).
    pub async fn written(&self) {
        let wanted = self.sent.load(std::sync::atomic::Ordering::SeqCst);
        let mut flushed = self.flushed.clone();
        let _ = flushed.wait_for(|n| *n >= wanted).await;
    }

    /// Stops taking lines and waits until every line is on disk.
    pub async fn close(&self) {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).take();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = writer.await;
        }
    }
}

impl std::fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestLog")
    }
}
