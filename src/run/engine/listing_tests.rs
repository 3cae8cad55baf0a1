//! Listings through the one dispatcher (issue 19): a group's members' devices are read
//! side by side, at most `--concurrency` at once, and joined in the members' order.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::graph::groups::{Member, MembersPage};
use crate::graph::{
    CallError, Connection, DeviceActions, DevicePage, GraphApi, ManagedDevice, PageRequest, Reply,
};
use crate::pacing::Settings;

use super::Engine;

const GROUP: &str = "8d5b1f2a-3c4e-4f60-9a7b-1c2d3e4f5a6b";

/// A group of `users` members, each with two devices; every listing takes 50 ms.
#[derive(Clone, Default)]
struct Directory {
    users: usize,
    in_flight: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
    listed: Arc<Mutex<Vec<String>>>,
}

fn reply<T>(value: T) -> Reply<T> {
    Reply {
        value,
        status: 200,
        request_id: None,
        client_request_id: "fake".into(),
    }
}

impl GraphApi for Directory {
    async fn get_device(
        &self,
        _: &str,
        _: &[&str],
        _: Connection,
    ) -> Result<Reply<ManagedDevice>, CallError> {
        Err(CallError::not_in_fake())
    }

    async fn list_devices_page(
        &self,
        request: PageRequest,
        _: Connection,
    ) -> Result<Reply<DevicePage>, CallError> {
        let PageRequest::User { user, .. } = request else {
            return Err(CallError::not_in_fake());
        };
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.listed.lock().unwrap().push(user.clone());
        let n: usize = user
            .trim_start_matches('u')
            .split('@')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let devices = (0..2)
            .map(|d| ManagedDevice {
                id: format!("{n:08x}-0000-4000-8000-{d:012x}"),
                operating_system: Some("iOS".into()),
                os_version: Some("17.5".into()),
                ..ManagedDevice::default()
            })
            .collect();
        Ok(reply(DevicePage {
            devices,
            next_link: None,
        }))
    }

    async fn device_action(
        &self,
        _: &str,
        _: crate::rules::Family,
        _: Connection,
    ) -> Result<Reply<()>, CallError> {
        Err(CallError::not_in_fake())
    }

    async fn action_results(
        &self,
        _: &str,
        _: Connection,
    ) -> Result<Reply<DeviceActions>, CallError> {
        Err(CallError::not_in_fake())
    }

    async fn group_members_page(
        &self,
        _: &str,
        _: Option<&str>,
        _: Connection,
    ) -> Result<Reply<MembersPage>, CallError> {
        let members = (0..self.users)
            .map(|n| Member::User {
                id: format!("id{n}"),
                upn: Some(format!("u{n}@contoso.com")),
            })
            .collect();
        Ok(reply(MembersPage {
            members,
            next_link: None,
        }))
    }
}

#[tokio::test(start_paused = true)]
async fn regression_19_a_groups_members_are_listed_side_by_side_in_their_order() {
    let graph = Directory {
        users: 40,
        ..Directory::default()
    };
    // No pace: only the dispatcher bounds how many listings are out at once.
    let settings = Settings {
        concurrency: 8,
        ..Settings::default()
    }
    .unlimited();
    let engine = Arc::new(Engine::new(graph.clone(), settings));
    let devices = engine.group_listing(GROUP).await.expect("listed");
    assert_eq!(
        graph.listed.lock().unwrap().len(),
        40,
        "each member read once"
    );
    assert_eq!(
        graph.most.load(Ordering::SeqCst),
        8,
        "the members' listings go --concurrency at a time"
    );
    // Joined in the members' order, whatever order the answers came in.
    let order: Vec<String> = devices.iter().map(|d| d.id.clone()).collect();
    let expected: Vec<String> = (0..40usize)
        .flat_map(|n| (0..2).map(move |d| format!("{n:08x}-0000-4000-8000-{d:012x}")))
        .collect();
    assert_eq!(order, expected);
}
