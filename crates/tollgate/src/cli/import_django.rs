//! `tollgate import-django`: copies the users of a Django database, with their password
//! hashes, so that they log in to Tollgate with their old passwords; or, with `--settings`,
//! converts Django's JWT settings into a `tollgate.toml`.

use std::future::Future;
use std::io::Read;
use std::path::PathBuf;
use std::pin::Pin;

use anyhow::Context;
use tollgate_core::identity::{normalize_email, normalize_username};
use tollgate_core::{unix_now, Settings};
use tollgate_store::{
    DjangoSource, DjangoToken, DjangoUser, ImportOutcome, Store, DJANGO_IMPORT_PAGE,
};

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

/// Failures listed after the summary; past these they are only counted, so that the memory an
/// import takes does not grow with the source.
const LISTED_FAILURES: usize = 10_000;

/// What became of the users read.
#[derive(Debug, Default)]
struct UserTally {
    imported: u64,
    skipped: u64,
    failed: u64,
    /// (username, reason) of the first [`LISTED_FAILURES`] failures.
    listed: Vec<(String, String)>,
}

impl UserTally {
    fn count(&mut self, username: &str, outcome: ImportOutcome) {
        match outcome {
            ImportOutcome::Imported => self.imported += 1,
            ImportOutcome::Skipped => self.skipped += 1,
            ImportOutcome::Failed(reason) => {
                self.failed += 1;
                if self.listed.len() < LISTED_FAILURES {
                    self.listed.push((username.to_owned(), reason));
                }
            }
        }
    }

    fn print(&self) {
        println!(
            "Imported {}, skipped {} (already imported), failed {}.",
            self.imported, self.skipped, self.failed
        );
        for (username, reason) in &self.listed {
            println!("  failed: {username}: {reason}");
        }
        let unlisted = self.failed - self.listed.len() as u64;
        if unlisted > 0 {
            println!("  ... and {unlisted} more failures, not listed.");
        }
    }
}

/// Pages read from the source ahead of the writes: the next page is read while one is written,
/// and no more, so that memory stays flat.
const PAGES_AHEAD: usize = 1;

/// Pages of tokens written at once. PostgreSQL does an import's work (mostly index upkeep) in
/// one backend per connection, so two connections use two of its cores; token pages do not
/// depend on each other. (SQLite has one writer: its pages still go one after the other.)
const TOKEN_WRITES_AT_ONCE: usize = 2;

/// A page of the source being read.
type PageRead<'s, T> = Pin<Box<dyn Future<Output = anyhow::Result<Vec<T>>> + 's>>;

/// Sends the source's pages, each read from after the last id of the page before, until one
/// comes back empty or the writes have stopped (on an error, which they report).
async fn read_pages<T>(
    source: &mut DjangoSource,
    pages: tokio::sync::mpsc::Sender<Vec<T>>,
    mut read: impl for<'s> FnMut(&'s mut DjangoSource, i64) -> PageRead<'s, T>,
    id: fn(&T) -> i64,
) -> anyhow::Result<()> {
    let mut after = i64::MIN;
    loop {
        let page = read(source, after).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = id(last);
        if pages.send(page).await.is_err() {
            return Ok(());
        }
    }
}

fn users_page(source: &mut DjangoSource, after: i64) -> PageRead<'_, DjangoUser> {
    Box::pin(async move {
        source
            .users_after(after, DJANGO_IMPORT_PAGE)
            .await
            .context("cannot read auth_user")
    })
}

fn live_tokens_page(source: &mut DjangoSource, after: i64, now: i64) -> PageRead<'_, DjangoToken> {
    Box::pin(async move {
        Ok(source
            .live_tokens_after(after, now, DJANGO_IMPORT_PAGE)
            .await?)
    })
}

/// Imports the `total` users of `auth_user`, a page at a time in id order, each page written
/// before the next is (a page's lookups must see the pages before it).
async fn import_users(
    store: &Store,
    source: &mut DjangoSource,
    total: u64,
) -> anyhow::Result<UserTally> {
    let (pages, mut read) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    let reading = read_pages(source, pages, users_page, |user| user.id);
    let writing = async {
        let mut progress = Progress::new(total, "users read");
        let mut tally = UserTally::default();
        let mut done = 0;
        while let Some(page) = read.recv().await {
            // Django normalises on save, but rows written around it may not be: stored here in
            // the forms every other path stores, a duplicate fails with its reason.
            let page: Vec<DjangoUser> = page
                .into_iter()
                .map(|user| DjangoUser {
                    username: normalize_username(&user.username),
                    email: normalize_email(&user.email),
                    ..user
                })
                .collect();
            let outcomes = store
                .import_django_users(&page)
                .await
                .context("cannot write the imported users")?;
            for (user, outcome) in page.iter().zip(outcomes) {
                tally.count(&user.username, outcome);
            }
            done += page.len() as u64;
            progress.set(done);
        }
        progress.finish();
        anyhow::Ok(tally)
    };
    let (reading, tally) = tokio::join!(reading, writing);
    reading?;
    tally
}

/// Copies the live tokens of simplejwt's blacklist app, if the source has its tables, a page
/// at a time: a refresh token blacklisted under Django stays refused. Returns (live,
/// blacklisted).
async fn import_tokens(
    store: &Store,
    source: &mut DjangoSource,
) -> anyhow::Result<Option<(u64, u64)>> {
    if !source.has_token_tables().await? {
        return Ok(None);
    }
    let now = unix_now();
    let total = source.count_live_tokens(now).await?;
    let (pages, mut read) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    let reading = read_pages(
        source,
        pages,
        |source, after| live_tokens_page(source, after, now),
        |token| token.id,
    );
    let writing = async {
        let mut progress = Progress::new(total, "tokens read");
        // Dropped on an error, which aborts the writes under way: their transactions roll back.
        let mut writes = tokio::task::JoinSet::new();
        let (mut live, mut blacklisted) = (0, 0);
        let mut count = |written: (u64, u64)| {
            live += written.0;
            blacklisted += written.1;
            progress.set(live);
        };
        while let Some(page) = read.recv().await {
            if writes.len() == TOKEN_WRITES_AT_ONCE {
                if let Some(written) = writes.join_next().await {
                    count(tokens_written(written)?);
                }
            }
            let store = store.clone();
            writes.spawn(async move {
                let denied = page.iter().filter(|t| t.blacklisted_at.is_some()).count();
                store
                    .import_django_tokens(&page, now)
                    .await
                    .map(|()| (page.len() as u64, denied as u64))
            });
        }
        while let Some(written) = writes.join_next().await {
            count(tokens_written(written)?);
        }
        progress.finish();
        anyhow::Ok((live, blacklisted))
    };
    let (reading, imported) = tokio::join!(reading, writing);
    reading?;
    imported.map(Some)
}

/// (live, blacklisted) of a page of tokens written, or why it was not.
fn tokens_written(
    written: Result<Result<(u64, u64), tollgate_store::StoreError>, tokio::task::JoinError>,
) -> anyhow::Result<(u64, u64)> {
    Ok(written.context("a page of tokens was not written")??)
}

pub(crate) async fn run(settings: Settings, args: Args) -> anyhow::Result<()> {
    let Some(database) = args.database else {
        return convert(args);
    };
    let source_name = super::redact_url(&database);
    let cannot_read = || format!("cannot read auth_user from {source_name}");
    let mut source = DjangoSource::open(&database)
        .await
        .with_context(cannot_read)?;
    // Fails here, before anything is written, on a source without auth_user.
    let total = source.count_users().await.with_context(cannot_read)?;
    // Tokens that Django blacklisted must reach the Redis denylist of running servers too.
    let store = super::with_denylist(super::open_store(&settings).await?, &settings).await?;
    let users = import_users(&store, &mut source, total)
        .await
        .with_context(|| format!("cannot import the users of {source_name}"))?;
    store
        .after_import()
        .await
        .context("cannot move the user id sequence past the imported ids")?;
    let tokens = import_tokens(&store, &mut source).await;
    let _ = source.close().await;
    store.close().await;
    users.print();
    match tokens.with_context(|| format!("cannot import token_blacklist from {source_name}"))? {
        Some((live, blacklisted)) => println!(
            "Imported {live} live tokens from token_blacklist ({blacklisted} blacklisted); \
             their raw tokens were not copied."
        ),
        None => println!("No token_blacklist tables: no tokens imported."),
    }
    Ok(())
}
