//! Loading settings: simplejwt's defaults, then a TOML file, then the environment.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tollgate_core::settings::{Loaded, Secret, SettingInfo, ENV_PREFIX, FILE_SUFFIX};
use tollgate_core::Settings;

/// `TOLLGATE_*` variables that are not settings: the command line and the test suite read them.
pub const NON_SETTING_ENV: &[&str] = &[
    "CONFIG",
    "SUPERUSER_PASSWORD",
    "USER_PASSWORD",
    "NEW_PASSWORD",
    "TEST_POSTGRES_URL",
    "BLESS",
];

/// Loads and validates settings from an optional TOML file and the process environment.
/// `TOLLGATE_*` variables that name no setting come back in [`Loaded::unknown_env`] for the
/// caller to warn about; an unknown key in the file is an error.
pub fn load(config_path: Option<&Path>) -> anyhow::Result<Loaded> {
    let table = match config_path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the config file {}", path.display()))?;
            toml::from_str::<toml::Table>(&text)
                .with_context(|| format!("the config file {} is not valid TOML", path.display()))?
        }
        None => toml::Table::new(),
    };
    let env = environment()?;
    let loaded = Settings::from_sources(
        &table,
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        NON_SETTING_ENV,
        |path| std::fs::read_to_string(path),
    )
    .with_context(|| match config_path {
        Some(path) => format!(
            "invalid configuration (from {} and the environment)",
            path.display()
        ),
        None => "invalid configuration (from the environment)".to_owned(),
    })?;
    Ok(loaded)
}

/// The process environment as text. A variable that is not UTF-8 is skipped, unless its name
/// is one of Tollgate's, where it is an error: settings are text.
fn environment() -> anyhow::Result<Vec<(String, String)>> {
    let mut env = Vec::new();
    for (name, value) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let ours = name.to_ascii_uppercase().starts_with(ENV_PREFIX) || name == "DATABASE_URL";
        match value.into_string() {
            Ok(value) => env.push((name, value)),
            Err(_) if ours => bail!("the environment variable {name} is not valid UTF-8"),
            Err(_) => {}
        }
    }
    Ok(env)
}

/// Where a development signing key lives: beside the SQLite database file.
pub fn dev_key_path(database_url: &str) -> Option<PathBuf> {
    let path = sqlite_path(database_url)?;
    let mut name = path.file_name()?.to_owned();
    name.push(".signing-key");
    Some(path.with_file_name(name))
}

fn sqlite_path(database_url: &str) -> Option<PathBuf> {
    let rest = database_url.strip_prefix("sqlite:")?;
    let rest = rest.strip_prefix("//").unwrap_or(rest);
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// The file of a SQLite database URL; `None` for PostgreSQL and in-memory databases.
pub(crate) fn sqlite_file(database_url: &str) -> Option<PathBuf> {
    let in_memory = database_url
        .split_once('?')
        .is_some_and(|(_, query)| query.split('&').any(|pair| pair == "mode=memory"));
    if in_memory {
        return None;
    }
    sqlite_path(database_url)
}

/// Fills in SIGNING_KEY when it is empty and the algorithm is an HMAC: a random secret kept in
/// a file beside the SQLite database, made on first use. Only for development: with PostgreSQL
/// (several instances) the key must be configured. Returns the key file used, if any.
pub fn ensure_signing_key(settings: &mut Settings) -> anyhow::Result<Option<PathBuf>> {
    resolve_signing_key(settings, KeyFile::Create)
}

/// Whether [`resolve_signing_key`] may write a development key file that does not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFile {
    /// Make the file (`serve`, and commands that mint tokens).
    Create,
    /// Leave the disk as it is (`check`): a missing file stands for the key `serve` would make,
    /// and a random key in memory takes its place.
    ReadOnly,
}

/// [`ensure_signing_key`], with the choice of writing the key file or not; every refusal is
/// the same either way.
pub(crate) fn resolve_signing_key(
    settings: &mut Settings,
    key_file: KeyFile,
) -> anyhow::Result<Option<PathBuf>> {
    if !settings.signing_key.is_empty() || !settings.algorithm.is_hmac() {
        return Ok(None);
    }
    let Some(path) = dev_key_path(&settings.database_url) else {
        if settings.database_url.contains(":memory:") {
            settings.signing_key = Secret(random_secret());
            tracing::warn!(
                "no SIGNING_KEY set: using a random key for this in-memory database only"
            );
            return Ok(None);
        }
        bail!(
            "SIGNING_KEY is not set: with this database, set TOLLGATE_SIGNING_KEY (for example to the \
             output of `openssl rand -hex 64`) so that every instance signs with the same key"
        );
    };
    let key = match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => key.trim().to_owned(),
        Ok(_) => bail!(
            "the signing key file {} is empty; delete it to make a new one",
            path.display()
        ),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && key_file == KeyFile::ReadOnly => {
            settings.signing_key = Secret(random_secret());
            return Ok(None);
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let key = random_secret();
            write_private(&path, &key).with_context(|| {
                format!(
                    "cannot write the development signing key to {}",
                    path.display()
                )
            })?;
            key
        }
        Err(err) => {
            return Err(err)
                .with_context(|| format!("cannot read the signing key file {}", path.display()))
        }
    };
    tracing::warn!(
        key_file = %path.display(),
        "no SIGNING_KEY set: using a generated development key; set TOLLGATE_SIGNING_KEY in production"
    );
    settings.signing_key = Secret(key);
    Ok(Some(path))
}

/// 64 random bytes from the operating system, as hex: enough for HS512.
fn random_secret() -> String {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; 64];
    rand_core::OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// `config.example.toml`: every setting, commented out at its default, with its meaning and
/// environment variable. Generated from the `Settings` table, so it cannot drift.
pub fn example_toml() -> String {
    let mut out = String::from(
        "# Tollgate configuration: every setting, at its default (simplejwt's, where simplejwt has it).\n\
         # Use with `tollgate --config tollgate.toml …` or TOLLGATE_CONFIG=tollgate.toml.\n\
         # Keys are simplejwt's names (case does not matter). Each may also be set in the environment\n\
         # as TOLLGATE_<KEY>, which wins over this file. Any key may instead be read from a file,\n\
         # for secrets: KEY_FILE (TOLLGATE_KEY_FILE in the environment) holds the file's path, and\n\
         # its contents, without their final line break, are the value. Generated from the code;\n\
         # do not edit by hand.\n",
    );
    let defaults = Settings::default().effective();
    for (info, (_, default)) in Settings::reference().iter().zip(defaults) {
        out.push('\n');
        for line in info.doc.lines() {
            out.push_str(&format!("# {}\n", line.trim()));
        }
        out.push_str(&format!(
            "# Values: {}. Environment: {}.\n",
            info.expected,
            env_names(info).join(" or ")
        ));
        out.push_str(&format!("# {} = {}\n", info.key, default));
    }
    out
}

/// The settings that hold a credential, besides those typed as secrets: their `_FILE` form is
/// named in the reference.
const CREDENTIALS: &[&str] = &["VERIFYING_KEY", "DATABASE_URL", "REDIS_URL"];

/// A setting's environment variables as the reference names them: `TOLLGATE_X`, and
/// `TOLLGATE_X_FILE` for a secret (every setting accepts it; secrets are what it is for).
fn env_names(info: &SettingInfo) -> Vec<String> {
    let mut names = vec![format!("{ENV_PREFIX}{}", info.key)];
    if info.secret || CREDENTIALS.contains(&info.key) {
        names.push(format!("{ENV_PREFIX}{}{FILE_SUFFIX}", info.key));
    }
    names
}

/// `docs/configuration.md`: the same reference as a table.
pub fn reference_markdown() -> String {
    let mut out = String::from(
        "# Configuration reference\n\n\
         Generated from the `Settings` type (`crates/tollgate-core/src/settings/mod.rs`); a test fails\n\
         when this file is stale. Settings are read from simplejwt's defaults, then a TOML file\n\
         (`--config PATH` or `TOLLGATE_CONFIG`), then environment variables, which win. TOML keys are\n\
         simplejwt's names, in any case. Durations are seconds (`300`) or text (`\"5m\"`, `\"1d\"`); lists\n\
         are TOML arrays or comma-separated text in the environment. `DATABASE_URL` is also read\n\
         without the prefix.\n\n\
         ## Secrets from files\n\n\
         Any setting `X` may instead be read from a file: `X_FILE = \"/run/secrets/x\"` in TOML, or\n\
         `TOLLGATE_X_FILE=/run/secrets/x` in the environment (the Docker and Kubernetes secrets\n\
         convention). The file's contents, without their final line break, are the value, read as an\n\
         environment variable's text would be. It is meant for the secrets: `SIGNING_KEY_FILE` (a PEM\n\
         file or an HMAC secret), `VERIFYING_KEY_FILE`, `KEYS_ENCRYPTION_KEY_FILE`,\n\
         `DATABASE_URL_FILE`, `REDIS_URL_FILE`, `METRICS_TOKEN_FILE`. Giving both `X` and `X_FILE` in\n\
         one source is an error; the environment still wins over the TOML file, whichever form each\n\
         uses. An unreadable or empty file stops start-up with an error naming the file. A file path\n\
         given where a PEM key is expected (`SIGNING_KEY=/etc/tollgate/private.pem`) is refused with a\n\
         hint to use `SIGNING_KEY_FILE`.\n\n\
         ## The environment\n\n\
         Variable names are matched without regard to case (`tollgate_log` is `TOLLGATE_LOG`); one\n\
         setting set twice in two cases is an error. A `TOLLGATE_*` variable that names no setting is\n\
         ignored with a warning, `did you mean TOLLGATE_…?` when a setting's name is near, and does\n\
         not stop start-up: an environment is shared, and a rename must not take a deployment down.\n\
         `tollgate check --strict` exits 1 on such variables, for CI. The names Kubernetes gives every\n\
         pod when a Service is called `tollgate` (`TOLLGATE_PORT`, `TOLLGATE_PORT_*`,\n\
         `TOLLGATE_SERVICE_*`) are ignored silently. `TOLLGATE_CONFIG`, `TOLLGATE_SUPERUSER_PASSWORD`,\n\
         `TOLLGATE_USER_PASSWORD` and `TOLLGATE_NEW_PASSWORD` are read by the command line. In a TOML\n\
         file, which is reviewed before it is deployed, an unknown key is an error.\n\n\
         ## Settings\n\n\
         | Setting | Environment | Default | Meaning |\n|---|---|---|---|\n",
    );
    let defaults = Settings::default().effective();
    for (info, (_, default)) in Settings::reference().iter().zip(defaults) {
        let meaning = info
            .doc
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(" ");
        let env = env_names(info)
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>()
            .join(", ");
        out.push_str(&format!(
            "| `{}` | {} | `{}` | {} Values: {}. |\n",
            info.key,
            env,
            default,
            meaning.replace('|', "\\|"),
            info.expected
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_files_sit_beside_sqlite_databases() {
        assert_eq!(
            dev_key_path("sqlite://tollgate.db"),
            Some(PathBuf::from("tollgate.db.signing-key"))
        );
        assert_eq!(
            dev_key_path("sqlite:///var/lib/t.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/t.db.signing-key"))
        );
        assert_eq!(dev_key_path("sqlite::memory:"), None);
        assert_eq!(dev_key_path("postgres://localhost/db"), None);
    }

    #[test]
    fn a_generated_key_is_made_once_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let mut first = Settings {
            database_url: url.clone(),
            ..Settings::default()
        };
        let path = ensure_signing_key(&mut first)
            .expect("made")
            .expect("a key file");
        assert_eq!(first.signing_key.expose().len(), 128);
        let mut second = Settings {
            database_url: url,
            ..Settings::default()
        };
        ensure_signing_key(&mut second).expect("read");
        assert_eq!(first.signing_key, second.signing_key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .expect("exists")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn a_read_only_look_writes_no_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings {
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            ..Settings::default()
        };
        let used = resolve_signing_key(&mut settings, KeyFile::ReadOnly).expect("no refusal");
        assert_eq!(used, None);
        assert_eq!(settings.signing_key.expose().len(), 128);
        assert_eq!(std::fs::read_dir(dir.path()).expect("listed").count(), 0);
        // An empty key file is refused as `serve` refuses it.
        std::fs::write(dir.path().join("t.db.signing-key"), "").expect("written");
        let mut settings = Settings {
            database_url: format!("sqlite://{}/t.db", dir.path().display()),
            ..Settings::default()
        };
        let err = resolve_signing_key(&mut settings, KeyFile::ReadOnly).unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
    }

    #[test]
    fn postgres_without_a_key_is_refused() {
        let mut settings = Settings {
            database_url: "postgres://localhost/db".into(),
            ..Settings::default()
        };
        let err = ensure_signing_key(&mut settings).unwrap_err();
        assert!(err.to_string().contains("SIGNING_KEY"), "{err}");
    }

    /// The generated documents are committed; regenerate with TOLLGATE_BLESS=1 cargo test.
    fn assert_current(relative: &str, expected: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(relative);
        if std::env::var("TOLLGATE_BLESS").is_ok() {
            std::fs::write(&path, expected).expect("written");
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{relative} is stale: run `TOLLGATE_BLESS=1 cargo test -p tollgate --lib config`"
        );
    }

    #[test]
    fn config_example_is_current() {
        assert_current("config.example.toml", &example_toml());
    }

    #[test]
    fn configuration_reference_is_current() {
        assert_current("docs/configuration.md", &reference_markdown());
    }

    #[test]
    fn the_example_uncommented_gives_the_defaults() {
        let uncommented: String = example_toml()
            .lines()
            .filter_map(|line| line.strip_prefix("# "))
            .filter(|line| line.contains(" = "))
            .map(|line| format!("{line}\n"))
            .collect();
        let table: toml::Table = toml::from_str(&uncommented).expect("the example is valid TOML");
        assert_eq!(table.len(), Settings::reference().len());
        let no_files = |_: &str| Err(std::io::ErrorKind::NotFound.into());
        let parsed = Settings::from_sources(&table, std::iter::empty(), &[], no_files)
            .expect("the example is valid");
        assert_eq!(parsed.settings.effective(), Settings::default().effective());
    }
}
