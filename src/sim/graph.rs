//! The Graph pipeline every request under `/v1.0` or `/beta` goes through: the bearer
//! token, the fault roll, the throttle, then the handler.
//!
//! The order follows what a client observes from Graph: a request without a valid token
//! is refused before it counts against any limit (the limits are per app, and the app
//! is known from the token); every other request counts, throttled or faulted ones too.

use std::time::Duration;

use hyper::Method;

use super::auth::{self, Bearer};
use super::batch;
use super::devices;
use super::dice::unit;
use super::faults::{Fault, FaultKind};
use super::render::ApiVersion;
use super::reply::{Ctx, Kind, Reply, graph_error, too_many_requests};
use super::server::{Outcome, Shared};
use super::tenants::Tenant;
use super::throttle::{Admission, retry_after_fractional, retry_after_seconds};
use crate::rules::Family;

pub fn version(segment: &str) -> Option<ApiVersion> {
    match segment {
        "v1.0" => Some(ApiVersion::V1),
        "beta" => Some(ApiVersion::Beta),
        _ => None,
    }
}

/// What a Graph path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Batch,
    List,
    Device(String),
    /// `managedDevices/{id}/{action}`: `resetPasscode`, `remoteLock` or
    /// `rotateBitLockerKeys` (beta only), each also with its `microsoft.graph.` prefix.
    Act(Family, String),
    /// `users/{id or UPN}/managedDevices`: the devices whose primary user it is.
    UserDevices(String),
    /// `users/{id or UPN}`: a directory user.
    User(String),
    /// `users/{id or UPN}/revokeSignInSessions` (also with its `microsoft.graph.`
    /// prefix): Entra's "Revoke sessions".
    RevokeSessions(String),
    /// `groups` (found by `$filter=displayName eq`).
    Groups,
    /// `groups/{id}/transitiveMembers`.
    GroupMembers(String),
    /// `devices`: Entra device objects.
    EntraDevices,
    /// `deviceManagement/auditEvents`: Intune's audit log.
    AuditEvents,
    /// `deviceManagement/remoteActionAudits` (beta only): the remote actions' report.
    RemoteActionAudits,
    /// A segment the simulator does not serve.
    Unknown(String),
}

impl Target {
    /// Parses the segments after the version: `deviceManagement/managedDevices`,
    /// `.../managedDevices/{id}`, `.../managedDevices('{id}')`, each optionally followed
    /// by an action's name (`resetPasscode`, `remoteLock`, `rotateBitLockerKeys`) or its
    /// qualified name (`microsoft.graph.resetPasscode`); and `$batch`.
    pub fn parse(segments: &[&str]) -> Target {
        let unknown = |s: &str| Target::Unknown(s.to_owned());
        match segments {
            ["$batch"] => Target::Batch,
            [users, user, md]
                if users.eq_ignore_ascii_case("users")
                    && md.eq_ignore_ascii_case("managedDevices") =>
            {
                Target::UserDevices((*user).to_owned())
            }
            [users, user] if users.eq_ignore_ascii_case("users") => {
                Target::User((*user).to_owned())
            }
            [users, user, action]
                if users.eq_ignore_ascii_case("users")
                    && action_named(action) == Some(Family::Sessions) =>
            {
                Target::RevokeSessions((*user).to_owned())
            }
            [users, _, other] if users.eq_ignore_ascii_case("users") => unknown(other),
            [groups] if groups.eq_ignore_ascii_case("groups") => Target::Groups,
            [devices] if devices.eq_ignore_ascii_case("devices") => Target::EntraDevices,
            [groups, id, members]
                if groups.eq_ignore_ascii_case("groups")
                    && members.eq_ignore_ascii_case("transitiveMembers") =>
            {
                Target::GroupMembers((*id).to_owned())
            }
            [dm, list]
                if dm.eq_ignore_ascii_case("deviceManagement")
                    && list.eq_ignore_ascii_case("auditEvents") =>
            {
                Target::AuditEvents
            }
            [dm, list]
                if dm.eq_ignore_ascii_case("deviceManagement")
                    && list.eq_ignore_ascii_case("remoteActionAudits") =>
            {
                Target::RemoteActionAudits
            }
            [dm, rest @ ..] if dm.eq_ignore_ascii_case("deviceManagement") => {
                let (id, action) = match rest {
                    [md] if md.eq_ignore_ascii_case("managedDevices") => return Target::List,
                    [md, id] if md.eq_ignore_ascii_case("managedDevices") => (Some(*id), None),
                    [md, id, action] if md.eq_ignore_ascii_case("managedDevices") => {
                        (Some(*id), Some(*action))
                    }
                    [keyed] => (key_form(keyed), None),
                    [keyed, action] => (key_form(keyed), Some(*action)),
                    _ => (None, None),
                };
                let Some(id) = id else {
                    return unknown(segments.last().copied().unwrap_or_default());
                };
                let id = id.trim_matches('\'').to_owned();
                match action {
                    None => Target::Device(id),
                    // `revokeSignInSessions` is an action on users, which a device lacks.
                    Some(a) => match action_named(a) {
                        Some(family) if !family.on_users() => Target::Act(family, id),
                        _ => unknown(a),
                    },
                }
            }
            _ => unknown(segments.first().copied().unwrap_or_default()),
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Target::Batch => Kind::Batch,
            Target::List
            | Target::UserDevices(_)
            | Target::AuditEvents
            | Target::RemoteActionAudits => Kind::List,
            Target::Device(_) => Kind::Get,
            Target::Act(family, _) => Kind::of(*family),
            Target::User(_) => Kind::User,
            Target::RevokeSessions(_) => Kind::RevokeSessions,
            Target::Unknown(_)
            | Target::Groups
            | Target::GroupMembers(_)
            | Target::EntraDevices => Kind::Other,
        }
    }

    /// Whether the request counts against Entra's directory budget rather than
    /// Intune's: users' reads and revocations.
    pub fn on_directory(&self) -> bool {
        matches!(self, Target::User(_) | Target::RevokeSessions(_))
    }
}

/// Who sent a Graph request, for which tenant, and with which `client-request-id`:
/// what an audit record of the action it carries out names.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The client id the token was issued to.
    pub app: &'a str,
    /// The tenant the token was issued for (its `tid`): the request is served from it.
    pub tenant: &'a Tenant,
    /// The signed-in user's UPN for a delegated token; `None` for app-only.
    pub user: Option<&'a str>,
    /// The request's own `client-request-id` header (inside a `$batch`, the inner
    /// request's own, not the batch's).
    pub client_request_id: Option<&'a str>,
}

/// The action a segment names: `remoteLock` or `microsoft.graph.remoteLock`, any case.
fn action_named(segment: &str) -> Option<Family> {
    let name = match segment.get(..16) {
        Some(prefix) if prefix.eq_ignore_ascii_case("microsoft.graph.") => &segment[16..],
        _ => segment,
    };
    Family::ALL
        .into_iter()
        .find(|f| f.graph_name().eq_ignore_ascii_case(name))
}

/// The action a request carries out, and on which device: a POST of an action the
/// version serves (`rotateBitLockerKeys` is beta only). The actions take effect late,
/// and need a role allowing them.
pub fn action_of<'t>(
    target: &'t Target,
    method: &Method,
    version: ApiVersion,
) -> Option<(Family, &'t str)> {
    match target {
        Target::Act(family, id) if method == Method::POST && serves(*family, version) => {
            Some((*family, id))
        }
        _ => None,
    }
}

/// Whether the version has the action: `rotateBitLockerKeys` is a beta action
/// (<https://learn.microsoft.com/en-us/graph/api/intune-devices-manageddevice-rotatebitlockerkeys?view=graph-rest-beta>).
fn serves(family: Family, version: ApiVersion) -> bool {
    family != Family::BitLocker || version == ApiVersion::Beta
}

/// Whether the request carries out an action that takes effect late
/// (`SimConfig::effect_delay`): a device action the version serves, or a user's
/// `revokeSignInSessions`.
pub fn takes_effect_late(target: &Target, method: &Method, version: ApiVersion) -> bool {
    action_of(target, method, version).is_some()
        || matches!(target, Target::RevokeSessions(_)) && method == Method::POST
}

/// `managedDevices('{id}')` -> `{id}`.
fn key_form(segment: &str) -> Option<&str> {
    let open = segment.find('(')?;
    if !segment[..open].eq_ignore_ascii_case("managedDevices") {
        return None;
    }
    segment[open + 1..].strip_suffix(')')
}

/// Serves one Graph request, from the tenant its token names.
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    shared: &Shared,
    ctx: &Ctx,
    method: &Method,
    version: ApiVersion,
    segments: &[&str],
    query: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Outcome {
    let target = Target::parse(segments);
    let kind = target.kind();
    let now = shared.config.clock.now();
    let (app, tid, token, may_reset, user) = match shared.tokens.check(authorization, now) {
        Bearer::Valid {
            app,
            tenant,
            token,
            may_reset,
            user,
        } => (app, tenant, token, may_reset, user),
        refused => return Outcome::answer(auth::unauthorized(ctx, kind, &refused)),
    };
    // Tokens are issued only for the simulator's tenants.
    let Some(index) = shared.tenant_index(&tid) else {
        return Outcome::answer(auth::unauthorized(ctx, kind, &Bearer::Unknown));
    };
    let Some(tenant) = shared.tenants.get(index) else {
        return Outcome::answer(auth::unauthorized(ctx, kind, &Bearer::Unknown));
    };
    let caller = Caller {
        app: &app,
        tenant,
        user: user.as_deref(),
        client_request_id: ctx.client_request_id.as_deref(),
    };
    let served = async {
        let batch = target == Target::Batch;
        let fault = roll_fault(tenant, method, version, segments, query, |k| {
            !batch || k.is_connection_level()
        });
        let injected = fault.map(|f| f.kind);
        if injected == Some(FaultKind::ExpiredToken) {
            shared.tokens.expire(&token, now);
            let mut reply = auth::unauthorized(ctx, kind, &Bearer::Expired);
            reply.fault = injected;
            return Outcome::answer(reply);
        }
        if injected == Some(FaultKind::EchoAuthorization) {
            // As a front end's error page does: plain text, the header quoted as it came.
            let page = format!(
                "400 Bad Request: request header too large. Authorization: {}",
                authorization.unwrap_or_default()
            );
            let mut reply = Reply::raw(400, kind, page.into_bytes());
            reply.fault = injected;
            reply.device = target_device(&target);
            reply.user = target_user(&target);
            return Outcome::answer(reply);
        }
        if target != Target::Batch
            && let Some(reply) = admit(
                shared,
                ctx,
                &target,
                &caller,
                method != Method::GET,
                fault,
                now,
            )
        {
            return Outcome::answer(reply);
        }
        if injected == Some(FaultKind::Slow) {
            tokio::time::sleep(shared.config.slow).await;
        }
        if injected == Some(FaultKind::DropBeforeEffect) {
            let mut reply = Reply::new(0, kind, None);
            reply.fault = injected;
            reply.device = target_device(&target);
            reply.user = target_user(&target);
            return Outcome::dropped(reply);
        }
        let action = action_of(&target, method, version);
        if let Some((_, id)) = action
            && !may_reset
        {
            // Intune's answer to a user whose role does not allow the remote task: a 403
            // that names no permission. The simulated user holds a role for every remote
            // task the simulator serves, or none.
            let mut reply = graph_error(
                ctx,
                kind,
                403,
                "Forbidden",
                "{\"_version\": 3, \"Message\": \"An error has occurred - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000\", \"CustomApiErrorPhrase\": \"\", \"RetryAfter\": null, \"ErrorSourceService\": \"\", \"HttpHeaders\": \"{}\"}",
            );
            reply.device = Some(id.to_string());
            return Outcome::answer(reply);
        }
        if takes_effect_late(&target, method, version) {
            take_effect_late(shared).await;
        }
        let mut reply = match &target {
            Target::Batch if method == Method::POST => {
                batch::run(shared, ctx, version, &caller, body).await
            }
            _ => dispatch(shared, ctx, method, version, &target, query, &caller),
        };
        if injected.is_some() {
            reply.fault = injected;
        }
        if injected == Some(FaultKind::NextLinkLoop) {
            let own = format!(
                "{}/{}/{}{}{query}",
                ctx.base_url,
                version.as_str(),
                segments.join("/"),
                if query.is_empty() { "" } else { "?" }
            );
            point_next_link_at(&mut reply, own);
        }
        if injected == Some(FaultKind::DropAfterEffect) {
            return Outcome::dropped(reply);
        }
        Outcome::answer(reply)
    };
    served.await.in_tenant(Some(index))
}

/// Makes a listing's page (a 200 whose body has a `value` array) name `own`, the
/// request's own URL, as its next page.
fn point_next_link_at(reply: &mut Reply, own: String) {
    if reply.status != 200 {
        return;
    }
    let Some(mut body) = reply.body_value() else {
        return;
    };
    if let Some(page) = body.as_object_mut()
        && page.get("value").is_some_and(|v| v.is_array())
    {
        page.insert("@odata.nextLink".into(), own.into());
        reply.raw = None;
        reply.body = Some(body);
    }
}

/// Holds an action (`resetPasscode`, `remoteLock`, ..., `revokeSignInSessions`) that
/// got past the throttle and the faults for
/// `SimConfig::effect_delay` before it takes effect. The server finishes a write whose
/// client hung up (see `server::handle`), so the effect still lands. The delay is on the
/// simulator's clock, so a test with a manual clock decides when the effect lands.
pub async fn take_effect_late(shared: &Shared) {
    let delay = shared.config.effect_delay;
    if !delay.is_zero() {
        shared.config.clock.sleep(delay).await;
    }
}

/// The fault a request meets among its tenant's faults. The key is the request itself,
/// so a replay with the same seed meets the same faults (see [`super::faults`]).
pub fn roll_fault(
    tenant: &Tenant,
    method: &Method,
    version: ApiVersion,
    segments: &[&str],
    query: &str,
    applies: impl Fn(FaultKind) -> bool,
) -> Option<Fault> {
    if tenant.faults.is_empty() {
        return None;
    }
    let key = format!(
        "{method} {}/{}?{query}",
        version.as_str(),
        segments.join("/")
    );
    tenant.faults.roll(&key, applies)
}

/// The device id a path names, for the log.
pub fn target_device(target: &Target) -> Option<String> {
    match target {
        Target::Device(id) | Target::Act(_, id) => Some(id.clone()),
        _ => None,
    }
}

/// The user (id or UPN) a path names, for the log.
pub fn target_user(target: &Target) -> Option<String> {
    match target {
        Target::User(user) | Target::RevokeSessions(user) => Some(user.clone()),
        _ => None,
    }
}

/// Counts the request against its tenant's budget (Entra's directory for users'
/// requests, Intune's for the rest) and Graph's across tenants, and answers 429 when
/// over a limit, or answers the injected status fault; `None` lets the request through.
pub fn admit(
    shared: &Shared,
    ctx: &Ctx,
    target: &Target,
    caller: &Caller,
    write: bool,
    fault: Option<Fault>,
    now: Duration,
) -> Option<Reply> {
    let mut reply = refuse(shared, ctx, target, caller, write, fault, now)?;
    reply.device = target_device(target);
    reply.user = target_user(target);
    Some(reply)
}

fn refuse(
    shared: &Shared,
    ctx: &Ctx,
    target: &Target,
    caller: &Caller,
    write: bool,
    fault: Option<Fault>,
    now: Duration,
) -> Option<Reply> {
    let kind = target.kind();
    let directory = target.on_directory();
    let (app, tenant) = (caller.app, caller.tenant);
    let own = if directory {
        tenant.directory_throttle.admit(app, write, now)
    } else {
        tenant.throttle.admit(app, write, now)
    };
    // Counted in both; the limit that makes the request wait longest answers.
    let admission = match (shared.graph_throttle.admit(app, now), own) {
        (
            Admission::Throttled {
                retry_after: global,
                limit,
            },
            Admission::Allowed,
        ) => Admission::Throttled {
            retry_after: global,
            limit,
        },
        (
            Admission::Throttled {
                retry_after: global,
                limit,
            },
            Admission::Throttled { retry_after, .. },
        ) if global > retry_after => Admission::Throttled {
            retry_after: global,
            limit,
        },
        (_, own) => own,
    };
    if let Admission::Throttled { retry_after, limit } = admission {
        let mut reply =
            too_many_requests(ctx, kind).header("Retry-After", retry_after_seconds(retry_after));
        if directory && limit != "graph_app_any" {
            // What Entra adds to a directory 429: which budget, and why.
            let (scope, why) = if limit == "directory_writes" {
                ("Write", "WriteLimitExceeded")
            } else {
                ("ReadWrite", "ResourceUnitLimitExceeded")
            };
            reply = reply
                .header(
                    "x-ms-throttle-scope",
                    format!("Tenant_Application/{scope}/{app}/{}", tenant.id),
                )
                .header("x-ms-throttle-information", why.to_owned());
        }
        reply.throttled = Some(limit);
        return Some(reply);
    }
    let fault = fault?;
    // Seeded, so a replay gets the same waits: 0.5 to 3.5 s fractional, 1 to 5 s whole.
    let fraction = unit(fault.entropy);
    let mut reply = match fault.kind {
        FaultKind::TooManyRequestsWithoutRetryAfter => too_many_requests(ctx, kind),
        FaultKind::FractionalRetryAfter => too_many_requests(ctx, kind).header(
            "Retry-After",
            retry_after_fractional(Duration::from_secs_f64(0.5 + 3.0 * fraction)),
        ),
        FaultKind::ServiceUnavailable => graph_error(
            ctx,
            kind,
            503,
            "ServiceUnavailable",
            "Service unavailable, please retry later.",
        )
        .header("Retry-After", (1 + (fraction * 5.0) as u64).to_string()),
        FaultKind::ServiceUnavailableWithoutRetryAfter => graph_error(
            ctx,
            kind,
            503,
            "ServiceUnavailable",
            "Service unavailable, please retry later.",
        ),
        FaultKind::GatewayTimeout => graph_error(
            ctx,
            kind,
            504,
            "GatewayTimeout",
            "The gateway did not receive a response from the service in time.",
        ),
        FaultKind::DropBeforeEffect
        | FaultKind::DropAfterEffect
        | FaultKind::Slow
        | FaultKind::ExpiredToken
        | FaultKind::NextLinkLoop
        | FaultKind::EchoAuthorization => return None,
    };
    reply.fault = Some(fault.kind);
    Some(reply)
}

/// Runs the handler a target names, in the caller's tenant.
pub fn dispatch(
    shared: &Shared,
    ctx: &Ctx,
    method: &Method,
    version: ApiVersion,
    target: &Target,
    query: &str,
    caller: &Caller,
) -> Reply {
    let kind = target.kind();
    let tenant = caller.tenant;
    match (target, method) {
        (Target::AuditEvents, &Method::GET) => {
            super::audit::events(shared, tenant, ctx, version, query)
        }
        (Target::RemoteActionAudits, &Method::GET) if version == ApiVersion::Beta => {
            super::audit::remote_actions(shared, tenant, ctx, query)
        }
        // Graph's v1.0 has no `remoteActionAudits`: the answer to any unknown segment.
        (Target::RemoteActionAudits, _) if version == ApiVersion::V1 => {
            unknown_segment(ctx, kind, "remoteActionAudits")
        }
        (Target::List, &Method::GET) => devices::list(shared, tenant, ctx, version, query),
        (Target::Groups, &Method::GET) => super::groups::find(tenant, ctx, query),
        (Target::EntraDevices, &Method::GET) => super::groups::entra_devices(tenant, ctx, query),
        (Target::GroupMembers(id), &Method::GET) => super::groups::members(tenant, ctx, id, query),
        (Target::UserDevices(user), &Method::GET) => {
            devices::user_devices(shared, tenant, ctx, version, user, query)
        }
        (Target::Device(id), &Method::GET) => devices::get(shared, tenant, ctx, version, id, query),
        (Target::User(user), &Method::GET) => super::users::get(tenant, ctx, version, user, query),
        (Target::RevokeSessions(user), &Method::POST) => {
            super::users::revoke(shared, tenant, ctx, version, user)
        }
        // Graph's v1.0 has no `rotateBitLockerKeys`: the answer to any unknown segment.
        (Target::Act(family, _), _) if !serves(*family, version) => {
            unknown_segment(ctx, kind, family.graph_name())
        }
        (Target::Act(family, id), &Method::POST) => devices::act(shared, ctx, *family, id, caller),
        (Target::Unknown(segment), _) => unknown_segment(ctx, kind, segment),
        _ => graph_error(
            ctx,
            kind,
            405,
            "MethodNotAllowed",
            &format!("The HTTP method '{method}' is not allowed on this resource."),
        ),
    }
}

/// Graph's answer to a path segment it does not know.
fn unknown_segment(ctx: &Ctx, kind: Kind, segment: &str) -> Reply {
    graph_error(
        ctx,
        kind,
        400,
        "BadRequest",
        &format!("Resource not found for the segment '{segment}'."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_key_forms_and_the_qualified_action_name_are_understood() {
        let id = "0b9a6a2c-1d3e-4f50-8a6b-7c8d9e0f1a2b";
        assert_eq!(
            Target::parse(&["deviceManagement", "managedDevices"]),
            Target::List
        );
        assert_eq!(
            Target::parse(&["deviceManagement", "managedDevices", id]),
            Target::Device(id.into())
        );
        let keyed = format!("managedDevices('{id}')");
        assert_eq!(
            Target::parse(&["deviceManagement", &keyed]),
            Target::Device(id.into())
        );
        assert_eq!(
            Target::parse(&["deviceManagement", &keyed, "resetPasscode"]),
            Target::Act(Family::Passcode, id.into())
        );
        assert_eq!(
            Target::parse(&[
                "deviceManagement",
                "managedDevices",
                id,
                "microsoft.graph.resetPasscode"
            ]),
            Target::Act(Family::Passcode, id.into())
        );
        assert_eq!(Target::parse(&["$batch"]), Target::Batch);
        assert_eq!(
            Target::parse(&["deviceManagement", "managedDevices", id, "wipe"]),
            Target::Unknown("wipe".into())
        );
        assert_eq!(Target::parse(&["users"]), Target::Unknown("users".into()));
        let upn = "Anna.Smith@contoso.com";
        assert_eq!(Target::parse(&["users", upn]), Target::User(upn.into()));
        for action in [
            "revokeSignInSessions",
            "microsoft.graph.revokeSignInSessions",
            "REVOKESIGNINSESSIONS",
        ] {
            assert_eq!(
                Target::parse(&["users", upn, action]),
                Target::RevokeSessions(upn.into())
            );
        }
        assert_eq!(
            Target::parse(&["users", upn, "resetPasscode"]),
            Target::Unknown("resetPasscode".into())
        );
        // A device has no revokeSignInSessions: an unknown segment, not a refused action.
        assert_eq!(
            Target::parse(&[
                "deviceManagement",
                "managedDevices",
                id,
                "revokeSignInSessions"
            ]),
            Target::Unknown("revokeSignInSessions".into())
        );
        assert_eq!(
            Target::parse(&["deviceManagement", "auditEvents"]),
            Target::AuditEvents
        );
        assert_eq!(
            Target::parse(&["deviceManagement", "remoteActionAudits"]),
            Target::RemoteActionAudits
        );
    }
}
