//! The Graph calls the runner makes, as a trait: the HTTP client implements it, and the
//! engine's tests can drive the orchestration without sockets (hyperfine's `Executor`).

use std::future::Future;

use crate::graph::{
    ActionResult, CallError, Connection, DevicePage, GraphClient, ManagedDevice, PageRequest, Reply,
};

/// One HTTP request per call; pacing, retries and the no-double-reset rule are the
/// engine's.
pub trait Graph: Send + Sync + 'static {
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

    fn reset_passcode(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<()>, CallError>> + Send;

    fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<Vec<ActionResult>>, CallError>> + Send;
}

impl Graph for GraphClient {
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

    fn reset_passcode(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<()>, CallError>> + Send {
        GraphClient::reset_passcode(self, id, connection)
    }

    fn action_results(
        &self,
        id: &str,
        connection: Connection,
    ) -> impl Future<Output = Result<Reply<Vec<ActionResult>>, CallError>> + Send {
        GraphClient::action_results(self, id, connection)
    }
}
