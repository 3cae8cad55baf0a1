//! `intune-reset simulate`: bind, announce the address on stdout, serve until Ctrl-C or
//! SIGTERM, then print the summary on stderr. The first stdout line,
//! `listening on http://127.0.0.1:PORT`, is the contract scripts and tests read to
//! find the port when they asked for port 0.

use std::io::Write;
use std::net::SocketAddr;

use super::{SimConfig, SimError, SimStats, Simulator};

/// Serves `config` on `bind` until interrupted; returns the final counts.
pub fn serve_until_interrupted(config: SimConfig, bind: SocketAddr) -> Result<SimStats, SimError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(SimError::Listen)?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(SimError::Listen)?;
        let devices = config.inventory.len();
        let tenant = config.tenant_id.clone();
        let more: Vec<(String, String, usize)> = config
            .more_tenants
            .iter()
            .map(|t| (t.id.clone(), t.domain.clone(), t.inventory.len()))
            .collect();
        let handle = Simulator::start(config, listener)?;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {}", handle.base_url());
        let _ = out.flush();
        drop(out);
        tracing::info!(
            "simulating tenant {tenant} with {devices} devices; token URL {}/{tenant}/oauth2/v2.0/token; Ctrl-C stops",
            handle.base_url()
        );
        for (id, domain, devices) in more {
            tracing::info!(
                "also simulating tenant {id} ({domain}) with {devices} devices; token URL {}/{id}/oauth2/v2.0/token",
                handle.base_url()
            );
        }
        interrupted().await;
        Ok(handle.shutdown().await)
    })
}

#[cfg(unix)]
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn interrupted() {
    let _ = tokio::signal::ctrl_c().await;
}
