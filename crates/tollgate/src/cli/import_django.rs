//! `tollgate import-django`: copies the users of a Django database, with their password
//! hashes, so that they log in to Tollgate with their old passwords.

use anyhow::Context;
use tollgate_core::identity::{normalize_email, normalize_username};
use tollgate_core::{unix_now, Settings};
use tollgate_store::ImportOutcome;

use super::progress::Progress;

/// Options of `import-django`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The Django database: a PostgreSQL URL (postgres://…), a sqlite: URL, or the path of a
    /// SQLite file. Only `auth_user` and simplejwt's `token_blacklist_*` tables are read;
    /// nothing there is changed.
    #[arg(long, value_name = "URL_OR_PATH")]
    database: String,
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
    let source = super::redact_url(&args.database);
    let users = tollgate_store::read_django_users(&args.database)
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
    let tokens = import_tokens(&store, &args.database).await;
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
