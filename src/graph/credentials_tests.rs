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
        ..IdentityFlags::default()
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
fn without_a_credential_or_a_terminal_every_option_is_listed() {
    let err = resolve(&flags(None, None), &env(&[])).unwrap_err();
    assert_eq!(err, CredentialError::NothingConfigured);
    let text = err.to_string();
    for part in [
        ENV_ACCESS_TOKEN,
        ENV_FEDERATED_TOKEN_FILE,
        ENV_CERTIFICATE_PATH,
        ENV_CLIENT_SECRET,
        "--tenant",
        "--client-id",
    ] {
        assert!(text.contains(part), "{text}");
    }
    for method in AuthMethod::ALL {
        assert!(text.contains(method.as_str()), "{method:?}: {text}");
    }
}

#[test]
fn on_a_terminal_the_browser_is_the_default() {
    let on_terminal = IdentityFlags {
        client_id: Some("app".into()),
        terminal: true,
        ..IdentityFlags::default()
    };
    let r = resolve(&on_terminal, &env(&[])).unwrap();
    assert!(matches!(
        r.identity,
        Identity::Delegated { ref tenant, flow: Interactive::Browser, .. } if tenant == "organizations"
    ));
    // A configured credential still wins over the terminal.
    let r = resolve(
        &on_terminal,
        &env(&[(ENV_CLIENT_SECRET, "s"), (ENV_TENANT_ID, "t.example")]),
    )
    .unwrap();
    assert_eq!(r.identity.method(), AuthMethod::Secret);
}

#[test]
fn the_chain_takes_the_first_configured_and_warns_about_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("federated");
    std::fs::write(&token_file, "eyJfederated\n").unwrap();
    let t = token_file.to_string_lossy().into_owned();
    let base = [(ENV_TENANT_ID, "t.example"), (ENV_CLIENT_ID, "app")];
    let with = |extra: &[(&'static str, &str)]| {
        let mut pairs: Vec<(&str, &str)> = base.to_vec();
        pairs.extend_from_slice(extra);
        resolve(&flags(None, None), &env(&pairs)).unwrap()
    };
    let r = with(&[(ENV_FEDERATED_TOKEN_FILE, &t), (ENV_CLIENT_SECRET, "s")]);
    assert_eq!(r.identity.method(), AuthMethod::WorkloadIdentity);
    assert!(
        r.warnings.iter().any(|w| w.contains(ENV_CLIENT_SECRET)),
        "{:?}",
        r.warnings
    );
    let r = with(&[(ENV_ACCESS_TOKEN, "tok"), (ENV_FEDERATED_TOKEN_FILE, &t)]);
    assert_eq!(r.identity.method(), AuthMethod::Token);
    // --auth overrides the chain.
    let chosen = IdentityFlags {
        auth: Some(AuthMethod::Secret),
        ..flags(None, None)
    };
    let r = resolve(
        &chosen,
        &env(&[
            (ENV_TENANT_ID, "t.example"),
            (ENV_CLIENT_ID, "app"),
            (ENV_ACCESS_TOKEN, "tok"),
            (ENV_CLIENT_SECRET, "s"),
        ]),
    )
    .unwrap();
    assert_eq!(r.identity.method(), AuthMethod::Secret);
    // A managed identity only when named, even on an Azure host.
    let r = with(&[
        (ENV_IDENTITY_ENDPOINT, "http://127.0.0.1:41000/msi/token"),
        (ENV_IDENTITY_HEADER, "h"),
        (ENV_CLIENT_SECRET, "s"),
    ]);
    assert_eq!(r.identity.method(), AuthMethod::Secret);
}

#[test]
fn an_empty_federated_token_file_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, "  \n").unwrap();
    let p = path.to_string_lossy().into_owned();
    let err = resolve(
        &flags(Some("t.example"), Some("app")),
        &env(&[(ENV_FEDERATED_TOKEN_FILE, &p)]),
    )
    .unwrap_err();
    assert!(
        matches!(err, CredentialError::FederatedTokenUnreadable { .. }),
        "{err}"
    );
}

#[test]
fn managed_identities_pick_their_endpoint_and_refuse_plain_http_elsewhere() {
    let mi = IdentityFlags {
        auth: Some(AuthMethod::ManagedIdentity),
        managed_identity_client_id: Some("uai-1".into()),
        ..IdentityFlags::default()
    };
    let r = resolve(&mi, &env(&[])).unwrap();
    let Identity::Managed(m) = r.identity else {
        panic!("a managed identity");
    };
    assert_eq!(m.client_id.as_deref(), Some("uai-1"));
    assert!(
        matches!(&m.endpoint, ManagedEndpoint::Imds(u) if u.as_str() == "http://169.254.169.254/metadata/identity/oauth2/token")
    );
    let r = resolve(
        &mi,
        &env(&[
            (ENV_IDENTITY_ENDPOINT, "http://localhost:42356/msi/token"),
            (ENV_IDENTITY_HEADER, "h"),
        ]),
    )
    .unwrap();
    assert!(matches!(
        r.identity,
        Identity::Managed(ManagedIdentity {
            endpoint: ManagedEndpoint::AppService { .. },
            ..
        })
    ));
    let err = resolve(&mi, &env(&[(ENV_IMDS_HOST, "http://evil.example/")])).unwrap_err();
    assert!(matches!(err, CredentialError::BadEndpoint { .. }), "{err}");
}

#[test]
fn each_missing_piece_is_named() {
    let secret = |tenant: Option<&str>, client: Option<&str>| IdentityFlags {
        auth: Some(AuthMethod::Secret),
        ..flags(tenant, client)
    };
    let err = resolve(&secret(None, None), &env(&[]))
        .unwrap_err()
        .to_string();
    for part in [
        "--tenant",
        ENV_TENANT_ID,
        "--client-id",
        ENV_CLIENT_ID,
        ENV_CLIENT_SECRET,
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
        CredentialError::Missing(
            AuthMethod::Secret,
            vec![format!(
                "the client id (pass --client-id or set {ENV_CLIENT_ID})"
            )]
        )
    );
    assert!(!err.to_string().contains("--tenant"));
    let err = resolve(&secret(Some("t.example"), Some("app")), &env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(ENV_CLIENT_SECRET) && !err.contains("--tenant"),
        "{err}"
    );
    let device = IdentityFlags {
        auth: Some(AuthMethod::DeviceCode),
        ..IdentityFlags::default()
    };
    let err = resolve(&device, &env(&[])).unwrap_err().to_string();
    assert!(
        err.contains("public client") && err.contains("--client-id"),
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

/// A PKCS#12 file holding the PEM fixture's certificate and key, as Windows and Azure
/// export them.
fn pfx(password: &str, algorithm: p12_keystore::EncryptionAlgorithm) -> Vec<u8> {
    let pem = std::fs::read(fixture("cert-and-pkcs8-key.pem")).unwrap();
    let cert = CertificateDer::pem_slice_iter(&pem)
        .next()
        .unwrap()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(&pem).unwrap();
    let PrivateKeyDer::Pkcs8(key) = key else {
        panic!("the fixture's key is PKCS#8");
    };
    let cert = p12_keystore::Certificate::from_der(cert.as_ref()).unwrap();
    let key = p12_keystore::PrivateKey::from_der(key.secret_pkcs8_der()).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(b"id".to_vec(), key, vec![cert]);
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("app", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store
        .writer(password)
        .encryption_algorithm(algorithm)
        .write()
        .unwrap()
}

#[test]
fn a_pfx_loads_with_its_password_and_matches_the_pem() {
    let dir = tempfile::tempdir().unwrap();
    let pem = load_certificate(&fixture("cert-and-pkcs8-key.pem")).unwrap();
    for algorithm in [
        p12_keystore::EncryptionAlgorithm::PbeWithHmacSha256AndAes256,
        p12_keystore::EncryptionAlgorithm::PbeWithShaAnd3KeyTripleDesCbc,
    ] {
        let path = dir.path().join("app.pfx");
        std::fs::write(&path, pfx("Pa55-word", algorithm)).unwrap();
        let cert = load_any_certificate(&path, Some(&Secret::new("Pa55-word"))).unwrap();
        assert_eq!(cert.thumbprint_s256, pem.thumbprint_s256, "{algorithm:?}");
        // Wrong and missing passwords get the fix, and never echo the password.
        let err = load_any_certificate(&path, Some(&Secret::new("wrong-pass"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(ENV_CERTIFICATE_PASSWORD) && !text.contains("wrong-pass"),
            "{text}"
        );
        let err = load_any_certificate(&path, None).unwrap_err().to_string();
        assert!(err.contains("protected by a password"), "{err}");
    }
    // Through the environment, as Azure SDK users set it.
    let p = dir.path().join("app.pfx").to_string_lossy().into_owned();
    let r = resolve(
        &flags(Some("t.example"), Some("app")),
        &env(&[
            (ENV_CERTIFICATE_PATH, &p),
            (ENV_CERTIFICATE_PASSWORD, "Pa55-word"),
        ]),
    )
    .unwrap();
    assert_eq!(r.identity.method(), AuthMethod::Certificate);
    // Neither PEM nor PKCS#12.
    let junk = dir.path().join("junk.p12");
    std::fs::write(&junk, [0x30, 0x03, 0x02, 0x01, 0x03]).unwrap();
    let err = load_any_certificate(&junk, None).unwrap_err();
    assert!(matches!(err, CredentialError::Pkcs12 { .. }), "{err}");
}

#[test]
fn regression_18_an_explicit_auth_warns_about_each_credential_variable_it_ignores() {
    let f = IdentityFlags {
        auth: Some(AuthMethod::DeviceCode),
        client_id: Some("app".into()),
        tenant: Some("contoso.onmicrosoft.com".into()),
        ..IdentityFlags::default()
    };
    let r = resolve(&f, &env(&[(ENV_CLIENT_SECRET, "s3cret")])).unwrap();

    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].contains(ENV_CLIENT_SECRET),
        "{:?}",
        r.warnings
    );
    assert!(
        r.warnings[0].contains("--auth device-code"),
        "{:?}",
        r.warnings
    );
    assert!(!r.warnings[0].contains("s3cret"));
}
