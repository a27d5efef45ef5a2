//! Reading a Django database (`auth_user` and simplejwt's blacklist tables, on SQLite or
//! PostgreSQL) page by page, so that importing it takes memory bounded by a page rather than
//! by the source. The import itself is `django_import`'s.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection;

use crate::StoreError;

/// One row of Django's `auth_user`. Times are epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DjangoUser {
    /// Django's primary key, kept so that tokens Django issued still name the same user.
    pub id: i64,
    /// The username.
    pub username: String,
    /// The email address (Django does not require it to be unique).
    pub email: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The password hash in one of Django's formats.
    pub password: String,
    /// Active flag.
    pub is_active: bool,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
    /// When the account was created.
    pub date_joined: i64,
    /// The last login, if any.
    pub last_login: Option<i64>,
}

/// What happened to one imported user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The user was created.
    Imported,
    /// A user with this username and id is already there (an earlier import).
    Skipped,
    /// The user could not be imported; the reason says why.
    Failed(String),
}

/// A live token from simplejwt's `token_blacklist` tables: its id and times, never the raw
/// token that simplejwt keeps beside them. Times are epoch seconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DjangoToken {
    /// The row's id in `token_blacklist_outstandingtoken`: tokens are read in its order.
    pub id: i64,
    /// The token's `jti`.
    pub jti: String,
    /// The user it was issued to, if any.
    pub user_id: Option<i64>,
    /// Its `iat`, if recorded.
    pub created_at: Option<i64>,
    /// Its `exp`.
    pub expires_at: i64,
    /// When it was blacklisted, if it was.
    pub blacklisted_at: Option<i64>,
}

/// An open Django database, read a page at a time in primary-key order (keyset pagination:
/// each page starts after the last id of the one before, so that no page rereads the rows
/// before it, as an OFFSET would).
pub struct DjangoSource {
    connection: SourceConnection,
}

enum SourceConnection {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl DjangoSource {
    /// Opens a PostgreSQL URL, a `sqlite:` URL, or the path of a SQLite file (read-only).
    /// Nothing in the source is ever changed.
    pub async fn open(source: &str) -> Result<DjangoSource, StoreError> {
        if source.starts_with("postgres:") || source.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(source)?;
            let connection = sqlx::PgConnection::connect_with(&options).await?;
            return Ok(DjangoSource {
                connection: SourceConnection::Postgres(connection),
            });
        }
        let options = if source.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(source)?
        } else {
            SqliteConnectOptions::new().filename(source)
        }
        .read_only(true);
        let connection = sqlx::SqliteConnection::connect_with(&options).await?;
        Ok(DjangoSource {
            connection: SourceConnection::Sqlite(connection),
        })
    }

    /// How many rows `auth_user` has.
    pub async fn count_users(&mut self) -> Result<u64, StoreError> {
        self.count("SELECT COUNT(*) FROM auth_user", &[]).await
    }

    /// The users of `auth_user` whose id is greater than `after`, at most `limit` of them, in
    /// id order. An empty page means there are no more.
    pub async fn users_after(
        &mut self,
        after: i64,
        limit: usize,
    ) -> Result<Vec<DjangoUser>, StoreError> {
        // Django's id is `integer` or, with BigAutoField, `bigint`. The order names the table's
        // column: a bare `id` would be the cast's output, which no index has, so every page
        // would sort all the rows after it.
        let sql = format!(
            "SELECT CAST(id AS BIGINT) AS id, username, email, first_name, last_name, password, \
             is_active, is_staff, is_superuser, {} AS date_joined, {} AS last_login \
             FROM auth_user WHERE auth_user.id > $1 ORDER BY auth_user.id LIMIT $2",
            self.epoch("date_joined"),
            self.epoch("last_login"),
        );
        self.fetch_page(&sql, &[after, page_limit(limit)]).await
    }

    /// Whether the source has simplejwt's blacklist app's tables
    /// (`token_blacklist_outstandingtoken` and `token_blacklist_blacklistedtoken`).
    pub async fn has_token_tables(&mut self) -> Result<bool, StoreError> {
        Ok(self.has_table("token_blacklist_outstandingtoken").await?
            && self.has_table("token_blacklist_blacklistedtoken").await?)
    }

    /// How many of simplejwt's outstanding tokens are still alive at `now`.
    pub async fn count_live_tokens(&mut self, now: i64) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM token_blacklist_outstandingtoken WHERE {} > $1",
            self.epoch("expires_at")
        );
        self.count(&sql, &[now]).await
    }

    /// simplejwt's outstanding tokens still alive at `now` whose row id is greater than
    /// `after`, with when they were blacklisted if they were: at most `limit`, in id order. An
    /// empty page means there are no more.
    pub async fn live_tokens_after(
        &mut self,
        after: i64,
        now: i64,
        limit: usize,
    ) -> Result<Vec<DjangoToken>, StoreError> {
        let sql = format!(
            "SELECT CAST(o.id AS BIGINT) AS id, o.jti, CAST(o.user_id AS BIGINT) AS user_id, \
             {} AS created_at, {} AS expires_at, {} AS blacklisted_at \
             FROM token_blacklist_outstandingtoken o \
             LEFT JOIN token_blacklist_blacklistedtoken b ON b.token_id = o.id \
             WHERE o.id > $1 AND {} > $2 ORDER BY o.id LIMIT $3",
            self.epoch("o.created_at"),
            self.epoch("o.expires_at"),
            self.epoch("b.blacklisted_at"),
            self.epoch("o.expires_at"),
        );
        self.fetch_page(&sql, &[after, now, page_limit(limit)])
            .await
    }

    /// Closes the connection.
    pub async fn close(self) -> Result<(), StoreError> {
        match self.connection {
            SourceConnection::Postgres(connection) => connection.close().await?,
            SourceConnection::Sqlite(connection) => connection.close().await?,
        }
        Ok(())
    }

    /// A datetime column as epoch seconds: PostgreSQL's `timestamptz`, or SQLite's UTC text
    /// ("YYYY-MM-DD HH:MM:SS[.ffffff]", as Django writes it).
    fn epoch(&self, column: &str) -> String {
        match self.connection {
            SourceConnection::Postgres(_) => {
                format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)")
            }
            SourceConnection::Sqlite(_) => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
        }
    }

    async fn has_table(&mut self, table: &str) -> Result<bool, StoreError> {
        let found: bool = match &mut self.connection {
            SourceConnection::Postgres(connection) => {
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(table)
                    .fetch_one(connection)
                    .await?
            }
            SourceConnection::Sqlite(connection) => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)",
            )
            .bind(table)
            .fetch_one(connection)
            .await?,
        };
        Ok(found)
    }

    async fn count(&mut self, sql: &str, binds: &[i64]) -> Result<u64, StoreError> {
        // COUNT(*) answers one row.
        let rows: Vec<(i64,)> = self.fetch_page(sql, binds).await?;
        Ok(rows
            .first()
            .map_or(0, |&(count,)| u64::try_from(count).unwrap_or(0)))
    }

    async fn fetch_page<T>(&mut self, sql: &str, binds: &[i64]) -> Result<Vec<T>, StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        // The same statement on either connection type.
        macro_rules! fetch {
            ($connection:expr) => {{
                let mut query = sqlx::query_as::<_, T>(sql);
                for value in binds {
                    query = query.bind(*value);
                }
                query.fetch_all($connection).await?
            }};
        }
        let rows = match &mut self.connection {
            SourceConnection::Postgres(connection) => fetch!(connection),
            SourceConnection::Sqlite(connection) => fetch!(connection),
        };
        Ok(rows)
    }
}

/// A page size as SQL's LIMIT.
fn page_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
