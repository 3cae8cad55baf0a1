//! `intune-reset run`: plan, confirm, then reset every eligible device through Graph.
//!
//! A streaming pipeline (DESIGN.md, "Running"): a reader thread plans rows one at a
//! time; rows with a final outcome go straight to the report; planned devices go to at
//! most `--concurrency` engine tasks; one writer task owns the report file, the summary
//! and the progress bar, and flushes every row as it arrives, so a killed run keeps
//! every finished row.

pub mod cooldown;
pub mod engine;
pub mod journal;
pub mod limiter;
pub mod lock;
mod progress;
pub mod reaction;
pub mod resume;
pub mod settings;
pub mod verify;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use crate::graph::{
    AppCredential, Cloud, Endpoints, GraphApi, GraphClient, Identity, IdentityFlags, Secret,
};
use crate::job::Column;
use crate::plan::{
    Assessment, CommandError, PlanOptions, Planner, assess_all, open_jobs, report_path,
    write_summary_json,
};
use crate::report::{Outcome, ReportFormat, ReportRow, ReportWriter, RunStats, Summary};
use crate::sim::{FaultKind, Inventory, Latency, SimConfig, SimHandle, Simulator};

pub use engine::{Engine, ReadFailure, Settings};
pub use reaction::AbortReason;

/// Where the requests go.
#[derive(Debug, Clone)]
pub enum Target {
    /// A real tenant: identity from flags and environment.
    Tenant {
        identity: IdentityFlags,
        cloud: Cloud,
        graph_url: Option<String>,
        authority_url: Option<String>,
    },
    /// `--simulate`: an in-process simulator seeded from the job files' devices, with
    /// Intune's documented limits and a realistic network (the README's demo).
    Simulate { seed: u64 },
}

/// Everything `run` needs, validated; nothing here knows about clap.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub files: Vec<PathBuf>,
    pub options: PlanOptions,
    pub report: Option<PathBuf>,
    pub format: ReportFormat,
    pub summary_json: Option<PathBuf>,
    /// `--yes`: no confirmation prompt (required without a terminal).
    pub yes: bool,
    pub max_devices: Option<u64>,
    /// Pacing and retries; `request_timeout` is also the HTTP client's timeout.
    pub settings: Settings,
    pub target: Target,
    /// A person is at a terminal (stdin and stderr are TTYs): ask, show progress.
    pub interactive: bool,
    /// `--resume`: continue the run recorded in `report`.
    pub resume: bool,
    /// `--lock`: the lock file [default: `<report folder>/<job>.lock`].
    pub lock: Option<PathBuf>,
}

impl RunConfig {
    /// The lock for this job: beside the report, named after the first job file, so
    /// two cron runs of one job (with timestamped reports) still exclude each other.
    pub fn lock_path(&self, report: &Path) -> PathBuf {
        self.lock.clone().unwrap_or_else(|| {
            let job = self
                .files
                .first()
                .and_then(|f| f.file_stem())
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "job".into());
            report
                .parent()
                .unwrap_or(Path::new("."))
                .join(format!("{job}.lock"))
        })
    }
}

/// How a run ended.
pub struct RunOutcome {
    pub summary: Summary,
    pub aborted: Option<AbortReason>,
}

/// Counts of a plan, for the confirmation and `--max-devices`.
struct PlanCounts {
    rows: u64,
    devices: u64,
    per_platform: BTreeMap<String, u64>,
}

pub fn run(
    config: RunConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RunOutcome, CommandError> {
    if config.resume && config.report.is_none() {
        return Err(CommandError::Usage(
            "--resume needs --report PATH: the report of the run to continue".into(),
        ));
    }
    if !config.yes && !config.interactive {
        return Err(CommandError::Usage(
            "refusing to reset passcodes without confirmation: there is no terminal to ask on; pass --yes to confirm".into(),
        ));
    }
    // The endpoints first: a plain-http URL to another host is a usage error (exit 2)
    // found before any file is read or any connection is opened.
    if let Target::Tenant {
        cloud,
        graph_url,
        authority_url,
        ..
    } = &config.target
    {
        Endpoints::new(*cloud, graph_url.as_deref(), authority_url.as_deref())
            .map_err(|e| CommandError::Usage(e.to_string()))?;
    }
    let jobs = open_jobs(&config.files)?;
    let report = report_path(&config.report, &config.files, config.format);
    if !config.resume && report.exists() {
        return Err(CommandError::Usage(format!(
            "the report {} already exists: it is the record of an earlier run. Pass --resume to \
             continue that run, or choose another --report",
            report.display()
        )));
    }
    let (_lock, warning) = lock::acquire(&config.lock_path(&report))
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    if let Some(warning) = warning {
        tracing::warn!("{warning}");
    }
    if config.options.action.is_none()
        && let Some(job) = jobs
            .iter()
            .find(|j| j.action.is_none() && !j.file.columns.has(Column::Action))
    {
        return Err(CommandError::Usage(format!(
            "say which action to take: pass --action remove-passcode, reset-pin or auto \
             ({} names none: it has no action column and is not a job document with one)",
            job.file.source
        )));
    }
    let counts = count_plan(jobs, config.options)?;
    if let Some(max) = config.max_devices
        && counts.devices > max
    {
        return Err(CommandError::Usage(format!(
            "the job has {} devices to act on, more than --max-devices {max}; nothing was sent",
            counts.devices
        )));
    }
    if !config.yes && !confirm(&counts)? {
        return Ok(RunOutcome {
            summary: Summary::new("run"),
            aborted: Some(AbortReason::NotConfirmed),
        });
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::Usage(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let simulator = match &config.target {
            Target::Simulate { seed } => Some(start_simulator(&config.files, *seed).await?),
            Target::Tenant { .. } => None,
        };
        let signed_in = match &simulator {
            Some(sim) => sign_in_simulated(&config, sim).await,
            None => sign_in(&config.target, config.settings.request_timeout, env).await,
        };
        let outcome = match signed_in {
            Ok(client) => execute(&config, client, counts.devices, &report).await,
            Err(reason) => Ok(RunOutcome {
                summary: Summary::new("run"),
                aborted: Some(reason),
            }),
        };
        if let Some(sim) = simulator {
            let stats = sim.shutdown().await;
            eprint!("{}", stats.render());
        }
        outcome
    })
}

/// The demo's simulator: the job's devices, Intune's limits, 40-120 ms answers, and the
/// occasional 503 and lost answer real networks have, so verification shows too.
async fn start_simulator(files: &[PathBuf], seed: u64) -> Result<SimHandle, CommandError> {
    let inventory = Inventory::from_job_files(files, seed)
        .map_err(|e| CommandError::Usage(format!("cannot seed the simulator: {e}")))?;
    let config = SimConfig {
        inventory,
        seed,
        latency: Latency {
            base: Duration::from_millis(40),
            jitter: Duration::from_millis(80),
        },
        faults: vec![
            (FaultKind::ServiceUnavailable, 0.005),
            (FaultKind::DropAfterEffect, 0.005),
        ],
        action_delay: Duration::from_secs(5),
        ..SimConfig::default()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| CommandError::Usage(format!("cannot start the simulator: {e}")))?;
    let sim = Simulator::start(config, listener)
        .map_err(|e| CommandError::Usage(format!("cannot start the simulator: {e}")))?;
    tracing::info!(url = %sim.base_url(), "simulated tenant started; no real tenant is touched");
    Ok(sim)
}

async fn sign_in_simulated(
    config: &RunConfig,
    sim: &SimHandle,
) -> Result<GraphClient, AbortReason> {
    simulated_client(sim, SIMULATED_CLIENT_ID, config.settings.request_timeout).await
}

/// A client signed in to a simulator as app `client_id` (it accepts any secret).
pub async fn simulated_client(
    sim: &SimHandle,
    client_id: &str,
    timeout: Duration,
) -> Result<GraphClient, AbortReason> {
    let auth = |e: String| AbortReason::Authentication(e);
    let url = sim.base_url();
    let endpoints =
        Endpoints::new(Cloud::Global, Some(&url), Some(&url)).map_err(|e| auth(e.to_string()))?;
    let identity = Identity::App {
        tenant: sim.config().tenant_id.clone(),
        client_id: client_id.into(),
        credential: AppCredential::Secret(Secret::new("simulated-secret")),
    };
    first_token(endpoints, identity, timeout).await
}

/// Builds the client and fetches a first token, so a wrong secret stops everything
/// before any device is touched.
async fn first_token(
    endpoints: Endpoints,
    identity: Identity,
    timeout: Duration,
) -> Result<GraphClient, AbortReason> {
    let auth = |e: String| AbortReason::Authentication(e);
    let client =
        GraphClient::sign_in(endpoints, identity, timeout).map_err(|e| auth(e.to_string()))?;
    client
        .tokens()
        .token()
        .await
        .map_err(|e| auth(e.to_string()))?;
    Ok(client)
}

/// The app id the demo signs in with.
pub const SIMULATED_CLIENT_ID: &str = "0c4d2a7e-5b1f-4e8a-9d3c-7f6e5d4c3b2a";

/// Plans every row once without writing, to count what the run will act on.
fn count_plan(
    jobs: Vec<crate::plan::OpenedJob>,
    options: PlanOptions,
) -> Result<PlanCounts, CommandError> {
    let mut planner = Planner::new(options);
    let mut counts = PlanCounts {
        rows: 0,
        devices: 0,
        per_platform: BTreeMap::new(),
    };
    assess_all(jobs, &mut planner, &mut |a| {
        counts.rows += 1;
        if a.work.is_some() {
            counts.devices += 1;
            let platform = if a.row.platform.is_empty() {
                "to be looked up".to_string()
            } else {
                format!("{} ({})", a.row.platform, a.row.action)
            };
            *counts.per_platform.entry(platform).or_default() += 1;
        }
    })?;
    Ok(counts)
}

/// Shows the plan's counts and asks for `yes` on the terminal.
fn confirm(counts: &PlanCounts) -> Result<bool, CommandError> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "{} rows; {} devices will be acted on:",
        counts.rows, counts.devices
    );
    for (platform, n) in &counts.per_platform {
        let _ = writeln!(err, "  {platform:<48} {n:>7}");
    }
    let _ = write!(
        err,
        "Type 'yes' to reset the passcodes of these {} devices: ",
        counts.devices
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| CommandError::Usage(format!("cannot read the confirmation: {e}")))?;
    Ok(answer.trim().eq_ignore_ascii_case("yes"))
}

/// Builds the Graph client and fetches a first token, so a wrong secret stops the
/// command before any device is touched. `run` and `status` both sign in here.
pub(crate) async fn sign_in(
    target: &Target,
    timeout: Duration,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<GraphClient, AbortReason> {
    let auth = |e: String| AbortReason::Authentication(e);
    let Target::Tenant {
        identity,
        cloud,
        graph_url,
        authority_url,
    } = target
    else {
        return Err(auth("no tenant is configured".into()));
    };
    let endpoints = Endpoints::new(*cloud, graph_url.as_deref(), authority_url.as_deref())
        .map_err(|e| auth(e.to_string()))?;
    let resolved =
        crate::graph::credentials::resolve(identity, env).map_err(|e| auth(e.to_string()))?;
    for warning in &resolved.warnings {
        tracing::warn!("{warning}");
    }
    first_token(endpoints, resolved.identity, timeout).await
}

/// The pipeline, on an already signed-in client.
pub async fn execute<G: GraphApi>(
    config: &RunConfig,
    graph: G,
    devices: u64,
    path: &Path,
) -> Result<RunOutcome, CommandError> {
    let started = Instant::now();
    let jobs = open_jobs(&config.files)?;
    let write_err = |source| CommandError::Write {
        what: "the report",
        path: path.to_owned(),
        source,
    };
    let journal_file = journal::journal_path(path);
    let (writer, resumed) = if config.resume {
        let resumed = resume::prepare(path, config.format)?;
        let known: HashSet<&str> = jobs.iter().map(|j| j.file.source.as_str()).collect();
        if let Some(other) = resumed.sources.iter().find(|s| !known.contains(s.as_str())) {
            return Err(CommandError::Usage(format!(
                "cannot resume: the report {} was written for the job file {other}, which is not among the files given; resume with the same files",
                path.display()
            )));
        }
        (
            ReportWriter::append(path, config.format).map_err(write_err)?,
            Some(resumed),
        )
    } else {
        // A fresh run: a journal left by an earlier run of this report path says nothing
        // about this one.
        if let Err(e) = std::fs::remove_file(&journal_file)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(write_err(e));
        }
        (
            ReportWriter::create(path, config.format).map_err(write_err)?,
            None,
        )
    };
    let journal = journal::Journal::open(&journal_file).map_err(|source| CommandError::Write {
        what: "the in-flight journal",
        path: journal_file.clone(),
        source,
    })?;
    let engine = Arc::new(Engine::new(graph, config.settings.clone()).with_journal(journal));
    let signals = tokio::spawn(watch_signals(engine.clone()));

    let (settled, mut in_flight, initial) = match resumed {
        Some(r) => (r.settled, r.in_flight, r.summary),
        None => (HashSet::new(), HashMap::new(), Summary::new("run")),
    };
    let (row_tx, row_rx) = mpsc::channel::<ReportRow>(1024);
    let progress = progress::Progress::new(config.interactive, devices);
    let collector = tokio::spawn(collect(writer, row_rx, progress.clone(), initial));

    let (plan_tx, mut plan_rx) = mpsc::channel::<Assessment>(256);
    let options = config.options;
    let reader = std::thread::spawn(move || {
        let mut planner = Planner::new(options);
        assess_all(jobs, &mut planner, &mut |a| {
            // The receiver only goes away when the run is over.
            let _ = plan_tx.blocking_send(a);
        })
    });

    let slots = Arc::new(Semaphore::new(config.settings.concurrency.max(1)));
    let mut tasks = JoinSet::new();
    while let Some(Assessment { row, work }) = plan_rx.recv().await {
        let key = journal::row_key(&row.source, row.row);
        if settled.contains(&key) {
            continue;
        }
        let Some(work) = work else {
            let _ = row_tx.send(row).await;
            continue;
        };
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        if engine.is_aborted() {
            let _ = row_tx.send(engine.not_attempted(row)).await;
            continue;
        }
        let engine = engine.clone();
        let row_tx = row_tx.clone();
        let progress = progress.clone();
        let prior = in_flight.remove(&key);
        tasks.spawn(async move {
            let row = engine.process(row, work, prior).await;
            progress.device_done(&row, engine.counters.throttled.load(Ordering::Relaxed));
            let _ = row_tx.send(row).await;
            drop(slot);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    drop(row_tx);
    signals.abort();
    let files = reader
        .join()
        .map_err(|_| CommandError::Usage("the job reader stopped unexpectedly".into()))??;
    let (mut summary, write_result) = collector
        .await
        .map_err(|_| CommandError::Usage("the report writer stopped unexpectedly".into()))?;
    write_result.map_err(write_err)?;
    progress.finish();
    // Every row now has its final row in the report: the journal is only needed after
    // a crash, so a run that ended on its own (even interrupted) removes it.
    if let Err(e) = std::fs::remove_file(&journal_file) {
        tracing::warn!("cannot remove the journal {}: {e}", journal_file.display());
    }

    summary.files = files;
    summary.report = Some(path.to_owned());
    let elapsed = started.elapsed();
    let succeeded = summary
        .outcomes
        .get(&Outcome::Succeeded)
        .copied()
        .unwrap_or(0);
    let aborted = engine.abort_reason();
    let c = &engine.counters;
    summary.run = Some(RunStats {
        requests: c.requests.load(Ordering::Relaxed),
        posts: c.posts.load(Ordering::Relaxed),
        throttled: c.throttled.load(Ordering::Relaxed),
        confirmed_by_action_results: c.confirmed_by_results.load(Ordering::Relaxed),
        resets_per_second: succeeded as f64 / elapsed.as_secs_f64().max(1e-9),
        aborted: aborted.as_ref().map(AbortReason::sentence),
    });
    let summary = summary.with_elapsed(elapsed);
    if let Some(json_path) = &config.summary_json {
        write_summary_json(json_path, &summary)?;
    }
    Ok(RunOutcome { summary, aborted })
}

/// The one owner of the report file: writes and flushes each row as it arrives.
async fn collect(
    mut writer: ReportWriter,
    mut rows: mpsc::Receiver<ReportRow>,
    progress: progress::Progress,
    mut summary: Summary,
) -> (Summary, std::io::Result<()>) {
    let mut result = Ok(());
    while let Some(row) = rows.recv().await {
        summary.count(&row);
        if result.is_ok() {
            result = writer.write(&row).and_then(|_| writer.flush());
            if let Err(e) = &result {
                progress.println(&format!("cannot write the report: {e}"));
            }
        }
    }
    (summary, result)
}

/// Ctrl-C or SIGTERM: stop dispatching and let in-flight devices finish. A second one
/// exits at once; every row written so far is on disk.
async fn watch_signals<G: GraphApi>(engine: Arc<Engine<G>>) {
    let mut signals = 0;
    loop {
        if !next_signal().await {
            return;
        }
        signals += 1;
        if signals == 1 {
            tracing::warn!(
                "interrupted: finishing the devices in flight; interrupt again to exit at once"
            );
            engine.abort(AbortReason::Interrupted);
        } else {
            eprintln!("intune-reset: interrupted twice: exiting now");
            std::process::exit(crate::cli::EXIT_ABORTED.into());
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

#[cfg(not(unix))]
async fn next_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}
