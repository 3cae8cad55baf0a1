//! Signing in as administrators do (issue 10): the real binary against a `simulate`
//! child on 127.0.0.1, with each `--auth` flow end to end, the errors Entra and Intune
//! answer, renewal by refresh token, and no code or token in anything left behind.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use tempfile::TempDir;

use crate::common::tenant::{CLIENT, TENANT, Tenant, bin, ios_job, wait_for};
use crate::common::{count, read_report};

const LIMIT: Duration = Duration::from_secs(60);
/// The simulated tenant's domain, and so its users' UPN suffix.
const DOMAIN: &str = intune_reset::sim::DEFAULT_TENANT_DOMAIN;

/// Every variable that configures a credential, removed so that only the test's choice
/// is in effect.
const CREDENTIAL_VARS: [&str; 10] = [
    "INTUNE_RESET_ACCESS_TOKEN",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SECRET",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];

/// `run JOB --yes` against `tenant` with only `env` configuring the sign-in.
fn run_as(tenant: &Tenant, job: &Path, dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(bin());
    cmd.arg("run")
        .arg(job)
        .args(["--yes", "--action", "auto", "--timeout", "5s"])
        .args(["--graph-url", &tenant.url, "--authority-url", &tenant.url])
        .arg("--report")
        .arg(dir.join("report.csv"))
        .arg("--summary-json")
        .arg(dir.join("summary.json"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for var in CREDENTIAL_VARS {
        cmd.env_remove(var);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

fn finish(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd.spawn().expect("the run starts");
    let out = wait_for(&mut child, LIMIT);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).expect("summary"))
        .expect("summary JSON")
}

fn start(dir: &Path, job: &Path, extra: &[&str]) -> Tenant {
    let args = [&["--action-delay", "0"][..], extra].concat();
    Tenant::start(&[job], &dir.join("sim.jsonl"), &args)
}

/// Whether `text` holds `prefix` followed by a long token: the simulator's device codes
/// (`dc.`), refresh tokens (`rt.`) and JWTs (`eyJ`) look so.
fn holds_secret(text: &str, prefix: &str) -> bool {
    text.match_indices(prefix).any(|(at, _)| {
        text[at + prefix.len()..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
            .count()
            >= 30
    })
}

/// Everything a run leaves behind, for leak checks.
fn left_behind(dir: &Path, stderr: &str) -> String {
    let mut all = stderr.to_owned();
    for name in [
        "report.csv",
        "summary.json",
        "sim.jsonl",
        "sim.jsonl.stderr",
    ] {
        all.push_str(&std::fs::read_to_string(dir.join(name)).unwrap_or_default());
    }
    all
}

#[test]
fn device_code_sign_in_shows_the_code_on_stderr_names_the_user_and_resets() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 3);
    let tenant = start(dir.path(), &job, &[]);
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &["--auth", "device-code", "--client-id", CLIENT],
        &[],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("/devicelogin") && stderr.contains("enter the code"),
        "the instruction is on stderr: {stderr}"
    );
    let upn = format!("admin@{DOMAIN}");
    assert!(
        stderr.contains(&format!("signed in as {upn} (device-code sign-in)")),
        "{stderr}"
    );
    let s = summary(dir.path());
    assert_eq!(s["signed_in"]["user"], upn.as_str());
    assert_eq!(s["signed_in"]["method"], "device-code");
    assert_eq!(s["signed_in"]["tenant"], TENANT);
    assert_eq!(
        count(&read_report(&dir.path().join("report.csv")), "succeeded"),
        3
    );
    // The device code, the refresh token and the tokens never leave the process.
    let all = left_behind(dir.path(), &stderr);
    for prefix in ["dc.", "rt.", "eyJ"] {
        assert!(!holds_secret(&all, prefix), "a {prefix} secret leaked");
    }
}

/// An HTTP GET on a fresh connection: the status line and headers, and the body.
fn get(url: &str) -> (String, String) {
    let url = url::Url::parse(url).expect("a URL");
    let port = url.port().expect("a port");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    };
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("read");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (head.to_owned(), body.to_owned())
}

/// What reaches the loopback listener before the browser's real redirect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Before {
    Nothing,
    /// The redirect with its state changed: refused with a 400, not used.
    ForgedState,
    /// A connection that sends nothing and stays open.
    IdleConnection,
}

/// Starts a browser sign-in run and plays the browser: reads the authorize URL from
/// stderr, follows it to the simulated Entra ID and its redirect to the loopback
/// listener (after `before`). Returns the run's exit code, its stderr and the code the
/// redirect carried.
fn browser_run(
    tenant: &Tenant,
    job: &Path,
    dir: &Path,
    before: Before,
) -> (Option<i32>, String, String) {
    let mut child = run_as(
        tenant,
        job,
        dir,
        &["--auth", "browser", "--client-id", CLIENT],
        &[],
    )
    .spawn()
    .expect("the run starts");
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut seen = String::new();
    let authorize = loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr") == 0 {
            panic!("the run ended before printing the sign-in address: {seen}");
        }
        seen.push_str(&line);
        if let Some(url) = line.trim().strip_prefix("http://") {
            break format!("http://{url}");
        }
    };
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    let (head, _) = get(&authorize);
    assert!(head.starts_with("HTTP/1.1 302"), "{head}");
    let location = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("location: ")
                .or_else(|| l.strip_prefix("Location: "))
        })
        .expect("a redirect")
        .trim()
        .to_owned();
    assert!(location.starts_with("http://localhost:"), "{location}");
    let redirect = url::Url::parse(&location).unwrap();
    let code = redirect
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let mut idle = None;
    match before {
        Before::Nothing => {}
        Before::ForgedState => {
            let (head, body) = get(&location.replace("state=", "state=forged"));
            assert!(head.starts_with("HTTP/1.1 400"), "{head}");
            assert!(body.contains("Not this sign-in"), "{body}");
        }
        Before::IdleConnection => {
            // Connected (the listener's backlog holds it) before the redirect is sent.
            let port = redirect.port().expect("the listener's port");
            idle = Some(std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect"));
        }
    }
    let (head, body) = get(&location);
    drop(idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.contains("intune-reset"), "{body}");
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).expect("stderr");
    seen.push_str(&rest);
    let out = wait_for(&mut child, LIMIT);
    (out.status.code(), seen, code)
}

#[test]
fn browser_sign_in_with_pkce_resets_as_the_user_and_leaks_no_code() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = start(dir.path(), &job, &[]);
    let (code, stderr, auth_code) = browser_run(&tenant, &job, dir.path(), Before::Nothing);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(auth_code.starts_with("code."), "{auth_code}");
    assert!(
        stderr.contains(&format!("admin@{DOMAIN} (browser sign-in)")),
        "{stderr}"
    );
    assert_eq!(summary(dir.path())["signed_in"]["method"], "browser");
    let all = left_behind(dir.path(), &stderr);
    assert!(!all.contains(&auth_code), "the authorization code leaked");
    // The PKCE verifier: 64 characters of [A-Za-z0-9-._~], sent only in the token
    // request's body. Nothing that long of that alphabet is anywhere (the printed
    // address holds only its 43-character hash, and ids are 36).
    let longest = all
        .split(|c: char| !(c.is_ascii_alphanumeric() || "-._~".contains(c)))
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(
        longest < 60,
        "a verifier-like secret of {longest} characters leaked"
    );
    assert!(
        !holds_secret(&all, "rt.") && !holds_secret(&all, "eyJ"),
        "a token leaked"
    );
}

#[test]
fn a_browser_answer_with_another_state_is_not_used_and_the_real_one_still_is() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 1);
    let tenant = start(dir.path(), &job, &[]);
    let (code, stderr, _) = browser_run(&tenant, &job, dir.path(), Before::ForgedState);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(tenant.resets().len(), 1, "signed in with the real answer");
}

#[test]
fn regression_17_11_an_idle_connection_does_not_block_the_browser_redirect() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 1);
    let tenant = start(dir.path(), &job, &[]);
    let (code, stderr, _) = browser_run(&tenant, &job, dir.path(), Before::IdleConnection);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("(browser sign-in)"), "{stderr}");
    assert_eq!(tenant.resets().len(), 1);
}

#[test]
fn a_declined_sign_in_exits_3_saying_so_and_sends_nothing() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 1);
    let tenant = start(dir.path(), &job, &["--user-declines"]);
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &["--auth", "device-code", "--client-id", CLIENT],
        &[],
    ));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("the sign-in was declined"), "{stderr}");
    assert!(tenant.resets().is_empty());
}

#[test]
fn a_user_without_an_intune_role_stops_the_run_naming_the_role() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 4);
    let tenant = start(dir.path(), &job, &["--user-without-role"]);
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &[
            "--auth",
            "device-code",
            "--client-id",
            CLIENT,
            "--concurrency",
            "1",
        ],
        &[],
    ));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("lacks an Intune role allowing the remote task \"Reset passcode\""),
        "{stderr}"
    );
    let rows = read_report(&dir.path().join("report.csv"));
    assert!(
        rows.iter().any(|r| r["reason"] == "missing_intune_role"),
        "{rows:?}"
    );
    assert!(tenant.resets().is_empty());
}

#[test]
fn entras_refusals_become_sentences() {
    for (error, phrase) in [
        ("53003", "Conditional Access"),
        ("50076", "multi-factor authentication is required"),
        ("65001", "no consent for its delegated permissions"),
    ] {
        let dir = TempDir::new().unwrap();
        let job = ios_job(dir.path(), 1);
        let tenant = start(dir.path(), &job, &["--entra-error", error]);
        let (code, stderr) = finish(&mut run_as(
            &tenant,
            &job,
            dir.path(),
            &["--auth", "device-code", "--client-id", CLIENT],
            &[],
        ));
        assert_eq!(code, Some(3), "{error}: {stderr}");
        assert!(stderr.contains(phrase), "{error}: {stderr}");
        assert!(
            stderr.contains(&format!("AADSTS{error}")),
            "{error}: {stderr}"
        );
    }
}

#[test]
fn a_run_longer_than_a_token_renews_it_with_the_refresh_token() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 8);
    // Tokens live 4 s; eight resets at two a second take about 4 s, and renewal starts
    // when a tenth of the life is left.
    let tenant = start(dir.path(), &job, &["--token-lifetime", "4"]);
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &[
            "--auth",
            "device-code",
            "--client-id",
            CLIENT,
            "--write-rate",
            "2",
        ],
        &[],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let (log, _) = tenant.stop();
    let token_requests = log
        .lines()
        .filter(|l| l.contains("/oauth2/v2.0/token"))
        .count();
    // One device code poll that is pending, one that signs in, then renewals: a
    // delegated identity has no other way to a new token than its refresh token.
    assert!(
        token_requests >= 3,
        "{token_requests} token requests:\n{log}"
    );
    assert_eq!(
        count(&read_report(&dir.path().join("report.csv")), "succeeded"),
        8
    );
}

#[test]
fn managed_identities_sign_in_through_app_service_and_the_metadata_service() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 1);
    let tenant = start(dir.path(), &job, &[]);
    let msi = format!("{}/msi/token", tenant.url);
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &["--auth", "managed-identity"],
        &[
            ("IDENTITY_ENDPOINT", &msi),
            (
                "IDENTITY_HEADER",
                intune_reset::sim::signin::IDENTITY_HEADER,
            ),
        ],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    let system = intune_reset::sim::signin::SYSTEM_IDENTITY;
    assert!(
        stderr.contains(&format!("managed identity {system}")),
        "{stderr}"
    );
    assert_eq!(
        summary(dir.path())["signed_in"]["method"],
        "managed-identity"
    );
    // A user-assigned identity through the metadata service (its host overridden as
    // Azure Identity allows).
    let user_assigned = intune_reset::sim::signin::USER_ASSIGNED_IDENTITY;
    let fresh = || {
        for name in ["report.csv", "report.csv.ledger"] {
            let _ = std::fs::remove_file(dir.path().join(name));
        }
    };
    fresh();
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &[
            "--auth",
            "managed-identity",
            "--managed-identity-client-id",
            user_assigned,
        ],
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &tenant.url)],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains(user_assigned), "{stderr}");
    // One the resource does not hold.
    fresh();
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &[
            "--auth",
            "managed-identity",
            "--managed-identity-client-id",
            CLIENT,
        ],
        &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &tenant.url)],
    ));
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("is not a user-assigned identity of this resource"),
        "{stderr}"
    );
}

#[test]
fn workload_identity_signs_in_with_the_federated_token_file() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 2);
    let tenant = start(dir.path(), &job, &[]);
    let b = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let federated = format!(
        "{}.{}.c2ln",
        b(r#"{"alg":"RS256","typ":"JWT"}"#),
        b(&format!(
            r#"{{"iss":"https://token.actions.githubusercontent.com","sub":"repo:contoso/ops:ref:refs/heads/main","aud":"api://AzureADTokenExchange","exp":{exp}}}"#
        ))
    );
    let file = dir.path().join("federated-token");
    std::fs::write(&file, &federated).unwrap();
    let path = file.to_string_lossy().into_owned();
    let (code, stderr) = finish(&mut run_as(
        &tenant,
        &job,
        dir.path(),
        &[],
        &[
            ("AZURE_FEDERATED_TOKEN_FILE", &path),
            ("AZURE_TENANT_ID", TENANT),
            ("AZURE_CLIENT_ID", CLIENT),
        ],
    ));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("app {CLIENT} (workload-identity)")),
        "{stderr}"
    );
    assert!(
        !left_behind(dir.path(), &stderr).contains(&federated),
        "the federated token leaked"
    );
}

#[test]
fn without_a_credential_or_a_terminal_the_options_are_listed_and_nothing_is_read() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 1);
    let tenant = start(dir.path(), &job, &[]);
    let (code, stderr) = finish(&mut run_as(&tenant, &job, dir.path(), &[], &[]));
    assert_eq!(code, Some(2), "{stderr}");
    for option in [
        "device-code",
        "browser",
        "managed-identity",
        "AZURE_CLIENT_SECRET",
    ] {
        assert!(stderr.contains(option), "{option}: {stderr}");
    }
    assert!(
        !dir.path().join("report.csv").exists(),
        "no report for a run that cannot start"
    );
}

#[test]
fn regression_18_a_refused_ready_token_costs_one_401_not_one_per_row() {
    let dir = TempDir::new().unwrap();
    let job = ios_job(dir.path(), 40);
    let tenant = Tenant::start(&[&job], &dir.path().join("sim.jsonl"), &[]);
    let report = dir.path().join("report.csv");
    let mut cmd = crate::common::tenant::run_cmd(&tenant, &[&job], &report, &[]);
    cmd.env(
        "INTUNE_RESET_ACCESS_TOKEN",
        "a-token-graph-never-issued-0123456789",
    )
    .env_remove("AZURE_CLIENT_SECRET");
    let mut child = cmd.spawn().unwrap();
    let out = wait_for(&mut child, Duration::from_secs(120));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let (log, _) = tenant.stop();

    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let refused = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["status"] == 401)
        .count();
    assert_eq!(refused, 1, "{log}");
    assert!(
        stderr.contains("sign-in refused during the run"),
        "{stderr}"
    );
    assert!(!stderr.contains("signed in as:"), "{stderr}");
    let rows = read_report(&report);
    assert_eq!(rows.len(), 42, "every row is reported");
    assert_eq!(count(&rows, "succeeded"), 0);
}
