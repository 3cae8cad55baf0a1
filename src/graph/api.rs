//! [`GraphApi`]: the calls as a trait, so the runner's orchestration can be tested
//! with a fake that needs no sockets (docs/architecture.md, "Seams for tests"; after
//! hyperfine's `Executor`), while end-to-end tests drive the real [`GraphClient`]
//! against the simulator.

use std::future::Future;

use super::audit::{AuditList, AuditPage};
use super::client::{Connection, GraphClient, PageRequest, Reply};
use super::device::{DeviceActions, DevicePage, DirectoryUser, ManagedDevice};
use super::errors::CallError;
use super::groups::{GroupRef, MembersPage};
use crate::rules::Family;

/// What the runner needs from Graph; each call is one request.
pub trait GraphApi: Clone + Send + Sync + 'static {
    fn get_device(
        &self,
        id: &str,
        select: &[&str],
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<ManagedDevice>, CallError>> + Send;

    fn list_devices_page(
        &self,
        request: PageRequest,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DevicePage>, CallError>> + Send;

    /// The action's POST to one device (`resetPasscode`, `remoteLock`,
    /// `rotateBitLockerKeys`) or, for [`Family::Sessions`], to one user
    /// (`revokeSignInSessions`).
    fn device_action(
        &self,
        id: &str,
        action: Family,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<()>, CallError>> + Send;

    fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DeviceActions>, CallError>> + Send;

    /// A user of the directory (`revoke-sessions`). Fakes that serve no users answer 404.
    fn get_user(
        &self,
        user: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DirectoryUser>, CallError>> + Send {
        let _ = (user, connection);
        async {
            Err(super::exchange::bare_error(
                super::CallErrorKind::NotFound,
                Some(404),
                "this client serves no users".into(),
                "",
            ))
        }
    }

    /// The groups named `name`. Fakes that serve no groups answer 404.
    fn find_groups(
        &self,
        name: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<Vec<GroupRef>>, CallError>> + Send {
        let _ = (name, connection);
        async { Err(no_groups()) }
    }

    /// A page of a group's transitive members.
    fn group_members_page(
        &self,
        group: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<MembersPage>, CallError>> + Send {
        let _ = (group, next, connection);
        async { Err(no_groups()) }
    }

    /// A page of Intune's records of passcode resets since `since` (`audit`). Fakes
    /// that keep no audit answer 404.
    fn audit_page(
        &self,
        list: AuditList,
        since: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<AuditPage>, CallError>> + Send {
        let _ = (list, since, next, connection);
        async {
            Err(super::exchange::bare_error(
                super::CallErrorKind::NotFound,
                Some(404),
                "this client keeps no audit".into(),
                "",
            ))
        }
    }
}

/// What a client without groups answers.
fn no_groups() -> CallError {
    super::exchange::bare_error(
        super::CallErrorKind::NotFound,
        Some(404),
        "this client serves no groups".into(),
        "",
    )
}

impl GraphApi for GraphClient {
    fn get_device(
        &self,
        id: &str,
        select: &[&str],
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<ManagedDevice>, CallError>> + Send {
        GraphClient::get_device(self, id, select, connection)
    }

    fn list_devices_page(
        &self,
        request: PageRequest,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DevicePage>, CallError>> + Send {
        GraphClient::list_devices_page(self, request, connection)
    }

    fn device_action(
        &self,
        id: &str,
        action: Family,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<()>, CallError>> + Send {
        GraphClient::device_action(self, id, action, connection)
    }

    fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DeviceActions>, CallError>> + Send {
        GraphClient::action_results(self, id, connection)
    }

    fn get_user(
        &self,
        user: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<DirectoryUser>, CallError>> + Send {
        GraphClient::get_user(self, user, connection)
    }

    fn find_groups(
        &self,
        name: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<Vec<GroupRef>>, CallError>> + Send {
        GraphClient::find_groups(self, name, connection)
    }

    fn group_members_page(
        &self,
        group: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<MembersPage>, CallError>> + Send {
        GraphClient::group_members_page(self, group, next, connection)
    }

    fn audit_page(
        &self,
        list: AuditList,
        since: &str,
        next: Option<&str>,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<AuditPage>, CallError>> + Send {
        GraphClient::audit_page(self, list, since, next, connection)
    }
}
