//! `simulate` arguments: clap types turned into one [`sim::SimConfig`].

use std::path::PathBuf;

use crate::sim;

use crate::error::{EXIT_OK, EXIT_USAGE};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Faults: 429-no-retry-after, fractional-retry-after, 503, 503-no-retry-after, 504, \
drop-before, drop-after, slow, expired-token, next-link-loop (a page names itself as the next), echo-authorization (a 400 quoting the Authorization header) (e.g. --fault drop-after=0.02 --fault 429-no-retry-after=0.05).\n\
Token faults: 429 (with Retry-After: 1), 503, drop, slow; the first token requests meet them one each, in order, \
then sign-in works (e.g. --token-fault 503:4 --token-fault drop).\n\
Several tenants: the other flags configure the first tenant (the limits, delays and app credentials hold in every tenant); \
--tenant-inventory adds one more per ID, with its own devices, users, groups (--tenant-group), faults (--tenant-fault), \
throttling windows and counts; a Graph request is served from the tenant its token names \
(e.g. --tenant-inventory 2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f,fabrikam.onmicrosoft.com=fabrikam.csv \
--tenant-fault fabrikam.onmicrosoft.com:429-no-retry-after=0.2).\n\
The first line on stdout is `listening on http://ADDRESS`; the summary goes to stderr on exit."
)]
pub(super) struct SimulateArgs {
    /// Address to listen on. Port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDRESS")]
    bind: std::net::SocketAddr,
    /// Allow listening on an address other than loopback.
    #[arg(long)]
    allow_remote: bool,
    /// Serve the devices of these job files (CSV or JSON, as `plan` reads them).
    #[arg(long, value_name = "FILE", conflicts_with = "generate")]
    inventory: Vec<PathBuf>,
    /// Serve this many generated devices with a realistic platform mix.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    generate: usize,
    /// Seed for the generated devices, faults, reset outcomes and passcodes.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Tenant id accepted in the token URL.
    #[arg(long, value_name = "GUID", default_value = sim::DEFAULT_TENANT_ID)]
    tenant: String,
    /// Tenant domain accepted in the token URL in place of the id.
    #[arg(long, value_name = "DOMAIN", default_value = sim::DEFAULT_TENANT_DOMAIN)]
    tenant_domain: String,
    /// Require this client secret, read from the named environment variable
    /// (otherwise any non-empty secret is accepted).
    #[arg(long, value_name = "VAR")]
    client_secret_env: Option<String>,
    /// Require client assertions to name this certificate thumbprint (x5t#S256 or x5t).
    #[arg(long, value_name = "THUMBPRINT")]
    certificate_thumbprint: Option<String>,
    /// Answer this app's resetPasscode calls with 403 (missing permission). Repeatable.
    #[arg(long, value_name = "CLIENT_ID")]
    deny_app: Vec<String>,
    /// Lifetime of issued tokens, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 3599)]
    token_lifetime: u64,
    /// Writes per app per tenant per window (Intune: 200).
    #[arg(long, value_name = "N", default_value_t = 200)]
    write_limit: u32,
    /// Requests of any kind per app per tenant per window (Intune: 2000).
    #[arg(long, value_name = "N", default_value_t = 2000)]
    read_limit: u32,
    /// Writes per tenant, all apps, per window (Intune: 400).
    #[arg(long, value_name = "N", default_value_t = 400)]
    tenant_write_limit: u32,
    /// Requests of any kind per tenant, all apps, per window (Intune: 4000).
    #[arg(long, value_name = "N", default_value_t = 4000)]
    tenant_read_limit: u32,
    /// Length of the throttling window, in seconds (Intune: 20).
    #[arg(long, value_name = "SECONDS", default_value_t = 20.0)]
    window: f64,
    /// Do not throttle at all (benchmarks): no tenant's limits, no directory budget,
    /// no Graph limit across tenants.
    #[arg(long)]
    no_limits: bool,
    /// Inject a fault into this share of requests, e.g. drop-after=0.05. Repeatable.
    #[arg(long, value_name = "KIND=PROBABILITY", value_parser = sim::parse_fault)]
    fault: Vec<(sim::FaultKind, f64)>,
    /// The next token requests meet this fault, COUNT of them (default 1); repeatable,
    /// in order. Kinds: 429, 503, drop, slow.
    #[arg(long, value_name = "KIND[:COUNT]", value_parser = sim::parse_token_fault)]
    token_fault: Vec<(sim::TokenFault, usize)>,
    /// An Entra group: NAME=MEMBER,MEMBER (a member with @ is a user's UPN, any other
    /// an Entra device id), or NAME=@FILE with the members in FILE, one per line or
    /// comma-separated; repeatable.
    #[arg(long, value_name = "NAME=MEMBERS", value_parser = sim::groups::SimGroup::parse)]
    group: Vec<sim::groups::SimGroup>,
    /// Group reads answer 403, as without GroupMember.Read.All.
    #[arg(long)]
    deny_group_read: bool,
    /// A further tenant holding the devices of FILE (read as --inventory reads files):
    /// TENANT is ID or ID,DOMAIN (the domain defaults to
    /// tenant-<first 8 of the id>.onmicrosoft.com); repeatable, and a tenant named
    /// again reads that file too. Its users are its devices' UPNs.
    #[arg(long, value_name = "TENANT=FILE", value_parser = sim::tenants::parse_tenant_inventory)]
    tenant_inventory: Vec<sim::tenants::TenantInventory>,
    /// An Entra group of the tenant named by id or domain: TENANT:NAME=MEMBERS, the
    /// members as --group takes them; repeatable.
    #[arg(long, value_name = "TENANT:NAME=MEMBERS", value_parser = sim::tenants::parse_tenant_group)]
    tenant_group: Vec<(String, sim::groups::SimGroup)>,
    /// Inject a fault into this share of the named tenant's requests only, e.g.
    /// fabrikam.onmicrosoft.com:429-no-retry-after=0.2 (--fault is the first tenant's);
    /// repeatable.
    #[arg(long, value_name = "TENANT:KIND=PROBABILITY", value_parser = sim::tenants::parse_tenant_fault)]
    tenant_fault: Vec<(String, (sim::FaultKind, f64))>,
    /// An audit record (auditEvents, remoteActionAudits) shows only this long after
    /// its reset, e.g. 5m: Intune's audit appears late.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = super::parse_duration)]
    audit_delay: std::time::Duration,
    /// Whether audit records' correlationId is the resetPasscode request's
    /// client-request-id (match) or a fresh GUID that matches nothing (mismatch).
    #[arg(long, value_name = "WHICH", value_enum, default_value_t = AuditCorrelationArg::Match)]
    audit_correlation: AuditCorrelationArg,
    /// The audit lists answer 403, as without the permission to read them
    /// (DeviceManagementApps.Read.All; DeviceManagementManagedDevices.Read.All).
    #[arg(long)]
    deny_audit_read: bool,
    /// revokeSignInSessions answers 403 Authorization_RequestDenied, as without
    /// User.RevokeSessions.All (reading users still works).
    #[arg(long)]
    deny_revoke_sessions: bool,
    /// The simulated user declines delegated sign-ins (device code and browser).
    #[arg(long)]
    user_declines: bool,
    /// The simulated user who signs in holds no Intune role allowing "Reset passcode":
    /// their resets answer 403.
    #[arg(long)]
    user_without_role: bool,
    /// Delegated token requests meet this Entra refusal: 53003 (Conditional Access),
    /// 50076 (MFA required) or 65001 (no consent).
    #[arg(long, value_name = "AADSTS", value_parser = clap::builder::PossibleValuesParser::new(["53003", "50076", "65001"]))]
    entra_error: Option<String>,
    /// A resetPasscode takes effect this long after it arrives, and is answered only
    /// then: a client with a shorter --timeout gives up, and the reset still lands.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    effect_delay_ms: u64,
    /// Delay added to every answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    latency_ms: u64,
    /// Up to this much random extra delay, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    jitter_ms: u64,
    /// How long a `slow` fault holds its answer, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 5000)]
    slow_ms: u64,
    /// How long a reset stays pending in deviceActionResults, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10.0)]
    action_delay: f64,
    /// Write a JSON Lines request log here.
    #[arg(long, value_name = "PATH")]
    log: Option<PathBuf>,
}

/// `--audit-correlation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum AuditCorrelationArg {
    Match,
    Mismatch,
}

/// Seconds from the command line as a duration; negative or absurd values are usage errors.
fn seconds(flag: &str, value: f64) -> Result<std::time::Duration, String> {
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("--{flag} {value} is not a number of seconds"))
}

impl SimulateArgs {
    fn into_config(self) -> Result<(sim::SimConfig, std::net::SocketAddr), String> {
        if !self.bind.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "refusing to listen on {}: not a loopback address (add --allow-remote to mean it)",
                self.bind
            ));
        }
        let client_secret = match &self.client_secret_env {
            None => None,
            Some(var) => Some(
                std::env::var(var)
                    .ok()
                    .filter(|v| !v.is_empty())
                    .map(sim::Secret::new)
                    .ok_or_else(|| format!("--client-secret-env {var}: the variable is not set"))?,
            ),
        };
        let window = seconds("window", self.window)?;
        if window.is_zero() {
            return Err("--window must be more than 0 seconds".into());
        }
        let inventory = if self.inventory.is_empty() {
            sim::Inventory::generate_for(self.generate, self.seed, &self.tenant_domain)
        } else {
            sim::Inventory::from_job_files(&self.inventory, self.seed, &Default::default())
                .map_err(|e| e.to_string())?
        };
        let mut config = sim::SimConfig {
            tenant_id: self.tenant,
            tenant_domain: self.tenant_domain,
            client_secret,
            certificate_thumbprint: self.certificate_thumbprint,
            deny_apps: self.deny_app,
            token_lifetime: std::time::Duration::from_secs(self.token_lifetime),
            limits: (!self.no_limits).then_some(sim::Limits {
                app_writes: self.write_limit,
                app_any: self.read_limit,
                tenant_writes: self.tenant_write_limit,
                tenant_any: self.tenant_read_limit,
                window,
            }),
            latency: sim::Latency {
                base: std::time::Duration::from_millis(self.latency_ms),
                jitter: std::time::Duration::from_millis(self.jitter_ms),
            },
            faults: self.fault,
            slow: std::time::Duration::from_millis(self.slow_ms),
            token_faults: sim::token_fault_sequence(&self.token_fault),
            effect_delay: std::time::Duration::from_millis(self.effect_delay_ms),
            seed: self.seed,
            action_delay: seconds("action-delay", self.action_delay)?,
            log_path: self.log,
            inventory,
            sign_in: sim::signin::SignInConfig {
                user_declines: self.user_declines,
                user_without_role: self.user_without_role,
                entra_error: self.entra_error.as_deref().and_then(|c| c.parse().ok()),
                ..sim::SimConfig::default().sign_in
            },
            groups: self.group,
            deny_group_read: self.deny_group_read,
            audit_delay: self.audit_delay,
            audit_correlation: match self.audit_correlation {
                AuditCorrelationArg::Match => sim::AuditCorrelation::Match,
                AuditCorrelationArg::Mismatch => sim::AuditCorrelation::Mismatch,
            },
            deny_audit_read: self.deny_audit_read,
            deny_revoke_sessions: self.deny_revoke_sessions,
            ..sim::SimConfig::default()
        };
        sim::tenants::add_tenants(
            &mut config,
            &self.tenant_inventory,
            self.tenant_group,
            self.tenant_fault,
            &Default::default(),
        )?;
        Ok((config, self.bind))
    }
}

pub(super) fn simulate(args: SimulateArgs) -> u8 {
    let (config, bind) = match args.into_config() {
        Ok(c) => c,
        Err(message) => {
            super::output::error(&message);
            return EXIT_USAGE;
        }
    };
    match sim::serve_until_interrupted(config, bind) {
        Ok(stats) => {
            super::output::text("simulator summary", &stats.render());
            EXIT_OK
        }
        Err(e) => {
            super::output::error(&format!("{e:#}"));
            EXIT_USAGE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: SimulateArgs,
    }

    fn parsed(args: &[&str]) -> Result<sim::SimConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("simulate").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.args.into_config().map(|(config, _)| config)
    }

    #[test]
    fn tenant_flags_add_tenants_beside_the_first_with_their_devices_groups_and_faults() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let file = dir.path().join("fabrikam.csv");
        std::fs::write(&file, "serialNumber\nC02XK1AAJG5H\nC02XK1BBJG5H\n").expect("a job file");
        let fabrikam = "2b7e0c1d-4f3a-4e6b-9c8d-7a6b5c4d3e2f";
        let config = parsed(&[
            "--generate",
            "3",
            "--tenant-inventory",
            &format!("{fabrikam},fabrikam.onmicrosoft.com={}", file.display()),
            "--tenant-inventory",
            &format!("T3={}", file.display()),
            "--tenant-group",
            "fabrikam.onmicrosoft.com:Sales=ada@fabrikam.onmicrosoft.com",
            "--tenant-fault",
            "T3:429-no-retry-after=0.2",
            "--fault",
            "503=0.1",
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        // The first tenant is as the other flags make it.
        assert_eq!(config.tenant_id, sim::DEFAULT_TENANT_ID);
        assert_eq!(config.inventory.len(), 3);
        assert_eq!(config.faults, [(sim::FaultKind::ServiceUnavailable, 0.1)]);
        assert!(config.groups.is_empty());
        let more: Vec<(&str, &str, usize, usize, usize)> = config
            .more_tenants
            .iter()
            .map(|t| {
                let (id, domain) = (t.id.as_str(), t.domain.as_str());
                (
                    id,
                    domain,
                    t.inventory.len(),
                    t.groups.len(),
                    t.faults.len(),
                )
            })
            .collect();
        assert_eq!(
            more,
            [
                (fabrikam, "fabrikam.onmicrosoft.com", 2, 1, 0),
                ("T3", "tenant-t3.onmicrosoft.com", 2, 0, 1),
            ]
        );
        let err = parsed(&["--tenant-fault", "T9:504=0.5"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("no such tenant"), "{err}");
        let err = parsed(&["--tenant-inventory", "T2"])
            .err()
            .unwrap_or_default();
        assert!(err.contains("is not TENANT=FILE"), "{err}");
    }
}
