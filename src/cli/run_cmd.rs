//! `run` as the process runs it: the confirmation on the terminal, the `--simulate`
//! bootstrap, sign-in, and the interrupts, around [`run::prepare`] and [`run::execute`].

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::error::CommandError;
use crate::graph::{self, SignInUi};
use crate::pacing::AbortReason;
use crate::report::Summary;
use crate::run::{self, PlanCounts, RunConfig, RunOutcome};

use super::signals;

/// Where the requests go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A real tenant: identity from flags and environment.
    Tenant(graph::Tenant),
    /// `--simulate`: an in-process simulator seeded from the job files' devices (or
    /// `--simulate-inventory`, or the tenant a rehearsal saved: see `rehearsal`), with
    /// Intune's documented limits and a realistic network (the README's demo).
    Simulate { seed: u64, inventory: Vec<PathBuf> },
}

/// The app id the demo signs in with.
pub const SIMULATED_CLIENT_ID: &str = "0c4d2a7e-5b1f-4e8a-9d3c-7f6e5d4c3b2a";

/// `run --follow DURATION [--passcodes FILE]`: after the last POST, follow the resets
/// through `deviceActionResults` as `status --wait` does.
#[derive(Debug, Clone)]
pub struct Follow {
    pub wait: Duration,
    pub passcodes: Option<PathBuf>,
    /// `--audit`: then the audit of the run.
    pub audit: bool,
}

/// A run, what following it found, and (`--follow --audit`) what its audit found.
pub struct Ran {
    pub run: RunOutcome,
    pub followed: Option<Result<crate::status::StatusOutcome, CommandError>>,
    pub audited: Option<Result<crate::audit::AuditOutcome, CommandError>>,
}

pub fn run(
    config: RunConfig,
    target: Target,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
    follow: Option<Follow>,
) -> Result<Ran, CommandError> {
    // The passcodes file is refused before anything is sent, not after the resets.
    if let Some(why) = follow
        .as_ref()
        .and_then(|f| f.passcodes.as_deref())
        .and_then(crate::status::output::passcodes_refusal)
    {
        return Err(CommandError::Usage(why));
    }
    let mut followed = None;
    let mut audited = None;
    let run = run_inner(
        config,
        target,
        env,
        ui,
        follow.as_ref(),
        &mut followed,
        &mut audited,
    )?;
    Ok(Ran {
        run,
        followed,
        audited,
    })
}

fn run_inner(
    config: RunConfig,
    target: Target,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
    follow: Option<&Follow>,
    followed: &mut Option<Result<crate::status::StatusOutcome, CommandError>>,
    audited: &mut Option<Result<crate::audit::AuditOutcome, CommandError>>,
) -> Result<RunOutcome, CommandError> {
    if !config.yes && !config.interactive {
        return Err(CommandError::Usage(
            "refusing to reset passcodes without confirmation: there is no terminal to ask on; pass --yes to confirm".into(),
        ));
    }
    // The endpoints and the credential first (see `identity`), unless no tenant is
    // configured: then the job's rows may name the tenants to sign in to (issue 22).
    let unconfigured = match &target {
        Target::Tenant(tenant) => {
            tenant.identity.tenant.is_none()
                && env(graph::credentials::ENV_TENANT_ID).is_none_or(|t| t.trim().is_empty())
        }
        Target::Simulate { .. } => true,
    };
    let identity = match &target {
        Target::Tenant(tenant) if !unconfigured => Some(identity(tenant, env)?),
        _ => None,
    };
    let lock_dir = lock_dir(env)?;
    let mut prepared = run::prepare(&config)?;
    // The run's tenants: the command line's list, else a job document's, else (none
    // configured) those the rows name; none of these: the one signed in to.
    let tenants: Vec<crate::tenants::TenantEntry> = if !config.tenants.is_empty() {
        config.tenants.clone()
    } else if !prepared.document_tenants().is_empty() {
        prepared.document_tenants().to_vec()
    } else if unconfigured {
        prepared
            .named_tenants()
            .into_iter()
            .map(crate::tenants::TenantEntry::named)
            .collect()
    } else {
        Vec::new()
    };
    let identity = match (&target, identity) {
        (Target::Tenant(tenant), None) if tenants.is_empty() => Some(self::identity(tenant, env)?),
        (_, identity) => identity,
    };
    let runtime = runtime()?;
    let simulator = match &target {
        Target::Simulate { seed, inventory } => {
            let tenant = super::rehearsal::tenant_for_run(&config, &prepared, *seed, inventory)?;
            Some(runtime.block_on(super::rehearsal::start(tenant))?)
        }
        Target::Tenant(_) => None,
    };
    if !tenants.is_empty() {
        let entries: Vec<(String, Option<String>)> =
            tenants.into_iter().map(|t| (t.name, t.client_id)).collect();
        let outcome = run_many(
            &config,
            &target,
            env,
            ui,
            &runtime,
            simulator.as_ref(),
            &lock_dir,
            prepared,
            &entries,
            (follow, followed, audited),
        );
        if let Some(sim) = simulator {
            keep_rehearsal(&runtime, sim, &config, &outcome);
        }
        return outcome;
    }
    let timeout = config.settings.request_timeout;
    // Signed in before the question, so that it names who the resets are sent as.
    let signed_in = runtime.block_on(async {
        match (&simulator, &target, identity) {
            (Some(sim), _, _) => super::rehearsal::sign_in(sim, timeout).await,
            (None, Target::Tenant(tenant), Some(identity)) => {
                graph::sign_in(tenant, identity, timeout, ui).await
            }
            _ => Err("the simulated tenant did not start".into()),
        }
    });
    let outcome = match signed_in {
        Err(why) => Ok(RunOutcome {
            summary: Summary::new("run"),
            aborted: Some(AbortReason::Authentication(why)),
        }),
        Ok((client, who)) => {
            tracing::info!("signed in as {}", who.describe());
            if let Err(refused) = prepared.check_origin(&who, &config.settings) {
                if let Some(sim) = simulator {
                    runtime.block_on(sim.shutdown());
                }
                return Err(refused);
            }
            // One run per tenant and app on this machine: taken before any device is
            // read or reset, held until this function returns (following included).
            let graph_url = match (&simulator, &target) {
                (Some(sim), _) => sim.base_url().to_string(),
                (None, Target::Tenant(tenant)) => tenant
                    .endpoints()
                    .map(|e| e.graph.to_string())
                    .unwrap_or_default(),
                (None, Target::Simulate { .. }) => String::new(),
            };
            let _tenant_lock =
                match prepared.lock_tenant(&lock_dir, &graph_url, &who, config.wait_for_lock) {
                    Ok(lock) => lock,
                    Err(refused) => {
                        if let Some(sim) = simulator {
                            runtime.block_on(sim.shutdown());
                        }
                        return Err(refused);
                    }
                };
            // Rows naming another tenant than the one signed in to are not sent here,
            // and their users, groups and filters are not listed in this tenant.
            prepared.in_tenant(&who.tenant);
            // Rows naming a user become the user's devices, read before the question
            // so that it lists them and --max-devices counts them.
            let expanded = runtime.block_on(run::expand(&config, client.clone(), &mut prepared));
            if let Err(stopped) = expanded {
                if let Some(sim) = simulator {
                    runtime.block_on(sim.shutdown());
                }
                return match stopped {
                    Ok(reason) => Ok(RunOutcome {
                        summary: Summary::new("run"),
                        aborted: Some(reason),
                    }),
                    Err(usage) => Err(usage),
                };
            }
            for (target, n) in &prepared.counts.expansions {
                tracing::info!("{}", run::expansion_line(target, *n));
            }
            if !config.yes && !confirm(&prepared.counts, &who)? {
                Ok(RunOutcome {
                    summary: Summary::new("run"),
                    aborted: Some(AbortReason::NotConfirmed),
                })
            } else {
                prepared.signed_in = Some(who);
                // One pacer for the resets and, with --follow, the reads that follow
                // them while later devices are still sent (issue 19).
                let pacer = std::sync::Arc::new(crate::pacing::Pacer::new(
                    client.clone(),
                    config.settings.clone(),
                ));
                let (ran, known) = runtime.block_on(async {
                    let follower = follow
                        .is_some()
                        .then(|| crate::status::follow::Follower::start(pacer.clone()));
                    let on_done = follower.as_ref().map(|f| {
                        let tracker = f.tracker();
                        std::sync::Arc::new(move |row: &crate::report::ReportRow| {
                            tracker.finished(row)
                        }) as run::OnDone
                    });
                    let ran = run::execute_on(
                        &config,
                        pacer.clone(),
                        prepared,
                        signals::interrupted(),
                        on_done,
                    )
                    .await;
                    let known = match follower {
                        Some(f) => f.finish().await,
                        None => Default::default(),
                    };
                    (ran, known)
                });
                // Followed only when the run ran to its end: an aborted run is finished
                // with --resume first.
                if let (Some(follow), Ok(outcome)) = (follow, &ran)
                    && outcome.aborted.is_none()
                    && let Some(report) = outcome.summary.report.clone()
                {
                    // The run report gains the status columns; a workbook is written
                    // again with them, under the run's own Summary sheet.
                    let run_sheet_who = outcome.summary.signed_in.clone();
                    let status_config = follow_config(&config, follow, outcome, report);
                    tracing::info!(
                        "following the resets through deviceActionResults for up to {}",
                        humantime::format_duration(follow.wait)
                    );
                    *followed = Some(runtime.block_on(async {
                        // Made inside the runtime: the listener is a task.
                        let stop = Box::pin(signals::interrupted());
                        let prepared = crate::status::prepare(&status_config)?;
                        crate::status::execute_on(&status_config, prepared, pacer, known, stop)
                            .await
                    }));
                    if let Some(Ok(status)) = followed.as_mut() {
                        status.summary.simulated = simulator.is_some();
                    }
                    // `--audit`: once the follow ended on its own, the audit of the run
                    // (its ledger is closed by now), on the same sign-in.
                    let follow_ended = matches!(followed, Some(Ok(s)) if s.aborted.is_none());
                    if follow.audit
                        && follow_ended
                        && let Some(who) = run_sheet_who.as_ref()
                    {
                        let audit_config = follow_audit_config(&config, follow, &status_config);
                        *audited = Some(runtime.block_on(async {
                            let prepared = crate::audit::prepare(&audit_config)?;
                            let stop = Box::pin(signals::interrupted());
                            let mut outcome = crate::audit::execute_prepared(
                                &audit_config,
                                prepared,
                                client.clone(),
                                who,
                                stop,
                            )
                            .await?;
                            outcome.summary.simulated = simulator.is_some();
                            Ok(outcome)
                        }));
                    }
                    summary_with_followed(&config, outcome, followed);
                }
                ran
            }
        }
    };
    if let Some(sim) = simulator {
        keep_rehearsal(&runtime, sim, &config, &outcome);
    }
    outcome
}

/// `run --follow`'s `status` of the run report: its rows gain the status columns (a
/// workbook is written again with them, under the run's own Summary sheet).
fn follow_config(
    config: &RunConfig,
    follow: &Follow,
    outcome: &RunOutcome,
    report: PathBuf,
) -> crate::status::StatusConfig {
    let run_sheet = outcome.summary.clone();
    let facts = crate::report::xlsx::SheetFacts {
        started: std::time::SystemTime::now() - Duration::from_secs_f64(run_sheet.elapsed_seconds),
        ended: std::time::SystemTime::now(),
        identity: run_sheet
            .signed_in
            .as_ref()
            .map(graph::SignedIn::pairs)
            .unwrap_or_default(),
    };
    crate::status::StatusConfig {
        into_run_report: true,
        run_sheet: Some((run_sheet, facts)),
        run_report: report,
        report: None,
        passcodes: follow.passcodes.clone(),
        summary_json: None,
        bom: config.bom,
        wait: Some(follow.wait),
        poll_interval: crate::status::POLL_INTERVAL
            .min(follow.wait / 4)
            .max(Duration::from_secs(1)),
        settings: config.settings.clone(),
        tenant: Default::default(),
    }
}

/// `run --follow --audit`'s audit of the run, once the follow ended.
fn follow_audit_config(
    config: &RunConfig,
    follow: &Follow,
    status_config: &crate::status::StatusConfig,
) -> crate::audit::AuditConfig {
    crate::audit::AuditConfig {
        run_report: status_config.run_report.clone(),
        report: None,
        summary_json: None,
        bom: config.bom,
        wait: Some(follow.wait),
        poll_interval: crate::audit::POLL_INTERVAL
            .min(follow.wait / 4)
            .max(Duration::from_secs(1)),
        settings: crate::pacing::Settings {
            concurrency: 1,
            ..config.settings.clone()
        },
        tenant: Default::default(),
    }
}

/// --summary-json: the run's summary gains what following found. Actions were sent: a
/// summary that cannot be written is an abort (exit 3), never a usage error.
fn summary_with_followed(
    config: &RunConfig,
    outcome: &RunOutcome,
    followed: &mut Option<Result<crate::status::StatusOutcome, CommandError>>,
) {
    if let (Some(path), Some(Ok(status))) = (&config.summary_json, followed.as_mut()) {
        let mut json = serde_json::to_value(&outcome.summary).unwrap_or(serde_json::Value::Null);
        if let Some(fields) = json.as_object_mut() {
            fields.insert(
                "followed".into(),
                serde_json::to_value(&status.summary).unwrap_or(serde_json::Value::Null),
            );
        }
        if let Err(e) = crate::report::write_summary_json(path, &json) {
            let reason = AbortReason::Unrecorded(e.to_string());
            status.summary.aborted = Some(reason.sentence());
            status.aborted = Some(reason);
        }
    }
}

/// The rehearsal's tenant outlives it, beside its report: its follow-ups go on in it.
fn keep_rehearsal(
    runtime: &tokio::runtime::Runtime,
    sim: crate::sim::SimHandle,
    config: &RunConfig,
    outcome: &Result<RunOutcome, CommandError>,
) {
    let report = match outcome {
        Ok(ran) => ran.summary.report.clone().or(config.report.clone()),
        Err(_) => None,
    };
    let reports: Vec<&std::path::Path> = report
        .iter()
        .filter(|r| r.is_file())
        .map(|r| r.as_path())
        .collect();
    let stats = runtime.block_on(super::rehearsal::stop_and_keep(sim, &reports));
    // The rehearsal's own account of what reached "Graph", for the curious.
    tracing::debug!("the simulated tenant saw:\n{}", stats.render());
}

/// A run across several tenants (issue 22): signed in to each (the same identity at
/// each tenant's own authority), each checked with a cheap read before the question,
/// each locked, its users, groups and filters listed in it; then one pipeline with
/// an engine and a pacer per tenant. A tenant that cannot sign in or read has its
/// rows `not_attempted`, naming why; the others go on.
#[allow(clippy::too_many_arguments)]
fn run_many(
    config: &RunConfig,
    target: &Target,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
    runtime: &tokio::runtime::Runtime,
    simulator: Option<&crate::sim::SimHandle>,
    lock_dir: &std::path::Path,
    mut prepared: run::Prepared,
    entries: &[(String, Option<String>)],
    (follow, followed, audited): FollowSlots<'_>,
) -> Result<RunOutcome, CommandError> {
    let timeout = config.settings.request_timeout;
    // Each tenant's identity first: a credential that cannot sign in to several
    // tenants is a usage error before any sign-in.
    let mut identities = Vec::new();
    if let Target::Tenant(tenant) = target {
        for (name, client_id) in entries {
            identities.push(identity_in(tenant, name, client_id.as_deref(), env)?);
        }
    }
    let mut signed: Vec<SignIn> = Vec::new();
    let mut earlier: Option<graph::GraphClient> = None;
    for (i, (name, _)) in entries.iter().enumerate() {
        let result = runtime.block_on(async {
            match (simulator, target) {
                (Some(sim), _) => {
                    graph::sign_in_to_simulator(&sim.base_url(), name, SIMULATED_CLIENT_ID, timeout)
                        .await
                }
                (None, Target::Tenant(tenant)) => {
                    let mut at = tenant.clone();
                    at.identity.tenant = Some(name.clone());
                    let identity = identities[i].clone();
                    graph::sign_in_reusing(&at, identity, timeout, ui, earlier.as_ref()).await
                }
                (None, Target::Simulate { .. }) => Err("the simulated tenant did not start".into()),
            }
        });
        let mut names = vec![name.clone()];
        // A technician's sign-in is offered to the next tenant before asking again.
        if let Ok((client, _)) = &result
            && client.tokens().is_delegated()
        {
            earlier = Some(client.clone());
        }
        if let Ok((_, who)) = &result {
            let id = who.tenant.trim().to_ascii_lowercase();
            // Two names of one tenant (its domain and its id) are one tenant: one
            // engine, one set of claims, so no device is acted on twice.
            if let Some(first) = signed.iter_mut().find(|(_, n, r)| {
                r.as_ref()
                    .is_ok_and(|(_, w)| w.tenant.eq_ignore_ascii_case(&id))
                    || n.contains(&id)
            }) {
                first.1.push(name.clone());
                continue;
            }
            if id != *name {
                names.push(id);
            }
            tracing::info!("tenant {name}: signed in as {}", who.describe());
        }
        if let Err(why) = &result {
            tracing::warn!("tenant {name}: cannot sign in ({why}); its rows are not attempted");
        }
        signed.push((name.clone(), names, result));
    }
    // Each tenant is checked with one cheap read before anything is asked or sent: a
    // missing consent or permission is known now.
    let mut tenants: Vec<SignIn> = Vec::new();
    for (label, names, result) in signed {
        let checked = match result {
            Ok((client, who)) => match runtime.block_on(preflight(client.clone(), config)) {
                Ok(()) => Ok((client, who)),
                Err(why) => {
                    tracing::warn!("tenant {label}: {why}; its rows are not attempted");
                    Err(why)
                }
            },
            Err(why) => Err(why),
        };
        tenants.push((label, names, checked));
    }
    let whos: Vec<&graph::SignedIn> = tenants
        .iter()
        .filter_map(|(_, _, r)| r.as_ref().ok().map(|(_, w)| w))
        .collect();
    prepared.check_origins(&whos, &config.settings)?;
    // One run per tenant and app on this machine, each lock held to the end.
    let graph_url = match (simulator, target) {
        (Some(sim), _) => sim.base_url().to_string(),
        (None, Target::Tenant(tenant)) => tenant
            .endpoints()
            .map(|e| e.graph.to_string())
            .unwrap_or_default(),
        (None, Target::Simulate { .. }) => String::new(),
    };
    let mut _locks = Vec::new();
    for who in &whos {
        _locks.push(prepared.lock_tenant(lock_dir, &graph_url, who, config.wait_for_lock)?);
    }
    let states: Vec<(String, Vec<String>, bool)> = tenants
        .iter()
        .map(|(label, names, r)| (label.clone(), names.clone(), r.is_ok()))
        .collect();
    let mut per_tenant = prepared.in_tenants(&states);
    // Each tenant's users, groups and filters, listed in it.
    for (label, names, result) in &tenants {
        let Ok((client, _)) = result else {
            continue;
        };
        let before = prepared.counts.to_send();
        let expanded = runtime.block_on(run::expand_tenant(
            config,
            client.clone(),
            &mut prepared,
            label,
            names,
        ));
        match expanded {
            Ok(()) => {}
            Err(Ok(reason)) => {
                return Ok(RunOutcome {
                    summary: Summary::new("run"),
                    aborted: Some(reason.in_tenant(label)),
                });
            }
            Err(Err(usage)) => return Err(usage),
        }
        let added = prepared.counts.to_send().saturating_sub(before);
        *per_tenant.entry(label.clone()).or_default() += added;
    }
    for (target, n) in &prepared.counts.expansions {
        tracing::info!("{}", run::expansion_line(target, *n));
    }
    if !config.yes {
        let each: Vec<(String, Result<String, String>, u64)> = tenants
            .iter()
            .map(|(label, _, r)| {
                let who = r.as_ref().map(|(_, w)| w.describe()).map_err(Clone::clone);
                (
                    label.clone(),
                    who,
                    per_tenant.get(label).copied().unwrap_or(0),
                )
            })
            .collect();
        let question = confirmation_many(&prepared.counts, &each, simulator.is_some());
        super::output::ask(&question);
        if !read_yes()? {
            return Ok(RunOutcome {
                summary: Summary::new("run"),
                aborted: Some(AbortReason::NotConfirmed),
            });
        }
    }
    prepared.signed_in = whos.first().map(|w| (*w).clone());
    type Ready = Result<
        (
            Arc<crate::pacing::Pacer<graph::GraphClient>>,
            Option<graph::SignedIn>,
        ),
        String,
    >;
    let readies: Vec<(String, Vec<String>, Ready)> = tenants
        .into_iter()
        .map(|(label, names, r)| {
            let ready = r.map(|(client, who)| {
                (
                    Arc::new(crate::pacing::Pacer::new(client, config.settings.clone())),
                    Some(who),
                )
            });
            (label, names, ready)
        })
        .collect();
    let runs: Vec<run::TenantRun<graph::GraphClient>> = readies
        .iter()
        .map(|(label, names, ready)| run::TenantRun {
            label: label.clone(),
            names: names.clone(),
            ready: ready.clone(),
        })
        .collect();
    let (ran, mut known) = runtime.block_on(async {
        // One follower per tenant, on its pacer, while later devices are still sent.
        let followers = follow.is_some().then(|| {
            crate::status::follow::Followers::start(
                readies
                    .iter()
                    .filter_map(|(_, names, r)| {
                        r.as_ref().ok().map(|(p, _)| (names.clone(), p.clone()))
                    })
                    .collect(),
            )
        });
        let on_done = followers.as_ref().map(|f| {
            let tracker = f.tracker();
            Arc::new(move |row: &crate::report::ReportRow| tracker.finished(row)) as run::OnDone
        });
        // Made inside the runtime: the listener is a task.
        let ran = run::execute_tenants(
            config,
            runs,
            true,
            prepared,
            signals::interrupted(),
            on_done,
        )
        .await;
        let known = match followers {
            Some(f) => f.finish().await,
            None => Vec::new(),
        };
        (ran, known.into_iter())
    });
    // Followed when the run ran to its end in every tenant it reached (a tenant that
    // could not sign in has its rows not_checked); an interrupted run is finished with
    // --resume first.
    let stopped = |a: &AbortReason| match a {
        AbortReason::InTenant { reason, .. } => {
            matches!(
                **reason,
                AbortReason::Interrupted | AbortReason::Unrecorded(_)
            )
        }
        _ => true,
    };
    if let (Some(follow), Ok(outcome)) = (follow, &ran)
        && !outcome.aborted.as_ref().is_some_and(stopped)
        && let Some(report) = outcome.summary.report.clone()
    {
        let status_config = follow_config(config, follow, outcome, report);
        tracing::info!(
            "following the actions in each tenant for up to {}",
            humantime::format_duration(follow.wait)
        );
        let reads: Vec<crate::status::TenantReads<graph::GraphClient>> = readies
            .into_iter()
            .map(|(label, names, ready)| crate::status::TenantReads {
                known: match &ready {
                    Ok(_) => known.next().unwrap_or_default(),
                    Err(_) => Default::default(),
                },
                label,
                names,
                ready,
            })
            .collect();
        let audit_in = audit_tenants(&reads);
        *followed = Some(runtime.block_on(async {
            let stop = Box::pin(signals::interrupted());
            let prepared = crate::status::prepare(&status_config)?;
            crate::status::execute_tenants(&status_config, prepared, reads, stop).await
        }));
        if let Some(Ok(status)) = followed.as_mut() {
            status.summary.simulated = simulator.is_some();
        }
        let follow_ended = matches!(followed, Some(Ok(s)) if s.aborted.is_none());
        if follow.audit
            && follow_ended
            && let Ok(tenants) = audit_in
        {
            let audit_config = follow_audit_config(config, follow, &status_config);
            *audited = Some(runtime.block_on(async {
                let prepared = crate::audit::prepare(&audit_config)?;
                let stop = Box::pin(signals::interrupted());
                let mut outcome =
                    crate::audit::execute_tenants(&audit_config, prepared, tenants, stop).await?;
                outcome.summary.simulated = simulator.is_some();
                Ok(outcome)
            }));
        }
        summary_with_followed(config, outcome, followed);
    }
    ran
}

/// `run --follow`'s follow-up and audit, filled in by the run.
type FollowSlots<'a> = (
    Option<&'a Follow>,
    &'a mut Option<Result<crate::status::StatusOutcome, CommandError>>,
    &'a mut Option<Result<crate::audit::AuditOutcome, CommandError>>,
);

/// A tenant of a run across several: its label, every name rows may give it, and its
/// sign-in (or why it has none).
type SignIn = (
    String,
    Vec<String>,
    Result<(graph::GraphClient, graph::SignedIn), String>,
);

/// The cheap read each tenant of a run across several is checked with before the
/// question: one filtered page of managed devices (none match), through a pacer of
/// its own. Graph's refusal (consent, permission, role) says why.
async fn preflight(client: graph::GraphClient, config: &RunConfig) -> Result<(), String> {
    use crate::graph::{PageRequest, device::FilterProperty};
    let pacer = crate::pacing::Pacer::new(client, config.settings.clone());
    let request = PageRequest::Filter {
        property: FilterProperty::SerialNumber,
        value: "intune-reset-preflight".into(),
        select: vec!["id".into()],
    };
    let read = pacer
        .read(|c| Box::pin(pacer.graph.list_devices_page(request.clone(), c)))
        .await;
    match (read, pacer.abort_reason()) {
        (_, Some(reason)) => Err(reason.sentence()),
        (Ok(_), None) => Ok(()),
        (Err(failure), None) => Err(format!(
            "its managed devices cannot be read ({}: {})",
            failure.reason, failure.detail
        )),
    }
}

/// The identity `tenant`'s flags and environment name, signing in to `name` (with
/// its own client id when the tenants list gives one). A ready token or a managed
/// identity belongs to one tenant: a run across several cannot use it.
pub(super) fn identity_in(
    tenant: &graph::Tenant,
    name: &str,
    client_id: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<graph::Identity, CommandError> {
    let mut at = tenant.clone();
    at.identity.tenant = Some(name.to_owned());
    if let Some(client_id) = client_id {
        at.identity.client_id = Some(client_id.to_owned());
    }
    let identity = identity(&at, env)?;
    match identity {
        graph::Identity::AccessToken(_) => Err(CommandError::Usage(
            "a ready token (INTUNE_RESET_ACCESS_TOKEN) is issued for one tenant: a run across several tenants signs in to each with an app registration (secret, certificate, workload identity) or a browser or device-code sign-in (nothing was sent)".into(),
        )),
        graph::Identity::Managed(_) => Err(CommandError::Usage(
            "a managed identity signs in to its own tenant only: a run across several tenants needs a multi-tenant app registration (secret, certificate, or workload identity federation) consented in each (nothing was sent)".into(),
        )),
        other => Ok(other),
    }
}

/// `status`: its files checked first, then signed in as `run` is; an interrupt stops
/// the reads and the reports are written with what was read. A report whose rows name
/// tenants (issue 22) is read in each of them ([`status_tenants`]).
pub fn status(
    config: crate::status::StatusConfig,
    audit: Option<crate::audit::AuditConfig>,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
) -> Result<Followed, CommandError> {
    let prepared = crate::status::prepare(&config)?;
    // `--audit`: its files are checked before anything is read too.
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
    // A ready token or a managed identity belongs to one tenant: the report of a run
    // in one tenant (its rows naming it) is read there, as before.
    let one_tenant_credential = named.len() == 1
        && matches!(
            graph::resolve_identity(&config.tenant, env).map(|r| r.identity),
            Ok(graph::Identity::AccessToken(_) | graph::Identity::Managed(_))
        );
    if !named.is_empty() && !one_tenant_credential {
        return status_tenants(config, prepared, audit.zip(audited), &named, env, ui);
    }
    let identity = match identity(&config.tenant, env) {
        Ok(identity) => identity,
        Err(e) => {
            prepared.abandon();
            return Err(e);
        }
    };
    runtime()?.block_on(async {
        let timeout = config.settings.request_timeout;
        match graph::sign_in(&config.tenant, identity, timeout, ui).await {
            Ok((client, who)) => {
                tracing::info!("signed in as {}", who.describe());
                let stop = Box::pin(signals::interrupted());
                let status =
                    crate::status::execute_prepared(&config, prepared, client.clone(), stop)
                        .await
                        .or_else(|e| match e {
                            // Written after the reads: what was read is not on record.
                            CommandError::Write { .. } => Ok(unrecorded(&config, e)),
                            before_any_read => Err(before_any_read),
                        })?;
                let audit = match (audit, audited) {
                    (Some(audit), Some(prepared)) if status.aborted.is_none() => {
                        let stop = Box::pin(signals::interrupted());
                        Some(
                            crate::audit::execute_prepared(&audit, prepared, client, &who, stop)
                                .await,
                        )
                    }
                    _ => None,
                };
                Ok(Followed { status, audit })
            }
            Err(why) => Ok(Followed {
                status: prepared.not_signed_in(AbortReason::Authentication(why)),
                audit: None,
            }),
        }
    })
}

/// `status` of a report whose rows name tenants (issue 22): signed in to each tenant
/// named (the same identity flags and environment, at each tenant's own authority),
/// each row's device read in its tenant through that tenant's own pacer, the tenants
/// in parallel. A tenant that cannot be signed in to has its rows `not_checked`, naming
/// why; the others are read. `--audit` follows only a report of one tenant.
fn status_tenants(
    config: crate::status::StatusConfig,
    prepared: crate::status::Prepared,
    audit: Option<(crate::audit::AuditConfig, crate::audit::Prepared)>,
    named: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
) -> Result<Followed, CommandError> {
    // Each tenant's identity first: a credential that cannot sign in to several
    // tenants is a usage error before any sign-in.
    let identities = match identities_in(&config.tenant, named, env) {
        Ok(identities) => identities,
        Err(e) => {
            prepared.abandon();
            return Err(e);
        }
    };
    runtime()?.block_on(async {
        let tenants = sign_in_named(&config.tenant, named, identities, &config.settings, ui).await;
        let audited_in = audit_tenants(&tenants);
        let stop = Box::pin(signals::interrupted());
        let status = crate::status::execute_tenants(&config, prepared, tenants, stop)
            .await
            .or_else(|e| match e {
                // Written after the reads: what was read is not on record.
                CommandError::Write { .. } => Ok(unrecorded(&config, e)),
                before_any_read => Err(before_any_read),
            })?;
        let audit = match (audit, audited_in) {
            (Some((audit, prepared)), Ok(tenants)) if status.aborted.is_none() => {
                let stop = Box::pin(signals::interrupted());
                Some(crate::audit::execute_tenants(&audit, prepared, tenants, stop).await)
            }
            _ => None,
        };
        Ok(Followed { status, audit })
    })
}

/// The tenants an audit of a run across several reads, from their sign-ins; a tenant
/// that could not sign in leaves the audit without its records: why.
pub(super) fn audit_tenants(
    tenants: &[crate::status::TenantReads<graph::GraphClient>],
) -> Result<Vec<crate::audit::AuditTenant<graph::GraphClient>>, String> {
    tenants
        .iter()
        .map(|t| match &t.ready {
            Ok((pacer, Some(who))) => Ok(crate::audit::AuditTenant {
                names: t.names.clone(),
                graph: pacer.graph.clone(),
                who: who.clone(),
            }),
            Ok((_, None)) => Err(format!("tenant {}: no sign-in", t.label)),
            Err(why) => Err(format!("tenant {}: {why}", t.label)),
        })
        .collect()
}

/// Each tenant's identity (`identity_in`), all before any sign-in: a credential that
/// cannot sign in to several tenants is a usage error first.
fn identities_in(
    tenant: &graph::Tenant,
    named: &[String],
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<graph::Identity>, CommandError> {
    named
        .iter()
        .map(|name| identity_in(tenant, name, None, env))
        .collect()
}

/// `status` and `audit` across tenants: [`sign_in_each`] at each tenant's authority
/// with its identity, a technician's sign-in offered to each next tenant.
async fn sign_in_named(
    tenant: &graph::Tenant,
    named: &[String],
    identities: Vec<graph::Identity>,
    settings: &crate::pacing::Settings,
    ui: &SignInUi,
) -> Vec<crate::status::TenantReads<graph::GraphClient>> {
    let timeout = settings.request_timeout;
    sign_in_each(named, settings, |i, name, earlier| {
        let mut at = tenant.clone();
        at.identity.tenant = Some(name);
        let identity = identities[i].clone();
        async move { graph::sign_in_reusing(&at, identity, timeout, ui, earlier.as_ref()).await }
    })
    .await
}

/// Signs in to each tenant `named` names with `sign_in(index, name, earlier)` (`earlier`:
/// the last delegated sign-in, whose refresh token the next tenant tries first), one after the
/// other (a browser or device-code sign-in asks once per tenant), each with a pacer of
/// its own; two names of one tenant (its domain and its id) are one tenant, read once.
/// `status` and `status --simulate` sign in through it.
pub(super) async fn sign_in_each<F, Fut>(
    named: &[String],
    settings: &crate::pacing::Settings,
    mut sign_in: F,
) -> Vec<crate::status::TenantReads<graph::GraphClient>>
where
    F: FnMut(usize, String, Option<graph::GraphClient>) -> Fut,
    Fut: std::future::Future<Output = Result<(graph::GraphClient, graph::SignedIn), String>>,
{
    let mut tenants: Vec<crate::status::TenantReads<graph::GraphClient>> = Vec::new();
    // A technician's sign-in, offered to each next tenant before asking again.
    let mut earlier: Option<graph::GraphClient> = None;
    for (i, name) in named.iter().enumerate() {
        let ready = match sign_in(i, name.clone(), earlier.clone()).await {
            Ok((client, who)) => {
                if client.tokens().is_delegated() {
                    earlier = Some(client.clone());
                }
                let id = who.tenant.trim().to_ascii_lowercase();
                if let Some(first) = tenants.iter_mut().find(|t| t.names.contains(&id)) {
                    first.names.push(name.clone());
                    continue;
                }
                tracing::info!("tenant {name}: signed in as {}", who.describe());
                Ok((
                    std::sync::Arc::new(crate::pacing::Pacer::new(client, settings.clone())),
                    Some(who),
                ))
            }
            Err(why) => {
                tracing::warn!("tenant {name}: cannot sign in ({why}); its rows are not_checked");
                Err(why)
            }
        };
        let mut names = vec![name.clone()];
        if let Ok((_, Some(who))) = &ready {
            let id = who.tenant.trim().to_ascii_lowercase();
            if id != *name {
                names.push(id);
            }
        }
        tenants.push(crate::status::TenantReads {
            label: name.clone(),
            names,
            ready,
            known: Default::default(),
        });
    }
    tenants
}

/// `status`, and with `--audit` the audit that followed it (run only when `status` was
/// not aborted; an audit that could not start is its error).
pub struct Followed {
    pub status: crate::status::StatusOutcome,
    pub audit: Option<Result<crate::audit::AuditOutcome, CommandError>>,
}

pub fn audit(
    config: crate::audit::AuditConfig,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
) -> Result<crate::audit::AuditOutcome, CommandError> {
    let prepared = crate::audit::prepare(&config)?;
    // A run across several tenants (issue 22): each tenant's records are read in it.
    let named = prepared.tenants().to_vec();
    if !named.is_empty() {
        let identities = identities_in(&config.tenant, &named, env)?;
        return runtime()?.block_on(async {
            let tenants =
                sign_in_named(&config.tenant, &named, identities, &config.settings, ui).await;
            match audit_tenants(&tenants) {
                Ok(tenants) => {
                    let stop = Box::pin(signals::interrupted());
                    crate::audit::execute_tenants(&config, prepared, tenants, stop).await
                }
                Err(why) => Ok(crate::audit::AuditOutcome::not_signed_in(&config, why)),
            }
        });
    }
    let identity = identity(&config.tenant, env)?;
    runtime()?.block_on(async {
        let timeout = config.settings.request_timeout;
        match graph::sign_in(&config.tenant, identity, timeout, ui).await {
            Ok((client, who)) => {
                tracing::info!("signed in as {}", who.describe());
                let stop = Box::pin(signals::interrupted());
                crate::audit::execute_prepared(&config, prepared, client, &who, stop).await
            }
            Err(why) => Ok(crate::audit::AuditOutcome::not_signed_in(&config, why)),
        }
    })
}

/// `status` read from Graph, then could not write what it read (a full disk under the
/// passcodes file or the report): exit 3 with the reason, not 2 ("nothing was sent").
fn unrecorded(
    config: &crate::status::StatusConfig,
    e: CommandError,
) -> crate::status::StatusOutcome {
    let reason = AbortReason::Unrecorded(e.to_string());
    let mut summary = crate::status::StatusSummary::new(config.run_report.clone());
    summary.aborted = Some(reason.sentence());
    crate::status::StatusOutcome {
        summary,
        aborted: Some(reason),
    }
}

/// The credential the flags and the environment name, each variable set but not used
/// warned about. A plain-http URL to another host or a credential that is not
/// configured is a usage error (exit 2), found before any file is read or any
/// connection is opened.
fn identity(
    tenant: &graph::Tenant,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<graph::Identity, CommandError> {
    let resolved = graph::resolve_identity(tenant, env).map_err(CommandError::Usage)?;
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    Ok(resolved.identity)
}

/// The folder of the tenant locks: `INTUNE_RESET_LOCK_DIR`, else the user's cache
/// folder (`%LOCALAPPDATA%\\intune-reset\\locks` on Windows,
/// `~/Library/Caches/intune-reset/locks` on macOS, `~/.cache/intune-reset/locks`
/// elsewhere). `$XDG_CACHE_HOME` and `$XDG_RUNTIME_DIR` are not used: cron sets
/// neither, and a run from cron and one from a terminal must find the same lock.
/// Per user: a lock file must be the runner's own ([`crate::own_file`]), so two
/// accounts on one machine do not exclude each other (docs/decisions.md).
fn lock_dir(env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, CommandError> {
    let set = |name: &str| {
        env(name)
            .filter(|v| !v.trim().is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = set("INTUNE_RESET_LOCK_DIR") {
        return Ok(dir);
    }
    let (base, under) = if cfg!(windows) {
        (set("LOCALAPPDATA"), ["intune-reset", "locks"].as_slice())
    } else if cfg!(target_os = "macos") {
        (
            set("HOME"),
            ["Library", "Caches", "intune-reset", "locks"].as_slice(),
        )
    } else {
        (set("HOME"), [".cache", "intune-reset", "locks"].as_slice())
    };
    let base = base.ok_or_else(|| {
        CommandError::Usage(
            "no folder for the tenant lock: set INTUNE_RESET_LOCK_DIR (or HOME, LOCALAPPDATA on Windows) to a folder of your own (nothing was sent)".into(),
        )
    })?;
    Ok(under.iter().fold(base, |dir, name| dir.join(name)))
}

/// The runtime a command's requests (and the simulator) run on.
pub(super) fn runtime() -> Result<tokio::runtime::Runtime, CommandError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::Usage(format!("cannot start the runtime: {e}")))
}

/// Shows who signed in and the plan's counts, and asks for `yes` on the terminal.
fn confirm(counts: &PlanCounts, who: &graph::SignedIn) -> Result<bool, CommandError> {
    super::output::ask(&confirmation(counts, who));
    read_yes()
}

/// The answer on the terminal: `yes`, or anything else.
fn read_yes() -> Result<bool, CommandError> {
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::Usage(format!("cannot read the confirmation: {e}")))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// The confirmation's text, the question last: a simulated tenant is said first. It
/// counts what will be sent, by platform and action, after judging (the devices of
/// users, groups and filters by the facts their listing gave); a resume says what the
/// run it continues did and left.
fn confirmation(counts: &PlanCounts, who: &graph::SignedIn) -> String {
    let mut text = String::new();
    if who.simulated {
        text.push_str("SIMULATED TENANT — nothing real is touched\n");
    }
    text.push_str(&format!("signed in as {}\n", who.describe()));
    text.push_str(&body(counts));
    text
}

/// The question of a run across several tenants: each tenant, who signed in there (or
/// why no one could) and what it will be sent, then the counts of the whole run.
fn confirmation_many(
    counts: &PlanCounts,
    tenants: &[(String, Result<String, String>, u64)],
    simulated: bool,
) -> String {
    let mut text = String::new();
    if simulated {
        text.push_str("SIMULATED TENANTS — nothing real is touched\n");
    }
    text.push_str(&format!(
        "{} tenants, each signed in to on its own, and what each will be sent:\n",
        tenants.len()
    ));
    for (label, who, n) in tenants {
        match who {
            Ok(who) => text.push_str(&format!("  {label:<40} {n:>7}  as {who}\n")),
            Err(why) => text.push_str(&format!(
                "  {label:<40} NOT SIGNED IN: {why}; its rows are not attempted\n"
            )),
        }
    }
    text.push_str(&body(counts));
    text
}

/// The question's counts and the question, after who signed in.
fn body(counts: &PlanCounts) -> String {
    let mut text = String::new();
    let to_send = counts.to_send();
    let settling = counts.resumed.as_ref().map_or(0, |r| r.settling);
    if let Some(r) = &counts.resumed {
        let done: Vec<String> = r.done.iter().map(|(o, n)| format!("{o} {n}")).collect();
        let done = if done.is_empty() {
            String::new()
        } else {
            format!(" ({})", done.join(", "))
        };
        text.push_str(&format!(
            "resuming the run of {} recorded in {}: {} done{done}, not touched again; {settling} sent whose fate will be settled first (through deviceActionResults, never sent again blindly); {to_send} left to send\n",
            r.started_at,
            r.ledger.display(),
            counts.done,
        ));
    }
    let per_action = counts.per_action();
    let passcodes_only = counts.passcodes_only();
    if passcodes_only {
        text.push_str(&format!(
            "{} rows; {to_send} device{} will be sent a reset, by platform and action:\n",
            counts.rows,
            if to_send == 1 { "" } else { "s" }
        ));
    } else {
        text.push_str(&format!(
            "{} rows; {to_send} action{} will be sent, one per device (or user) and action, by platform and action:\n",
            counts.rows,
            if to_send == 1 { "" } else { "s" }
        ));
    }
    let lines = |text: &mut String, items: &std::collections::BTreeMap<String, u64>| {
        for (what, n) in items {
            text.push_str(&format!("  {what:<48} {n:>7}\n"));
        }
    };
    lines(&mut text, &counts.per_platform);
    if !counts.not_sent.is_empty() {
        text.push_str("not sent (the devices of users, groups and filters, judged by the facts Graph listed):\n");
        lines(&mut text, &counts.not_sent);
    }
    if !counts.expansions.is_empty() {
        text.push_str("rows naming a user, and the devices each stands for:\n");
        for (target, n) in &counts.expansions {
            text.push_str(&format!("  {target:<48} {n:>7}\n"));
        }
    }
    let what = if passcodes_only {
        format!(
            "reset the passcodes of these {to_send} device{}",
            if to_send == 1 { "" } else { "s" }
        )
    } else {
        let each: Vec<String> = per_action.iter().map(|(a, n)| format!("{a} {n}")).collect();
        format!("send these {to_send} actions ({})", each.join(", "))
    };
    if settling > 0 {
        text.push_str(&format!(
            "Type 'yes' to settle the {settling} sent and {what}: "
        ));
    } else {
        text.push_str(&format!("Type 'yes' to {what}: "));
    }
    text
}

/// `plan --live`: signs in as `run` does, then resolves and judges every row with reads
/// only.
pub fn live_plan(
    config: &run::LivePlanConfig,
    tenant: &graph::Tenant,
    env: &dyn Fn(&str) -> Option<String>,
    ui: &SignInUi,
) -> Result<Summary, CommandError> {
    let identity = identity(tenant, env)?;
    runtime()?.block_on(async {
        let timeout = config.settings.request_timeout;
        let (client, who) = match graph::sign_in(tenant, identity, timeout, ui).await {
            Ok(signed_in) => signed_in,
            Err(why) => {
                // Nothing was read: a summary that says why, exit 3.
                let mut summary = Summary::new("plan");
                summary.run = Some(crate::report::RunStats {
                    aborted: Some(AbortReason::Authentication(why).sentence()),
                    ..Default::default()
                });
                return Ok(summary);
            }
        };
        tracing::info!("signed in as {}", who.describe());
        run::live_plan(config, client, Some(who)).await
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simulated_tenant_is_said_before_the_question() {
        let counts = PlanCounts {
            rows: 3,
            devices: 2,
            per_platform: [("ios (remove-passcode)".to_string(), 2)].into(),
            ..PlanCounts::default()
        };
        let who = graph::SignedIn {
            method: "secret",
            tenant: "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10".into(),
            user: None,
            client_id: Some(SIMULATED_CLIENT_ID.into()),
            simulated: true,
        };
        let text = confirmation(&counts, &who);
        assert!(
            text.starts_with("SIMULATED TENANT — nothing real is touched\n"),
            "{text}"
        );
        assert!(text.ends_with("Type 'yes' to reset the passcodes of these 2 devices: "));
        let real = graph::SignedIn {
            simulated: false,
            ..who
        };
        assert!(!confirmation(&counts, &real).contains("SIMULATED"));
    }

    fn admin() -> graph::SignedIn {
        graph::SignedIn {
            method: "secret",
            tenant: "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10".into(),
            user: None,
            client_id: Some("3e5c7a9b-1d2f-4a6b-8c0d-2e4f6a8b0c1d".into()),
            simulated: false,
        }
    }

    /// Issue 18: a `--users`/`--group` job of 70 devices, 18 ineligible and 1 named
    /// twice, asks about the 51 it will reset, by platform and action.
    #[test]
    fn regression_18_the_question_of_a_users_job_counts_what_will_be_sent() {
        let counts = PlanCounts {
            rows: 2,
            devices: 70,
            per_platform: [
                ("ios (remove-passcode)".to_string(), 41),
                ("android_work_profile (reset-passcode)".to_string(), 10),
            ]
            .into(),
            not_sent: [
                ("ineligible (platform_unsupported)".to_string(), 18),
                ("duplicate".to_string(), 1),
            ]
            .into(),
            expansions: vec![
                ("group Sales".to_string(), 60),
                ("user bob@contoso.com".to_string(), 10),
            ],
            ..PlanCounts::default()
        };
        insta::assert_snapshot!(confirmation(&counts, &admin()));
    }

    /// Issue 21: a run of several actions asks about each action and its count: the
    /// users' revocations, then the devices' locks and rotations.
    #[test]
    fn regression_21_the_question_names_each_action_and_its_count() {
        let counts = PlanCounts {
            rows: 12,
            devices: 30,
            per_platform: [
                ("users (revoke-sessions)".to_string(), 12),
                ("ios (remote-lock)".to_string(), 9),
                ("macos (remote-lock)".to_string(), 2),
                ("windows (rotate-bitlocker-keys)".to_string(), 7),
            ]
            .into(),
            ..PlanCounts::default()
        };
        let text = confirmation(&counts, &admin());
        insta::assert_snapshot!(text);
        assert!(text.ends_with(
            "Type 'yes' to send these 30 actions (remote-lock 11, revoke-sessions 12, rotate-bitlocker-keys 7): "
        ));
    }

    /// Issue 22: the question of a run across tenants lists each tenant with who signed
    /// in there and its count, and a tenant no one could sign in to with why.
    #[test]
    fn regression_22_the_question_lists_each_tenant_and_who_signed_in_there() {
        let counts = PlanCounts {
            rows: 9,
            devices: 7,
            per_platform: [("ios (remote-lock)".to_string(), 7)].into(),
            not_sent: [(
                "not_attempted (tenant_unavailable: northwind.onmicrosoft.com)".to_string(),
                2,
            )]
            .into(),
            ..PlanCounts::default()
        };
        let who = |t: &str| {
            Ok(format!(
                "app 3e5c7a9b-1d2f-4a6b-8c7d-9e0f1a2b3c4d (secret) in tenant {t}"
            ))
        };
        let tenants = vec![
            (
                "contoso.onmicrosoft.com".to_string(),
                who("6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10"),
                4,
            ),
            (
                "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d".to_string(),
                who("0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"),
                3,
            ),
            (
                "northwind.onmicrosoft.com".to_string(),
                Err(
                    "authentication failed: AADSTS700016: the app is not consented in this tenant"
                        .to_string(),
                ),
                0,
            ),
        ];
        let text = confirmation_many(&counts, &tenants, false);
        insta::assert_snapshot!(text);
        assert!(text.ends_with("Type 'yes' to send these 7 actions (remote-lock 7): "));
    }

    /// Issue 18: a resume says what the run it continues did and what is left.
    #[test]
    fn regression_18_the_question_of_a_resume_says_what_is_done_and_left() {
        let counts = PlanCounts {
            rows: 70,
            devices: 35,
            done: 35,
            per_platform: [("ios (remove-passcode)".to_string(), 19)].into(),
            resumed: Some(run::Resumed {
                started_at: "2026-12-01T12:00:00Z".into(),
                ledger: PathBuf::from("reports/incident.csv.ledger"),
                done: [("ineligible".to_string(), 5), ("succeeded".to_string(), 30)].into(),
                settling: 16,
            }),
            ..PlanCounts::default()
        };
        insta::assert_snapshot!(confirmation(&counts, &admin()));
    }
}
