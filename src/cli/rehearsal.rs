//! `--simulate`: which tenant a rehearsal acts in, and where it is kept between its
//! commands, so that the follow-ups a rehearsal prints work as printed (README,
//! "Rehearsing with the simulator").
//!
//! - `run --resume --report R --simulate` goes on in `R.sim.json`;
//! - `run F --simulate`, where F is a report a rehearsal wrote (`F.sim.json` beside it),
//!   goes on in that tenant;
//! - otherwise, with `--simulate-inventory FILE...`, the tenant holds those files'
//!   devices, and each group the job names stands for all of them;
//! - otherwise it holds the devices the job's rows name, and a row naming only a
//!   user, a group or a filter is refused: a rehearsal cannot know who owns what, and
//!   a mistyped UPN would get a device a real tenant does not have;
//! - when the rows (the job's or the inventory's) name tenants (a `tenant` column),
//!   each tenant named is a simulated tenant of its own holding the devices of the
//!   rows naming it (see [`crate::sim::rehearsal::rehearsal_tenants`]), and
//!   [`sign_in_to`] signs in to each.
//!
//! Every rehearsal saves its tenants beside the report it wrote.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::CommandError;
use crate::graph::{self, GraphClient, SignedIn};
use crate::pacing::AbortReason;
use crate::run::{Prepared, RunConfig};
use crate::sim::rehearsal::{path_beside, rehearsal_tenants};
use crate::sim::{SavedTenant, SimConfig, SimHandle, Simulator};

use super::run_cmd::SIMULATED_CLIENT_ID;

/// How often `status --wait --simulate` reads the devices still pending.
const REHEARSAL_POLL: Duration = Duration::from_secs(2);

/// The tenant `run --simulate` acts in (see the module's rules).
pub fn tenant_for_run(
    config: &RunConfig,
    prepared: &Prepared,
    seed: u64,
    inventory: &[PathBuf],
) -> Result<SimConfig, CommandError> {
    let usage = |why: String| CommandError::Usage(format!("{why} (nothing was sent)"));
    if config.resume
        && let Some(report) = &config.report
    {
        return load(&path_beside(report)).map_err(usage);
    }
    if let Some(saved) = config
        .files
        .iter()
        .map(|f| path_beside(f))
        .find(|p| p.is_file())
    {
        tracing::info!(
            "the rehearsal goes on in the tenant saved in {}",
            saved.display()
        );
        return load(&saved).map_err(usage);
    }
    let seeding = |e: crate::sim::InventoryError| usage(format!("cannot seed the simulator: {e}"));
    let (sim, targets) = rehearsal_tenants(
        &prepared.job_copies(),
        inventory,
        seed,
        prepared.read_options(),
    )
    .map_err(seeding)?;
    if inventory.is_empty()
        && let Some(what) = targets
            .users
            .first()
            .map(|u| format!("the user {u}"))
            .or(targets.groups.first().map(|g| format!("the group {g}")))
            .or(targets.filters.first().map(|f| format!("the filter {f}")))
    {
        return Err(usage(format!(
            "a rehearsal cannot know whose devices {what} stands for: pass --simulate-inventory EXPORT, \
             an export of the tenant's devices with their primary users (Intune admin center > Devices > \
             All devices > Export). A user it does not name is then user_not_found, as in the tenant, \
             and each group stands for all of its devices"
        )));
    }
    Ok(sim)
}

fn load(path: &Path) -> Result<SimConfig, String> {
    if !path.is_file() {
        return Err(format!(
            "the rehearsal's tenant {} is not there: a rehearsal's follow-ups need the file `run --simulate` saved beside its report",
            path.display()
        ));
    }
    SavedTenant::load(path)?.config()
}

/// Starts the simulator on loopback (inside the runtime).
pub async fn start(config: SimConfig) -> Result<SimHandle, CommandError> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CommandError::Usage(format!("cannot start the simulator: {e}")))?;
    let sim = Simulator::start(config, listener)
        .map_err(|e| CommandError::Usage(format!("cannot start the simulator: {e}")))?;
    tracing::info!(url = %sim.base_url(), "simulated tenant started; no real tenant is touched");
    Ok(sim)
}

/// Signs in to the rehearsal's simulator as the rehearsal's app, in its first tenant.
pub async fn sign_in(
    sim: &SimHandle,
    timeout: Duration,
) -> Result<(GraphClient, SignedIn), String> {
    sign_in_to(sim, &sim.config().tenant_id, timeout).await
}

/// Signs in as the rehearsal's app to the simulated tenant `tenant` names (its id or
/// its domain, any case) at that tenant's own authority; the `SignedIn`'s tenant is
/// the tenant's id (the token's `tid`). A tenant the simulator does not hold is
/// refused, as Entra refuses an unknown tenant.
pub async fn sign_in_to(
    sim: &SimHandle,
    tenant: &str,
    timeout: Duration,
) -> Result<(GraphClient, SignedIn), String> {
    graph::sign_in_to_simulator(&sim.base_url(), tenant, SIMULATED_CLIENT_ID, timeout).await
}

/// Stops the simulator, then saves its tenant beside each report: the follow-ups
/// printed for them load it. A tenant that cannot be saved is a warning: the
/// rehearsal itself is done.
pub async fn stop_and_keep(sim: SimHandle, reports: &[&Path]) -> crate::sim::SimStats {
    let (stats, saved) = sim.shutdown_saving().await;
    for report in reports {
        let path = path_beside(report);
        match saved.save(&path) {
            Ok(()) => tracing::info!("the rehearsal's tenant is saved in {}", path.display()),
            Err(e) => tracing::warn!("{e}; the follow-ups with --simulate cannot go on in it"),
        }
    }
    stats
}

/// `status REPORT --simulate`: reads the resets of a rehearsal in its saved tenant,
/// then saves the tenant beside the run report and the status report (which `run
/// STATUS_REPORT --simulate` reads as a job).
pub fn status(
    mut config: crate::status::StatusConfig,
    audit: Option<crate::audit::AuditConfig>,
) -> Result<super::run_cmd::Followed, CommandError> {
    // The rehearsal's resets reach their device 5 s after they are sent: reading every
    // 15 s, as for Intune, would only make the rehearsal wait.
    config.poll_interval = config.poll_interval.min(REHEARSAL_POLL);
    let tenant = load(&path_beside(&config.run_report))
        .map_err(|why| CommandError::Usage(format!("{why} (nothing was read)")))?;
    let prepared = crate::status::prepare(&config)?;
    let audited = match audit.as_ref().map(crate::audit::prepare).transpose() {
        Ok(a) => a,
        Err(e) => {
            prepared.abandon();
            return Err(e);
        }
    };
    let named = match prepared.tenants() {
        Ok(named) => named,
        Err(e) => {
            prepared.abandon();
            return Err(e);
        }
    };
    super::run_cmd::runtime()?.block_on(async {
        let sim = start(tenant).await?;
        let followed = if named.is_empty() {
            one_tenant(&sim, &config, prepared, audit, audited).await
        } else {
            // A rehearsal across tenants (issue 22): each row read in its simulated
            // tenant.
            let timeout = config.settings.request_timeout;
            let tenants = super::run_cmd::sign_in_each(&named, &config.settings, |_, name, _| {
                let sim = &sim;
                async move { sign_in_to(sim, &name, timeout).await }
            })
            .await;
            let audited_in = super::run_cmd::audit_tenants(&tenants);
            let stop = Box::pin(super::signals::interrupted());
            match crate::status::execute_tenants(&config, prepared, tenants, stop).await {
                Err(e) => Err(e),
                Ok(mut status) => {
                    status.summary.simulated = true;
                    let audit = audit_after(&status, audit.zip(audited), audited_in).await;
                    Ok(super::run_cmd::Followed { status, audit })
                }
            }
        };
        let followed = followed?;
        let mut reports = vec![config.run_report.as_path()];
        reports.extend(followed.status.summary.report.as_deref());
        stop_and_keep(sim, &reports).await;
        Ok(followed)
    })
}

/// `status --simulate --audit`: the audit of the rehearsal in its tenants, once the
/// status ended in order.
async fn audit_after(
    status: &crate::status::StatusOutcome,
    audit: Option<(crate::audit::AuditConfig, crate::audit::Prepared)>,
    tenants: Result<Vec<crate::audit::AuditTenant<GraphClient>>, String>,
) -> Option<Result<crate::audit::AuditOutcome, CommandError>> {
    let (audit, prepared) = audit.filter(|_| status.aborted.is_none())?;
    let tenants = tenants.ok()?;
    let stop = Box::pin(super::signals::interrupted());
    let mut audited = crate::audit::execute_tenants(&audit, prepared, tenants, stop).await;
    if let Ok(a) = audited.as_mut() {
        a.summary.simulated = true;
    }
    Some(audited)
}

/// `status --simulate` of a rehearsal of one tenant: read in its first tenant.
async fn one_tenant(
    sim: &SimHandle,
    config: &crate::status::StatusConfig,
    prepared: crate::status::Prepared,
    audit: Option<crate::audit::AuditConfig>,
    audited: Option<crate::audit::Prepared>,
) -> Result<super::run_cmd::Followed, CommandError> {
    match sign_in(sim, config.settings.request_timeout).await {
        Ok((client, who)) => {
            tracing::info!("signed in as {}", who.describe());
            let stop = Box::pin(super::signals::interrupted());
            let status =
                crate::status::execute_prepared(config, prepared, client.clone(), stop).await;
            match status {
                Err(e) => Err(e),
                Ok(mut status) => {
                    status.summary.simulated = true;
                    let one = crate::audit::AuditTenant {
                        names: vec![String::new()],
                        graph: client,
                        who,
                    };
                    let audit = audit_after(&status, audit.zip(audited), Ok(vec![one])).await;
                    Ok(super::run_cmd::Followed { status, audit })
                }
            }
        }
        Err(why) => {
            let mut status = prepared.not_signed_in(AbortReason::Authentication(why));
            status.summary.simulated = true;
            Ok(super::run_cmd::Followed {
                status,
                audit: None,
            })
        }
    }
}

/// `audit REPORT --simulate`: reconciles a rehearsal with the audit trail its saved
/// tenant kept, then saves the tenant again beside the run report.
pub fn audit(
    config: crate::audit::AuditConfig,
) -> Result<crate::audit::AuditOutcome, CommandError> {
    let tenant = load(&path_beside(&config.run_report))
        .map_err(|why| CommandError::Usage(format!("{why} (nothing was read)")))?;
    let prepared = crate::audit::prepare(&config)?;
    let named = prepared.tenants().to_vec();
    super::run_cmd::runtime()?.block_on(async {
        let sim = start(tenant).await?;
        let timeout = config.settings.request_timeout;
        // A rehearsal across several tenants: each simulated tenant's records.
        if !named.is_empty() {
            let tenants = super::run_cmd::sign_in_each(&named, &config.settings, |_, name, _| {
                let sim = &sim;
                async move { sign_in_to(sim, &name, timeout).await }
            })
            .await;
            let outcome = match super::run_cmd::audit_tenants(&tenants) {
                Ok(tenants) => {
                    let stop = Box::pin(super::signals::interrupted());
                    crate::audit::execute_tenants(&config, prepared, tenants, stop).await
                }
                Err(why) => Ok(crate::audit::AuditOutcome::not_signed_in(&config, why)),
            };
            stop_and_keep(sim, &[config.run_report.as_path()]).await;
            let mut outcome = outcome?;
            outcome.summary.simulated = true;
            return Ok(outcome);
        }
        let outcome = match sign_in(&sim, timeout).await {
            Ok((client, who)) => {
                tracing::info!("signed in as {}", who.describe());
                let stop = Box::pin(super::signals::interrupted());
                crate::audit::execute_prepared(&config, prepared, client, &who, stop).await
            }
            Err(why) => Ok(crate::audit::AuditOutcome::not_signed_in(&config, why)),
        };
        stop_and_keep(sim, &[config.run_report.as_path()]).await;
        let mut outcome = outcome?;
        outcome.summary.simulated = true;
        Ok(outcome)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Connection, PageRequest};
    use crate::sim::{Latency, SimClock};

    const FABRIKAM: &str = "2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f";
    const TIMEOUT: Duration = Duration::from_secs(10);

    /// A rehearsal of a job naming Contoso by its domain and Fabrikam by its id, on
    /// loopback, without faults or latency.
    async fn two_tenants() -> (SimHandle, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let job = dir.path().join("job.csv");
        std::fs::write(
            &job,
            format!(
                "serialNumber,tenant\nC1,contoso.com\nSHARED1,contoso.com\nF1,{FABRIKAM}\nSHARED1,{FABRIKAM}\n"
            ),
        )
        .expect("written");
        let (mut config, _) = rehearsal_tenants(
            &[(job.clone(), job.display().to_string())],
            &[],
            3,
            &Default::default(),
        )
        .expect("seeded");
        config.faults.clear();
        config.latency = Latency::default();
        config.clock = SimClock::manual();
        for tenant in &mut config.more_tenants {
            tenant.faults.clear();
        }
        let sim = start(config).await.expect("started");
        (sim, dir)
    }

    /// The serial numbers of every device `client` lists.
    async fn listed(client: &GraphClient) -> Vec<String> {
        let page = client
            .list_devices_page(
                PageRequest::All {
                    select: vec!["id".into(), "serialNumber".into()],
                },
                Connection::Pooled,
            )
            .await
            .expect("listed");
        assert!(page.value.next_link.is_none());
        let mut serials: Vec<String> = page
            .value
            .devices
            .into_iter()
            .filter_map(|d| d.serial_number)
            .collect();
        serials.sort();
        serials
    }

    #[tokio::test]
    async fn sign_in_to_a_tenant_by_domain_or_id_sees_only_that_tenants_devices() {
        let (sim, _dir) = two_tenants().await;
        let [(contoso, contoso_domain), (fabrikam, _)] =
            <[(String, String); 2]>::try_from(sim.tenant_ids()).expect("two tenants");
        assert_eq!(contoso_domain, "contoso.com");
        assert_eq!(fabrikam, FABRIKAM);

        // By domain (any case): the tenant's id is the one signed in to.
        let (client, who) = sign_in_to(&sim, "Contoso.COM", TIMEOUT)
            .await
            .expect("signed in to Contoso");
        assert_eq!(who.tenant, contoso);
        assert!(who.simulated);
        assert_eq!(listed(&client).await, ["C1", "SHARED1"]);

        // By id: Fabrikam's devices only, its SHARED1 its own device.
        let (client, who) = sign_in_to(&sim, FABRIKAM, TIMEOUT)
            .await
            .expect("signed in to Fabrikam");
        assert_eq!(who.tenant, FABRIKAM);
        assert_eq!(listed(&client).await, ["F1", "SHARED1"]);

        // `sign_in` stays the first tenant's.
        let (client, who) = sign_in(&sim, TIMEOUT).await.expect("signed in");
        assert_eq!(who.tenant, contoso);
        assert_eq!(listed(&client).await, ["C1", "SHARED1"]);

        // A tenant the rehearsal does not hold is refused.
        assert!(
            sign_in_to(&sim, "northwind.com", TIMEOUT).await.is_err(),
            "an unknown tenant signs nobody in"
        );
        sim.shutdown().await;
    }
}
