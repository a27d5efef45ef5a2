//! Where settings come from: a TOML table, then the environment; each value given as it is
//! (`SIGNING_KEY`) or read from a file (`SIGNING_KEY_FILE`, the Docker and Kubernetes secrets
//! convention).
//!
//! A TOML file is written for Tollgate and reviewed, so a key in it that names no setting is an
//! error. An environment is shared with everything else that runs beside the process (Kubernetes
//! gives every pod `TOLLGATE_PORT` and `TOLLGATE_SERVICE_HOST` when a Service is named
//! `tollgate`), so a `TOLLGATE_*` variable that names no setting is reported back, with a
//! suggestion, for the caller to warn about, and does not stop the loading.

use std::collections::BTreeMap;

use super::django::{django_name, DjangoName, IgnoredSetting};
use super::{RawValue, Settings, SettingsError, ENV_PREFIX};

/// The suffix that reads a setting from a file: `SIGNING_KEY_FILE = "/run/secrets/signing_key"`
/// (or `TOLLGATE_SIGNING_KEY_FILE`) sets SIGNING_KEY to the file's contents, without the
/// trailing line break. Every setting accepts it; it is meant for secrets.
pub const FILE_SUFFIX: &str = "_FILE";

/// Names from simplejwt that were removed there; Tollgate refuses them with the same hint.
const REMOVED: &[&str] = &[
    "AUTH_HEADER_TYPE",
    "AUTH_TOKEN_CLASS",
    "SECRET_KEY",
    "TOKEN_BACKEND_CLASS",
];

/// Tollgate's own former names of settings, still accepted: the old name, then the setting.
const RENAMED: &[(&str, &str)] = &[("DEVELOPMENT_MODE", "DEVELOPMENT")];

/// Settings read from their sources, and the environment variables that named no setting.
#[derive(Debug)]
pub struct Loaded {
    /// The settings, validated.
    pub settings: Settings,
    /// `TOLLGATE_*` variables that are no setting, for the caller to warn about: they were
    /// ignored.
    pub unknown_env: Vec<UnknownVariable>,
    /// Django settings (in the TOML or the environment) that Tollgate has no setting for, for
    /// the caller to warn about: they were ignored.
    pub ignored: Vec<IgnoredSetting>,
    /// Settings given under a former name, for the caller to warn about: they were applied.
    pub renamed: Vec<RenamedSetting>,
}

/// A setting given under a name Tollgate used before (`DEVELOPMENT_MODE`, now `DEVELOPMENT`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenamedSetting {
    /// The name as written (`DEVELOPMENT_MODE`, `TOLLGATE_DEVELOPMENT_MODE`).
    pub name: String,
    /// The name to use instead, as written in the same source.
    pub instead: String,
}

impl std::fmt::Display for RenamedSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is a former name, applied as {}; rename it to {}",
            self.name, self.instead, self.instead
        )
    }
}

/// The setting a former name means (`DEVELOPMENT_MODE`: `DEVELOPMENT`).
fn renamed(name: &str) -> Option<&'static str> {
    RENAMED
        .iter()
        .find(|(old, _)| *old == name)
        .map(|(_, setting)| *setting)
}

/// A `TOLLGATE_*` environment variable that names no setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownVariable {
    /// The variable's name, as written.
    pub name: String,
    /// The variable probably meant (`TOLLGATE_ACCESS_TOKEN_LIFETIME`), or why the name is not
    /// used any more.
    pub hint: Option<String>,
}

impl std::fmt::Display for UnknownVariable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown environment variable {} is ignored", self.name)?;
        match &self.hint {
            Some(hint) => write!(f, " ({hint})"),
            None => Ok(()),
        }
    }
}

/// A source's values by setting name (upper case), each with its name as written.
type Named = BTreeMap<String, (String, RawValue)>;

/// Files djangorestframework-jwt's names (`JWT_EXPIRATION_DELTA`, `JWT_SECRET_KEY_FILE`) and
/// Tollgate's former names (`DEVELOPMENT_MODE`, recorded in `renames` with the name to use,
/// spelt as in `prefix`'s source) under the settings they mean; a setting given under two names
/// is a conflict.
fn resolve_aliases(
    named: Named,
    prefix: &str,
    renames: &mut Vec<RenamedSetting>,
) -> Result<Named, SettingsError> {
    let mut resolved = Named::new();
    let mut aliased = Vec::new();
    for (key, (written, raw)) in named {
        let known = |base: &str| django_name(base).is_some() || renamed(base).is_some();
        let (base, suffix) = match key.strip_suffix(FILE_SUFFIX) {
            Some(base) if known(base) => (base, FILE_SUFFIX),
            _ => (key.as_str(), ""),
        };
        if let Some(setting) = renamed(base) {
            renames.push(RenamedSetting {
                name: written.clone(),
                instead: format!("{prefix}{setting}{suffix}"),
            });
            aliased.push((format!("{setting}{suffix}"), written, raw));
            continue;
        }
        match django_name(base) {
            Some(DjangoName::Alias(setting)) => {
                aliased.push((format!("{setting}{suffix}"), written, raw));
            }
            _ => {
                resolved.insert(key, (written, raw));
            }
        }
    }
    for (key, written, raw) in aliased {
        insert_once(&mut resolved, &key, &written, raw)?;
    }
    Ok(resolved)
}

/// Adds `key` (upper case), written `written`, to `named`; the same key written twice, in two
/// letter cases, is a conflict rather than a silent choice.
fn insert_once(
    named: &mut Named,
    key: &str,
    written: &str,
    raw: RawValue,
) -> Result<(), SettingsError> {
    let key = key.to_ascii_uppercase();
    if let Some((other, _)) = named.get(&key) {
        return Err(SettingsError::Conflict {
            first: other.clone(),
            second: written.to_owned(),
        });
    }
    named.insert(key, (written.to_owned(), raw));
    Ok(())
}

impl Settings {
    /// Builds settings from simplejwt's defaults, then a TOML table, then environment variables
    /// (`TOLLGATE_<KEY>`, plus plain `DATABASE_URL`); later sources win. Names are matched
    /// without regard to case, in TOML and in the environment. Any setting `X` may be given
    /// as `X_FILE`, the path of a file that `read_file` reads (its trailing line break
    /// removed); giving both `X` and `X_FILE` in one source is an error.
    ///
    /// djangorestframework-jwt's names (`JWT_EXPIRATION_DELTA`...) set the settings they mean;
    /// simplejwt's names of Python code (`TOKEN_USER_CLASS`...) are returned in
    /// [`Loaded::ignored`], with what Tollgate does instead (see [`django_name`]).
    ///
    /// Any other unknown TOML key is an error. An unknown `TOLLGATE_*` variable is returned in
    /// [`Loaded::unknown_env`], except the names Kubernetes gives a Service's address
    /// (`TOLLGATE_PORT`, `TOLLGATE_PORT_*`, `TOLLGATE_SERVICE_*`), which are skipped, and those
    /// in `env_ignored` (after the prefix: the caller reads them).
    ///
    /// ```
    /// use tollgate_core::Settings;
    ///
    /// let env = [
    ///     ("TOLLGATE_ACCESS_TOKEN_LIFETIME", "10m"),
    ///     ("tollgate_rotate_refresh_tokens", "true"),
    ///     ("TOLLGATE_SIGNING_KEY_FILE", "/run/secrets/signing_key"),
    ///     ("TOLLGATE_ACESS_TOKEN_LIFETIME", "1m"),
    ///     ("TOLLGATE_PORT", "tcp://10.0.0.1:8000"),
    /// ];
    /// let read_file = |path: &str| match path {
    ///     "/run/secrets/signing_key" => Ok("0123456789abcdef0123456789abcdef\n".to_owned()),
    ///     _ => Err(std::io::ErrorKind::NotFound.into()),
    /// };
    /// let loaded = Settings::from_sources(&toml::Table::new(), env, &[], read_file).unwrap();
    /// assert_eq!(loaded.settings.access_token_lifetime.as_secs(), 600);
    /// assert!(loaded.settings.rotate_refresh_tokens);
    /// assert_eq!(loaded.settings.signing_key.expose(), "0123456789abcdef0123456789abcdef");
    /// assert_eq!(
    ///     loaded.unknown_env[0].to_string(),
    ///     "unknown environment variable TOLLGATE_ACESS_TOKEN_LIFETIME is ignored \
    ///      (did you mean TOLLGATE_ACCESS_TOKEN_LIFETIME?)"
    /// );
    /// assert_eq!(loaded.unknown_env.len(), 1);
    /// ```
    pub fn from_sources<'a>(
        toml: &toml::Table,
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
        env_ignored: &[&str],
        read_file: impl Fn(&str) -> std::io::Result<String>,
    ) -> Result<Loaded, SettingsError> {
        let mut settings = Settings::default();

        let mut from_toml = Named::new();
        for (key, value) in toml {
            insert_once(&mut from_toml, key, key, RawValue::Toml(value.clone()))?;
        }
        let mut renamed = Vec::new();
        let from_toml = resolve_aliases(from_toml, "", &mut renamed)?;
        let mut ignored = Vec::new();
        let unknown_toml = settings.apply_all(&from_toml, &read_file, &mut ignored)?;
        if let Some((written, key)) = unknown_toml.first() {
            return Err(SettingsError::Unknown {
                key: written.clone(),
                hint: hint(key, "")
                    .map(|hint| format!(" ({hint})"))
                    .unwrap_or_default(),
            });
        }

        let mut from_env = Named::new();
        let mut plain_database_url = Named::new();
        for (name, value) in env {
            let raw = RawValue::Env(value.to_owned());
            // The conventional name, in its one spelling; TOLLGATE_DATABASE_URL wins over it.
            if name == "DATABASE_URL" {
                insert_once(&mut plain_database_url, name, name, raw)?;
                continue;
            }
            let upper = name.to_ascii_uppercase();
            let Some(key) = upper.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if env_ignored.contains(&key) || is_service_link(key) {
                continue;
            }
            insert_once(&mut from_env, key, name, raw)?;
        }
        settings.apply_all(&plain_database_url, &read_file, &mut ignored)?;
        let from_env = resolve_aliases(from_env, ENV_PREFIX, &mut renamed)?;
        let unknown_env = settings
            .apply_all(&from_env, &read_file, &mut ignored)?
            .into_iter()
            .map(|(name, key)| UnknownVariable {
                hint: hint(&key, ENV_PREFIX),
                name,
            })
            .collect();

        settings.validate()?;
        Ok(Loaded {
            settings,
            unknown_env,
            ignored,
            renamed,
        })
    }

    /// Sets every value of one source; returns the names that are no setting, as written and
    /// in upper case, except Django's names of no setting, which go to `ignored`.
    fn apply_all(
        &mut self,
        named: &Named,
        read_file: &impl Fn(&str) -> std::io::Result<String>,
        ignored: &mut Vec<IgnoredSetting>,
    ) -> Result<Vec<(String, String)>, SettingsError> {
        let mut unknown = Vec::new();
        for (key, (written, raw)) in named {
            if self.set(key, raw)? {
                continue;
            }
            let base = key.strip_suffix(FILE_SUFFIX).unwrap_or(key);
            if let Some(DjangoName::Ignored(instead)) = django_name(base) {
                ignored.push(IgnoredSetting {
                    name: written.clone(),
                    instead,
                });
                continue;
            }
            let setting = key
                .strip_suffix(FILE_SUFFIX)
                .and_then(|base| Settings::REFERENCE.iter().find(|info| info.key == base));
            let Some(setting) = setting else {
                unknown.push((written.clone(), key.clone()));
                continue;
            };
            if let Some((both, _)) = named.get(setting.key) {
                return Err(SettingsError::Conflict {
                    first: both.clone(),
                    second: written.clone(),
                });
            }
            let invalid = |message: String| SettingsError::Invalid {
                key: setting.key,
                message,
            };
            let path = match raw {
                RawValue::Env(path) | RawValue::Toml(toml::Value::String(path)) => path,
                RawValue::Toml(other) => {
                    return Err(invalid(format!(
                        "{written} must be a file path, not {other}"
                    )))
                }
            };
            let contents = read_file(path)
                .map_err(|err| invalid(format!("cannot read {written} {path:?}: {err}")))?;
            let contents = contents.trim_end_matches(['\n', '\r']);
            if contents.is_empty() {
                return Err(invalid(format!("the file {path:?} ({written}) is empty")));
            }
            // The contents are parsed as an environment variable's text would be. A value
            // refused here is not repeated in the message: the file may hold a secret.
            self.set(setting.key, &RawValue::Env(contents.to_owned()))
                .map_err(|_| {
                    invalid(format!(
                        "the contents of {path:?} ({written}) are not {}",
                        setting.expected
                    ))
                })?;
        }
        Ok(unknown)
    }
}

/// The names Kubernetes derives from a Service named `tollgate` and puts in every pod of its
/// namespace: `TOLLGATE_SERVICE_HOST`, `TOLLGATE_SERVICE_PORT[_NAME]`, `TOLLGATE_PORT` and
/// `TOLLGATE_PORT_8000_TCP[_PROTO|_PORT|_ADDR]`. No setting begins so.
fn is_service_link(key: &str) -> bool {
    key == "PORT" || key.starts_with("PORT_") || key.starts_with("SERVICE_")
}

/// What an unknown name (upper case, without prefix) probably meant, with `prefix` before
/// the setting's name: the nearest setting (or `X_FILE`) by edit distance, if it is near.
fn hint(key: &str, prefix: &str) -> Option<String> {
    if REMOVED.contains(&key) {
        return Some(
            "this simplejwt setting has been removed; see the configuration reference".to_owned(),
        );
    }
    let limit = (key.len() / 6).max(2);
    Settings::REFERENCE
        .iter()
        .flat_map(|info| [info.key.to_owned(), format!("{}{FILE_SUFFIX}", info.key)])
        .map(|known| (edit_distance(&known, key), known))
        .filter(|(distance, _)| *distance <= limit)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| format!("did you mean {prefix}{known}?"))
}

/// Levenshtein distance: the fewest letters inserted, deleted or replaced to turn `a` into `b`.
fn edit_distance(a: &str, b: &str) -> usize {
    let b = b.as_bytes();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.bytes().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let replaced = diagonal + usize::from(x != *y);
            diagonal = row[j + 1];
            row[j + 1] = replaced.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Whether a value looks like a file path (`/etc/tollgate/private.pem`, `./key.pem`) rather
/// than the key or URL itself: for the hint to use `X_FILE` instead.
///
/// ```
/// use tollgate_core::settings::looks_like_path;
///
/// assert!(looks_like_path("/etc/tollgate/private.pem") && looks_like_path("keys/signing.key"));
/// assert!(!looks_like_path("-----BEGIN PRIVATE KEY-----\nMC4CAQ...\n-----END PRIVATE KEY-----"));
/// assert!(!looks_like_path("0123456789abcdef") && !looks_like_path("sqlite://tollgate.db"));
/// ```
pub fn looks_like_path(value: &str) -> bool {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    !value.is_empty()
        && value.len() < 4096
        && !value.contains(char::is_whitespace)
        && !value.contains("://")
        && (["/", "./", "../", "~/"]
            .iter()
            .any(|p| value.starts_with(p))
            || [".pem", ".key", ".der", ".crt", ".txt"]
                .iter()
                .any(|ext| lower.ends_with(ext)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_files(path: &str) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no file {path} in this test"),
        ))
    }

    fn load_env(env: &[(&str, &str)]) -> Result<Loaded, SettingsError> {
        Settings::from_sources(
            &toml::Table::new(),
            env.iter().copied(),
            &["CONFIG"],
            no_files,
        )
    }

    #[test]
    fn edit_distance_counts_letters() {
        assert_eq!(edit_distance("ACCESS", "ACCESS"), 0);
        assert_eq!(edit_distance("ACCESS", "ACESS"), 1);
        assert_eq!(edit_distance("LOG", "LOGS"), 1);
        assert_eq!(edit_distance("BIND", "BNID"), 2);
        assert_eq!(edit_distance("", "ABC"), 3);
    }

    #[test]
    fn unknown_variables_are_returned_with_the_nearest_name() {
        let loaded = load_env(&[
            ("TOLLGATE_REFRESH_TOKN_LIFETIME", "1d"),
            ("TOLLGATE_SIGNING_KEY_FIEL", "/x"),
            ("TOLLGATE_WHATEVER", "1"),
            ("TOLLGATE_SECRET_KEY", "x"),
        ])
        .expect("unknown variables do not stop loading");
        let shown: Vec<String> = loaded.unknown_env.iter().map(|u| u.to_string()).collect();
        assert_eq!(
            shown,
            [
                "unknown environment variable TOLLGATE_REFRESH_TOKN_LIFETIME is ignored (did you \
                 mean TOLLGATE_REFRESH_TOKEN_LIFETIME?)",
                "unknown environment variable TOLLGATE_SECRET_KEY is ignored (this simplejwt \
                 setting has been removed; see the configuration reference)",
                "unknown environment variable TOLLGATE_SIGNING_KEY_FIEL is ignored (did you mean \
                 TOLLGATE_SIGNING_KEY_FILE?)",
                "unknown environment variable TOLLGATE_WHATEVER is ignored",
            ]
        );
    }

    #[test]
    fn kubernetes_service_links_are_skipped_silently() {
        let loaded = load_env(&[
            ("TOLLGATE_PORT", "tcp://10.96.0.12:8000"),
            ("TOLLGATE_PORT_8000_TCP", "tcp://10.96.0.12:8000"),
            ("TOLLGATE_PORT_8000_TCP_ADDR", "10.96.0.12"),
            ("TOLLGATE_SERVICE_HOST", "10.96.0.12"),
            ("TOLLGATE_SERVICE_PORT_HTTP", "8000"),
        ])
        .expect("valid");
        assert_eq!(loaded.unknown_env, []);
    }

    #[test]
    fn names_are_matched_in_any_case_but_not_twice() {
        let loaded = load_env(&[
            ("tollgate_access_token_lifetime", "7m"),
            ("Tollgate_Log", "debug"),
        ])
        .expect("valid");
        assert_eq!(loaded.settings.access_token_lifetime.as_secs(), 420);
        assert_eq!(loaded.settings.log, "debug");
        let err = load_env(&[("TOLLGATE_LOG", "info"), ("tollgate_log", "debug")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "TOLLGATE_LOG and tollgate_log are both set; give only one"
        );
    }

    #[test]
    fn django_names_set_what_they_mean_or_are_ignored_with_a_reason() {
        let table: toml::Table = toml::from_str(
            "JWT_EXPIRATION_DELTA = 600\nJWT_AUTH_HEADER_PREFIX = \"JWT\"\n\
             TOKEN_USER_CLASS = \"rest_framework_simplejwt.models.TokenUser\"",
        )
        .expect("TOML");
        let loaded = Settings::from_sources(
            &table,
            [
                ("TOLLGATE_JWT_REFRESH_EXPIRATION_DELTA", "3d"),
                ("TOLLGATE_ON_LOGIN_FAILED", "app.hooks.failed"),
            ],
            &[],
            no_files,
        )
        .expect("Django names do not stop loading");
        assert_eq!(loaded.settings.access_token_lifetime.as_secs(), 600);
        assert_eq!(loaded.settings.refresh_token_lifetime.as_secs(), 3 * 86_400);
        assert_eq!(loaded.settings.auth_header_types, ["JWT"]);
        let names: Vec<&str> = loaded.ignored.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["TOKEN_USER_CLASS", "TOLLGATE_ON_LOGIN_FAILED"]);
        assert!(
            loaded.ignored[0].to_string().starts_with(
                "the Django setting TOKEN_USER_CLASS has no Tollgate equivalent and is ignored: \
                 Tollgate makes the stateless user"
            ),
            "{}",
            loaded.ignored[0]
        );
        assert_eq!(loaded.unknown_env, []);

        let table: toml::Table =
            toml::from_str("ACCESS_TOKEN_LIFETIME = 60\njwt_expiration_delta = 600").expect("TOML");
        let err = Settings::from_sources(&table, [], &[], no_files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ACCESS_TOKEN_LIFETIME and jwt_expiration_delta are both set; give only one"
        );
    }

    #[test]
    fn unknown_toml_keys_stay_errors() {
        let table: toml::Table = toml::from_str("ACCESS_TOKEN_LIFETME = 5").expect("TOML");
        let err = Settings::from_sources(&table, [], &[], no_files).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown setting ACCESS_TOKEN_LIFETME (did you mean ACCESS_TOKEN_LIFETIME?)"
        );
    }

    #[test]
    fn file_settings_read_the_file_without_its_line_break() {
        let read = |path: &str| match path {
            "/s/url" => Ok("postgres://app:pw@db/tollgate\r\n".to_owned()),
            "/s/empty" => Ok("\n".to_owned()),
            other => no_files(other),
        };
        let table: toml::Table = toml::from_str("database_url_file = \"/s/url\"").expect("TOML");
        let loaded = Settings::from_sources(&table, [], &[], read).expect("valid");
        assert_eq!(
            loaded.settings.database_url,
            "postgres://app:pw@db/tollgate"
        );

        let err = Settings::from_sources(
            &toml::Table::new(),
            [("TOLLGATE_METRICS_TOKEN_FILE", "/s/empty")],
            &[],
            read,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting METRICS_TOKEN: the file \"/s/empty\" (TOLLGATE_METRICS_TOKEN_FILE) is empty"
        );
        let err = Settings::from_sources(
            &toml::Table::new(),
            [("TOLLGATE_REDIS_URL_FILE", "/s/missing")],
            &[],
            read,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting REDIS_URL: cannot read TOLLGATE_REDIS_URL_FILE \"/s/missing\": no file \
             /s/missing in this test"
        );
    }

    #[test]
    fn a_setting_and_its_file_together_are_refused() {
        let err = Settings::from_sources(
            &toml::Table::new(),
            [
                ("TOLLGATE_SIGNING_KEY", "0123456789abcdef0123456789abcdef"),
                ("TOLLGATE_SIGNING_KEY_FILE", "/s/key"),
            ],
            &[],
            no_files,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "TOLLGATE_SIGNING_KEY and TOLLGATE_SIGNING_KEY_FILE are both set; give only one"
        );
        // The environment still wins over the file, whichever way the file gives the value.
        let table: toml::Table = toml::from_str("SIGNING_KEY_FILE = \"/s/key\"").expect("TOML");
        let read = |_: &str| Ok("from-the-file-0123456789abcdef0123456789".to_owned());
        let loaded = Settings::from_sources(
            &table,
            [(
                "TOLLGATE_SIGNING_KEY",
                "from-the-environment-0123456789abcdef01",
            )],
            &[],
            read,
        )
        .expect("valid");
        assert_eq!(
            loaded.settings.signing_key.expose(),
            "from-the-environment-0123456789abcdef01"
        );
    }

    #[test]
    fn a_refused_file_value_is_not_repeated() {
        let read = |_: &str| Ok("hunter2-not-a-number".to_owned());
        let err = Settings::from_sources(
            &toml::Table::new(),
            [("TOLLGATE_MAX_BODY_BYTES_FILE", "/s/n")],
            &[],
            read,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "setting MAX_BODY_BYTES: the contents of \"/s/n\" (TOLLGATE_MAX_BODY_BYTES_FILE) are \
             not a non-negative integer"
        );
    }
}
