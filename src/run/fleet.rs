//! A run's tenants (issue 22): one [`Engine`] per tenant signed in to, each on its own
//! pacer (its Intune and directory budgets, its own 429 pause), and each row sent to
//! the engine of the tenant it names. One customer's throttling never slows another;
//! the only limit across tenants, Graph's 130,000 requests per 10 s per app, is far
//! above what the tenants' own budgets allow together.
//!
//! A run of one tenant is a fleet of one: every row goes to its engine, which ends a
//! row naming another tenant `other_tenant`, as before.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use crate::graph::{GraphApi, SignedIn};
use crate::ledger::timestamp;
use crate::pacing::{AbortReason, Counters, Pacer};
use crate::planner::Work;
use crate::report::{Outcome, ReportRow};

use super::engine::Engine;
use super::progress::Waiting;

/// One tenant of a run, as sign-in left it.
pub struct TenantRun<G> {
    /// How the flags or the job name it (lower case): the question's and the
    /// summary's name for it.
    pub label: String,
    /// Every name rows may give it: the label, and the id its sign-in found.
    pub names: Vec<String>,
    /// Signed in and checked: its pacer and who signed in; else why not (its rows
    /// are `not_attempted`, and a `--resume` sends them).
    pub ready: Result<(Arc<Pacer<G>>, Option<SignedIn>), String>,
}

/// A tenant's engine, or why it has none.
pub(super) struct Member<G> {
    pub label: String,
    names: Vec<String>,
    pub engine: Option<Arc<Engine<G>>>,
    pub signed_in: Option<SignedIn>,
    /// Why the tenant has no engine: its sign-in or its check failed.
    pub unavailable: Option<String>,
}

/// Where a row goes.
pub(super) enum Route<'a, G> {
    /// To this tenant's engine.
    Engine(&'a Arc<Engine<G>>),
    /// Nowhere: its final row (another tenant's, or a tenant that did not sign in).
    Ended(Box<ReportRow>),
}

pub(super) struct Fleet<G> {
    pub members: Vec<Member<G>>,
    /// A run across several tenants: rows must name theirs.
    pub many: bool,
}

impl<G: GraphApi> Fleet<G> {
    /// The engines, each built by `build` from its tenant's pacer.
    pub fn new(
        tenants: Vec<TenantRun<G>>,
        many: bool,
        build: impl Fn(Arc<Pacer<G>>, Option<&SignedIn>) -> Engine<G>,
    ) -> Fleet<G> {
        let members = tenants
            .into_iter()
            .map(|t| match t.ready {
                Ok((pacer, who)) => {
                    let engine = build(pacer, who.as_ref());
                    let engine = if many {
                        engine.one_of_many(&t.label, &t.names)
                    } else {
                        engine
                    };
                    Member {
                        label: t.label,
                        names: t.names,
                        engine: Some(Arc::new(engine)),
                        signed_in: who,
                        unavailable: None,
                    }
                }
                Err(why) => Member {
                    label: t.label,
                    names: t.names,
                    engine: None,
                    signed_in: None,
                    unavailable: Some(why),
                },
            })
            .collect();
        Fleet { members, many }
    }

    /// The engines of the tenants signed in to.
    pub fn engines(&self) -> impl Iterator<Item = &Arc<Engine<G>>> {
        self.members.iter().filter_map(|m| m.engine.as_ref())
    }

    /// The member rows naming `tenant` belong to.
    pub fn member(&self, tenant: &str) -> Option<&Member<G>> {
        let tenant = tenant.trim().to_ascii_lowercase();
        if !self.many {
            return self.members.first();
        }
        self.members.iter().find(|m| m.names.contains(&tenant))
    }

    /// The lane (the index among the tenants signed in to) that acts on the rows
    /// naming `tenant`: the first for a run of one tenant, and for rows that go to no
    /// tenant signed in to (they end without a request).
    pub fn lane_of(&self, tenant: &str) -> usize {
        if !self.many {
            return 0;
        }
        let tenant = tenant.trim().to_ascii_lowercase();
        self.members
            .iter()
            .filter(|m| m.engine.is_some())
            .position(|m| m.names.contains(&tenant))
            .unwrap_or(0)
    }

    /// The engine of the tenant a claim recorded (`--resume`).
    pub fn engine_of(&self, tenant: &str) -> Option<&Arc<Engine<G>>> {
        self.member(tenant).and_then(|m| m.engine.as_ref())
    }

    /// Where the row goes: its tenant's engine, or its end.
    pub fn route(&self, row: &ReportRow, work: &Work) -> Route<'_, G> {
        if !self.many {
            let Some(engine) = self.engines().next() else {
                return Route::Ended(Box::new(
                    self.unavailable_row(row.clone(), &self.members[0]),
                ));
            };
            return match engine.refused_here(row, work) {
                Some(ended) => Route::Ended(Box::new(ended)),
                None => Route::Engine(engine),
            };
        }
        let Some(named) = work.tenant.as_deref() else {
            let mut row = row.clone();
            row.outcome = Outcome::Invalid;
            row.reason = "no_tenant".into();
            row.detail = "the row names no tenant, and this run spans several: a row is never guessed into a tenant; fill its tenant column (an id or a domain); nothing was sent".into();
            return Route::Ended(Box::new(row));
        };
        match self.member(named) {
            Some(Member {
                engine: Some(engine),
                ..
            }) => Route::Engine(engine),
            Some(member) => Route::Ended(Box::new(self.unavailable_row(row.clone(), member))),
            None => {
                let mut row = row.clone();
                row.outcome = Outcome::Ineligible;
                row.reason = "other_tenant".into();
                row.detail = format!(
                    "the row names tenant {named}, which is not one of this run's tenants ({}); nothing was sent",
                    self.labels().join(", ")
                )
                .into();
                row.finished_at = timestamp(SystemTime::now());
                Route::Ended(Box::new(row))
            }
        }
    }

    fn unavailable_row(&self, mut row: ReportRow, member: &Member<G>) -> ReportRow {
        let why = member
            .unavailable
            .as_deref()
            .unwrap_or("it was not signed in to");
        row.outcome = Outcome::NotAttempted;
        row.reason = "tenant_unavailable".into();
        row.detail = format!(
            "not attempted: tenant {} is not available to this run ({why}); nothing was sent, and `--resume` sends it",
            member.label
        )
        .into();
        row
    }

    /// Each tenant's part of the summary, its rows' outcomes counted in
    /// `outcomes` (by label) as the rows arrived.
    pub fn summaries(
        &self,
        mut outcomes: std::collections::BTreeMap<String, std::collections::BTreeMap<Outcome, u64>>,
    ) -> std::collections::BTreeMap<String, crate::report::TenantSummary> {
        self.members
            .iter()
            .map(|m| {
                let (posts, throttled, aborted) = match (&m.engine, &m.unavailable) {
                    (Some(e), _) => (
                        e.counters().posts.load(Ordering::Relaxed),
                        e.counters().throttled.load(Ordering::Relaxed),
                        e.abort_reason().map(|r| r.sentence()),
                    ),
                    (None, why) => (0, 0, why.clone()),
                };
                let summary = crate::report::TenantSummary {
                    signed_in: m.signed_in.clone(),
                    outcomes: outcomes.remove(&m.label).unwrap_or_default(),
                    posts,
                    throttled,
                    aborted,
                };
                (m.label.clone(), summary)
            })
            .collect()
    }

    /// The label of the tenant a row names (a run across several).
    pub fn label_of(&self, tenant: &str) -> Option<&str> {
        if !self.many {
            return None;
        }
        self.member(tenant).map(|m| m.label.as_str())
    }

    pub fn labels(&self) -> Vec<String> {
        self.members.iter().map(|m| m.label.clone()).collect()
    }

    /// Stops every tenant (an interrupt, a record that cannot be written).
    pub fn abort_all(&self, reason: AbortReason) {
        for engine in self.engines() {
            engine.abort(reason.clone());
        }
    }

    /// Why the run, as a whole, stopped: the first tenant that stopped or could not
    /// start, named when the run spans several (the worst tenant's exit code).
    pub fn abort_reason(&self) -> Option<AbortReason> {
        for member in &self.members {
            let reason = match (&member.engine, &member.unavailable) {
                (Some(engine), _) => engine.abort_reason(),
                (None, Some(why)) => Some(AbortReason::Authentication(why.clone())),
                (None, None) => None,
            };
            if let Some(reason) = reason {
                return Some(if self.many {
                    reason.in_tenant(&member.label)
                } else {
                    reason
                });
            }
        }
        None
    }

    /// A counter, summed over the tenants.
    pub fn sum(&self, counter: impl Fn(&Counters) -> &std::sync::atomic::AtomicU64) -> u64 {
        self.engines()
            .map(|e| counter(e.counters()).load(Ordering::Relaxed))
            .sum()
    }

    /// What the run waits for: lost answers settled in any tenant; a 429 pause only
    /// when every tenant is paused (else the others go on).
    pub fn waiting(&self) -> Waiting {
        let mut all = Waiting::default();
        let mut paused: Option<Option<SystemTime>> = None;
        for engine in self.engines() {
            let w = engine.waiting();
            all.settling += w.settling;
            all.settle_until = all.settle_until.max(w.settle_until);
            paused = Some(match (paused, w.paused_until) {
                (None, until) => until,
                (Some(Some(a)), Some(b)) => Some(a.min(b)),
                _ => None,
            });
        }
        all.paused_until = paused.flatten();
        all
    }
}
