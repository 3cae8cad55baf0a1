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
//! - [`auth`]: [`TokenSource`], cached app-only tokens, client assertions.
//! - [`retry_after`]: `Retry-After` values.
//! - [`errors`]: Graph's error envelope, [`CallError`] and its kinds.
//! - [`client`]: [`GraphClient`] and the device types it returns.

pub mod cloud;
pub mod errors;
pub mod retry_after;
pub mod secret;

pub use cloud::{Cloud, EndpointError, Endpoints};
pub use errors::{CallError, CallErrorKind};
pub use retry_after::parse_retry_after;
pub use secret::Secret;
