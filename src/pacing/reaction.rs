//! What to do after a failed call: the retry policy as one pure function.

use std::time::Duration;

use crate::graph::{CallError, CallErrorKind};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reaction {
    /// 429: pause every worker (`Retry-After`, or backoff without it), then retry.
    PauseAll(Option<Duration>),
    /// Retry this request after a backoff, on a new connection when `fresh`.
    Retry {
        fresh: bool,
        wait: Option<Duration>,
    },
    /// A write whose effect is unknown: read `deviceActionResults` before anything else.
    Verify,
    /// 401: fetch a new token, then retry; the runner renews up to three times per call.
    RenewToken,
    /// Stop the whole run: nothing else can succeed.
    Abort(AbortReason),
    NotFound,
    /// This device failed; the run goes on.
    Fail {
        reason: &'static str,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AbortReason {
    /// The app registration lacks this permission.
    MissingPermission(String),
    /// No token can be had, or Graph refuses fresh tokens.
    Authentication(String),
    /// The signed-in user (delegated sign-in) has no Intune role allowing the reset.
    MissingRole,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// The person at the terminal did not confirm: nothing was sent.
    NotConfirmed,
    /// The run's record (ledger, report or summary) cannot be written: nothing more is
    /// sent, so that every send stays on record.
    Unrecorded(String),
    /// One tenant of a run across several stopped or could not start (issue 22): the
    /// others went on.
    InTenant {
        tenant: String,
        reason: Box<AbortReason>,
    },
}

impl AbortReason {
    /// The reason, said of one tenant of a run across several.
    pub fn in_tenant(self, tenant: &str) -> AbortReason {
        AbortReason::InTenant {
            tenant: tenant.to_owned(),
            reason: Box::new(self),
        }
    }

    pub fn sentence(&self) -> String {
        match self {
            AbortReason::InTenant { tenant, reason } => {
                format!("in tenant {tenant}: {}", reason.sentence())
            }
            AbortReason::MissingPermission(p) => format!(
                "the sign-in lacks the permission {p}: grant it to the app registration (an application permission for app-only sign-in, a delegated one for browser and device-code sign-in) with admin consent, then finish the run with `--resume`"
            ),
            AbortReason::MissingRole => "the signed-in account lacks an Intune role allowing the remote task \"Reset passcode\" (Graph answered 403): ask an Intune administrator for the Help Desk Operator role or a custom role with Remote tasks > Reset passcode, scoped to these devices, then finish the run with `--resume`".into(),
            AbortReason::Authentication(why) => format!("authentication failed: {why}"),
            AbortReason::Interrupted => "the run was interrupted".into(),
            AbortReason::NotConfirmed => "not confirmed: nothing was sent".into(),
            AbortReason::Unrecorded(why) => format!(
                "{why}; the run stopped sending. Free the space or fix the path, then finish it with `--resume`"
            ),
        }
    }
}

/// The policy. `write` is true for `resetPasscode`: a write whose request may have
/// reached Graph is verified, never re-sent blindly; reads are idempotent and retried.
pub fn reaction(error: &CallError, write: bool) -> Reaction {
    match &error.kind {
        CallErrorKind::Throttled => Reaction::PauseAll(error.retry_after),
        CallErrorKind::Unauthorized => Reaction::RenewToken,
        CallErrorKind::Forbidden {
            permission: Some(p),
        } => Reaction::Abort(AbortReason::MissingPermission(p.clone())),
        CallErrorKind::MissingRole => Reaction::Abort(AbortReason::MissingRole),
        CallErrorKind::Forbidden { permission: None } => Reaction::Fail {
            reason: "forbidden",
        },
        CallErrorKind::NotFound => Reaction::NotFound,
        CallErrorKind::Rejected => Reaction::Fail { reason: "rejected" },
        CallErrorKind::UnsafeLink => Reaction::Fail {
            reason: "unsafe_next_link",
        },
        // Even a transient one: the token source has already asked again for about a
        // minute (graph::token_retry), once for every worker; a retry here would repeat
        // that minute for every device.
        CallErrorKind::SignIn(auth) => {
            Reaction::Abort(AbortReason::Authentication(auth.to_string()))
        }
        // Nothing left this machine: safe to send again, reads and writes alike.
        CallErrorKind::ConnectFailed => Reaction::Retry {
            fresh: true,
            wait: None,
        },
        _ if write && error.outcome_unknown() => Reaction::Verify,
        CallErrorKind::Unavailable | CallErrorKind::ServerError => Reaction::Retry {
            fresh: true,
            wait: error.retry_after,
        },
        CallErrorKind::Timeout | CallErrorKind::ConnectionLost | CallErrorKind::InvalidResponse => {
            Reaction::Retry {
                fresh: true,
                wait: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(kind: CallErrorKind) -> CallError {
        CallError {
            kind,
            status: None,
            message: String::new(),
            code: None,
            request_id: None,
            client_request_id: "c".into(),
            retry_after: Some(Duration::from_secs(3)),
        }
    }

    #[test]
    fn writes_with_unknown_fate_are_verified_never_resent() {
        for kind in [
            CallErrorKind::Timeout,
            CallErrorKind::ConnectionLost,
            CallErrorKind::InvalidResponse,
            CallErrorKind::Unavailable,
            CallErrorKind::ServerError,
        ] {
            assert_eq!(
                reaction(&error(kind.clone()), true),
                Reaction::Verify,
                "{kind:?}"
            );
            assert!(matches!(
                reaction(&error(kind), false),
                Reaction::Retry { fresh: true, .. }
            ));
        }
    }

    #[test]
    fn throttling_pauses_everyone_for_retry_after() {
        assert_eq!(
            reaction(&error(CallErrorKind::Throttled), true),
            Reaction::PauseAll(Some(Duration::from_secs(3)))
        );
    }

    #[test]
    fn a_connection_that_never_opened_is_retried_even_for_writes() {
        assert!(matches!(
            reaction(&error(CallErrorKind::ConnectFailed), true),
            Reaction::Retry { fresh: true, .. }
        ));
    }

    #[test]
    fn missing_permission_aborts_and_other_403s_fail_the_device() {
        let p = "DeviceManagementManagedDevices.PrivilegedOperations.All".to_string();
        assert_eq!(
            reaction(
                &error(CallErrorKind::Forbidden {
                    permission: Some(p.clone())
                }),
                true
            ),
            Reaction::Abort(AbortReason::MissingPermission(p))
        );
        assert_eq!(
            reaction(&error(CallErrorKind::Forbidden { permission: None }), true),
            Reaction::Fail {
                reason: "forbidden"
            }
        );
    }

    #[test]
    fn a_sign_in_failure_stops_the_run_even_when_it_may_pass_later() {
        use crate::graph::AuthError;
        let outage = AuthError::BadAnswer {
            url: "u".into(),
            status: 503,
            why: "w".into(),
        };
        assert!(outage.is_transient());
        let refused = AuthError::ReadyTokenRefused {
            audience: "https://graph.microsoft.com".into(),
            said: "expired".into(),
        };
        for auth in [outage, refused] {
            let sentence = auth.to_string();
            assert_eq!(
                reaction(&error(CallErrorKind::SignIn(Box::new(auth))), false),
                Reaction::Abort(AbortReason::Authentication(sentence))
            );
        }
    }

    #[test]
    fn unauthorized_renews_the_token_and_404_is_not_found() {
        assert_eq!(
            reaction(&error(CallErrorKind::Unauthorized), true),
            Reaction::RenewToken
        );
        assert_eq!(
            reaction(&error(CallErrorKind::NotFound), false),
            Reaction::NotFound
        );
        assert_eq!(
            reaction(&error(CallErrorKind::Rejected), true),
            Reaction::Fail { reason: "rejected" }
        );
    }
}
