//! Tollgate's storage: users, outstanding and blacklisted tokens.
//!
//! One [`Store`] over SQLite (the embedded default, a file created on first start) or
//! PostgreSQL, chosen by the database URL. Both backends run the same SQL (`$1` placeholders
//! work on both) and have their own migrations under `migrations/`. Times are epoch seconds.
//!
//! # Layout
//! - [`Store`]: connecting, migrating, health.
//! - `users`: accounts ([`User`], [`NewUser`]).
//! - `tokens`: the outstanding-token record and the blacklist ([`TokenRecord`]).
#![deny(missing_docs)]

mod tokens;
mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub use tokens::{FlushReport, TokenRecord};
pub use users::{NewUser, User, UserField};

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
    Database(#[from] sqlx::Error),
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

/// Connection-pool sizing and timeouts.
#[derive(Debug, Clone, Copy)]
pub struct PoolConfig {
    /// Most connections held open at once.
    pub max_connections: u32,
    /// How long a request waits for a free connection before failing.
    pub acquire_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_connections: 10,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// The database behind Tollgate. Cheap to clone: clones share one pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
}

impl Store {
    /// Connects to `url` (`sqlite://…`, `sqlite::memory:` or `postgres://…`); a SQLite file is
    /// created if it does not exist. Does not migrate: call [`Store::migrate`].
    pub async fn connect(url: &str, config: PoolConfig) -> Result<Store, StoreError> {
        let pool = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                // WAL lets readers go on while one writer commits; NORMAL is durable in WAL mode
                // except for the last transactions on power loss, not on a process crash.
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true);
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options.clone())
                .await?;
            // Each connection to an in-memory database is a database of its own: share one.
            let read = if url.contains(":memory:") {
                write.clone()
            } else {
                SqlitePoolOptions::new()
                    .max_connections(config.max_connections)
                    .acquire_timeout(config.acquire_timeout)
                    .connect_with(options)
                    .await?
            };
            Pool::Sqlite { read, write }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)?;
            let pool = PgPoolOptions::new()
                .max_connections(config.max_connections)
                .acquire_timeout(config.acquire_timeout)
                .connect_with(options)
                .await?;
            Pool::Postgres(pool)
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        Ok(Store { pool })
    }

    /// Applies any migrations not yet applied. Safe to run at every start and from several
    /// processes at once (the migrator takes a lock).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match &self.pool {
            Pool::Sqlite { write, .. } => sqlx::migrate!("migrations/sqlite").run(write).await?,
            Pool::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
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
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// A migrated store on a fresh in-memory SQLite database.
    pub(crate) async fn memory_store() -> Store {
        // One connection: every connection to `:memory:` would be a database of its own.
        let config = PoolConfig {
            max_connections: 1,
            ..PoolConfig::default()
        };
        let store = Store::connect("sqlite::memory:", config)
            .await
            .expect("connects");
        store.migrate().await.expect("migrates");
        store
    }
}
