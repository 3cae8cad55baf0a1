//! Which Microsoft cloud to talk to, and the two URLs that follow from it.
//!
//! Each national cloud has its own sign-in authority and Graph host
//! (<https://learn.microsoft.com/en-us/graph/deployments>). `--graph-url` and
//! `--authority-url` replace them for proxies, rehearsals and tests. A bearer token or a
//! client secret sent over plain `http://` could be read by anyone on the path, so plain
//! HTTP is accepted only to this machine (the simulator on loopback).

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use url::{Host, Url};

/// A Microsoft cloud, as `--cloud` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Cloud {
    #[default]
    Global,
    /// US Government L4 (GCC High).
    UsGov,
    /// US Government L5 (DoD).
    UsGovDod,
    /// Operated by 21Vianet.
    China,
}

impl Cloud {
    pub const ALL: [Cloud; 4] = [Cloud::Global, Cloud::UsGov, Cloud::UsGovDod, Cloud::China];

    /// The `--cloud` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Cloud::Global => "global",
            Cloud::UsGov => "usgov",
            Cloud::UsGovDod => "usgov-dod",
            Cloud::China => "china",
        }
    }

    pub fn graph_host(self) -> &'static str {
        match self {
            Cloud::Global => "graph.microsoft.com",
            Cloud::UsGov => "graph.microsoft.us",
            Cloud::UsGovDod => "dod-graph.microsoft.us",
            Cloud::China => "microsoftgraph.chinacloudapi.cn",
        }
    }

    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Global => "login.microsoftonline.com",
            Cloud::UsGov | Cloud::UsGovDod => "login.microsoftonline.us",
            Cloud::China => "login.chinacloudapi.cn",
        }
    }
}

impl fmt::Display for Cloud {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cloud {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Cloud::ALL
            .into_iter()
            .find(|c| c.as_str() == wanted)
            .ok_or_else(|| EndpointError::UnknownCloud(s.to_owned()))
    }
}

/// A URL the tool will not use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error("unknown cloud '{0}': use one of global, usgov, usgov-dod, china")]
    UnknownCloud(String),
    #[error("{flag} '{value}' is not a URL: {why}")]
    NotAUrl {
        flag: &'static str,
        value: String,
        why: String,
    },
    #[error(
        "{flag} '{value}' uses plain http to a host other than this machine; tokens and \
         secrets would travel unencrypted. Use https://, or http:// only to 127.0.0.1, ::1 \
         or localhost"
    )]
    PlainHttp { flag: &'static str, value: String },
    #[error("{flag} '{value}' must start with https:// (or http:// to loopback)")]
    UnsupportedScheme { flag: &'static str, value: String },
    #[error("{flag} '{value}' must not carry a query or fragment")]
    QueryOrFragment { flag: &'static str, value: String },
    #[error(
        "--graph-url '{0}' names an API version; give Graph's base URL without /v1.0 or \
         /beta (the tool picks the version per call)"
    )]
    VersionInGraphUrl(String),
}

/// Where requests go: Graph itself and the sign-in authority.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Graph's base URL, always ending in `/`, so `beta/...` and `v1.0/...` join onto it
    /// (a proxy may mount Graph under a path).
    pub graph: Url,
    /// The authority's base URL, always ending in `/`; the token URL is
    /// `{authority}{tenant}/oauth2/v2.0/token`.
    pub authority: Url,
}

impl Endpoints {
    /// The cloud's own hosts, each replaced by its override when one is given.
    pub fn new(
        cloud: Cloud,
        graph_url: Option<&str>,
        authority_url: Option<&str>,
    ) -> Result<Endpoints, EndpointError> {
        let graph = match graph_url {
            Some(u) => {
                let url = checked_base("--graph-url", u)?;
                let last = url
                    .path_segments()
                    .and_then(|s| s.rev().find(|s| !s.is_empty()));
                if matches!(last, Some("v1.0" | "beta")) {
                    return Err(EndpointError::VersionInGraphUrl(u.to_owned()));
                }
                url
            }
            None => checked_base("--cloud", &format!("https://{}/", cloud.graph_host()))?,
        };
        let authority = match authority_url {
            Some(u) => checked_base("--authority-url", u)?,
            None => checked_base("--cloud", &format!("https://{}/", cloud.authority_host()))?,
        };
        Ok(Endpoints { graph, authority })
    }

    /// Graph's origin (`https://graph.microsoft.com`), the audience of the token: the
    /// scope asked for is `{origin}/.default`.
    pub fn graph_origin(&self) -> String {
        self.graph.origin().ascii_serialization()
    }

    /// `{authority}{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self, tenant: &str) -> Result<Url, EndpointError> {
        self.authority
            .join(&format!("{tenant}/oauth2/v2.0/token"))
            .map_err(|e| EndpointError::NotAUrl {
                flag: "--tenant",
                value: tenant.to_owned(),
                why: e.to_string(),
            })
    }
}

/// Parses a base URL, applies the plain-HTTP rule and makes its path end in `/`.
fn checked_base(flag: &'static str, value: &str) -> Result<Url, EndpointError> {
    let mut url = Url::parse(value.trim()).map_err(|e| EndpointError::NotAUrl {
        flag,
        value: value.to_owned(),
        why: e.to_string(),
    })?;
    match url.scheme() {
        "https" => {}
        "http" if is_loopback(&url) => {}
        "http" => {
            return Err(EndpointError::PlainHttp {
                flag,
                value: value.to_owned(),
            });
        }
        _ => {
            return Err(EndpointError::UnsupportedScheme {
                flag,
                value: value.to_owned(),
            });
        }
    }
    if url.host().is_none() {
        return Err(EndpointError::NotAUrl {
            flag,
            value: value.to_owned(),
            why: "it has no host".into(),
        });
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(EndpointError::QueryOrFragment {
            flag,
            value: value.to_owned(),
        });
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// 127.0.0.0/8, ::1 and `localhost`: traffic that never leaves this machine.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cloud_has_its_hosts() {
        let e = Endpoints::new(Cloud::UsGovDod, None, None).unwrap();
        assert_eq!(e.graph.as_str(), "https://dod-graph.microsoft.us/");
        assert_eq!(e.authority.as_str(), "https://login.microsoftonline.us/");
        let e = Endpoints::new(Cloud::China, None, None).unwrap();
        assert_eq!(e.graph_origin(), "https://microsoftgraph.chinacloudapi.cn");
        assert_eq!(
            e.token_url("contoso.onmicrosoft.com").unwrap().as_str(),
            "https://login.chinacloudapi.cn/contoso.onmicrosoft.com/oauth2/v2.0/token"
        );
        let e = Endpoints::new(Cloud::Global, None, None).unwrap();
        assert_eq!(e.graph.as_str(), "https://graph.microsoft.com/");
        assert_eq!(e.authority.as_str(), "https://login.microsoftonline.com/");
        assert_eq!(
            Endpoints::new(Cloud::UsGov, None, None)
                .unwrap()
                .graph
                .as_str(),
            "https://graph.microsoft.us/"
        );
    }

    #[test]
    fn cloud_names_round_trip() {
        for c in Cloud::ALL {
            assert_eq!(c.as_str().parse::<Cloud>(), Ok(c));
        }
        assert_eq!("USGov-DoD".parse::<Cloud>(), Ok(Cloud::UsGovDod));
        let err = "azure".parse::<Cloud>().unwrap_err().to_string();
        assert!(err.contains("usgov-dod"), "{err}");
    }

    #[test]
    fn overrides_replace_hosts_and_keep_a_path_prefix() {
        let e = Endpoints::new(
            Cloud::Global,
            Some("https://proxy.example/graph"),
            Some("http://127.0.0.1:8080"),
        )
        .unwrap();
        assert_eq!(e.graph.as_str(), "https://proxy.example/graph/");
        assert_eq!(e.graph_origin(), "https://proxy.example");
        assert_eq!(
            e.token_url("t").unwrap().as_str(),
            "http://127.0.0.1:8080/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for ok in [
            "http://127.0.0.1:1234",
            "http://127.8.9.10/",
            "http://[::1]:80/",
            "http://localhost:99",
            "http://LOCALHOST",
        ] {
            assert!(
                Endpoints::new(Cloud::Global, Some(ok), None).is_ok(),
                "{ok}"
            );
        }
        for bad in [
            "http://graph.microsoft.com",
            "http://10.0.0.1",
            "http://128.0.0.1",
            "http://[::2]",
            "http://localhost.evil.example",
        ] {
            let err = Endpoints::new(Cloud::Global, None, Some(bad)).unwrap_err();
            assert!(matches!(err, EndpointError::PlainHttp { .. }), "{bad}");
            assert!(err.to_string().contains("--authority-url"), "{err}");
            assert!(err.to_string().contains("unencrypted"), "{err}");
        }
    }

    #[test]
    fn odd_urls_are_refused() {
        let e = |u: &str| Endpoints::new(Cloud::Global, Some(u), None).unwrap_err();
        assert!(matches!(
            e("ftp://x"),
            EndpointError::UnsupportedScheme { .. }
        ));
        assert!(matches!(e("not a url"), EndpointError::NotAUrl { .. }));
        assert!(matches!(
            e("https://graph.microsoft.com/v1.0"),
            EndpointError::VersionInGraphUrl(_)
        ));
        assert!(matches!(
            e("http://127.0.0.1:9/beta/"),
            EndpointError::VersionInGraphUrl(_)
        ));
        assert!(matches!(
            e("https://x/?a=1"),
            EndpointError::QueryOrFragment { .. }
        ));
    }
}
