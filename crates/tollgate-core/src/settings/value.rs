//! How one setting's raw value (from TOML or from an environment variable) becomes a typed value.

use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::keys::Algorithm;
use crate::token::TokenType;

/// A setting's value before it is typed: TOML gives structured values, the environment gives text.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    /// A value read from a TOML file.
    Toml(toml::Value),
    /// A value read from an environment variable.
    Env(String),
}

impl RawValue {
    fn as_text(&self) -> Option<&str> {
        match self {
            RawValue::Env(text) => Some(text),
            RawValue::Toml(toml::Value::String(text)) => Some(text),
            RawValue::Toml(_) => None,
        }
    }
}

/// A type that a setting can have: parsed from a raw value, shown back in `tollgate check`.
pub trait SettingValue: Sized {
    /// What the value looks like, for error messages and the configuration reference.
    const EXPECTED: &'static str;
    /// Parses a raw value; the error says what was wrong, without the setting's name.
    fn parse(raw: &RawValue) -> Result<Self, String>;
    /// The value as a user would write it in TOML.
    fn render(&self) -> String;
    /// Whether the value is a secret that `tollgate check` must not print.
    fn is_secret() -> bool {
        false
    }
}

fn describe(raw: &RawValue) -> String {
    match raw {
        RawValue::Env(text) => format!("{text:?}"),
        RawValue::Toml(value) => value.to_string(),
    }
}

impl SettingValue for bool {
    const EXPECTED: &'static str = "true or false";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        if let RawValue::Toml(toml::Value::Boolean(b)) = raw {
            return Ok(*b);
        }
        match raw
            .as_text()
            .map(|t| t.trim().to_ascii_lowercase())
            .as_deref()
        {
            Some("true" | "1" | "yes" | "on") => Ok(true),
            Some("false" | "0" | "no" | "off") => Ok(false),
            _ => Err(format!("{} is not {}", describe(raw), Self::EXPECTED)),
        }
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for u32 {
    const EXPECTED: &'static str = "a non-negative integer";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        let parsed = match raw {
            RawValue::Toml(toml::Value::Integer(i)) => u32::try_from(*i).ok(),
            other => other.as_text().and_then(|t| t.trim().parse().ok()),
        };
        parsed.ok_or_else(|| format!("{} is not {}", describe(raw), Self::EXPECTED))
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for usize {
    const EXPECTED: &'static str = "a non-negative integer";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        u32::parse(raw).map(|v| v as usize)
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl SettingValue for String {
    const EXPECTED: &'static str = "a string";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        raw.as_text()
            .map(str::to_owned)
            .ok_or_else(|| format!("{} is not {}", describe(raw), Self::EXPECTED))
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

/// An optional string: an empty string (or `none`) means "not set", as Python's `None` does.
impl SettingValue for Option<String> {
    const EXPECTED: &'static str = "a string, or \"\" for none";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        let text = String::parse(raw)?;
        let trimmed = text.trim();
        if trimmed.is_empty() || trimmed.eq_ignore_ascii_case("none") {
            Ok(None)
        } else {
            Ok(Some(text))
        }
    }
    fn render(&self) -> String {
        match self {
            Some(text) => format!("{text:?}"),
            None => "\"\"".to_owned(),
        }
    }
}

/// A list: a TOML array of strings, or comma-separated text (`Bearer,JWT`).
impl SettingValue for Vec<String> {
    const EXPECTED: &'static str = "a list of strings (TOML array, or comma-separated)";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        if let RawValue::Toml(toml::Value::Array(items)) = raw {
            return items
                .iter()
                .map(|item| match item {
                    toml::Value::String(text) => Ok(text.trim().to_owned()),
                    other => Err(format!("{other} is not a string")),
                })
                .collect();
        }
        let text = raw
            .as_text()
            .ok_or_else(|| format!("{} is not {}", describe(raw), Self::EXPECTED))?;
        Ok(text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_owned)
            .collect())
    }
    fn render(&self) -> String {
        let items: Vec<String> = self.iter().map(|item| format!("{item:?}")).collect();
        format!("[{}]", items.join(", "))
    }
}

/// Networks (TRUSTED_PROXIES): addresses (`10.0.0.5`, `::1`) or networks (`10.0.0.0/8`), in a
/// list as [`Vec<String>`] reads it. An address is the network of that address alone.
impl SettingValue for Vec<IpNet> {
    const EXPECTED: &'static str =
        "a list of addresses or networks such as 10.0.0.0/8 (TOML array, or comma-separated)";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        Vec::<String>::parse(raw)?
            .iter()
            .map(|entry| {
                let parsed = if entry.contains('/') {
                    entry.parse::<IpNet>().ok()
                } else {
                    entry.parse::<IpAddr>().ok().map(IpNet::from)
                };
                parsed.ok_or_else(|| {
                    format!("{entry:?} is not an address or a network such as 10.0.0.0/8")
                })
            })
            .collect()
    }
    fn render(&self) -> String {
        let items: Vec<String> = self
            .iter()
            .map(|net| {
                if net.prefix_len() == net.max_prefix_len() {
                    format!("{:?}", net.addr().to_string())
                } else {
                    format!("{:?}", net.to_string())
                }
            })
            .collect();
        format!("[{}]", items.join(", "))
    }
}

/// A duration: seconds as a number (`300`, `0.5`), or text such as `5m`, `1h 30m`, `1d`.
impl SettingValue for Duration {
    const EXPECTED: &'static str = "seconds (300) or a duration such as \"5m\", \"1h\", \"1d\"";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        let bad = || format!("{} is not {}", describe(raw), Self::EXPECTED);
        let seconds = match raw {
            RawValue::Toml(toml::Value::Integer(i)) => Some(*i as f64),
            RawValue::Toml(toml::Value::Float(f)) => Some(*f),
            other => {
                let text = other.as_text().ok_or_else(bad)?.trim();
                match text.parse::<f64>() {
                    Ok(seconds) => Some(seconds),
                    Err(_) => return humantime::parse_duration(text).map_err(|_| bad()),
                }
            }
        };
        match seconds {
            Some(s) if (0.0..1e12).contains(&s) => Ok(Duration::from_secs_f64(s)),
            _ => Err(bad()),
        }
    }
    fn render(&self) -> String {
        format!("{:?}", format_duration(*self))
    }
}

/// A duration as an operator writes one: whole days, hours, minutes and seconds, then
/// milliseconds, microseconds and nanoseconds, largest first, zero parts left out (`90d`,
/// `5m`, `1h 30m`, `1s 500ms`, `0s`). The text reads back as the same duration. Calendar units
/// are never used: humantime's month is 30.44 days, which turns `90d` into
/// `2months 29days 2h 52m 48s`.
///
/// ```
/// use std::time::Duration;
/// use tollgate_core::settings::format_duration;
///
/// assert_eq!(format_duration(Duration::from_secs(90 * 86_400)), "90d");
/// assert_eq!(format_duration(Duration::from_secs(5_400)), "1h 30m");
/// assert_eq!(format_duration(Duration::from_millis(1_500)), "1s 500ms");
/// ```
pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    let nanos = u64::from(duration.subsec_nanos());
    let parts = [
        (seconds / 86_400, "d"),
        (seconds / 3_600 % 24, "h"),
        (seconds / 60 % 60, "m"),
        (seconds % 60, "s"),
        (nanos / 1_000_000, "ms"),
        (nanos / 1_000 % 1_000, "us"),
        (nanos % 1_000, "ns"),
    ];
    let text: Vec<String> = parts
        .iter()
        .filter(|(value, _)| *value > 0)
        .map(|(value, unit)| format!("{value}{unit}"))
        .collect();
    if text.is_empty() {
        "0s".to_owned()
    } else {
        text.join(" ")
    }
}

impl SettingValue for Algorithm {
    const EXPECTED: &'static str =
        "one of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        let text = String::parse(raw)?;
        text.trim().parse().map_err(|_| {
            format!(
                "unrecognized algorithm type {text:?}; expected {}",
                Self::EXPECTED
            )
        })
    }
    fn render(&self) -> String {
        format!("{:?}", self.as_str())
    }
}

/// Token types, by simplejwt's class path (`rest_framework_simplejwt.tokens.AccessToken`),
/// class name (`AccessToken`) or type name (`access`).
impl SettingValue for Vec<TokenType> {
    const EXPECTED: &'static str = "a list of token types: access, sliding";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        Vec::<String>::parse(raw)?
            .iter()
            .map(|name| {
                let short = name.rsplit('.').next().unwrap_or(name);
                match short.to_ascii_lowercase().as_str() {
                    "access" | "accesstoken" => Ok(TokenType::Access),
                    "sliding" | "slidingtoken" => Ok(TokenType::Sliding),
                    "refresh" | "refreshtoken" => Ok(TokenType::Refresh),
                    _ => Err(format!(
                        "unknown token class {name:?}; expected {}",
                        Self::EXPECTED
                    )),
                }
            })
            .collect()
    }
    fn render(&self) -> String {
        let items: Vec<String> = self.iter().map(|t| format!("{:?}", t.as_str())).collect();
        format!("[{}]", items.join(", "))
    }
}

/// A secret (a signing key): parsed like a string, never printed.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(pub String);

impl Secret {
    /// The secret's text.
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether no secret was configured.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "Secret(<empty>)"
        } else {
            "Secret(<redacted>)"
        })
    }
}

impl SettingValue for Secret {
    const EXPECTED: &'static str = "a secret string, masked by `tollgate check`";
    fn parse(raw: &RawValue) -> Result<Self, String> {
        String::parse(raw).map(Secret)
    }
    fn render(&self) -> String {
        if self.0.is_empty() {
            "\"\"".to_owned()
        } else {
            "\"<redacted>\"".to_owned()
        }
    }
    fn is_secret() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> RawValue {
        RawValue::Env(text.to_owned())
    }

    #[test]
    fn durations_accept_seconds_and_humane_text() {
        assert_eq!(Duration::parse(&env("300")), Ok(Duration::from_secs(300)));
        assert_eq!(Duration::parse(&env("5m")), Ok(Duration::from_secs(300)));
        assert_eq!(Duration::parse(&env("1d")), Ok(Duration::from_secs(86_400)));
        assert_eq!(
            Duration::parse(&RawValue::Toml(toml::Value::Float(0.5))),
            Ok(Duration::from_millis(500))
        );
        assert!(Duration::parse(&env("-1")).is_err());
        assert!(Duration::parse(&env("soon")).is_err());
        assert!(Duration::parse(&env("NaN")).is_err());
    }

    #[test]
    fn durations_are_shown_as_written_and_read_back() {
        for (duration, shown) in [
            (Duration::from_secs(90 * 86_400), "90d"),
            (Duration::from_secs(300), "5m"),
            (Duration::from_secs(3_600), "1h"),
            (
                Duration::from_secs(86_400 + 2 * 3_600 + 3 * 60 + 4),
                "1d 2h 3m 4s",
            ),
            (Duration::from_secs(5_400), "1h 30m"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1_000_250), "1s 250us"),
            (Duration::from_nanos(7), "7ns"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(format_duration(duration), shown);
            assert_eq!(duration.render(), format!("{shown:?}"));
            assert_eq!(Duration::parse(&env(shown)), Ok(duration), "{shown}");
        }
    }

    #[test]
    fn lists_accept_commas_and_arrays() {
        assert_eq!(
            Vec::<String>::parse(&env("Bearer, JWT")),
            Ok(vec!["Bearer".to_owned(), "JWT".to_owned()])
        );
        let array = toml::Value::Array(vec![toml::Value::String("Bearer".into())]);
        assert_eq!(
            Vec::<String>::parse(&RawValue::Toml(array)),
            Ok(vec!["Bearer".to_owned()])
        );
    }

    #[test]
    fn token_classes_accept_simplejwt_class_paths() {
        assert_eq!(
            Vec::<TokenType>::parse(&env(
                "rest_framework_simplejwt.tokens.AccessToken,SlidingToken"
            )),
            Ok(vec![TokenType::Access, TokenType::Sliding])
        );
        assert!(Vec::<TokenType>::parse(&env("UntypedToken")).is_err());
    }

    #[test]
    fn networks_are_parsed_once_from_addresses_and_prefixes() {
        let nets =
            Vec::<IpNet>::parse(&env("127.0.0.1, 10.0.0.0/8,::1,fd00::/8")).expect("valid entries");
        let addr = |text: &str| text.parse::<IpAddr>().expect("an address");
        assert!(nets[0].contains(&addr("127.0.0.1")) && !nets[0].contains(&addr("127.0.0.2")));
        assert!(nets[1].contains(&addr("10.200.3.4")) && !nets[1].contains(&addr("11.0.0.1")));
        assert!(nets[2].contains(&addr("::1")) && !nets[2].contains(&addr("127.0.0.1")));
        assert!(nets[3].contains(&addr("fd12::5")));
        assert_eq!(
            nets.render(),
            r#"["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"]"#
        );
        // Host bits in a network are ignored, as the prefix says.
        let host_bits = Vec::<IpNet>::parse(&env("10.1.2.3/8")).expect("valid");
        assert!(host_bits[0].contains(&addr("10.9.9.9")));
        assert!(
            Vec::<IpNet>::parse(&env("0.0.0.0/0")).expect("valid")[0].contains(&addr("8.8.8.8"))
        );
    }

    #[test]
    fn bad_networks_are_named() {
        for bad in [
            "10.0.0.0/99",
            "10.0.0.0/33",
            "fd00::/129",
            "proxy.local",
            "10.0.0.0/",
            "/8",
        ] {
            let err = Vec::<IpNet>::parse(&env(bad)).expect_err(bad);
            assert_eq!(
                err,
                format!("{bad:?} is not an address or a network such as 10.0.0.0/8")
            );
        }
    }

    #[test]
    fn secrets_are_never_rendered() {
        assert_eq!(Secret("hunter2".into()).render(), "\"<redacted>\"");
        assert!(!format!("{:?}", Secret("hunter2".into())).contains("hunter2"));
    }
}
