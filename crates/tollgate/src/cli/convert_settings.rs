//! `tollgate import-django --settings`: Django's JWT settings (simplejwt's `SIMPLE_JWT`, and
//! djangorestframework-jwt's `JWT_AUTH`) turned into a `tollgate.toml`, with what has no
//! equivalent listed plainly, in the file and to the caller.

use anyhow::{bail, Context};
use tollgate_core::settings::{django_name, DjangoName, SettingsError};
use tollgate_core::Settings;

use super::settings_py::{top_level_assignments, Py};

/// A converted settings block: the TOML text, and what was not converted, one line each.
#[derive(Debug)]
pub(crate) struct Conversion {
    pub(crate) toml: String,
    pub(crate) not_converted: Vec<String>,
}

/// The settings that hold a duration: a number there is seconds.
const DURATIONS: &[&str] = &[
    "ACCESS_TOKEN_LIFETIME",
    "REFRESH_TOKEN_LIFETIME",
    "SLIDING_TOKEN_LIFETIME",
    "SLIDING_TOKEN_REFRESH_LIFETIME",
    "LEEWAY",
];

/// Secrets are never written to the file: it is meant to be reviewed and versioned.
const SECRETS: &[&str] = &["SIGNING_KEY", "JWT_SECRET_KEY", "JWT_PRIVATE_KEY"];

/// Converts the `SIMPLE_JWT` and `JWT_AUTH` dicts assigned in a settings module (or in the
/// output of `manage.py diffsettings`).
pub(crate) fn from_python(source: &str, label: &str) -> anyhow::Result<Conversion> {
    let names = top_level_assignments(source).with_context(|| format!("cannot read {label}"))?;
    let block = |name: &str| -> anyhow::Result<Option<Vec<(Py, Py)>>> {
        match names.get(name) {
            None => Ok(None),
            Some(Py::Dict(entries)) => Ok(Some(entries.clone())),
            Some(Py::Code(code)) => bail!(
                "{label}: {name} is Python code (`{code}`), not a dict literal; dump the \
                 effective settings with --settings-json instead"
            ),
            Some(_) => bail!("{label}: {name} is not a dict"),
        }
    };
    convert(block("SIMPLE_JWT")?, block("JWT_AUTH")?, label)
}

/// Converts a JSON object `{"SIMPLE_JWT": {...}, "JWT_AUTH": {...}}`, durations in seconds.
pub(crate) fn from_json(text: &str, label: &str) -> anyhow::Result<Conversion> {
    let value: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{label} is not valid JSON"))?;
    let serde_json::Value::Object(top) = value else {
        bail!("{label}: expected an object with SIMPLE_JWT and/or JWT_AUTH");
    };
    let block = |name: &str| -> anyhow::Result<Option<Vec<(Py, Py)>>> {
        match top.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::Object(map)) => Ok(Some(
                map.iter()
                    .map(|(k, v)| (Py::Str(k.clone()), from_json_value(v)))
                    .collect(),
            )),
            Some(_) => bail!("{label}: {name} is not an object"),
        }
    };
    convert(block("SIMPLE_JWT")?, block("JWT_AUTH")?, label)
}

fn from_json_value(value: &serde_json::Value) -> Py {
    use serde_json::Value;
    match value {
        Value::Null => Py::None,
        Value::Bool(b) => Py::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map(Py::Int)
            .unwrap_or_else(|| Py::Float(n.as_f64().unwrap_or_default())),
        Value::String(s) => Py::Str(s.clone()),
        Value::Array(items) => Py::List(items.iter().map(from_json_value).collect()),
        Value::Object(map) => Py::Dict(
            map.iter()
                .map(|(k, v)| (Py::Str(k.clone()), from_json_value(v)))
                .collect(),
        ),
    }
}

/// One converted setting.
struct Converted {
    setting: &'static str,
    value: toml::Value,
    from: String,
}

fn convert(
    simple_jwt: Option<Vec<(Py, Py)>>,
    jwt_auth: Option<Vec<(Py, Py)>>,
    label: &str,
) -> anyhow::Result<Conversion> {
    if simple_jwt.is_none() && jwt_auth.is_none() {
        bail!("{label} assigns neither SIMPLE_JWT nor JWT_AUTH");
    }
    let mut converted: Vec<Converted> = Vec::new();
    let mut not_converted = Vec::new();
    let legacy_only = simple_jwt.is_none();
    // SIMPLE_JWT first: where both set one setting, simplejwt's (the newer) wins.
    for (dict, entries) in [("SIMPLE_JWT", simple_jwt), ("JWT_AUTH", jwt_auth)] {
        for (key, value) in entries.into_iter().flatten() {
            let Py::Str(key) = key else {
                not_converted.push(format!("{dict}: a key that is not a string ({key:?})"));
                continue;
            };
            let from = format!("{dict}[\"{key}\"]");
            match translate(&key.to_ascii_uppercase(), value) {
                Ok(Some((setting, value))) => {
                    if let Some(earlier) = converted.iter().find(|c| c.setting == setting) {
                        not_converted.push(format!(
                            "{from}: left out, {} already sets {setting}",
                            earlier.from
                        ));
                    } else {
                        converted.push(Converted {
                            setting,
                            value,
                            from,
                        });
                    }
                }
                Ok(None) => {}
                Err(why) => not_converted.push(format!("{from}: {why}")),
            }
        }
    }
    if legacy_only {
        // djangorestframework-jwt's clients and defaults, where they differ from simplejwt's.
        let defaults = [
            ("LOGIN_RESPONSE", toml::Value::String("token".into())),
            ("REFRESH_TOKEN_LIFETIME", toml::Value::String("7d".into())),
            (
                "AUTH_HEADER_TYPES",
                toml::Value::Array(vec![toml::Value::String("JWT".into())]),
            ),
        ];
        for (setting, value) in defaults {
            if !converted.iter().any(|c| c.setting == setting) {
                converted.push(Converted {
                    setting,
                    value,
                    from: "djangorestframework-jwt's default".into(),
                });
            }
        }
    }
    refuse_invalid(&mut converted, &mut not_converted);

    let mut toml = format!(
        "# Tollgate settings converted from {label} by `tollgate import-django --settings`.\n\
         # Each setting names the Django setting it came from; see docs/configuration.md.\n\n"
    );
    for c in &converted {
        toml.push_str(&format!("# {}\n{} = {}\n", c.from, c.setting, c.value));
    }
    if !not_converted.is_empty() {
        toml.push_str("\n# Not converted:\n");
        for line in &not_converted {
            toml.push_str(&format!("# - {line}\n"));
        }
    }
    Ok(Conversion {
        toml,
        not_converted,
    })
}

/// The Tollgate setting and value a Django setting becomes: `Ok(None)` when it needs nothing
/// (simplejwt's own default), `Err` with the reason when it has no equivalent.
fn translate(key: &str, value: Py) -> Result<Option<(&'static str, toml::Value)>, String> {
    if SECRETS.contains(&key) {
        return match value {
            Py::None => Ok(None),
            _ => Err(
                "a secret, not written to this file: give Tollgate the same key (Django's \
                      SECRET_KEY when SIMPLE_JWT does not set SIGNING_KEY) as \
                      TOLLGATE_SIGNING_KEY, or in a file named by SIGNING_KEY_FILE"
                    .to_owned(),
            ),
        };
    }
    let setting = match django_name(key) {
        Some(DjangoName::Ignored(instead)) => {
            return if is_default_hook(&value) {
                Ok(None)
            } else {
                Err(format!("no Tollgate equivalent: {instead}"))
            };
        }
        Some(DjangoName::Alias(setting)) => setting,
        None => match Settings::REFERENCE.iter().find(|info| info.key == key) {
            Some(info) => info.key,
            None => return Err("not a setting simplejwt or Tollgate knows; left out".to_owned()),
        },
    };
    let value = match (setting, value) {
        (_, Py::Code(code)) => {
            return Err(format!(
                "`{code}` is Python code; set {setting} by hand (or convert a --settings-json dump)"
            ))
        }
        ("TOKEN_TYPE_CLAIM" | "JTI_CLAIM", Py::None) => toml::Value::String(String::new()),
        (_, Py::None) => return Ok(None),
        ("VERIFYING_KEY", Py::Str(key)) if key.is_empty() => return Ok(None),
        ("AUTH_HEADER_TYPES" | "AUDIENCE", Py::Str(one)) => {
            toml::Value::Array(vec![toml::Value::String(one)])
        }
        (setting, Py::Int(n)) if DURATIONS.contains(&setting) => duration(n as f64),
        (setting, Py::Float(x)) if DURATIONS.contains(&setting) => duration(x),
        (_, value) => to_toml(value).map_err(|why| format!("{why}; set {setting} by hand"))?,
    };
    Ok(Some((setting, value)))
}

/// Whether a hook or class setting names the package's own (simplejwt's or
/// djangorestframework-jwt's), or keeps its default: Tollgate does what those do.
fn is_default_hook(value: &Py) -> bool {
    match value {
        Py::None | Py::Bool(true) => true,
        Py::Str(path) => {
            path.starts_with("rest_framework_simplejwt.") || path.starts_with("rest_framework_jwt.")
        }
        _ => false,
    }
}

fn to_toml(value: Py) -> Result<toml::Value, String> {
    Ok(match value {
        Py::Bool(b) => toml::Value::Boolean(b),
        Py::Int(n) => toml::Value::Integer(n),
        Py::Float(x) => toml::Value::Float(x),
        Py::Str(s) => toml::Value::String(s),
        Py::Duration(seconds) => duration(seconds),
        Py::List(items) => toml::Value::Array(
            items
                .into_iter()
                .map(to_toml)
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Py::Dict(_) => return Err("a dict, which no Tollgate setting holds".to_owned()),
        Py::None | Py::Code(_) => return Err("no literal value".to_owned()),
    })
}

/// A duration as Tollgate writes it: "5m", "1d", "90s"; fractions of a second as seconds.
fn duration(seconds: f64) -> toml::Value {
    if seconds.fract() != 0.0 || seconds < 0.0 {
        return toml::Value::Float(seconds);
    }
    let whole = seconds as u64;
    let text = match whole {
        0 => "0s".to_owned(),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3_600 == 0 => format!("{}h", s / 3_600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    };
    toml::Value::String(text)
}

/// Moves each value Tollgate refuses from `converted` to `not_converted`, with Tollgate's
/// reason. The keys, never written here, are stood in for while checking.
fn refuse_invalid(converted: &mut Vec<Converted>, not_converted: &mut Vec<String>) {
    for _ in 0..=converted.len() {
        let mut table = toml::Table::new();
        for c in converted.iter() {
            table.insert(c.setting.to_owned(), c.value.clone());
        }
        for key in ["SIGNING_KEY", "VERIFYING_KEY"] {
            table
                .entry(key)
                .or_insert_with(|| toml::Value::String("stand-in".repeat(8)));
        }
        let no_files = |_: &str| Err(std::io::ErrorKind::NotFound.into());
        match Settings::from_sources(&table, [], &[], no_files) {
            Ok(_) => return,
            Err(SettingsError::Invalid { key, message }) => {
                let Some(at) = converted.iter().position(|c| c.setting == key) else {
                    not_converted.push(format!("the settings together: {key} {message}"));
                    return;
                };
                let refused = converted.remove(at);
                not_converted.push(format!(
                    "{}: Tollgate refuses {} = {}: {message}",
                    refused.from, refused.setting, refused.value
                ));
            }
            Err(other) => {
                not_converted.push(format!("the settings together: {other}"));
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_simplejwt_block_becomes_toml_and_the_rest_is_listed() {
        let source = r#"
from datetime import timedelta
SECRET_KEY = "django-insecure-0123456789abcdef0123456789abcdef"
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer", "JWT"),
    "JTI_CLAIM": None,
    "ISSUER": None,
    "LEEWAY": 30,
    "AUTH_TOKEN_CLASSES": ("rest_framework_simplejwt.tokens.AccessToken",),
    "TOKEN_USER_CLASS": "rest_framework_simplejwt.models.TokenUser",
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.MyTokenSerializer",
    "USER_ID_CLAIM": os.environ["CLAIM"],
    "FROBNICATE": 1,
}
"#;
        let conversion = from_python(source, "settings.py").expect("converts");
        let table: toml::Table = toml::from_str(&conversion.toml).expect("TOML");
        assert_eq!(table["ACCESS_TOKEN_LIFETIME"].as_str(), Some("15m"));
        assert_eq!(table["REFRESH_TOKEN_LIFETIME"].as_str(), Some("7d"));
        assert_eq!(table["LEEWAY"].as_str(), Some("30s"));
        assert_eq!(table["JTI_CLAIM"].as_str(), Some(""));
        assert_eq!(
            table["AUTH_TOKEN_CLASSES"][0].as_str(),
            Some("rest_framework_simplejwt.tokens.AccessToken")
        );
        for absent in [
            "SIGNING_KEY",
            "ISSUER",
            "TOKEN_USER_CLASS",
            "USER_ID_CLAIM",
            "FROBNICATE",
        ] {
            assert!(!table.contains_key(absent), "{absent}");
        }
        assert!(
            !conversion.toml.contains("django-insecure"),
            "{}",
            conversion.toml
        );
        let notes = conversion.not_converted.join("\n");
        for expected in [
            "SIMPLE_JWT[\"SIGNING_KEY\"]: a secret",
            "SIMPLE_JWT[\"TOKEN_OBTAIN_SERIALIZER\"]: no Tollgate equivalent",
            "SIMPLE_JWT[\"USER_ID_CLAIM\"]: `os.environ[\"CLAIM\"]` is Python code",
            "SIMPLE_JWT[\"FROBNICATE\"]: not a setting",
        ] {
            assert!(notes.contains(expected), "{expected} in {notes}");
        }
        assert_eq!(conversion.not_converted.len(), 4, "{notes}");
    }

    #[test]
    fn jwt_auth_maps_to_todays_settings_with_drf_jwts_defaults() {
        let source = "JWT_AUTH = {'JWT_EXPIRATION_DELTA': datetime.timedelta(seconds=3600),
            'JWT_ALLOW_REFRESH': True, 'JWT_VERIFY_EXPIRATION': False,
            'JWT_RESPONSE_PAYLOAD_HANDLER': 'app.utils.jwt_response'}";
        let conversion = from_python(source, "s.py").expect("converts");
        let table: toml::Table = toml::from_str(&conversion.toml).expect("TOML");
        assert_eq!(table["ACCESS_TOKEN_LIFETIME"].as_str(), Some("1h"));
        assert_eq!(table["REFRESH_TOKEN_LIFETIME"].as_str(), Some("7d"));
        assert_eq!(table["LOGIN_RESPONSE"].as_str(), Some("token"));
        assert_eq!(table["AUTH_HEADER_TYPES"][0].as_str(), Some("JWT"));
        let notes = conversion.not_converted.join("\n");
        assert!(
            notes.contains(
                "JWT_VERIFY_EXPIRATION\"]: no Tollgate equivalent: Tollgate always checks exp"
            ),
            "{notes}"
        );
        assert!(notes.contains("JWT_RESPONSE_PAYLOAD_HANDLER"), "{notes}");
        assert_eq!(conversion.not_converted.len(), 2, "{notes}");
    }

    #[test]
    fn values_tollgate_refuses_are_listed_with_its_reason() {
        let json = r#"{"SIMPLE_JWT": {"ALGORITHM": "HS257", "ACCESS_TOKEN_LIFETIME": 300.0}}"#;
        let conversion = from_json(json, "dump.json").expect("converts");
        let table: toml::Table = toml::from_str(&conversion.toml).expect("TOML");
        assert_eq!(table["ACCESS_TOKEN_LIFETIME"].as_str(), Some("5m"));
        assert!(!table.contains_key("ALGORITHM"));
        assert!(
            conversion.not_converted[0]
                .starts_with("SIMPLE_JWT[\"ALGORITHM\"]: Tollgate refuses ALGORITHM = \"HS257\""),
            "{:?}",
            conversion.not_converted
        );
        let err = from_json("{\"DEBUG\": true}", "dump.json").unwrap_err();
        assert_eq!(
            err.to_string(),
            "dump.json assigns neither SIMPLE_JWT nor JWT_AUTH"
        );
    }
}
