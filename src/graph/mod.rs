//! Microsoft Graph: signing in, the clouds, and the calls the runner makes.
//!
//! Each method of [`GraphClient`] sends exactly **one** HTTP request and reports what
//! happened, success or [`CallError`], as data. Pacing, retries, the shared 429 pause and
//! the no-double-reset policy belong to the runner: only it sees every worker, and a
//! client that retried on its own would hide attempts from the throttling budget and
//! could send a second `resetPasscode` (a second passcode) behind the runner's back.
//!
//! # Layout
//! - [`secret`]: [`Secret`], a string that prints as `[redacted]`.
//! - [`cloud`]: [`Cloud`] and [`Endpoints`]; plain HTTP only to loopback.
//! - [`credentials`]: who we are, from flags and environment variables.
//! - [`auth`]: [`TokenSource`], cached tokens of every kind, renewed before expiry.
//! - [`interactive`]: delegated sign-in (device code, browser with PKCE), refresh tokens.
//! - [`managed`]: managed identity tokens (metadata service, App Service).
//! - [`claims`]: who a token names, for the confirmation and the summary.
//! - [`retry_after`]: `Retry-After` values.
//! - [`token_retry`]: asking the token endpoint again after 429, 5xx and lost answers.
//! - [`errors`]: Graph's error envelope, [`CallError`] and its kinds.
//! - [`assertion`]: the signed JWT that proves a certificate credential.
//! - [`device`]: [`ManagedDevice`], [`ActionResult`] and the lookups' filters.
//! - [`scrub`]: Graph's and Entra's error text without tokens, keys or codes.
//! - [`paging`]: [`paging::Paging`], every paged read bounded (a circle, a page limit).
//! - [`api`]: [`GraphApi`], the calls as a trait, for fakes in the runner's tests.
//! - [`client`]: [`GraphClient`], one request per call; `exchange` sends it and sorts
//!   the answer.
//! - [`signin`]: a client with its first token, for a tenant or a simulator.
//! - [`verify`]: which `deviceActionResults` entry is the reset a run sent.
//!
//! Core module: it imports the device domain and the rules, never a command.

pub mod api;
pub mod assertion;
pub mod audit;
pub mod auth;
pub mod claims;
pub mod client;
pub mod cloud;
pub mod credentials;
pub mod device;
pub mod errors;
mod exchange;
pub mod filter;
pub mod groups;
pub mod interactive;
pub mod managed;
pub mod paging;
pub mod retry_after;
pub mod scrub;
pub mod secret;
pub mod signin;
#[cfg(test)]
mod test_server;
pub mod token_retry;
pub mod verify;

pub use api::GraphApi;
pub use auth::{AuthError, TokenSource};
pub use client::{Connection, GraphClient, PageRequest, Reply, SetupError};
pub use cloud::{Cloud, EndpointError, Endpoints};
pub use credentials::{
    AppCredential, AuthMethod, CredentialError, Identity, IdentityFlags, Interactive, Resolved,
};
pub use device::{
    ActionResult, DeviceActions, DevicePage, DirectoryUser, ErrorCode, FilterProperty,
    ManagedDevice, RULE_FIELDS,
};
pub use errors::{CallError, CallErrorKind};
pub use interactive::SignInUi;
pub use retry_after::parse_retry_after;
pub use secret::Secret;
pub use signin::{
    SignedIn, Tenant, resolve_identity, sign_in, sign_in_reusing, sign_in_to_simulator,
};
