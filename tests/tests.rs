//! The one integration test binary: the real `intune-reset` binary on real files, and
//! the library driven end to end against the simulator on 127.0.0.1:0.

mod actions_cli;
mod audit_cli;
mod audit_lists_cli;
mod common;
mod completions_cli;
mod crash_cli;
mod entra_cli;
mod evidence_cli;
mod evidence_html;
mod follow_cli;
mod hardening;
mod history_cli;
mod input_cli;
mod input_limits_cli;
mod kill_campaign;
mod layers;
mod locks_cli;
mod logs_cli;
mod lookup_cli;
mod never_twice_cli;
mod next_steps_cli;
mod paging_cli;
mod plan_cli;
mod rehearsal_cli;
mod report_files;
mod resume_cli;
mod rules_cli;
mod run_e2e;
mod security;
mod signin_cli;
mod sim;
mod status_cli;
mod status_tenants_cli;
mod tenants_cli;
