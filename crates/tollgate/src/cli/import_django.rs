//! `tollgate import-django`: copies the users of a Django database, with their password
//! hashes, so that they log in to Tollgate with their old passwords; or, with `--settings`,
//! converts Django's JWT settings into a `tollgate.toml`.

use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;
use tollgate_core::identity::{normalize_email, normalize_username};
use tollgate_core::{unix_now, Settings};
use tollgate_store::ImportOutcome;

use super::progress::Progress;

/// Options of `import-django`.
#[derive(Debug, clap::Args)]
#[command(group(
    clap::ArgGroup::new("source")
        .required(true)
        .args(["database", "settings", "settings_json"])
))]
pub(crate) struct Args {
    /// The Django database: a PostgreSQL URL (postgres://…), a sqlite: URL, or the path of a
    /// SQLite file. Only `auth_user` and simplejwt's `token_blacklist_*` tables are read;
    /// nothing there is changed.
    #[arg(long, value_name = "URL_OR_PATH")]
    database: Option<String>,
    /// A Django settings module (or `manage.py diffsettings` output) whose SIMPLE_JWT and
    /// JWT_AUTH dicts are converted into a tollgate.toml; Python is not run, only its
    /// literals are read. What has no equivalent is listed on standard error and in the file.
    #[arg(long, value_name = "PATH")]
    settings: Option<PathBuf>,
    /// Like --settings, from a JSON dump `{"SIMPLE_JWT": {...}, "JWT_AUTH": {...}}` of the
    /// effective settings (durations in seconds; see docs/migrating-from-django.md for the
    /// one-line command that writes it). `-` reads standard input.
    #[arg(long, value_name = "PATH")]
    settings_json: Option<PathBuf>,
    /// Where --settings and --settings-json write the TOML (default: standard output). An
    /// existing file is not overwritten.
    #[arg(long, value_name = "PATH", conflicts_with = "database")]
    output: Option<PathBuf>,
}

impl Args {
    /// Whether these arguments convert settings, which needs no database nor configuration.
    pub(crate) fn converts_settings(&self) -> bool {
        self.database.is_none()
    }
}

/// Converts Django's JWT settings (`--settings` or `--settings-json`) into TOML, written to
/// `--output` or standard output; what was not converted goes to standard error.
pub(crate) fn convert(args: Args) -> anyhow::Result<()> {
    use super::convert_settings::{from_json, from_python};
    let read = |path: &PathBuf| -> anyhow::Result<String> {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read standard input")?;
            return Ok(text);
        }
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    };
    let conversion = match (&args.settings, &args.settings_json) {
        (Some(path), _) => from_python(&read(path)?, &path.display().to_string())?,
        (None, Some(path)) => from_json(&read(path)?, &path.display().to_string())?,
        (None, None) => anyhow::bail!("give --database, --settings or --settings-json"),
    };
    match &args.output {
        Some(path) => {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            std::io::Write::write_all(&mut file, conversion.toml.as_bytes())
                .with_context(|| format!("cannot write {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => print!("{}", conversion.toml),
    }
    if !conversion.not_converted.is_empty() {
        eprintln!("not converted:");
        for line in &conversion.not_converted {
            eprintln!("  {line}");
        }
    }
    Ok(())
}

/// Copies the live tokens of simplejwt's blacklist app, if the source has its tables: a refresh
/// token blacklisted under Django stays refused. Returns (live, blacklisted).
async fn import_tokens(
    store: &tollgate_store::Store,
    database: &str,
) -> anyhow::Result<Option<(u64, u64)>> {
    let Some(tokens) = tollgate_store::read_django_tokens(database, unix_now()).await? else {
        return Ok(None);
    };
    let mut progress = Progress::new(tokens.len() as u64, "tokens read");
    let mut blacklisted = 0;
    for (done, token) in tokens.iter().enumerate() {
        store.import_django_token(token).await?;
        blacklisted += u64::from(token.blacklisted_at.is_some());
        progress.set(done as u64 + 1);
    }
    progress.finish();
    Ok(Some((tokens.len() as u64, blacklisted)))
}

pub(crate) async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    let Some(database) = args.database else {
        return convert(args);
    };
    let source = super::redact_url(&database);
    let users = tollgate_store::read_django_users(&database)
        .await
        .with_context(|| format!("cannot read auth_user from {source}"))?;
    // Tokens that Django blacklisted must reach the Redis denylist of running servers too.
    let store = super::with_denylist(super::open_store(&settings).await?, &settings).await?;
    let mut progress = Progress::new(users.len() as u64, "users read");
    let (mut imported, mut skipped, mut failed) = (0usize, 0usize, Vec::new());
    for (done, user) in users.iter().enumerate() {
        // Django normalises on save, but rows written around it may not be: stored here in the
        // forms every other path stores, a duplicate fails with its reason.
        let user = &tollgate_store::DjangoUser {
            username: normalize_username(&user.username),
            email: normalize_email(&user.email),
            ..user.clone()
        };
        match store.import_django_user(user).await {
            Ok(ImportOutcome::Imported) => imported += 1,
            Ok(ImportOutcome::Skipped) => skipped += 1,
            Ok(ImportOutcome::Failed(reason)) => failed.push((user.username.clone(), reason)),
            Err(err) => failed.push((user.username.clone(), format!("{err}"))),
        }
        progress.set(done as u64 + 1);
    }
    progress.finish();
    store
        .after_import()
        .await
        .context("cannot move the user id sequence past the imported ids")?;
    let tokens = import_tokens(&store, &database).await;
    store.close().await;
    println!(
        "Imported {imported}, skipped {skipped} (already imported), failed {}.",
        failed.len()
    );
    for (username, reason) in &failed {
        println!("  failed: {username}: {reason}");
    }
    match tokens.with_context(|| format!("cannot import token_blacklist from {source}"))? {
        Some((live, blacklisted)) => println!(
            "Imported {live} live tokens from token_blacklist ({blacklisted} blacklisted); \
             their raw tokens were not copied."
        ),
        None => println!("No token_blacklist tables: no tokens imported."),
    }
    Ok(())
}
