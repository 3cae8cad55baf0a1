//! `--where`: the OData `$filter` subset the tool can check itself.
//!
//! Graph silently ignores filters it does not support on `managedDevices` and returns
//! every device (docs/graph.md, "Finding devices"), so the expression is sent, and
//! every device Graph returns is checked again here against the same expression. An
//! expression this module cannot check is refused before anything is read.
//!
//! Grammar: `or`, `and`, `not`, parentheses; `PROPERTY eq|ne 'text'` (also `true`,
//! `false`, `null`); `startswith(PROPERTY,'text')`, `endswith(...)`, `contains(...)`.
//! Text compares ignoring case, as Graph's enum and string filters do. Properties: the
//! managed device fields the rules read (below).

use super::device::ManagedDevice;

/// The properties an expression may name, as Graph spells them: the fields every
/// device is read with, so each can be checked on the devices Graph returns.
pub const PROPERTIES: &[&str] = super::device::RULE_FIELDS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    /// `eq` (`negated`: `ne`); `None` is `null`.
    Compare {
        property: &'static str,
        value: Option<String>,
        negated: bool,
    },
    Function {
        name: Func,
        property: &'static str,
        value: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    StartsWith,
    EndsWith,
    Contains,
}

/// A checked expression, with the text Graph is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub text: String,
    pub expr: Expr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    Text(String),
    Open,
    Close,
    Comma,
}

fn tokens(text: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            ',' => {
                out.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a quoted value is not closed".into()),
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            value.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(c) => {
                            value.push(*c);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Text(value));
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '.' | '-'))
                {
                    i += 1;
                }
                out.push(Token::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(format!(
                    "'{other}' is not part of a filter this tool can check"
                ));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Ident(w)) if w.eq_ignore_ascii_case(word))
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            _ => Err(format!("expected {what}")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.factor()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.factor()?));
        }
        Ok(left)
    }

    fn factor(&mut self) -> Result<Expr, String> {
        match self.next() {
            Some(Token::Open) => {
                let e = self.or()?;
                self.expect(Token::Close, "')'")?;
                Ok(e)
            }
            Some(Token::Ident(w)) if w.eq_ignore_ascii_case("not") => {
                Ok(Expr::Not(Box::new(self.factor()?)))
            }
            Some(Token::Ident(w)) => {
                let func = match w.to_ascii_lowercase().as_str() {
                    "startswith" => Some(Func::StartsWith),
                    "endswith" => Some(Func::EndsWith),
                    "contains" => Some(Func::Contains),
                    _ => None,
                };
                if let Some(name) = func {
                    self.expect(Token::Open, &format!("'(' after {w}"))?;
                    let property = match self.next() {
                        Some(Token::Ident(p)) => property(&p)?,
                        _ => return Err(format!("{w} needs a property first")),
                    };
                    self.expect(Token::Comma, "','")?;
                    let value = match self.next() {
                        Some(Token::Text(v)) => v,
                        _ => return Err(format!("{w} needs a quoted value")),
                    };
                    self.expect(Token::Close, "')'")?;
                    return Ok(Expr::Function {
                        name,
                        property,
                        value,
                    });
                }
                let property = property(&w)?;
                let negated = match self.next() {
                    Some(Token::Ident(op)) if op.eq_ignore_ascii_case("eq") => false,
                    Some(Token::Ident(op)) if op.eq_ignore_ascii_case("ne") => true,
                    Some(Token::Ident(op)) => {
                        return Err(format!(
                            "the operator '{op}' is not one this tool can check (eq, ne)"
                        ));
                    }
                    _ => return Err(format!("expected eq or ne after {property}")),
                };
                let value = match self.next() {
                    Some(Token::Text(v)) => Some(v),
                    Some(Token::Ident(w)) if w.eq_ignore_ascii_case("null") => None,
                    Some(Token::Ident(w))
                        if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") =>
                    {
                        Some(w.to_ascii_lowercase())
                    }
                    _ => return Err(format!("{property} needs a quoted value")),
                };
                Ok(Expr::Compare {
                    property,
                    value,
                    negated,
                })
            }
            _ => Err("expected a comparison, a function, 'not' or '('".into()),
        }
    }
}

fn property(name: &str) -> Result<&'static str, String> {
    PROPERTIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .copied()
        .ok_or_else(|| {
            format!(
                "'{name}' is not a property this tool can check; use one of {}",
                PROPERTIES.join(", ")
            )
        })
}

/// Parses `text`, or says why the tool cannot check it.
pub fn parse(text: &str) -> Result<Filter, String> {
    let fail = |why: String| format!("--where \"{text}\": {why}");
    let tokens = tokens(text).map_err(fail)?;
    if tokens.is_empty() {
        return Err(fail(
            "it is empty (use --all-devices for every device)".into(),
        ));
    }
    let mut parser = Parser { tokens, at: 0 };
    let expr = parser.or().map_err(fail)?;
    if parser.at < parser.tokens.len() {
        return Err(fail("something follows the end of the expression".into()));
    }
    Ok(Filter {
        text: text.trim().to_owned(),
        expr,
    })
}

fn field<'a>(d: &'a ManagedDevice, property: &str) -> Option<&'a str> {
    match property {
        "id" => Some(d.id.as_str()),
        "deviceName" => d.device_name.as_deref(),
        "serialNumber" => d.serial_number.as_deref(),
        "azureADDeviceId" => d.azure_ad_device_id.as_deref(),
        "userPrincipalName" => d.user_principal_name.as_deref(),
        "imei" => d.imei.as_deref(),
        "operatingSystem" => d.operating_system.as_deref(),
        "osVersion" => d.os_version.as_deref(),
        "deviceType" => d.device_type.as_deref(),
        "deviceEnrollmentType" => d.device_enrollment_type.as_deref(),
        "managementAgent" => d.management_agent.as_deref(),
        "managedDeviceOwnerType" => d.managed_device_owner_type.as_deref(),
        _ => None,
    }
}

impl Expr {
    /// Whether `device` matches.
    pub fn matches(&self, device: &ManagedDevice) -> bool {
        match self {
            Expr::Or(a, b) => a.matches(device) || b.matches(device),
            Expr::And(a, b) => a.matches(device) && b.matches(device),
            Expr::Not(e) => !e.matches(device),
            Expr::Compare {
                property,
                value,
                negated,
            } => {
                let live = field(device, property).filter(|v| !v.is_empty());
                let equal = match (live, value) {
                    (None, None) => true,
                    (Some(live), Some(v)) => live.eq_ignore_ascii_case(v),
                    _ => false,
                };
                equal != *negated
            }
            Expr::Function {
                name,
                property,
                value,
            } => {
                let Some(live) = field(device, property) else {
                    return false;
                };
                let (live, value) = (live.to_lowercase(), value.to_lowercase());
                match name {
                    Func::StartsWith => live.starts_with(&value),
                    Func::EndsWith => live.ends_with(&value),
                    Func::Contains => live.contains(&value),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(os: &str, owner: &str, name: &str) -> ManagedDevice {
        ManagedDevice {
            id: "x".into(),
            operating_system: Some(os.into()),
            managed_device_owner_type: Some(owner.into()),
            device_name: Some(name.into()),
            ..ManagedDevice::default()
        }
    }

    #[test]
    fn the_issue_example_is_checked_client_side() {
        let f = parse("operatingSystem eq 'iOS' and managedDeviceOwnerType eq 'company'").unwrap();
        assert!(f.expr.matches(&device("iOS", "company", "a")));
        assert!(f.expr.matches(&device("ios", "Company", "a")), "case aside");
        assert!(!f.expr.matches(&device("iOS", "personal", "a")));
        assert!(!f.expr.matches(&device("Android", "company", "a")));
    }

    #[test]
    fn or_not_parentheses_functions_and_quotes() {
        let f = parse(
            "(startswith(deviceName,'SALES-') or contains(deviceName, 'o''brien')) and not operatingSystem eq 'macOS'",
        )
        .unwrap();
        assert!(f.expr.matches(&device("iOS", "company", "sales-17")));
        assert!(
            f.expr
                .matches(&device("iOS", "company", "Pat O'Brien iPad"))
        );
        assert!(!f.expr.matches(&device("macOS", "company", "sales-1")));
        assert!(!f.expr.matches(&device("iOS", "company", "it-1")));
        let f = parse("serialNumber ne null").unwrap();
        assert!(!f.expr.matches(&device("iOS", "company", "a")));
    }

    #[test]
    fn what_cannot_be_checked_is_refused_with_the_reason() {
        for (text, why) in [
            ("complianceState eq 'compliant'", "not a property"),
            ("osVersion gt '17'", "operator 'gt'"),
            ("any(x: x eq 'a')", "not part of a filter"),
            ("deviceName eq 'a' extra", "something follows"),
            ("", "empty"),
            ("deviceName eq 'open", "not closed"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(why), "{text}: {err}");
        }
    }
}
