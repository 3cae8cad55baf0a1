//! Faults of the token endpoint, deterministic: the first token requests meet
//! [`super::SimConfig::token_faults`] one each, in order, and later ones are served as
//! usual. Sign-in retries are about "the first N answers fail, then Entra is back",
//! which a fixed sequence states exactly and a probability could only approximate.
//!
//! Entra's body for a 429 or 503 is undocumented. The simulator answers its usual error
//! shape with OAuth's `temporarily_unavailable` (RFC 6749, section 5.2 lists it for the
//! authorization endpoint; Entra has been seen using it at the token endpoint too,
//! unconfirmed) and AADSTS90033, "a transient error has occurred" (unconfirmed).

use std::fmt;
use std::str::FromStr;

/// What one token request meets. The names are what `--token-fault` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenFault {
    /// 429 with `Retry-After: 1`.
    TooManyRequests,
    /// 503 without `Retry-After`.
    ServiceUnavailable,
    /// The connection closes without an answer.
    Drop,
    /// The answer (a token) comes after `SimConfig::slow`, long enough to trip client
    /// timeouts.
    Slow,
}

impl TokenFault {
    pub const ALL: [TokenFault; 4] = [
        TokenFault::TooManyRequests,
        TokenFault::ServiceUnavailable,
        TokenFault::Drop,
        TokenFault::Slow,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenFault::TooManyRequests => "429",
            TokenFault::ServiceUnavailable => "503",
            TokenFault::Drop => "drop",
            TokenFault::Slow => "slow",
        }
    }
}

impl fmt::Display for TokenFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenFault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        TokenFault::ALL
            .into_iter()
            .find(|k| k.as_str() == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = TokenFault::ALL.iter().map(|k| k.as_str()).collect();
                format!("unknown token fault '{s}'; known: {}", names.join(", "))
            })
    }
}

/// Parses `KIND` or `KIND:COUNT` as `--token-fault` takes it (`503:5` is five 503s).
pub fn parse_token_fault(text: &str) -> Result<(TokenFault, usize), String> {
    let (kind, count) = match text.split_once(':') {
        Some((kind, count)) => {
            let n: usize = count
                .trim()
                .parse()
                .map_err(|_| format!("'{count}' is not a number of token requests"))?;
            (kind, n)
        }
        None => (text, 1),
    };
    if count > 10_000 {
        return Err(format!(
            "{count} token faults is more than a rehearsal needs"
        ));
    }
    let kind: TokenFault = kind.parse()?;
    Ok((kind, count))
}

/// The faults of several `--token-fault` values, in order, one per token request.
pub fn token_fault_sequence(values: &[(TokenFault, usize)]) -> Vec<TokenFault> {
    values
        .iter()
        .flat_map(|&(kind, n)| std::iter::repeat_n(kind, n))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts() {
        for kind in TokenFault::ALL {
            assert_eq!(kind.as_str().parse::<TokenFault>(), Ok(kind));
        }
        let three = parse_token_fault("503:3").unwrap();
        let drop = parse_token_fault("drop").unwrap();
        assert_eq!(drop, (TokenFault::Drop, 1));
        assert_eq!(
            token_fault_sequence(&[three, drop]),
            [
                TokenFault::ServiceUnavailable,
                TokenFault::ServiceUnavailable,
                TokenFault::ServiceUnavailable,
                TokenFault::Drop
            ]
        );
        assert!(parse_token_fault("503:x").is_err());
        assert!(parse_token_fault("500").is_err());
    }
}
