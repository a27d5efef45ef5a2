//! Tollgate's storage: users, outstanding and blacklisted tokens.
//!
//! One [`Store`] over SQLite (the embedded default, a file created on first start) or
//! PostgreSQL, chosen by the database URL. Both backends run the same SQL (`$1` placeholders
//! work on both) and have their own migrations under `migrations/`. Times are epoch seconds.
//!
//! # Layout
//! - [`Store`]: connecting, migrating, health.
//! - `background`: the background tasks end when every caller's copy of the store is dropped.
//! - `users`: accounts ([`User`], [`NewUser`]).
//! - `django`: reading a Django database page by page ([`DjangoSource`]).
//! - `django_import`: importing its users and tokens in batches ([`Store::import_django_users`]).
//! - `tokens`: the outstanding-token record and the blacklist ([`TokenRecord`]).
//! - `denylist`: the blacklist's copy in Redis, which answers checks without the database.
//! - `redis_connection`: the connection to Redis, its health and its recovery
//!   ([`Store::with_redis`], [`check_redis_url`]).
//! - `refresh_rotation`: refresh-token rotation, batched ([`Store::rotate`]).
//! - `logins`: login history and lockout counters ([`LoginEvent`], [`LockoutRule`]).
//! - `failures`: attempt counts (failed logins, registrations) shared by the instances on one
//!   Redis, each attempt admitted atomically
//!   ([`Store::shared_failure_wait`]).
//! - `revocations`: the set of revoked access tokens, kept in memory ([`Revocation`],
//!   [`Store::revoke_access`], [`Store::is_access_revoked`]).
//! - `change_feed`: how each instance follows what the others change: revocations and user
//!   changes, through PostgreSQL notifications, SQLite polling and Redis
//!   ([`Store::start_sync`], [`Store::user_epoch`]).
//! - `signing_keys`: rotated signing keys, sealed by the caller ([`SigningKeyRecord`]).
//! - `sessions`: token families, one per login ([`Session`], [`RotatedToken`]).
//! - `api_keys`: keys of trusted backends, stored as hashes ([`ApiKey`]).
//! - `user_search`: listing users for administrators ([`UserFilter`]).
//! - `audit`: the log of administrative actions ([`AuditEntry`]).
//! - `mfa`: second factors, recovery codes, second steps and passkey ceremonies
//!   ([`MfaFactor`], [`MfaChallenge`]).
#![deny(missing_docs)]

mod account_tokens;
mod api_keys;
mod audit;
mod background;
mod change_feed;
mod checkpoint;
mod denylist;
mod django;
mod django_import;
mod failures;
mod logins;
mod mfa;
mod outbox;
mod redis_connection;
mod refresh_rotation;
mod revocations;
mod sessions;
mod signing_keys;
mod sqlite_file;
mod tokens;
mod user_search;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use account_tokens::{AccountToken, NewAccountToken};
pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditActor, AuditActorFilter, AuditEntry, AuditFilter, NewAuditEntry};
pub use django::{DjangoSource, DjangoToken, DjangoUser, ImportOutcome};
pub use django_import::DJANGO_IMPORT_PAGE;
pub use failures::SharedAdmission;
pub use logins::{LockoutAdmission, LockoutRule, LoginEvent, LoginOutcome};
pub use mfa::{MfaChallenge, MfaFactor, NewMfaChallenge};
pub use outbox::{NewMessage, OutboxDepth, OutboxFilter, OutboxMessage};
pub use redis_connection::check_redis_url;
pub use refresh_rotation::RotateOutcome;
pub use revocations::{AccessClaims, Revocation};
pub use sessions::{NewSession, RotatedToken, Session};
pub use signing_keys::{KeyRotation, SigningKeyRecord};
pub use tokens::{FlushPace, FlushReport, TokenRecord};
pub use user_search::UserFilter;
pub use users::{Clash, Identifiers, NewUser, UpdatedUser, User, UserChanges, UserField};

/// What went wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A unique field (`username`, `email`, `phone`) already holds this value.
    #[error("a user with this {field} already exists")]
    Duplicate {
        /// The field that must be unique.
        field: &'static str,
    },
    /// An identifier equals one that another account holds under another field.
    #[error("the {} is another user's {}", .0.field, .0.other)]
    Clash(Clash),
    /// The database URL is not one Tollgate understands.
    #[error(
        "unsupported database URL {0:?}: use sqlite://path/to/file.db or postgres://user@host/db"
    )]
    UnsupportedUrl(String),
    /// The migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database failure.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// The database or Redis cannot serve now: unreachable, timed out, out of connections or
    /// of disk, shutting down. The same call may succeed later. Nothing was changed, unless
    /// the connection was lost after a write committed and before its answer arrived.
    #[error("the {dependency} is unavailable: {cause}")]
    Unavailable {
        /// Which dependency failed.
        dependency: Dependency,
        /// What it answered, or how the wait for it ended.
        cause: String,
    },
    /// A Redis failure (only a malformed REDIS_URL reaches callers; others degrade to the
    /// database).
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    /// A batch of refresh rotations failed for a reason outside this rotation (the database
    /// busy or unreachable); this rotation changed nothing.
    #[error("a batch of token rotations failed: {0}")]
    BatchFailed(String),
    /// Another key rotation was committed at the same time; this one changed nothing.
    #[error("another key rotation was committed at the same time; nothing was changed")]
    KeyRotationRace,
    /// A rotation is pending: its key is published and signs from `signs_from`; another
    /// rotation must wait until then.
    #[error(
        "key {kid} is published and signs from {signs_from} (Unix time); rotate again after that"
    )]
    KeyRotationPending {
        /// The pending key's id.
        kid: String,
        /// When it starts signing.
        signs_from: i64,
    },
    /// The database did not accept a connection within the time allowed for it to start.
    #[error("the database was still unreachable after {}s: {last}", .waited.as_secs())]
    Unreachable {
        /// How long connecting was retried.
        waited: Duration,
        /// The last attempt's failure.
        last: sqlx::Error,
    },
}

/// A service the store depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Dependency {
    /// The database (SQLite or PostgreSQL).
    Database,
    /// The Redis server of REDIS_URL.
    Redis,
}

impl Dependency {
    /// The dependency's name in logs and metrics: `database` or `redis`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dependency::Database => "database",
            Dependency::Redis => "redis",
        }
    }
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<sqlx::Error> for StoreError {
    /// A failure of the database as a whole (see [`database_unavailable`]) becomes
    /// [`StoreError::Unavailable`]; any other stays [`StoreError::Database`].
    fn from(err: sqlx::Error) -> StoreError {
        if database_unavailable(&err) {
            StoreError::Unavailable {
                dependency: Dependency::Database,
                cause: err.to_string(),
            }
        } else {
            StoreError::Database(err)
        }
    }
}

impl StoreError {
    /// A failed Redis call: [`StoreError::Unavailable`] when Redis could not be reached or did
    /// not answer in time, else [`StoreError::Redis`].
    pub(crate) fn redis(err: redis::RedisError) -> StoreError {
        if err.is_io_error()
            || err.is_timeout()
            || err.is_connection_dropped()
            || err.is_connection_refusal()
        {
            StoreError::Unavailable {
                dependency: Dependency::Redis,
                cause: err.to_string(),
            }
        } else {
            StoreError::Redis(err)
        }
    }

    /// The same failure again, for the other callers of a batch that failed as a whole.
    pub(crate) fn for_another_caller(&self) -> StoreError {
        match self {
            StoreError::Unavailable { dependency, cause } => StoreError::Unavailable {
                dependency: *dependency,
                cause: cause.clone(),
            },
            other => StoreError::BatchFailed(other.to_string()),
        }
    }
}

/// Whether a database failure says nothing about the request and everything about the
/// database: no connection within DATABASE_ACQUIRE_TIMEOUT, a connection lost or refused, a
/// statement cancelled by DATABASE_STATEMENT_TIMEOUT, a server out of connections, memory or
/// disk or shutting down, SQLite's file locked by another process past the busy timeout or
/// failing to read or write. Asking again later may succeed; a defect would fail again.
fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // Told apart by type, not by the code: many SQLSTATEs are digits too (57014).
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // PostgreSQL's SQLSTATE classes: 08 connection exception, 53 insufficient
                // resources (disk full, too many connections), 57 operator intervention
                // (statement_timeout's 57014, shutting down).
                return matches!(code.get(..2), Some("08" | "53" | "57"));
            }
            // SQLite's primary result codes: 5 SQLITE_BUSY, 6 SQLITE_LOCKED, 10 SQLITE_IOERR,
            // 13 SQLITE_FULL; extended codes keep the primary in the low byte.
            code.parse::<i32>()
                .is_ok_and(|sqlite| matches!(sqlite & 0xff, 5 | 6 | 10 | 13))
        }
        _ => false,
    }
}

/// Which database a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Debug, Clone)]
enum Pool {
    /// SQLite allows one writer at a time; writers that collide wait in SQLite's busy handler,
    /// which sleeps in steps of milliseconds. All writes therefore go through one connection,
    /// where they queue in order without sleeping, while reads use the other connections (WAL
    /// lets them run beside the writer).
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        /// Keeps the WAL checkpoints running while the store lives (none in memory).
        _checkpoints: Option<checkpoint::Checkpointer>,
    },
    Postgres(PgPool),
}

/// Runs the same code against whichever pool the store holds; `$pool` is bound to it.
/// For statements that only read.
macro_rules! with_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite { read: $pool, .. } => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// Like `with_pool!`, for statements that write.
macro_rules! with_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.pool {
            $crate::Pool::Sqlite { write: $pool, .. } => $body,
            $crate::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_writer;

/// The time now, in epoch seconds, for the background work that has no caller's clock.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Connection-pool sizing and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Most connections held open at once.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing; opening a connection
    /// counts towards it. Also bounds the refresh-token rotation writer's wait.
    pub acquire_timeout: Duration,
    /// How long one statement may run: PostgreSQL's `statement_timeout` on every connection
    /// but the migrations', SQLite's busy timeout (the wait for another process's write lock).
    pub statement_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        }
    }
}

/// The database behind Tollgate, and the optional Redis denylist in front of its blacklist.
/// Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// Refresh rotations wait here to run in batches (see `refresh_rotation`).
    rotations: refresh_rotation::RotationQueue,
    redis: Option<std::sync::Arc<redis_connection::RedisConnection>>,
    /// Revoked access tokens (see `revocations`).
    revoked: std::sync::Arc<revocations::RevokedAccess>,
    /// What the cross-instance change feed keeps (see `change_feed`).
    feed: std::sync::Arc<change_feed::Feed>,
    /// Whether this copy keeps the store's background tasks running (see `background`).
    handle: background::Handle,
}

/// The first pause between connection attempts; each pause doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Whether a connection failure may go away by itself: the server is not listening yet, is
/// starting up or shutting down, or is out of connection slots. A wrong password, a missing
/// database or a malformed URL will not, and are reported at once.
fn is_transient(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => matches!(
            db.code().as_deref(),
            // cannot_connect_now (starting up), too_many_connections, admin/crash shutdown.
            Some("57P03" | "53300" | "57P01" | "57P02")
        ),
        _ => false,
    }
}

impl Store {
    /// Connects like [`Store::connect`], retrying with growing pauses while the database is
    /// unreachable (not yet started, restarting), for at most `patience`; then fails with
    /// [`StoreError::Unreachable`] carrying the last cause. Failures that retrying cannot cure
    /// are returned at once.
    pub async fn connect_with_retry(
        url: &str,
        config: PoolConfig,
        patience: Duration,
    ) -> Result<Store, StoreError> {
        use sqlx::Connection;
        if !(url.starts_with("postgres:") || url.starts_with("postgresql:")) {
            return Store::connect(url, config).await;
        }
        let options = PgConnectOptions::from_str(url)?;
        let started = tokio::time::Instant::now();
        let deadline = started + patience;
        let mut pause = FIRST_BACKOFF;
        loop {
            // One plain connection as the probe: unlike the pool, it reports why it failed.
            // Each attempt waits no longer than the time left, so that the bound holds.
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let attempt = tokio::time::timeout(
                left.max(FIRST_BACKOFF),
                sqlx::PgConnection::connect_with(&options),
            )
            .await;
            let err = match attempt {
                Ok(Ok(probe)) => {
                    let _ = probe.close().await;
                    return Store::connect(url, config).await;
                }
                Ok(Err(err)) if is_transient(&err) => err,
                Ok(Err(err)) => return Err(err.into()),
                Err(_) => sqlx::Error::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connecting timed out",
                )),
            };
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::Unreachable {
                    waited: now - started,
                    last: err,
                });
            }
            // The last attempt is made at the deadline itself.
            let pause_now = pause.min(deadline - now);
            tracing::warn!(cause = %err, retry_in = ?pause_now, "database unreachable, retrying");
            tokio::time::sleep(pause_now).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
    }

    /// Connects to `url` (`sqlite://…`, `sqlite::memory:` or `postgres://…`); a SQLite file is
    /// created if it does not exist, readable by its owner only (see `sqlite_file`). Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, config: PoolConfig) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // WAL lets readers go on while one writer commits; NORMAL is durable in WAL mode
                // except for the last transactions on power loss, not on a process crash.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(config.statement_timeout)
                .foreign_keys(true);
            let memory = url.contains(":memory:") || url.contains("mode=memory");
            if !memory {
                sqlite_file::make_private(options.get_filename());
            }
            // The writer keeps more of the token indexes in memory than SQLite's default 2 MB,
            // so that inserting jtis (random ones from simplejwt included) reads fewer pages
            // back from the file, and leaves most checkpoint work to the checkpointer (see
            // `checkpoint`).
            let write_options = options
                .clone()
                .pragma("cache_size", "-16384")
                .pragma("wal_autocheckpoint", checkpoint::WRITER_AUTOCHECKPOINT)
                .pragma("journal_size_limit", checkpoint::WAL_SIZE_LIMIT);
            // No test when a connection is taken: it is a round trip to the connection's
            // thread on every query, and a SQLite connection cannot be lost as a socket can
            // (the pool still tests it when it is given back).
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .test_before_acquire(false)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(write_options)
                .await?;
            // Each connection to an in-memory database is a database of its own: share one.
            let (read, checkpoints) = if memory {
                (write.clone(), None)
            } else {
                let read = SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .test_before_acquire(false)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(options.clone())
                    .await?;
                (read, Some(checkpoint::Checkpointer::start(options)))
            };
            Pool::Sqlite {
                read,
                write,
                _checkpoints: checkpoints,
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            // Whole milliseconds, at least one: PostgreSQL reads 0 as no limit.
            let statement_ms = config.statement_timeout.as_millis().max(1);
            let options = PgConnectOptions::from_str(url)?
                .options([("statement_timeout", format!("{statement_ms}ms"))]);
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options)
                .await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        let rotations = refresh_rotation::RotationQueue::start(&pool, &config);
        Ok(Store {
            pool,
            rotations,
            redis: None,
            revoked: std::sync::Arc::default(),
            feed: std::sync::Arc::default(),
            handle: background::Handle::new(),
        })
    }

    /// Applies any migrations not yet applied. Safe to run at every start and from several
    /// processes at once (the migrator takes a lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Pool::Postgres(pool) => {
                // A migration may rewrite or index a large table: it runs on a connection of
                // its own without the statement timeout, closed afterwards rather than given
                // back to the pool without it.
                use sqlx::Connection;
                let mut connection = pool.acquire().await?.detach();
                let migrated = async {
                    sqlx::query("SET statement_timeout = 0")
                        .execute(&mut connection)
                        .await?;
                    sqlx::migrate!("migrations/postgres")
                        .run(&mut connection)
                        .await?;
                    Ok::<_, StoreError>(())
                }
                .await;
                let _ = connection.close().await;
                migrated?;
            }
        }
        Ok(())
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        match self.pool {
            Pool::Sqlite { .. } => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ()))?;
        Ok(())
    }

    /// Open connections and, of those, idle ones.
    pub fn pool_usage(&self) -> (u32, usize) {
        with_pool!(self, |pool| (pool.size(), pool.num_idle()))
    }

    /// Closes every connection, waiting for those in use to be returned.
    pub async fn close(&self) {
        with_pool!(self, |pool| pool.close().await);
        with_writer!(self, |pool| pool.close().await);
        self.rotations.close().await;
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A migrated store on a fresh in-memory SQLite database.
    pub(crate) async fn memory_store() -> Store {
        let store = empty_memory_store().await;
        store.migrate().await.expect("migrates");
        store
    }

    /// As [`memory_store`], with nothing migrated.
    pub(crate) async fn empty_memory_store() -> Store {
        // One connection: every connection to `:memory:` would be a database of its own.
        let config = PoolConfig {
            max_connections: 1,
            ..PoolConfig::default()
        };
        Store::connect("sqlite::memory:", config)
            .await
            .expect("connects")
    }

    /// A migrated store on a fresh PostgreSQL database of its own, on the server of
    /// `TOLLGATE_TEST_POSTGRES_URL` (by default the local one). None, with a message, when that
    /// server is unreachable, except under `CI=true`, where that fails the test.
    pub(crate) async fn postgres_store() -> Option<ScratchPostgres> {
        let scratch = empty_postgres_store().await?;
        scratch.store.migrate().await.expect("migrates");
        Some(scratch)
    }

    /// As [`postgres_store`], with nothing migrated.
    pub(crate) async fn empty_postgres_store() -> Option<ScratchPostgres> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let admin_url = std::env::var("TOLLGATE_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned());
        let admin = match Store::connect(&admin_url, PoolConfig::default()).await {
            Ok(admin) => admin,
            Err(err) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
                panic!("CI=true and PostgreSQL at {admin_url} is unreachable: {err}")
            }
            Err(err) => {
                eprintln!("SKIPPED (PostgreSQL at {admin_url} is unreachable: {err})");
                return None;
            }
        };
        let name = format!(
            "tollgate_store_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin
            .execute_admin(&format!("CREATE DATABASE {name}"))
            .await;
        let (base, _) = admin_url.rsplit_once('/').expect("a database URL");
        let store = Store::connect(&format!("{base}/{name}"), PoolConfig::default())
            .await
            .expect("connects");
        Some(ScratchPostgres {
            store,
            database: ScratchDatabase { admin, name },
        })
    }

    /// A store on a PostgreSQL database that [`ScratchPostgres::drop_database`] removes.
    pub(crate) struct ScratchPostgres {
        pub(crate) store: Store,
        database: ScratchDatabase,
    }

    impl ScratchPostgres {
        /// Closes the store and drops its database.
        pub(crate) async fn drop_database(self) {
            self.store.close().await;
            self.database.drop_database().await;
        }

        /// The store and, apart from it, its database.
        pub(crate) fn into_parts(self) -> (Store, ScratchDatabase) {
            (self.store, self.database)
        }
    }

    /// A scratch PostgreSQL database, seen from the server's `postgres` database.
    pub(crate) struct ScratchDatabase {
        admin: Store,
        name: String,
    }

    impl ScratchDatabase {
        /// The connections open to the database, whoever opened them.
        pub(crate) async fn connections(&self) -> i64 {
            let Pool::Postgres(pool) = &self.admin.pool else {
                unreachable!("an administrative store is PostgreSQL's");
            };
            sqlx::query_scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1")
                .bind(&self.name)
                .fetch_one(pool)
                .await
                .expect("pg_stat_activity")
        }

        /// Drops the database, ending any connection still open to it.
        pub(crate) async fn drop_database(self) {
            let drop = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            self.admin.execute_admin(&drop).await;
            self.admin.close().await;
        }
    }

    /// The migrations of a directory older than a version: a database as it was before that
    /// migration, to test what the migration does to the data it finds.
    #[derive(Debug)]
    struct MigrationsBefore(std::path::PathBuf, i64);

    impl sqlx::migrate::MigrationSource<'static> for MigrationsBefore {
        fn resolve(
            self,
        ) -> futures_util::future::BoxFuture<
            'static,
            Result<Vec<sqlx::migrate::Migration>, sqlx::error::BoxDynError>,
        > {
            Box::pin(async move {
                let all = self.0.resolve().await?;
                Ok(all.into_iter().filter(|m| m.version < self.1).collect())
            })
        }
    }

    impl Store {
        /// Applies the migrations older than `version` only.
        pub(crate) async fn migrate_before(&self, version: i64) {
            let dialect = match self.backend() {
                Backend::Sqlite => "sqlite",
                Backend::Postgres => "postgres",
            };
            let directory = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dialect);
            let migrator = sqlx::migrate::Migrator::new(MigrationsBefore(directory, version))
                .await
                .expect("migrations");
            match &self.pool {
                Pool::Sqlite { write, .. } => migrator.run(write).await,
                Pool::Postgres(pool) => migrator.run(pool).await,
            }
            .expect("migrates");
        }

        async fn execute_admin(&self, sql: &str) {
            let Pool::Postgres(pool) = &self.pool else {
                unreachable!("an administrative store is PostgreSQL's");
            };
            sqlx::query(sql).execute(pool).await.expect(sql);
        }
    }
}
