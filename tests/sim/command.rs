//! `intune-reset simulate` as a user runs it: the first stdout line, the summary on
//! exit, and the refusal of a non-loopback address.

// Most tests here run on Unix only (SIGTERM has no Windows counterpart): on Windows their helpers are unused.
#![cfg_attr(not(unix), allow(unused_imports, dead_code))]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

// SIGTERM has no Windows counterpart (there the simulator stops on Ctrl-C, which a test
// cannot send to one child alone).
#[cfg(unix)]
#[test]
fn simulate_announces_its_address_serves_and_prints_a_summary_on_sigterm() {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin!("intune-reset"))
        .args(["simulate", "--generate", "10", "--seed", "4"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{first}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let status = runtime.block_on(async {
        super::install_crypto();
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", "app"),
            ("client_secret", "x"),
            ("scope", super::SCOPE),
        ];
        let token_url = format!(
            "{url}/{}/oauth2/v2.0/token",
            intune_reset::sim::DEFAULT_TENANT_ID
        );
        super::client()
            .post(token_url)
            .form(&form)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    assert_eq!(status, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Its stderr is read while it exits, not after: a pipe nobody reads can fill and
    // block the child before it ends (issue 18).
    let out = child.wait_with_output().unwrap();
    let exit = out.status;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(exit.success(), "{exit:?} {stderr}");
    assert!(stderr.contains("simulator summary"), "{stderr}");
    assert!(stderr.contains("requests:         1 (token 1)"), "{stderr}");
}

#[test]
fn a_non_loopback_address_needs_allow_remote() {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("intune-reset"))
        .args(["simulate", "--bind", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--allow-remote"));
}

#[test]
fn a_bad_fault_is_a_usage_error() {
    let output = Command::new(assert_cmd::cargo::cargo_bin!("intune-reset"))
        .args(["simulate", "--fault", "flood=0.5"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown fault"));
}

#[test]
fn a_bad_audit_flag_is_a_usage_error() {
    for args in [
        ["--audit-correlation", "sometimes"],
        ["--audit-delay", "soon"],
    ] {
        let output = Command::new(assert_cmd::cargo::cargo_bin!("intune-reset"))
            .arg("simulate")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(args[0]), "{stderr}");
    }
}
