//! The one integration test binary: the real `intune-reset` binary on real files.

mod common;
mod plan_cli;
mod rules_cli;
mod run_e2e;
