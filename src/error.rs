//! The exit-code contract and the one error type commands return.
//!
//! Exit codes (documented in `--help` and the README): 0 every actionable row
//! succeeded; 1 some rows need attention; 2 bad usage or an unreadable input, nothing
//! was sent; 3 the command was aborted (sign-in, permission, interruption, an
//! unwritable record). [`CommandError`] is always a 2: whatever returns it stopped
//! before anything reached Graph; a command that stops later says so in its outcome.
//!
//! Core module: imports no command and nothing of the process.

use std::path::PathBuf;

use crate::job::JobError;

pub const EXIT_OK: u8 = 0;
pub const EXIT_ROWS_NEED_ATTENTION: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_ABORTED: u8 = 3;

/// Failures that stop a command before it sent anything.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Job(#[from] JobError),
    #[error("cannot write {what} {path}: {source}")]
    Write {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Usage(String),
    /// An input a command refuses, in the command's own words (`status`'s run report).
    #[error(transparent)]
    Refused(Box<dyn std::error::Error + Send + Sync>),
}

impl CommandError {
    /// Every `CommandError` comes before anything was sent.
    pub fn exit_code(&self) -> u8 {
        EXIT_USAGE
    }
}

/// A finished command's exit code: aborted beats rows needing attention.
pub fn exit_code(aborted: bool, needs_attention: bool) -> u8 {
    if aborted {
        EXIT_ABORTED
    } else if needs_attention {
        EXIT_ROWS_NEED_ATTENTION
    } else {
        EXIT_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aborted_beats_rows_that_need_attention() {
        assert_eq!(exit_code(true, true), EXIT_ABORTED);
        assert_eq!(exit_code(false, true), EXIT_ROWS_NEED_ATTENTION);
        assert_eq!(exit_code(false, false), EXIT_OK);
        assert_eq!(CommandError::Usage("x".into()).exit_code(), EXIT_USAGE);
    }
}
