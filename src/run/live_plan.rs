//! `plan --live`: every row resolved and judged against the tenant with reads only.
//! Not one POST: the engine runs in its dry mode, where a row that would be reset ends
//! `planned`, with the live facts it was judged by.
//!
//! It lives beside `run` because it is `run`'s own resolution (lookups, the inventory
//! join, the claims that find duplicates), stopped before the first send.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use crate::error::CommandError;
use crate::graph::{GraphApi, SignedIn};
use crate::pacing::Settings;
use crate::pacing::workers::Workers;
use crate::planner::{Assessment, Identity, LookupMode, PlanOptions, Planner, assess_all};
use crate::report::xlsx::{SheetFacts, XlsxReport};
use crate::report::{ReportFormat, ReportRow, ReportWriter, RunStats, Summary};
use crate::report::{report_path, write_summary_json};

use super::engine::{Engine, Prior};
use super::ledger::RowKey;
use super::{INVENTORY_THRESHOLD, LookupVia};

/// Everything `plan --live` needs.
#[derive(Debug, Clone)]
pub struct LivePlanConfig {
    pub files: Vec<PathBuf>,
    pub options: PlanOptions,
    pub report: Option<PathBuf>,
    pub format: ReportFormat,
    pub bom: bool,
    pub summary_json: Option<PathBuf>,
    /// Read pacing and timeouts (no write is ever sent).
    pub settings: Settings,
    pub lookup_via: LookupVia,
    /// `--sheet`, `--encoding`.
    pub read: crate::job::ReadOptions,
    /// `--user`, `--group`, `--where`, `--all-devices`: expanded as `run` does.
    pub targets: super::Targets,
}

/// Resolves and judges every row by reads, and writes the plan report in input order.
pub async fn live_plan<G: GraphApi>(
    config: &LivePlanConfig,
    graph: G,
    signed_in: Option<SignedIn>,
) -> Result<Summary, CommandError> {
    let started = Instant::now();
    let started_at = SystemTime::now();
    // Every row is judged by its live facts: that is what `--live` asks.
    let options = PlanOptions {
        lookup: LookupMode::Always,
        ..config.options.clone()
    };
    let job = super::take_job(&config.files, &config.read, &config.targets)?;
    let mut lookups = 0u64;
    let mut targets = Vec::new();
    let here = signed_in
        .as_ref()
        .map(|w| w.tenant.trim().to_ascii_lowercase());
    assess_all(
        job.open()?,
        &mut Planner::new(options.clone()),
        &mut |file, a| {
            if let Some(work) = &a.work {
                lookups += 1;
                let own_user =
                    work.choice.family().on_users() && matches!(work.identity, Identity::User(_));
                // A row naming another tenant is not read here (its row says why).
                let elsewhere = match (&work.tenant, &here) {
                    (Some(named), Some(here)) => named != here,
                    _ => false,
                };
                if !own_user
                    && !elsewhere
                    && matches!(
                        work.identity,
                        Identity::User(_) | Identity::Group(_) | Identity::Filter(_)
                    )
                {
                    targets.push((
                        RowKey::at(file as u32, a.row.row, a.step),
                        (work.identity.clone(), work.choice.family().on_users()),
                    ));
                }
            }
        },
    )?;
    let path = report_path(&config.report, &config.files, config.format);
    let write_err = |source| CommandError::Write {
        what: "the report",
        path: path.clone(),
        source,
    };
    // Checked before the first read: a report that cannot be written would waste them.
    let mut lines = match config.format {
        ReportFormat::Xlsx => None,
        format => Some(ReportWriter::create(&path, format, config.bom).map_err(write_err)?),
    };
    let engine = Arc::new(
        Engine::new(graph, config.settings.clone())
            .dry()
            .in_tenant(signed_in.as_ref()),
    );
    let inventory = match config.lookup_via {
        LookupVia::Auto => lookups >= INVENTORY_THRESHOLD,
        LookupVia::Inventory => lookups > 0,
        LookupVia::Filter => false,
    };
    if inventory && let Err(why) = engine.read_inventory().await {
        tracing::warn!(
            "reading the tenant's managed devices failed ({why}); each row is looked up by filter"
        );
    }
    // The one dispatcher; a row whose task panics (a bug) is reported, never dropped.
    // Users, groups and filters are listed side by side before any row is judged, as
    // `run` lists them before its question.
    let (keys, identities): (Vec<RowKey>, Vec<(Identity, bool)>) = targets.into_iter().unzip();
    let mut listings: std::collections::HashMap<RowKey, _> = keys
        .into_iter()
        .zip(engine.list_for(identities).await)
        .collect();
    let mut workers: Workers<(RowKey, ReportRow)> = Workers::new(config.settings.concurrency);
    let mut rows: Vec<(RowKey, ReportRow)> = Vec::new();
    let mut expansions: Vec<(String, u64)> = Vec::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(usize, Assessment)>(256);
    let jobs = job.open()?;
    let reader = std::thread::spawn(move || {
        let mut planner = Planner::new(options);
        assess_all(jobs, &mut planner, &mut |file, a| {
            let _ = tx.blocking_send((file, a));
        })
    });
    while let Some((file, Assessment { row, work, step })) = rx.recv().await {
        let key = RowKey::at(file as u32, row.row, step);
        let Some(work) = work else {
            rows.push((key, row));
            continue;
        };
        if let Some(refused) = engine.refused_here(&row, &work) {
            rows.push((key, refused));
            continue;
        }
        let items = match &work.identity {
            // A user action's user is the row's own: nothing to list.
            Identity::User(_) if work.choice.family().on_users() => vec![(key, row, work)],
            Identity::User(_) | Identity::Group(_) | Identity::Filter(_) => {
                let Some((label, user)) =
                    super::expand::expansion_label(&work.identity, work.choice)
                else {
                    continue;
                };
                // Listed above, in the first pass over the same bytes.
                let found = listings.remove(&key).unwrap_or_else(|| {
                    Err(crate::pacing::Failure::new(
                        crate::report::Outcome::NotAttempted,
                        "run_aborted",
                        "not listed",
                    ))
                });
                // Each device is judged by the facts its listing gave: a request per
                // page, not one more per device (issue 19).
                let found = found.map(|listed| match listed {
                    super::engine::Listing::Devices(devices) => {
                        let ids = devices.iter().map(|d| d.id.clone()).collect::<Vec<_>>();
                        engine.remember_listed(devices);
                        ids
                    }
                    // A group's users, for an action on users.
                    super::engine::Listing::Users(users) => users,
                });
                match found {
                    Ok(ids) => {
                        expansions.push((label.clone(), ids.len() as u64));
                        super::device_rows(key, &row, &work, &label, user.as_deref(), &ids)
                    }
                    Err(failure) => {
                        expansions.push((label, 0));
                        let mut row = row;
                        row.outcome = failure.outcome;
                        row.reason = failure.reason.into();
                        row.detail = failure.detail.into();
                        rows.push((key, row));
                        continue;
                    }
                }
            }
            _ => vec![(key, row, work)],
        };
        for (key, row, work) in items {
            let engine = engine.clone();
            let mut fallback = row.clone();
            let done = workers
                .spawn(
                    async move {
                        let done = engine.process(key, row, work, Prior::default()).await;
                        (key, done.row)
                    },
                    move |how| {
                        fallback.outcome = crate::report::Outcome::Failed;
                        fallback.reason = "internal_error".into();
                        fallback.detail = format!(
                            "intune-reset failed while judging this device ({}); plan --live sends nothing",
                            how.as_str()
                        )
                        .into();
                        (key, fallback)
                    },
                )
                .await;
            rows.extend(done);
        }
    }
    rows.extend(workers.finish().await);
    let files = reader
        .join()
        .map_err(|_| CommandError::Usage("the job reader stopped unexpectedly".into()))??;
    rows.sort_by_key(|(key, _)| *key);
    for (target, n) in &expansions {
        tracing::info!("{}", super::expand::expansion_line(target, *n));
    }
    let mut summary = Summary::new("plan");
    for (_, row) in &rows {
        summary.count(row);
    }
    summary.files = files;
    summary.report = Some(path.clone());
    summary.signed_in = signed_in;
    summary.expansions = expansions.into_iter().collect();
    let c = engine.counters();
    summary.run = Some(RunStats {
        requests: c.requests.load(Ordering::Relaxed),
        posts: c.posts.load(Ordering::Relaxed),
        throttled: c.throttled.load(Ordering::Relaxed),
        aborted: engine
            .abort_reason()
            .as_ref()
            .map(crate::pacing::AbortReason::sentence),
        ..RunStats::default()
    });
    let summary = summary.with_elapsed(started.elapsed());
    match &mut lines {
        Some(w) => {
            for (_, row) in &rows {
                w.write(row).map_err(write_err)?;
            }
            w.flush().map_err(write_err)?;
        }
        None => {
            let mut book = XlsxReport::default();
            for (_, row) in &rows {
                book.push(row).map_err(write_err)?;
            }
            let facts = SheetFacts {
                started: started_at,
                ended: SystemTime::now(),
                identity: summary
                    .signed_in
                    .as_ref()
                    .map(SignedIn::pairs)
                    .unwrap_or_default(),
            };
            book.save(&path, &summary, &facts).map_err(write_err)?;
        }
    }
    if let Some(json) = &config.summary_json {
        write_summary_json(json, &summary)?;
    }
    Ok(summary)
}
