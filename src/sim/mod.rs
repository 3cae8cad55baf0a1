//! A local stand-in for the parts of Microsoft Graph and Entra ID that intune-reset uses,
//! served on loopback: for rehearsing a runbook before an incident, for the README's demo
//! (`run --simulate`) and as the backbone of the end-to-end tests.
//!
//! It is "faithful" where the runner's correctness depends on it: the documented Intune
//! throttling limits with `Retry-After` (docs/graph.md, "Throttling"), Graph's and Entra's error
//! shapes, `@odata.nextLink` paging, `$filter` that silently ignores what it does not
//! support, `$batch`, and `deviceActionResults` that change with time. Faults (429 without
//! `Retry-After`, 503/504, dropped connections before or after a reset took effect, slow
//! answers, expired tokens) are injected on request, from a seed, reproducibly.
//!
//! # Layout
//! - [`Simulator::start`] takes a [`SimConfig`] and a bound listener (as mini-redis's
//!   `run`), so tests drive the real server on `127.0.0.1:0`; it returns a [`SimHandle`].
//! - `server`: the hyper service, routing, common headers, latency, logging.
//! - `auth` and `assertion`: the v2.0 token endpoint, client assertions, the tokens.
//! - [`token_faults`]: the token endpoint's faults, the first requests' in order.
//! - `graph`: the Graph pipeline (token check, fault roll, throttle, handler).
//! - `devices` and `render`: managedDevices list/get and the device actions
//!   (`resetPasscode`, `remoteLock`, beta's `rotateBitLockerKeys`); a device as v1.0 or
//!   beta JSON.
//! - `actions`: queued actions and the `deviceActionResults` they show over time, each
//!   action with its own entry, outcomes and counts.
//! - [`audit`]: Intune's audit trail of the actions carried out: `auditEvents` and
//!   `remoteActionAudits`.
//! - `users`: Entra's directory users, `GET /users/{id or UPN}` and
//!   `revokeSignInSessions`, with the users' `signInSessionsValidFromDateTime`.
//! - `batch`: `POST /$batch`.
//! - `odata`: `$filter`, `$select`, `$top`, `$skiptoken`.
//! - [`throttle`]: sliding-window limits per app and per tenant (Intune's), and Entra's
//!   directory budget per app for users' requests.
//! - [`faults`]: seeded fault injection.
//! - [`inventory`]: the devices, generated or read from job files.
//! - `reply`: Graph's error envelope and the answer type every handler returns.
//! - `stats` and `log`: what the simulator saw, as a summary and a JSON Lines log.
//! - `rehearsal`: a rehearsal's tenants, seeded from its job (one per tenant its rows
//!   name), saved beside its report and loaded again.
//! - [`tenants`]: further tenants beside the first (`--tenant-inventory`), each with
//!   its own devices, users, groups, faults, throttling windows, state and counts; a
//!   Graph request is served from the tenant its token's `tid` names.
//! - [`serve_until_interrupted`]: the `simulate` command around all of it.
//!
//! A command: it uses the device domain, the job readers and the rules; never another
//! command, never Graph's client.

#[cfg(test)]
mod action_tests;
mod actions;
mod assertion;
pub mod audit;
mod auth;
mod batch;
mod clock;
mod command;
mod devices;
mod dice;
pub mod faults;
mod graph;
pub mod groups;
pub mod inventory;
mod log;
mod odata;
pub mod rehearsal;
#[cfg(test)]
mod rehearsal_tests;
mod render;
mod reply;
mod server;
pub mod signin;
mod stats;
#[cfg(test)]
mod tenant_tests;
pub mod tenants;
pub mod throttle;
pub mod token_faults;
#[cfg(test)]
mod user_tests;
mod users;

use std::path::PathBuf;
use std::time::Duration;

pub use actions::{ERROR_CANNOT_CLEAR_PASSCODE, RestoredReset};
pub use audit::{AuditCorrelation, SavedAudit};
pub use clock::SimClock;
pub use command::serve_until_interrupted;
pub use faults::{FaultKind, parse_fault};
pub use inventory::Lookup;
pub use inventory::Support;
pub use inventory::{Device, Inventory, InventoryError, JobTargets};
pub use rehearsal::SavedTenant;
pub use server::{SimHandle, Simulator};
pub use stats::SimStats;
pub use tenants::{Restored, TenantConfig};
pub use throttle::{DirectoryLimits, GraphLimits, Limits};
pub use token_faults::{TokenFault, parse_token_fault, token_fault_sequence};
pub use users::RestoredUser;

/// The tenant the simulator answers for when nothing else is configured.
pub const DEFAULT_TENANT_ID: &str = "6f1c2a4e-0b7d-4c1a-9e3f-5a8b2d7c4e10";
/// The tenant's domain: Entra accepts it in place of the tenant id in the token URL.
pub const DEFAULT_TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";

/// Everything the simulator needs; nothing here knows about clap.
///
/// The fields configure the first tenant (its id, domain, devices, groups, faults,
/// deny flags, what a saved tenant restores) and what every tenant shares (the app's
/// credentials, the limits each tenant gets its own windows of, delays, the clock, the
/// seed); `more_tenants` adds further tenants beside it (see [`tenants`]).
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The tenant id accepted in the token URL (`/{tenant}/oauth2/v2.0/token`).
    pub tenant_id: String,
    /// The tenant's domain, accepted in the token URL in place of the id, as Entra does.
    pub tenant_domain: String,
    /// When set, the only client secret accepted (else AADSTS7000215); when `None`, any
    /// non-empty secret is accepted for any client id.
    pub client_secret: Option<Secret>,
    /// When set, the thumbprint (base64url `x5t#S256` or `x5t`) a client assertion must
    /// name (else AADSTS700027); when `None`, any assertion with a thumbprint is accepted.
    pub certificate_thumbprint: Option<String>,
    /// Client ids that lack `DeviceManagementManagedDevices.PrivilegedOperations.All`:
    /// their `resetPasscode` (and `remoteLock`, `rotateBitLockerKeys`) calls answer 403
    /// naming that permission.
    pub deny_apps: Vec<String>,
    /// `expires_in` of issued tokens; Entra's default is 3599 seconds.
    pub token_lifetime: Duration,
    /// Intune's throttling limits, or `None` to accept everything (benchmarks): with
    /// `None`, users' requests are not limited either, whatever `directory_limits` say.
    pub limits: Option<Limits>,
    /// Entra's directory limits for users' requests (`GET /users/...`,
    /// `revokeSignInSessions`), a budget apart from Intune's; `None` accepts them all.
    pub directory_limits: Option<DirectoryLimits>,
    /// Graph's own limit per app across every tenant (130,000 requests per 10 s);
    /// `None`, or `limits: None`, counts and refuses nothing.
    pub graph_limits: Option<GraphLimits>,
    /// Further tenants beside the first (`simulate --tenant-inventory`), each with its
    /// own devices, users, groups, faults, windows and state. A rehearsal's saved
    /// tenant (`<report>.sim.json`) keeps them all.
    pub more_tenants: Vec<TenantConfig>,
    /// Delay added to every answer, to make a loopback run feel like a real network.
    pub latency: Latency,
    /// Faults to inject, each with the probability that a request meets it. Rolled in
    /// order; the first that fires wins.
    pub faults: Vec<(FaultKind, f64)>,
    /// How long a `slow` fault holds its answer.
    pub slow: Duration,
    /// What the first token requests meet, one fault each, in order; the requests
    /// after them are served as usual. Sign-in retries are tested with these.
    pub token_faults: Vec<TokenFault>,
    /// How long after it arrives a device action (`resetPasscode`, `remoteLock`,
    /// `rotateBitLockerKeys`; alone or inside `$batch`) or a user's
    /// `revokeSignInSessions` takes effect; its answer leaves
    /// only after that. A client whose timeout is shorter
    /// gives up first and the reset still lands, as a request abandoned by its client
    /// may on real Graph.
    pub effect_delay: Duration,
    /// Seeds the generated inventory, the faults, the outcomes of actions, the passcodes
    /// of resets and the unlock PINs of Mac locks.
    pub seed: u64,
    /// How long an action (reset, lock, rotation) stays `pending` in
    /// `deviceActionResults` before its final state.
    pub action_delay: Duration,
    /// Where to write the JSON Lines request log, if anywhere.
    pub log_path: Option<PathBuf>,
    /// The tenant's managed devices.
    pub inventory: Inventory,
    /// Page size of the managedDevices list when `$top` does not ask for fewer; Intune
    /// pages 1000 at a time (docs/graph.md, "Finding devices").
    pub page_size: usize,
    /// The simulator's notion of time; tests advance it instead of sleeping.
    pub clock: SimClock,
    /// Delegated sign-in: whether the simulated user approves and holds an Intune
    /// role, and Entra errors on demand.
    pub sign_in: signin::SignInConfig,
    /// Entra groups and their members.
    pub groups: Vec<groups::SimGroup>,
    /// Group reads answer 403 (the app lacks `GroupMember.Read.All`).
    pub deny_group_read: bool,
    /// Resets a rehearsal's saved tenant recorded, by device id: the tenant goes on
    /// from them (`status --simulate`, `run REPORT --simulate`).
    pub restored_resets: Vec<(String, RestoredReset)>,
    /// Remote locks a rehearsal's saved tenant recorded, by device id.
    pub restored_locks: Vec<(String, RestoredReset)>,
    /// BitLocker key rotations a rehearsal's saved tenant recorded, by device id.
    pub restored_rotations: Vec<(String, RestoredReset)>,
    /// How long after its action an audit record shows in the audit lists: Intune's
    /// audit appears late, and nobody documents how late.
    pub audit_delay: Duration,
    /// Whether audit records carry the `client-request-id` that carried the action out.
    pub audit_correlation: AuditCorrelation,
    /// The audit lists answer 403 (the app lacks the permission to read them).
    pub deny_audit_read: bool,
    /// Audit records a rehearsal's saved tenant kept: its follow-ups read them.
    pub restored_audit: Vec<SavedAudit>,
    /// `revokeSignInSessions` answers 403 `Authorization_RequestDenied`, as for an app
    /// without `User.RevokeSessions.All` (or a signed-in user without an Entra role
    /// allowing it). Reading users is never refused.
    pub deny_revoke_sessions: bool,
    /// Users' revocations a rehearsal's saved tenant recorded.
    pub restored_users: Vec<RestoredUser>,
    /// The moment users never revoked have their sessions valid from days before (a
    /// saved tenant's, so they read the same reloaded); `None`: the clock's start.
    pub directory_epoch: Option<std::time::SystemTime>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            tenant_id: DEFAULT_TENANT_ID.to_owned(),
            tenant_domain: DEFAULT_TENANT_DOMAIN.to_owned(),
            client_secret: None,
            certificate_thumbprint: None,
            deny_apps: Vec::new(),
            token_lifetime: Duration::from_secs(3599),
            limits: Some(Limits::default()),
            directory_limits: Some(DirectoryLimits::default()),
            graph_limits: Some(GraphLimits::default()),
            more_tenants: Vec::new(),
            latency: Latency::default(),
            faults: Vec::new(),
            slow: Duration::from_secs(5),
            token_faults: Vec::new(),
            effect_delay: Duration::ZERO,
            seed: 1,
            action_delay: Duration::from_secs(10),
            log_path: None,
            inventory: Inventory::default(),
            page_size: 1000,
            clock: SimClock::new(),
            sign_in: signin::SignInConfig {
                poll_interval: Duration::from_secs(1),
                ..signin::SignInConfig::default()
            },
            groups: Vec::new(),
            deny_group_read: false,
            restored_resets: Vec::new(),
            restored_locks: Vec::new(),
            restored_rotations: Vec::new(),
            audit_delay: Duration::ZERO,
            audit_correlation: AuditCorrelation::Match,
            deny_audit_read: false,
            restored_audit: Vec::new(),
            deny_revoke_sessions: false,
            restored_users: Vec::new(),
            directory_epoch: None,
        }
    }
}

impl SimConfig {
    /// Each tenant's id and domain: the first (these fields'), then `more_tenants` in
    /// order.
    pub fn tenant_ids(&self) -> Vec<(String, String)> {
        std::iter::once((self.tenant_id.clone(), self.tenant_domain.clone()))
            .chain(
                self.more_tenants
                    .iter()
                    .map(|t| (t.id.clone(), t.domain.clone())),
            )
            .collect()
    }

    /// The id of the tenant a token URL's `{tenant}` names: a tenant's id or domain
    /// (any case), or `organizations` and `common`, which sign a work account in to its
    /// home tenant: the first. `None` for a tenant the simulator does not hold.
    pub fn tenant_for_authority(&self, name: &str) -> Option<&str> {
        let first = name.eq_ignore_ascii_case(&self.tenant_id)
            || name.eq_ignore_ascii_case(&self.tenant_domain)
            || name.eq_ignore_ascii_case("organizations")
            || name.eq_ignore_ascii_case("common");
        if first {
            return Some(&self.tenant_id);
        }
        self.more_tenants
            .iter()
            .find(|t| name.eq_ignore_ascii_case(&t.id) || name.eq_ignore_ascii_case(&t.domain))
            .map(|t| t.id.as_str())
    }
}

/// A client secret the simulator requires. Its `Debug` hides the value, so printing a
/// [`SimConfig`] never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for comparing with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<hidden>)")
    }
}

/// Network delay to imitate: `base` plus a uniformly random share of `jitter`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    /// Added to every answer.
    pub base: Duration,
    /// Upper bound of the random extra delay.
    pub jitter: Duration,
}

/// The simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot open the request log {path}: {source}")]
    Log {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot listen: {0}")]
    Listen(std::io::Error),
}
