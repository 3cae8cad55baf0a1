//! Pacing: how fast and how often requests go to Graph, shared by `run` and `status`.
//!
//! - [`limiter`]: sliding-window limiters (Intune: 200 writes and 2000 requests per 20 s
//!   per app), hand-written because a token bucket would allow 400 in a 20 s span.
//! - [`cooldown`]: the shared pause: one 429 stops every worker.
//! - [`reaction`]: the retry policy as one pure function, and why a command aborts.
//! - [`settings`]: the numbers, with Intune's as defaults.
//! - [`Pacer`]: every request goes through it.
//! - [`workers`]: the one dispatcher: how many devices are worked on at once, parked
//!   waits, and a result for every task (issue 19).
//!
//! Core module: it imports Graph and the report's outcomes, never a command.

pub mod cooldown;
pub mod limiter;
mod pacer;
pub mod reaction;
pub mod settings;
pub mod workers;

pub use pacer::{
    Budget, CallFuture, Counters, Failure, MAX_TOKEN_RENEWALS, Pacer, ReadFailure, Step,
};
pub use reaction::AbortReason;
pub use settings::Settings;
