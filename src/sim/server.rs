//! The HTTP side: the accept loop, one hyper HTTP/1.1 connection per client, routing to
//! the token endpoint or Graph, the headers every answer carries (`request-id`, the
//! echoed `client-request-id`), latency, and the log and counts of every request.
//!
//! Raw hyper rather than a framework: the "connection dropped" faults need to close a
//! connection without any answer, which hyper does when the service returns an error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::auth::{self, TokenStore};
use super::dice::{mix, unit};
use super::graph;
use super::log::RequestLog;
use super::odata::percent_decode;
use super::reply::{Ctx, Kind, Reply, graph_error};
use super::signin;
use super::stats::SimStats;
use super::tenants::{self, Denials, Tenant, TenantConfig};
use super::throttle::GraphThrottle;
use super::token_faults::TokenFault;
use super::{SimConfig, SimError};
use crate::rules::Family;

/// Bodies larger than this are refused, as Graph caps a `$batch` payload at 4 MB.
const MAX_BODY: usize = 4 << 20;

/// The simulator's state, shared by every connection.
pub struct Shared {
    /// What the simulator was started with, inventory included.
    pub config: SimConfig,
    /// Tokens issued by the token endpoint.
    pub tokens: TokenStore,
    /// Device codes, authorization codes and refresh tokens in flight.
    pub sign_ins: super::signin::SignIns,
    /// Every tenant: the first is `config`'s, then `config.more_tenants` in order. Never
    /// empty.
    pub tenants: Vec<Tenant>,
    /// Graph's limit per app across the tenants.
    pub graph_throttle: GraphThrottle,
    /// The JSON Lines request log, if asked for.
    pub log: Option<RequestLog>,
    /// Where the simulator listens: the base URL when a client sends no `Host`.
    addr: SocketAddr,
    /// Requests seen, for request ids and latency jitter.
    counter: AtomicU64,
    /// Token requests seen, to pick each one's entry of `config.token_faults`.
    token_requests: AtomicUsize,
    /// Writes still being served, abandoned by their client or not: shutdown waits for
    /// them, so the log and the counts hold every late effect.
    writes_in_flight: watch::Sender<usize>,
    /// Random per simulator, so request ids differ between runs.
    id_base: u128,
}

/// A connection to close without an answer (the drop faults).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by an injected fault")
    }
}

impl std::error::Error for Dropped {}

/// What became of a request.
pub struct Outcome {
    /// The answer, or what is logged about a dropped request.
    pub reply: Reply,
    /// The connection is closed without sending `reply`.
    pub dropped: bool,
    /// The index in `Shared::tenants` of the tenant that served the request: a Graph
    /// request's token's, a token request's URL's. `None` when no tenant did (no valid
    /// token, a tenant the simulator does not hold); such a request counts in the
    /// first tenant's stats.
    pub tenant: Option<usize>,
}

impl Outcome {
    pub fn answer(reply: Reply) -> Outcome {
        Outcome {
            reply,
            dropped: false,
            tenant: None,
        }
    }

    pub fn dropped(reply: Reply) -> Outcome {
        Outcome {
            reply,
            dropped: true,
            tenant: None,
        }
    }

    /// The outcome, served by the tenant at `index` of `Shared::tenants`.
    pub fn in_tenant(mut self, index: Option<usize>) -> Outcome {
        self.tenant = index;
        self
    }
}

/// Namespace for [`Simulator::start`].
pub struct Simulator;

impl Simulator {
    /// Serves `config` on `listener` until [`SimHandle::shutdown`]. Must be called
    /// inside a Tokio runtime.
    pub fn start(config: SimConfig, listener: TcpListener) -> Result<SimHandle, SimError> {
        let addr = listener.local_addr().map_err(SimError::Listen)?;
        let shared = Arc::new(Shared::new(config, addr)?);
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(SimHandle {
            addr,
            shared,
            stop,
            task,
        })
    }
}

/// A running simulator.
pub struct SimHandle {
    /// Where the simulator listens.
    addr: SocketAddr,
    /// Read for [`SimHandle::stats`].
    shared: Arc<Shared>,
    /// Tells the accept loop to stop.
    stop: watch::Sender<bool>,
    /// The accept loop, awaited on shutdown.
    task: JoinHandle<()>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: both the Graph and the authority base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The token endpoint for the configured tenant (the first).
    pub fn token_url(&self) -> String {
        self.token_url_for(&self.shared.config.tenant_id)
    }

    /// The token endpoint of `tenant` (an id or a domain): its own authority.
    pub fn token_url_for(&self, tenant: &str) -> String {
        format!("{}/{tenant}/oauth2/v2.0/token", self.base_url())
    }

    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Each id and domain of the tenants it serves: the first (`config`'s own), then
    /// `config.more_tenants` in order.
    pub fn tenant_ids(&self) -> Vec<(String, String)> {
        self.shared.config.tenant_ids()
    }

    /// Each reset device's id and what its resets were in the first tenant, for a
    /// saved tenant.
    pub fn saved_resets(&self) -> Vec<(String, super::RestoredReset)> {
        self.shared.first().restorable().resets
    }

    /// Each locked device's id and what its locks were in the first tenant.
    pub fn saved_locks(&self) -> Vec<(String, super::RestoredReset)> {
        self.shared.first().restorable().locks
    }

    /// Each device's id whose BitLocker keys were rotated in the first tenant and what
    /// its rotations were.
    pub fn saved_rotations(&self) -> Vec<(String, super::RestoredReset)> {
        self.shared.first().restorable().rotations
    }

    /// Every audit record of the first tenant, for a saved tenant.
    pub fn saved_audit(&self) -> Vec<super::SavedAudit> {
        let first = self.shared.first();
        first.audit.saved(&first.inventory)
    }

    /// Every user of the first tenant whose sessions were revoked, with when and how
    /// often, for a saved tenant.
    pub fn saved_users(&self) -> Vec<super::RestoredUser> {
        self.shared.first().directory.saved()
    }

    /// The state of the tenant at `index` (0: the first, then `config.more_tenants`
    /// in order) as a saved tenant keeps it; `None` past the last.
    pub fn restorable(&self, index: usize) -> Option<super::tenants::Restored> {
        self.shared.tenants.get(index).map(Tenant::restorable)
    }

    /// The moment unrevoked users' `signInSessionsValidFromDateTime` count back from,
    /// for a saved tenant (so they read the same reloaded).
    pub fn directory_epoch(&self) -> std::time::SystemTime {
        self.shared.first().directory.epoch()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.stats()
    }

    /// Stops accepting, closes every connection, lets the writes already received take
    /// effect, writes out the log, returns the counts.
    pub async fn shutdown(mut self) -> SimStats {
        self.stop_serving().await;
        self.stats()
    }

    /// [`SimHandle::shutdown`], and the tenant as it is then, every write taken
    /// effect: a rehearsal saves it for its follow-ups.
    pub async fn shutdown_saving(mut self) -> (SimStats, super::SavedTenant) {
        self.stop_serving().await;
        (self.stats(), super::SavedTenant::of(&self))
    }

    async fn stop_serving(&mut self) {
        let _ = self.stop.send(true);
        let _ = (&mut self.task).await;
        self.writes_settled().await;
        if let Some(log) = &self.shared.log {
            log.close().await;
        }
    }
}

impl SimHandle {
    /// Writes received and not yet answered (or given up on by their client).
    pub fn writes_in_flight(&self) -> usize {
        *self.shared.writes_in_flight.borrow()
    }

    /// Returns once `n` writes are in flight: a test's observable moment "the simulator
    /// holds the request", instead of a sleep.
    pub async fn writes_held(&self, n: usize) {
        let mut in_flight = self.shared.writes_in_flight.subscribe();
        let _ = in_flight.wait_for(|held| *held >= n).await;
    }

    /// Waits until every write received so far has been served, its effect included
    /// (bounded by the longest a write can take: `effect_delay` plus `slow`).
    pub async fn writes_settled(&self) {
        let config = &self.shared.config;
        let longest = config.effect_delay + config.slow + Duration::from_secs(5);
        let mut in_flight = self.shared.writes_in_flight.subscribe();
        let _ = tokio::time::timeout(longest, in_flight.wait_for(|n| *n == 0)).await;
    }
}

impl Shared {
    /// The simulator's state for `config`, listening at `addr`, with what a saved
    /// rehearsal recorded put back into each tenant (the first's from
    /// `config.restored_*`, a further one's from its `restored`).
    pub fn new(config: SimConfig, addr: SocketAddr) -> Result<Shared, SimError> {
        let log = match &config.log_path {
            Some(path) => Some(RequestLog::open(path)?),
            None => None,
        };
        let epoch = config
            .directory_epoch
            .unwrap_or_else(|| config.clock.wall_at(Duration::ZERO));
        let first = Tenant::new(
            TenantConfig {
                id: config.tenant_id.clone(),
                domain: config.tenant_domain.clone(),
                inventory: config.inventory.clone(),
                groups: config.groups.clone(),
                faults: config.faults.clone(),
                restored: tenants::Restored::default(),
            },
            Denials {
                apps: config.deny_apps.clone(),
                group_read: config.deny_group_read,
                audit_read: config.deny_audit_read,
                revoke_sessions: config.deny_revoke_sessions,
            },
            &config,
            config.seed,
            epoch,
        );
        let mut tenants = vec![first];
        for more in &config.more_tenants {
            let seed = tenants::seed_of(config.seed, &more.id);
            tenants.push(Tenant::new(
                more.clone(),
                Denials::default(),
                &config,
                seed,
                epoch,
            ));
        }
        let shared = Shared {
            tokens: TokenStore::default(),
            sign_ins: Default::default(),
            tenants,
            // `limits: None` (`simulate --no-limits`) switches every budget off.
            graph_throttle: GraphThrottle::new(config.limits.and(config.graph_limits)),
            log,
            addr,
            counter: AtomicU64::new(0),
            token_requests: AtomicUsize::new(0),
            writes_in_flight: watch::channel(0).0,
            id_base: uuid::Uuid::new_v4().as_u128(),
            config,
        };
        let config = &shared.config;
        shared.first().restore(&tenants::Restored {
            resets: config.restored_resets.clone(),
            locks: config.restored_locks.clone(),
            rotations: config.restored_rotations.clone(),
            audit: config.restored_audit.clone(),
            users: config.restored_users.clone(),
        });
        for (tenant, more) in shared.tenants.iter().skip(1).zip(&config.more_tenants) {
            tenant.restore(&more.restored);
        }
        Ok(shared)
    }

    /// The first tenant: `config`'s own, the one a rehearsal saves.
    pub fn first(&self) -> &Tenant {
        &self.tenants[0]
    }

    /// The index of the tenant whose id is `tid` (a token's), if the simulator holds it.
    pub fn tenant_index(&self, tid: &str) -> Option<usize> {
        self.tenants
            .iter()
            .position(|t| t.id.eq_ignore_ascii_case(tid))
    }

    /// The index of the tenant a token URL's `{tenant}` names (see
    /// [`SimConfig::tenant_for_authority`]).
    fn authority_index(&self, name: &str) -> Option<usize> {
        self.config
            .tenant_for_authority(name)
            .and_then(|tid| self.tenant_index(tid))
    }

    /// The tenant at `index`, or the first for a request no tenant served: the first
    /// tenant's counts hold those, as they did with one tenant.
    fn tenant_or_first(&self, index: Option<usize>) -> &Tenant {
        index
            .and_then(|i| self.tenants.get(i))
            .unwrap_or_else(|| self.first())
    }

    /// The counts: the first tenant's, each further tenant's in `other_tenants`, and
    /// Graph's count across tenants.
    pub fn stats(&self) -> SimStats {
        let mut stats = Self::tenant_stats(self.first());
        stats.other_tenants = self
            .tenants
            .iter()
            .skip(1)
            .map(Self::tenant_stats)
            .collect();
        stats.max_graph_requests_in_any_window = self.graph_throttle.max_requests_in_any_window();
        stats
    }

    /// One tenant's counts, each action's per device beside them.
    fn tenant_stats(tenant: &Tenant) -> SimStats {
        let inventory = &tenant.inventory;
        let actions = &tenant.actions;
        let mut stats = tenant.stats.snapshot();
        stats.tenant.clone_from(&tenant.id);
        stats.resets_per_device = actions.per_device(Family::Passcode, inventory);
        stats.resets_over_standing = actions.over_standing(Family::Passcode, inventory);
        stats.locks_per_device = actions.per_device(Family::Lock, inventory);
        stats.locks_over_standing = actions.over_standing(Family::Lock, inventory);
        stats.rotations_per_device = actions.per_device(Family::BitLocker, inventory);
        stats.rotations_over_standing = actions.over_standing(Family::BitLocker, inventory);
        stats.revocations_per_user = tenant.directory.per_user();
        stats.max_writes_in_any_window = tenant.throttle.max_writes_in_any_window();
        stats
    }
}

/// Counts one write as in flight until dropped, even if its task panics.
struct InFlight(Arc<Shared>);

impl InFlight {
    fn new(shared: Arc<Shared>) -> InFlight {
        shared.writes_in_flight.send_modify(|n| *n += 1);
        InFlight(shared)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .writes_in_flight
            .send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let shared = shared.clone();
                    connections.spawn(async move {
                        let service = service_fn(move |req| handle(shared.clone(), req));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
                // Out of file descriptors and the like: wait instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

impl Shared {
    fn context(&self, req: &Request<Incoming>) -> Ctx {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let bits = self.id_base ^ (u128::from(mix(n)) << 64 | u128::from(mix(!n)));
        let request_id = uuid::Builder::from_random_bytes(bits.to_be_bytes())
            .into_uuid()
            .to_string();
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        Ctx {
            request_id,
            client_request_id: header("client-request-id").map(str::to_owned),
            date: self.config.clock.wall(),
            base_url: match req.headers().get(HOST).and_then(|v| v.to_str().ok()) {
                Some(host) => format!("http://{host}"),
                None => format!("http://{}", self.addr),
            },
        }
    }

    async fn latency(&self) {
        let latency = self.config.latency;
        if latency.base.is_zero() && latency.jitter.is_zero() {
            return;
        }
        let n = self.counter.load(Ordering::Relaxed);
        let jitter = latency.jitter.mul_f64(unit(mix(n ^ self.config.seed)));
        tokio::time::sleep(latency.base + jitter).await;
    }

    /// Logs and counts one request (an outer one, or one inside a `$batch`).
    pub fn observe(
        &self,
        ctx: &Ctx,
        method: &str,
        path: &str,
        outcome: &Outcome,
        batch: Option<&str>,
    ) {
        let reply = &outcome.reply;
        let status = (!outcome.dropped).then_some(reply.status);
        self.tenant_or_first(outcome.tenant).stats.record(
            reply.kind,
            status,
            reply.fault,
            reply.throttled.is_some(),
        );
        if let Some(log) = &self.log {
            let mut line = json!({
                "time": humantime::format_rfc3339_millis(ctx.date).to_string(),
                "method": method,
                "path": path,
                "status": status,
                "kind": reply.kind.as_str(),
                "device": reply.device,
                "client_request_id": ctx.client_request_id,
                "request_id": ctx.request_id,
                "retry_after": reply.retry_after(),
                "fault": reply.fault.map(|f| f.as_str()).or(reply.token_fault.map(TokenFault::as_str)),
                "effect": reply.effect,
                "throttled": reply.throttled,
                "batch": batch,
                // The tenant that served it: every line names one, or null.
                "tenant": outcome.tenant.and_then(|i| self.tenants.get(i)).map(|t| t.id.as_str()),
            });
            // Only users' requests name a user: other lines stay as they were.
            if let (Some(user), Some(fields)) = (&reply.user, line.as_object_mut()) {
                fields.insert("user".into(), user.clone().into());
            }
            log.write(&line);
        }
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let ctx = shared.context(&req);
    let (parts, body) = req.into_parts();
    let path = percent_decode(parts.uri.path());
    let query = parts.uri.query().unwrap_or("").to_owned();
    let method = parts.method.clone();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let auth = header(AUTHORIZATION.as_str());
    let identity_headers = (header("metadata"), header("x-identity-header"));
    let body = Limited::new(body, MAX_BODY).collect().await;
    let request = Received {
        ctx,
        method,
        path,
        query,
        auth,
        identity_headers,
        body,
    };
    if request.method == Method::GET {
        // No effect to finish: a read abandoned by its client may just stop.
        return serve_received(shared, request).await;
    }
    // Like a real service, the simulator finishes a write it has received even when
    // the client hangs up (a timed-out `slow` reset still takes effect, later; a reset
    // whose answer is still on its way when the client dies took effect): the work runs
    // in its own task, which outlives this connection's future.
    let in_flight = InFlight::new(shared.clone());
    tokio::spawn(async move {
        let served = serve_received(shared, request).await;
        drop(in_flight);
        served
    })
    .await
    .unwrap_or(Err(Dropped))
}

/// The request headers the simulator reads.
struct Headers {
    authorization: Option<String>,
    /// `Metadata` (the VM metadata service requires `true`).
    metadata: Option<String>,
    /// `X-IDENTITY-HEADER` (App Service's managed identity endpoint).
    identity: Option<String>,
}

/// A request whose body has arrived.
struct Received {
    ctx: Ctx,
    method: Method,
    path: String,
    query: String,
    auth: Option<String>,
    /// `Metadata` and `X-IDENTITY-HEADER`: what the managed identity endpoints require.
    identity_headers: (Option<String>, Option<String>),
    body: Result<http_body_util::Collected<Bytes>, Box<dyn std::error::Error + Send + Sync>>,
}

async fn serve_received(
    shared: Arc<Shared>,
    request: Received,
) -> Result<Response<Full<Bytes>>, Dropped> {
    let Received {
        ctx,
        method,
        path,
        query,
        auth,
        identity_headers,
        body,
    } = request;
    let outcome = match body {
        Ok(body) => {
            route(
                &shared,
                &ctx,
                &method,
                &path,
                &query,
                &Headers {
                    authorization: auth,
                    metadata: identity_headers.0,
                    identity: identity_headers.1,
                },
                &body.to_bytes(),
            )
            .await
        }
        Err(_) => Outcome::answer(graph_error(
            &ctx,
            Kind::Other,
            413,
            "RequestEntityTooLarge",
            "The request body is too large.",
        )),
    };
    // The query is only wanted in the log: no allocation on the hot path without one.
    let logged_path = if query.is_empty() || shared.log.is_none() {
        path
    } else {
        format!("{path}?{query}")
    };
    shared.observe(&ctx, method.as_str(), &logged_path, &outcome, None);
    if let Some(log) = &shared.log {
        log.written().await;
    }
    // The network delay is the answer's way back: what reached the service is done by
    // then, which is what makes a lost answer dangerous.
    shared.latency().await;
    if outcome.dropped {
        return Err(Dropped);
    }
    Ok(to_response(&ctx, outcome.reply))
}

async fn route(
    shared: &Shared,
    ctx: &Ctx,
    method: &Method,
    path: &str,
    query: &str,
    headers: &Headers,
    body: &[u8],
) -> Outcome {
    let auth = headers.authorization.as_deref();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let now = shared.config.clock.now();
    let config = &shared.config;
    match segments.as_slice() {
        [tenant, oauth2, v2, endpoint]
            if oauth2.eq_ignore_ascii_case("oauth2")
                && v2.eq_ignore_ascii_case("v2.0")
                && endpoint.eq_ignore_ascii_case("devicecode")
                && method == Method::POST =>
        {
            Outcome::answer(signin::device_code(
                config,
                &shared.sign_ins,
                ctx,
                body,
                now,
            ))
            .in_tenant(shared.authority_index(tenant))
        }
        [tenant, oauth2, v2, endpoint]
            if oauth2.eq_ignore_ascii_case("oauth2")
                && v2.eq_ignore_ascii_case("v2.0")
                && endpoint.eq_ignore_ascii_case("authorize")
                && method == Method::GET =>
        {
            Outcome::answer(signin::authorize(config, &shared.sign_ins, query, now))
                .in_tenant(shared.authority_index(tenant))
        }
        // A managed identity lives in one tenant: the first.
        ["metadata", "identity", "oauth2", "token"] if method == Method::GET => {
            Outcome::answer(signin::managed_identity(
                config,
                &shared.tokens,
                ctx,
                false,
                headers.metadata.as_deref(),
                query,
                now,
            ))
            .in_tenant(Some(0))
        }
        ["msi", "token"] if method == Method::GET => Outcome::answer(signin::managed_identity(
            config,
            &shared.tokens,
            ctx,
            true,
            headers.identity.as_deref(),
            query,
            now,
        ))
        .in_tenant(Some(0)),
        [tenant, oauth2, v2, token]
            if oauth2.eq_ignore_ascii_case("oauth2")
                && v2.eq_ignore_ascii_case("v2.0")
                && token.eq_ignore_ascii_case("token") =>
        {
            let authority = shared.authority_index(tenant);
            if method != Method::POST {
                return Outcome::answer(graph_error(
                    ctx,
                    Kind::Token,
                    405,
                    "MethodNotAllowed",
                    "The token endpoint takes POST only.",
                ))
                .in_tenant(authority);
            }
            token_endpoint(shared, ctx, tenant, body)
                .await
                .in_tenant(authority)
        }
        [version, rest @ ..] => match graph::version(version) {
            Some(version) => {
                graph::serve(shared, ctx, method, version, rest, query, auth, body).await
            }
            None => Outcome::answer(graph_error(
                ctx,
                Kind::Other,
                400,
                "BadRequest",
                &format!("Invalid version: {version}"),
            )),
        },
        [] => Outcome::answer(graph_error(
            ctx,
            Kind::Other,
            400,
            "BadRequest",
            "Invalid version: ",
        )),
    }
}

/// The token endpoint, with the fault this request meets, if any.
async fn token_endpoint(shared: &Shared, ctx: &Ctx, tenant: &str, body: &[u8]) -> Outcome {
    let nth = shared.token_requests.fetch_add(1, Ordering::SeqCst);
    let fault = shared.config.token_faults.get(nth).copied();
    let faulted = |mut reply: Reply| {
        reply.token_fault = fault;
        reply
    };
    match fault {
        Some(TokenFault::TooManyRequests) => {
            let reply = auth::transient(ctx, 429).header("Retry-After", "1".into());
            return Outcome::answer(faulted(reply));
        }
        Some(TokenFault::ServiceUnavailable) => {
            return Outcome::answer(faulted(auth::transient(ctx, 503)));
        }
        Some(TokenFault::Drop) => {
            return Outcome::dropped(faulted(Reply::new(0, Kind::Token, None)));
        }
        Some(TokenFault::Slow) => tokio::time::sleep(shared.config.slow).await,
        None => {}
    }
    let now = shared.config.clock.now();
    let reply = auth::token(
        &shared.config,
        &shared.tokens,
        &shared.sign_ins,
        ctx,
        tenant,
        body,
        now,
    );
    Outcome::answer(faulted(reply))
}

fn to_response(ctx: &Ctx, mut reply: Reply) -> Response<Full<Bytes>> {
    let extra = std::mem::take(&mut reply.headers);
    let status = reply.status;
    let has_body = reply.has_body();
    let body = Bytes::from(reply.body_bytes());
    let mut response = Response::new(Full::new(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if has_body {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"));
    }
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        headers.insert("request-id", v);
    }
    if let Some(v) = ctx
        .client_request_id
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert("client-request-id", v);
    }
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    response
}
