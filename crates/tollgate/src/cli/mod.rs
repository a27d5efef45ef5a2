//! The `tollgate` command line: one module per subcommand.

mod account;
mod admin;
mod apikey;
mod check;
mod convert_settings;
mod flush;
mod healthcheck;
mod import_django;
mod keygen;
mod keys;
mod logins;
mod mfa;
mod migrate;
mod outbox;
mod progress;
mod serve;
mod sessions;
mod settings_py;
mod token;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tollgate_core::Settings;
use tollgate_store::{PoolConfig, Store, User, UserField};

/// Tollgate: a JWT authentication server with djangorestframework-simplejwt's token API.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, about, propagate_version = true)]
pub struct Cli {
    /// A TOML file of settings (simplejwt names, e.g. ACCESS_TOKEN_LIFETIME = "5m").
    /// Environment variables TOLLGATE_<SETTING> override it.
    #[arg(long, global = true, env = "TOLLGATE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,

    /// Create the SQLite database if its file does not exist. Only `serve` and `migrate` do
    /// without it: another command run without the server's settings would otherwise act on a
    /// new, empty database instead of the server's.
    #[arg(long, global = true)]
    create: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (migrates the database first).
    Serve(serve::Args),
    /// Apply database migrations and exit.
    Migrate,
    /// Create a superuser (interactive, or --no-input with TOLLGATE_SUPERUSER_PASSWORD).
    Createsuperuser(users::Args),
    /// Create a plain user (interactive, or --no-input with TOLLGATE_USER_PASSWORD).
    Createuser(users::Args),
    /// Print a fresh refresh and access token for a user, as RefreshToken.for_user does.
    Token(token::Args),
    /// Delete expired outstanding and blacklisted tokens.
    Flushexpiredtokens,
    /// Make every check `serve` makes before it starts, without opening the database, and print
    /// the effective settings, secrets masked.
    Check(check::Args),
    /// Generate a new signing key (a PEM key pair, or a random secret for HS*).
    Keygen(keygen::Args),
    /// Rotate, list and prune the signing keys stored (encrypted) in the database.
    Keys {
        /// What to do with the keys.
        #[command(subcommand)]
        command: keys::Command,
    },
    /// Import the users of a Django database (auth_user), keeping their ids and passwords; or
    /// convert Django's SIMPLE_JWT and JWT_AUTH settings into a tollgate.toml (--settings).
    ImportDjango(import_django::Args),
    /// Set a user's password; their refresh tokens are blacklisted.
    Changepassword(account::PasswordArgs),
    /// Delete a user, their sessions and login history (asks first; --yes does not).
    Deleteuser(admin::DeleteArgs),
    /// List the users (--search TEXT for some).
    Users {
        /// What to do with the users.
        #[command(subcommand)]
        command: admin::UsersCommand,
    },
    /// Let a user log in again.
    Activate(account::Target),
    /// Stop a user from logging in and revoke their sessions (with CHECK_USER_IS_ACTIVE, their
    /// tokens stop working at once).
    Deactivate(account::Target),
    /// List a user's recent login attempts (time, outcome, client address, user agent).
    Events(logins::EventsArgs),
    /// Lift a user's login lockout (LOGIN_LOCKOUT_THRESHOLD).
    Unlock(logins::UnlockArgs),
    /// List a user's sessions (one per login) or revoke them.
    Sessions(sessions::Args),
    /// Show a user's second factors, or remove them all (a lost authenticator).
    Mfa {
        /// What to do with the user's second factors.
        #[command(subcommand)]
        command: mfa::Command,
    },
    /// List what waits in the outbox (mail) and what was given up on, or send it again.
    Outbox {
        /// What to do with the outbox.
        #[command(subcommand)]
        command: outbox::Command,
    },
    /// List the event webhooks waiting in the outbox and those given up on, or send them again
    /// (`outbox list|retry` for webhooks alone).
    Webhooks {
        /// What to do with the webhooks.
        #[command(subcommand)]
        command: outbox::Command,
    },
    /// Make, list and revoke the API keys with which trusted backends have tokens issued to
    /// users they name (POST /api/token/issue/).
    Apikey {
        /// What to do with the keys.
        #[command(subcommand)]
        command: apikey::Command,
    },
    /// Ask a running server's /healthz (at BIND, or --address) and exit 0 when it answers 200,
    /// 1 otherwise: a container's HEALTHCHECK without curl.
    Healthcheck(healthcheck::Args),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line, runs the subcommand and turns its outcome into an exit code:
/// 0 on success, 1 on failure (the error chain is printed), 2 on a usage error.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // These need no settings: they must work before any configuration exists.
    let command = match cli.command {
        Command::Completions { shell } => {
            use clap::CommandFactory;
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "tollgate",
                &mut std::io::stdout(),
            );
            return Ok(());
        }
        Command::Keygen(args) => return keygen::run(args),
        // Converting Django's settings reads no Tollgate configuration and opens no database.
        Command::ImportDjango(args) if args.converts_settings() => {
            return import_django::convert(args)
        }
        command => command,
    };
    let loaded = crate::config::load(cli.config.as_deref())?;
    let settings = loaded.settings;
    crate::logging::init(
        &settings.log,
        settings.log_format == tollgate_core::settings::LogFormat::Json,
    );
    if let Command::Check(args) = command {
        return check::run(
            settings,
            &loaded.unknown_env,
            &loaded.ignored,
            &loaded.renamed,
            args,
        );
    }
    for unknown in &loaded.unknown_env {
        tracing::warn!(variable = %unknown.name, "{unknown}");
    }
    for ignored in &loaded.ignored {
        tracing::warn!(setting = %ignored.name, "{ignored}");
    }
    for renamed in &loaded.renamed {
        tracing::warn!(setting = %renamed.name, "{renamed}");
    }
    if let Command::Healthcheck(args) = command {
        return healthcheck::run(&settings, args).await;
    }
    if !matches!(command, Command::Serve(_)) {
        // `serve` opens what it is told to, and creates it: it is how a database is made.
        let create = cli.create || matches!(command, Command::Migrate);
        eprintln!("{}", database_in_use(&settings.database_url, create)?);
    }
    match command {
        Command::Serve(args) => serve::run(settings, args).await,
        Command::Migrate => migrate::run(settings).await,
        Command::Createsuperuser(args) => users::run(settings, args, users::Kind::Superuser).await,
        Command::Createuser(args) => users::run(settings, args, users::Kind::User).await,
        Command::Token(args) => token::run(settings, args).await,
        Command::Flushexpiredtokens => flush::run(settings).await,
        Command::Keys { command } => keys::run(settings, command).await,
        Command::ImportDjango(args) => import_django::run(settings, args).await,
        Command::Changepassword(args) => account::change_password(settings, args).await,
        Command::Deleteuser(args) => admin::delete(settings, args).await,
        Command::Users { command } => admin::users(settings, command).await,
        Command::Activate(target) => account::set_active(settings, target, true).await,
        Command::Deactivate(target) => account::set_active(settings, target, false).await,
        Command::Sessions(args) => sessions::run(settings, args).await,
        Command::Mfa { command } => mfa::run(settings, command).await,
        Command::Events(args) => logins::events(settings, args).await,
        Command::Unlock(args) => logins::unlock(settings, args).await,
        Command::Outbox { command } => outbox::run(settings, command, None).await,
        Command::Webhooks { command } => {
            outbox::run(settings, command, Some(crate::webhooks::WEBHOOK)).await
        }
        Command::Apikey { command } => apikey::run(settings, command).await,
        Command::Completions { .. }
        | Command::Keygen(_)
        | Command::Check(_)
        | Command::Healthcheck(_) => Ok(()),
    }
}

/// Epoch seconds as an RFC 3339 UTC time, as the commands print times.
fn time(seconds: i64) -> String {
    let at =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(seconds).unwrap_or(0));
    humantime::format_rfc3339_seconds(at).to_string()
}

/// The pool settings: DATABASE_MAX_CONNECTIONS, DATABASE_ACQUIRE_TIMEOUT and
/// DATABASE_STATEMENT_TIMEOUT.
pub fn pool_config(settings: &Settings) -> PoolConfig {
    PoolConfig {
        max_connections: settings.database_max_connections,
        acquire_timeout: settings.database_acquire_timeout,
        statement_timeout: settings.database_statement_timeout,
    }
}

/// Connects to the configured database, waiting up to DATABASE_CONNECT_TIMEOUT for it to come
/// up, and applies pending migrations.
async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect_with_retry(
        &settings.database_url,
        pool_config(settings),
        settings.database_connect_timeout,
    )
    .await
    .with_context(|| {
        format!(
            "cannot open the database {}",
            redact_url(&settings.database_url)
        )
    })?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    Ok(store)
}

/// The user a command names by username, looked up as a login looks it up (Django's normal
/// form first, then as written); every command refuses a missing user with the same message.
pub(crate) async fn find_user(store: &Store, username: &str) -> anyhow::Result<User> {
    let normal = tollgate_core::identity::normalize_username(username);
    let mut found = store.find_user(UserField::Username, &normal).await?;
    if found.is_none() && normal != username {
        found = store.find_user(UserField::Username, username).await?;
    }
    found.with_context(|| format!("user '{username}' does not exist"))
}

/// The line a command prints before it opens the database, so that the operator sees which
/// one it acts on: `using the database sqlite://tollgate.db (/srv/tollgate/tollgate.db)`.
/// Refuses a SQLite file that does not exist, unless `create`: a command run from the wrong
/// folder, or without the server's settings, must not act on a new, empty database.
fn database_in_use(url: &str, create: bool) -> anyhow::Result<String> {
    let shown = redact_url(url);
    let Some(path) = crate::config::sqlite_file(url) else {
        return Ok(format!("using the database {shown}"));
    };
    let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    if create || path.exists() {
        return Ok(format!(
            "using the database {shown} ({})",
            absolute.display()
        ));
    }
    anyhow::bail!(
        "the database {shown} ({}) does not exist, and this command creates none: point \
         DATABASE_URL (or TOLLGATE_DATABASE_URL, or --config) at the server's database, or, for \
         a new database here, run `tollgate migrate` first or pass --create",
        absolute.display()
    )
}

/// How long a command that blacklists tokens waits to reach the Redis denylist before going on
/// without it.
const REDIS_PATIENCE: std::time::Duration = std::time::Duration::from_secs(3);

/// `store` with the Redis denylist of REDIS_URL, if one is configured, for a command that
/// blacklists tokens: servers that trust their Redis denylist learn of a blacklisted token only
/// there, so each one is copied into Redis once this process is connected to it. Unreachable
/// Redis is a warning, not a failure: the database still refuses the tokens.
async fn with_denylist(store: Store, settings: &Settings) -> anyhow::Result<Store> {
    let Some(url) = &settings.redis_url else {
        return Ok(store);
    };
    let store = store
        .with_redis(url, &settings.redis_key_prefix)
        .await
        .context("cannot use REDIS_URL")?;
    let deadline = tokio::time::Instant::now() + REDIS_PATIENCE;
    while store.redis_healthy() != Some(true) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    if store.redis_healthy() != Some(true) {
        eprintln!(
            "warning: Redis (REDIS_URL) does not answer: refresh refuses the blacklisted tokens, \
             but servers that read the blacklist from Redis may accept them elsewhere until \
             Redis is refilled"
        );
    }
    Ok(store)
}

/// A database URL without its password, for messages.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &credentials[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_not_shown() {
        assert_eq!(
            redact_url("postgres://app:s3cret@db/tollgate"),
            "postgres://app:***@db/tollgate"
        );
        assert_eq!(
            redact_url("postgres://app@db/tollgate"),
            "postgres://app@db/tollgate"
        );
        assert_eq!(redact_url("sqlite://tollgate.db"), "sqlite://tollgate.db");
    }

    #[test]
    fn a_kid_beginning_with_a_hyphen_is_a_kid() {
        let cli = Cli::try_parse_from(["tollgate", "keys", "expire", "-9aB_c"]).expect("parses");
        let Command::Keys {
            command: keys::Command::Expire(args),
        } = cli.command
        else {
            panic!("not `keys expire`: {cli:?}");
        };
        assert_eq!(args.kid, "-9aB_c");
    }

    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
