use std::time::{Duration, SystemTime};

use super::query::{self, Clause, List, MAX_PAGE};
use super::*;

const CLIENT_REQUEST_ID: &str = "0f8fad5b-d9cb-469f-a165-70867728950e";

/// A tenant for the callers: the trail under test is its own, apart from it.
static TENANT: std::sync::LazyLock<crate::sim::tenants::Tenant> =
    std::sync::LazyLock::new(crate::sim::tenants::Tenant::empty);

fn caller(client_request_id: Option<&str>) -> Caller<'_> {
    Caller {
        app: "app-1",
        tenant: &TENANT,
        user: None,
        client_request_id,
    }
}

fn at(clock: &SimClock, secs: u64) -> SystemTime {
    clock.wall_at(Duration::from_secs(secs))
}

/// A trail with one record a second on a manual clock, devices 0, 1, 2, ...
fn trail_of(n: u32, correlation: AuditCorrelation) -> (AuditTrail, SimClock) {
    let trail = AuditTrail::new(correlation);
    let clock = SimClock::manual();
    for device in 0..n {
        clock.advance(Duration::from_secs(1));
        trail.record(
            device,
            Family::Passcode,
            &clock,
            &caller(Some(CLIENT_REQUEST_ID)),
            |_| 1,
        );
    }
    (trail, clock)
}

fn everything(now: SystemTime) -> Visibility {
    Visibility {
        now,
        delay: Duration::ZERO,
    }
}

fn devices(records: &[AuditRecord]) -> Vec<u32> {
    records.iter().map(|r| r.device).collect()
}

#[test]
fn the_supported_clauses_are_understood_joined_with_and() {
    let parsed = query::parse_filter(
        List::Events,
        "activityDateTime ge 2026-12-01T10:00:00Z and activityType eq 'ResetPasscode ManagedDevice' \
         AND activityDateTime le '2026-12-01T11:00:00.1234567Z'",
    );
    let ten = humantime::parse_rfc3339("2026-12-01T10:00:00Z").ok();
    let eleven = humantime::parse_rfc3339("2026-12-01T11:00:00.1234567Z").ok();
    assert_eq!(
        parsed.ok(),
        Some(vec![
            Clause::AtOrAfter(ten.unwrap_or(SystemTime::UNIX_EPOCH)),
            Clause::ActivityType("ResetPasscode ManagedDevice".into()),
            Clause::AtOrBefore(eleven.unwrap_or(SystemTime::UNIX_EPOCH)),
        ])
    );
    assert_eq!(
        query::parse_filter(List::RemoteActions, "action eq 'resetPasscode'").ok(),
        Some(vec![Clause::Action("resetPasscode".into())])
    );
    assert_eq!(query::parse_filter(List::Events, "  ").ok(), Some(vec![]));
    // An offset is the same instant in UTC.
    assert_eq!(
        query::time("2026-12-01T11:30:00+01:30"),
        humantime::parse_rfc3339("2026-12-01T10:00:00Z").ok()
    );
    assert_eq!(
        query::time("2026-12-01T08:00:00-02:00"),
        humantime::parse_rfc3339("2026-12-01T10:00:00Z").ok()
    );
}

#[test]
fn any_other_filter_is_a_bad_request_naming_what_is_supported() {
    for (list, filter) in [
        (List::Events, "componentName eq 'Devices'"),
        (List::Events, "activityDateTime gt 2026-12-01T10:00:00Z"),
        (List::Events, "activityDateTime ge yesterday"),
        (List::Events, "activityType eq 'a' or activityType eq 'b'"),
        (List::Events, "activityType eq 'a' and"),
        (List::Events, "resources/any(r: r/resourceId eq 'x')"),
        (List::Events, "action eq 'resetPasscode'"),
        (
            List::RemoteActions,
            "activityType eq 'ResetPasscode ManagedDevice'",
        ),
        (List::RemoteActions, "action eq resetPasscode"),
        (List::RemoteActions, "action eq 'resetPasscode"),
    ] {
        let refused = query::parse_filter(list, filter);
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.0.starts_with("Invalid filter clause")),
            "{filter}: {refused:?}"
        );
    }
    let refused = query::parse_filter(List::RemoteActions, "deviceIMEI eq '1'");
    assert!(refused.is_err_and(|e| e.0.contains("supported: action eq '<text>'")));
}

#[test]
fn top_is_bounded_and_the_skip_token_comes_back_through_the_next_link() {
    let parsed = query::parse(List::Events, "$top=5000&$filter=activityType%20eq%20'x'");
    let parsed = parsed.unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(parsed.top, MAX_PAGE);
    let next = query::next_page(&parsed.carried, 7);
    let again = query::parse(List::Events, &next).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        (again.from, &again.clauses, again.top),
        (7, &parsed.clauses, MAX_PAGE)
    );
    assert_eq!(query::parse(List::Events, "").map(|q| q.top), Ok(50));
    assert!(query::parse(List::Events, "$top=many").is_err());
    assert!(query::parse(List::Events, "$skiptoken=LastDeviceIndex=3").is_err());
}

#[test]
fn pages_follow_each_other_without_gap_or_repeat_and_the_last_has_no_next() {
    let (trail, clock) = trail_of(7, AuditCorrelation::Match);
    let now = everything(clock.wall());
    let (first, next) = trail.page(0, 3, now, |_| true);
    assert_eq!((devices(&first), next), (vec![0, 1, 2], Some(3)));
    let (second, next) = trail.page(3, 3, now, |_| true);
    assert_eq!((devices(&second), next), (vec![3, 4, 5], Some(6)));
    let (last, next) = trail.page(6, 3, now, |_| true);
    assert_eq!((devices(&last), next), (vec![6], None));
    // A filter that keeps every other record pages over positions, not counts.
    let (odd, next) = trail.page(0, 2, now, |r| r.device % 2 == 1);
    assert_eq!((devices(&odd), next), (vec![1, 3], Some(5)));
    let (odd, next) = trail.page(5, 2, now, |r| r.device % 2 == 1);
    assert_eq!((devices(&odd), next), (vec![5], None));
    // Exactly a page's worth left: no link to an empty page.
    let (all, next) = trail.page(0, 7, now, |_| true);
    assert_eq!((all.len(), next), (7, None));
}

#[test]
fn a_record_shows_only_once_the_audit_delay_has_passed_since_its_action() {
    let (trail, clock) = trail_of(3, AuditCorrelation::Match);
    // Actions at 1 s, 2 s and 3 s; a delay of 60 s.
    let seen_at = |secs| {
        let visible = Visibility {
            now: at(&clock, secs),
            delay: Duration::from_secs(60),
        };
        devices(&trail.page(0, 50, visible, |_| true).0)
    };
    assert_eq!(seen_at(3), Vec::<u32>::new());
    assert_eq!(seen_at(60), Vec::<u32>::new());
    assert_eq!(seen_at(61), vec![0]);
    assert_eq!(seen_at(62), vec![0, 1]);
    assert_eq!(seen_at(63), vec![0, 1, 2]);
}

#[test]
fn the_correlation_id_is_the_requests_client_request_id_unless_told_to_mismatch() {
    let (matching, _) = trail_of(2, AuditCorrelation::Match);
    let (mismatching, _) = trail_of(2, AuditCorrelation::Mismatch);
    let clock = SimClock::manual();
    let ids = |trail: &AuditTrail| -> Vec<String> {
        let (records, _) = trail.page(0, 50, everything(at(&clock, 10)), |_| true);
        records
            .iter()
            .map(|r| r.correlation_id.to_string())
            .collect()
    };
    assert_eq!(ids(&matching), [CLIENT_REQUEST_ID, CLIENT_REQUEST_ID]);
    let fresh = ids(&mismatching);
    assert!(fresh.iter().all(|id| id != CLIENT_REQUEST_ID), "{fresh:?}");
    assert_ne!(fresh[0], fresh[1]);
    // No header, or one that is not a GUID: a fresh GUID, never the text sent.
    let trail = AuditTrail::new(AuditCorrelation::Match);
    trail.record(0, Family::Passcode, &clock, &caller(None), |_| 1);
    trail.record(
        1,
        Family::Passcode,
        &clock,
        &caller(Some("not-a-guid")),
        |_| 1,
    );
    let fresh = ids(&trail);
    assert!(
        fresh.iter().all(|id| Uuid::parse_str(id).is_ok()),
        "{fresh:?}"
    );
    assert_ne!(fresh[0], fresh[1]);
}

#[test]
fn records_are_saved_and_restored_before_the_new_ones() {
    let inventory = Inventory::generate(5, 2);
    let (first, clock) = trail_of(3, AuditCorrelation::Match);
    let saved = first.saved(&inventory);
    assert_eq!(saved.len(), 3);
    assert_eq!(saved[0].device, inventory.devices()[0].id.to_string());
    let again = AuditTrail::new(AuditCorrelation::Match);
    clock.advance(Duration::from_secs(10));
    again.record(4, Family::Passcode, &clock, &caller(None), |_| 2);
    again.restore(&inventory, &saved);
    let (records, _) = again.page(0, 50, everything(clock.wall()), |_| true);
    assert_eq!(devices(&records), [0, 1, 2, 4]);
    assert_eq!(again.saved(&inventory)[..3], saved[..]);
    // A record naming a device the tenant lacks is left out.
    let mut stranger = saved[0].clone();
    stranger.device = "00000000-0000-4000-8000-00000000dead".into();
    let other = AuditTrail::new(AuditCorrelation::Match);
    other.restore(&inventory, &[stranger]);
    assert!(other.saved(&inventory).is_empty());
}

#[test]
fn list_timestamps_have_seven_digits_of_fraction_in_utc() {
    let at = humantime::parse_rfc3339("2026-12-01T10:00:00.123456789Z").ok();
    let at = at.unwrap_or(SystemTime::UNIX_EPOCH);
    assert_eq!(timestamp(at), "2026-12-01T10:00:00.1234567Z");
    assert_eq!(
        humantime::parse_rfc3339(&timestamp(at)).ok(),
        humantime::parse_rfc3339("2026-12-01T10:00:00.1234567Z").ok()
    );
}

#[test]
fn a_record_is_timed_to_graphs_100_ns_so_the_time_shown_is_its_own() {
    let clock = SimClock::manual();
    clock.advance(Duration::from_nanos(1_234_567_891));
    let trail = AuditTrail::new(AuditCorrelation::Match);
    trail.record(0, Family::Passcode, &clock, &caller(None), |_| 1);
    let (records, _) = trail.page(0, 1, everything(clock.wall()), |_| true);
    let shown = humantime::parse_rfc3339(&timestamp(records[0].at)).ok();
    assert_eq!(shown, Some(records[0].at));
    assert!(
        clock
            .wall()
            .duration_since(records[0].at)
            .is_ok_and(|d| d.as_nanos() < 100)
    );
}

#[test]
fn a_saved_record_keeps_its_action_and_one_saved_without_it_is_a_reset() {
    let inventory = Inventory::generate(3, 2);
    let clock = SimClock::manual();
    let trail = AuditTrail::new(AuditCorrelation::Match);
    trail.record(0, Family::Lock, &clock, &caller(None), |_| 1);
    let saved = trail.saved(&inventory);
    assert_eq!(saved[0].action, "remoteLock");
    let mut old = serde_json::to_value(&saved[0]).unwrap_or_default();
    if let Some(record) = old.as_object_mut() {
        record.remove("action");
    }
    let old: Option<SavedAudit> = serde_json::from_value(old).ok();
    assert_eq!(old.map(|r| r.action), Some("resetPasscode".to_owned()));
    // An action the simulator does not know is left out, as an unknown device is.
    let mut unknown = saved[0].clone();
    unknown.action = "wipe".into();
    let again = AuditTrail::new(AuditCorrelation::Match);
    again.restore(&inventory, &[unknown, saved[0].clone()]);
    assert_eq!(again.saved(&inventory), saved);
}
