//! Identity resolution from a fake environment, and certificate files.

use super::*;
use std::collections::HashMap;

pub(crate) fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/graph")
        .join(name)
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |k| map.get(k).cloned()
}

fn flags(tenant: Option<&str>, client: Option<&str>) -> IdentityFlags {
    IdentityFlags {
        tenant: tenant.map(Into::into),
        client_id: client.map(Into::into),
    }
}

#[test]
fn a_ready_token_needs_nothing_else() {
    let r = resolve(
        &flags(None, None),
        &env(&[(ENV_ACCESS_TOKEN, "tok"), (ENV_CLIENT_SECRET, "s")]),
    )
    .unwrap();
    assert!(matches!(&r.identity, Identity::AccessToken(t) if t.expose() == "tok"));
    assert_eq!(r.warnings.len(), 1);
    assert!(r.warnings[0].contains(ENV_CLIENT_SECRET));
}

#[test]
fn a_pasted_bearer_prefix_is_dropped() {
    for pasted in ["Bearer abc", "bearer  abc ", "abc"] {
        let r = resolve(&flags(None, None), &env(&[(ENV_ACCESS_TOKEN, pasted)])).unwrap();
        assert!(
            matches!(&r.identity, Identity::AccessToken(t) if t.expose() == "abc"),
            "{pasted}"
        );
    }
}

#[test]
fn identities_print_no_secret() {
    let r = resolve(
        &flags(Some("t.example"), Some("app")),
        &env(&[(ENV_CLIENT_SECRET, "s3cret-value")]),
    )
    .unwrap();
    assert!(!format!("{r:?}").contains("s3cret-value"));
    let cert = load_certificate(&fixture("cert-and-pkcs8-key.pem")).unwrap();
    let shown = format!("{:?}", AppCredential::Certificate(cert));
    assert!(
        shown.contains("[redacted]") && !shown.contains("PRIVATE"),
        "{shown}"
    );
}

#[test]
fn flags_win_over_environment() {
    let r = resolve(
        &flags(Some("flag.example"), None),
        &env(&[
            (ENV_TENANT_ID, "env.example"),
            (ENV_CLIENT_ID, "app"),
            (ENV_CLIENT_SECRET, "s3cret"),
        ]),
    )
    .unwrap();
    let Identity::App {
        tenant,
        client_id,
        credential: AppCredential::Secret(s),
    } = r.identity
    else {
        panic!("expected a secret identity");
    };
    assert_eq!(
        (tenant.as_str(), client_id.as_str()),
        ("flag.example", "app")
    );
    assert_eq!(s.expose(), "s3cret");
    assert!(r.warnings.is_empty());
}

#[test]
fn each_missing_piece_is_named() {
    let err = resolve(&flags(None, None), &env(&[]))
        .unwrap_err()
        .to_string();
    for part in [
        "--tenant",
        ENV_TENANT_ID,
        "--client-id",
        ENV_CLIENT_ID,
        ENV_CLIENT_SECRET,
        ENV_CERTIFICATE_PATH,
    ] {
        assert!(err.contains(part), "{err}");
    }
    let err = resolve(
        &flags(Some("t.example"), None),
        &env(&[(ENV_CLIENT_SECRET, "s"), (ENV_CLIENT_ID, " ")]),
    )
    .unwrap_err();
    assert_eq!(
        err,
        CredentialError::Missing(vec![format!(
            "the client id (pass --client-id or set {ENV_CLIENT_ID})"
        )])
    );
    assert!(!err.to_string().contains("--tenant"));
    let err = resolve(&flags(Some("t.example"), Some("app")), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(ENV_CLIENT_SECRET) && !err.contains("--tenant"),
        "{err}"
    );
}

#[test]
fn a_tenant_cannot_smuggle_a_path() {
    for bad in ["../x", "a/b", "a?b", ".x"] {
        let r = resolve(
            &flags(Some(bad), Some("app")),
            &env(&[(ENV_CLIENT_SECRET, "s")]),
        );
        assert!(matches!(r, Err(CredentialError::InvalidTenant(_))), "{bad}");
    }
}

#[test]
fn certificates_in_both_key_forms_load_with_the_same_thumbprint() {
    let a = load_certificate(&fixture("cert-and-pkcs8-key.pem")).unwrap();
    let b = load_certificate(&fixture("cert-and-pkcs1-key.pem")).unwrap();
    assert_eq!(a.thumbprint_s256, b.thumbprint_s256);
    assert_eq!(a.thumbprint_s256.len(), 43);
    assert!(!format!("{a:?}").contains("BEGIN"));
}

#[test]
fn certificate_wins_over_secret_and_loose_modes_warn() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.pem");
    std::fs::copy(fixture("cert-and-pkcs8-key.pem"), &path).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let p = path.to_string_lossy().into_owned();
    let r = resolve(
        &flags(Some("t.example"), Some("app")),
        &env(&[(ENV_CERTIFICATE_PATH, &p), (ENV_CLIENT_SECRET, "s")]),
    )
    .unwrap();
    assert!(matches!(
        r.identity,
        Identity::App {
            credential: AppCredential::Certificate(_),
            ..
        }
    ));
    assert!(r.warnings.iter().any(|w| w.contains(ENV_CLIENT_SECRET)));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert!(
            r.warnings.iter().any(|w| w.contains("chmod 600")),
            "{:?}",
            r.warnings
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let r = resolve(
            &flags(Some("t.example"), Some("app")),
            &env(&[(ENV_CERTIFICATE_PATH, &p)]),
        )
        .unwrap();
        assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    }
}

#[test]
fn broken_certificate_files_are_explained() {
    let dir = tempfile::tempdir().unwrap();
    let pem = std::fs::read_to_string(fixture("cert-and-pkcs8-key.pem")).unwrap();
    let (cert, key) = pem.split_at(pem.find("-----BEGIN PRIVATE KEY").unwrap());
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    assert!(matches!(
        load_certificate(&write("c.pem", cert)),
        Err(CredentialError::CertificateIncomplete {
            what: "private key",
            ..
        })
    ));
    assert!(matches!(
        load_certificate(&write("k.pem", key)),
        Err(CredentialError::CertificateIncomplete { .. })
    ));
    assert!(matches!(
        load_certificate(&dir.path().join("absent.pem")),
        Err(CredentialError::CertificateUnreadable { .. })
    ));
    // A password-protected key.
    let encrypted =
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    let err = load_certificate(&write("x.pem", &format!("{cert}{encrypted}"))).unwrap_err();
    assert!(err.to_string().contains("password"), "{err}");
    // A key that is not the certificate's.
    let other = std::fs::read_to_string(fixture("other-pkcs8-key.pem")).unwrap();
    let err = load_certificate(&write("w.pem", &format!("{cert}{other}"))).unwrap_err();
    assert!(
        matches!(err, CredentialError::KeyMismatch { .. }),
        "{err:?}"
    );
    // An elliptic-curve key: PS256 needs RSA.
    let ec = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIJew9S8rALXupsgy91GhudI6ihYahHdXADmoAacaltcfoAoGCCqGSM49\nAwEHoUQDQgAEHIkGIKKAt0pFsYWqBiFLYtZgvYeHWs/+W8CY3dYSW+IvjXTntjFJ\nAyt0zK+v7OTFWUCS1togbJ6SmZ0pN48d6Q==\n-----END EC PRIVATE KEY-----\n";
    let err = load_certificate(&write("e.pem", &format!("{cert}{ec}"))).unwrap_err();
    assert!(
        matches!(err, CredentialError::KeyUnusable { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("elliptic-curve"), "{err}");
}
