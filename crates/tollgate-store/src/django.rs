//! Reading users out of a Django database (`auth_user`, on SQLite or PostgreSQL) and importing
//! them with their password hashes, so that they keep logging in with their old passwords;
//! and reading the live tokens of simplejwt's blacklist app, so that blacklisted ones stay
//! refused.

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::Connection;

use crate::{with_writer, Store, StoreError};

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

/// An open Django database.
enum Source {
    Postgres(sqlx::PgConnection),
    Sqlite(sqlx::SqliteConnection),
}

impl Source {
    /// Opens a PostgreSQL URL, a `sqlite:` URL, or the path of a SQLite file (read-only).
    async fn open(source: &str) -> Result<Source, StoreError> {
        if source.starts_with("postgres:") || source.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(source)?;
            return Ok(Source::Postgres(
                sqlx::PgConnection::connect_with(&options).await?,
            ));
        }
        let options = if source.starts_with("sqlite:") {
            SqliteConnectOptions::from_str(source)?
        } else {
            SqliteConnectOptions::new().filename(source)
        }
        .read_only(true);
        Ok(Source::Sqlite(
            sqlx::SqliteConnection::connect_with(&options).await?,
        ))
    }

    /// A datetime column as epoch seconds: PostgreSQL's `timestamptz`, or SQLite's UTC text
    /// ("YYYY-MM-DD HH:MM:SS[.ffffff]", as Django writes it).
    fn epoch(&self, column: &str) -> String {
        match self {
            Source::Postgres(_) => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
            Source::Sqlite(_) => format!("CAST(strftime('%s', {column}) AS INTEGER)"),
        }
    }

    async fn has_table(&mut self, table: &str) -> Result<bool, StoreError> {
        let found: bool = match self {
            Source::Postgres(connection) => {
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
                    .bind(table)
                    .fetch_one(connection)
                    .await?
            }
            Source::Sqlite(connection) => sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = $1)",
            )
            .bind(table)
            .fetch_one(connection)
            .await?,
        };
        Ok(found)
    }

    async fn fetch_all<T>(&mut self, sql: &str, now: Option<i64>) -> Result<Vec<T>, StoreError>
    where
        T: Send + Unpin,
        T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>,
    {
        // The same statement on either connection type.
        macro_rules! fetch {
            ($connection:expr) => {{
                let query = sqlx::query_as::<_, T>(sql);
                match now {
                    Some(now) => query.bind(now),
                    None => query,
                }
                .fetch_all($connection)
                .await?
            }};
        }
        let rows = match self {
            Source::Postgres(connection) => fetch!(connection),
            Source::Sqlite(connection) => fetch!(connection),
        };
        Ok(rows)
    }

    async fn close(self) -> Result<(), StoreError> {
        match self {
            Source::Postgres(connection) => connection.close().await?,
            Source::Sqlite(connection) => connection.close().await?,
        }
        Ok(())
    }
}

/// Reads every user of a Django `auth_user` table, in id order. `source` is a PostgreSQL URL,
/// a `sqlite:` URL, or the path of a SQLite file (opened read-only).
pub async fn read_django_users(source: &str) -> Result<Vec<DjangoUser>, StoreError> {
    let mut db = Source::open(source).await?;
    // Django's id is `integer` or, with BigAutoField, `bigint`.
    let sql = format!(
        "SELECT CAST(id AS BIGINT) AS id, username, email, first_name, last_name, password, \
         is_active, is_staff, is_superuser, {} AS date_joined, {} AS last_login \
         FROM auth_user ORDER BY id",
        db.epoch("date_joined"),
        db.epoch("last_login"),
    );
    let users = db.fetch_all(&sql, None).await;
    db.close().await?;
    users
}

/// Reads the tokens of simplejwt's blacklist app (`token_blacklist_outstandingtoken` and
/// `token_blacklist_blacklistedtoken`) that are still alive at `now`, so that a token
/// blacklisted under Django stays refused. `None` when the source has no such tables.
pub async fn read_django_tokens(
    source: &str,
    now: i64,
) -> Result<Option<Vec<DjangoToken>>, StoreError> {
    let mut db = Source::open(source).await?;
    if !db.has_table("token_blacklist_outstandingtoken").await?
        || !db.has_table("token_blacklist_blacklistedtoken").await?
    {
        db.close().await?;
        return Ok(None);
    }
    let sql = format!(
        "SELECT o.jti, CAST(o.user_id AS BIGINT) AS user_id, {} AS created_at, \
         {} AS expires_at, {} AS blacklisted_at \
         FROM token_blacklist_outstandingtoken o \
         LEFT JOIN token_blacklist_blacklistedtoken b ON b.token_id = o.id \
         WHERE {} > $1 ORDER BY o.id",
        db.epoch("o.created_at"),
        db.epoch("o.expires_at"),
        db.epoch("b.blacklisted_at"),
        db.epoch("o.expires_at"),
    );
    let tokens = db.fetch_all(&sql, Some(now)).await;
    db.close().await?;
    tokens.map(Some)
}

impl Store {
    /// Imports one Django user with its id and password hash. Importing the same user again
    /// skips it; a username, id or email held by another user fails with the reason, as does a
    /// username that is another user's email address or the reverse.
    pub async fn import_django_user(&self, user: &DjangoUser) -> Result<ImportOutcome, StoreError> {
        let by_name = self
            .find_user(crate::UserField::Username, &user.username)
            .await?;
        if let Some(existing) = by_name {
            return Ok(if existing.id == user.id {
                ImportOutcome::Skipped
            } else {
                ImportOutcome::Failed(format!(
                    "the username is taken by another user (id {})",
                    existing.id
                ))
            });
        }
        if let Some(existing) = self
            .find_user(crate::UserField::Id, &user.id.to_string())
            .await?
        {
            return Ok(ImportOutcome::Failed(format!(
                "id {} is taken by another user ({})",
                user.id, existing.username
            )));
        }
        let identifiers = crate::Identifiers {
            username: Some(&user.username),
            email: Some(&user.email),
            phone: None,
        };
        if let Some(clash) = self.identifier_clash(identifiers, Some(user.id)).await? {
            return Ok(ImportOutcome::Failed(format!(
                "the {} is another user's {}",
                clash.field, clash.other
            )));
        }
        // identified_since stays 0: the tokens Django issued to the user keep working.
        let inserted = with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, username, email, first_name, last_name, password, \
                 is_active, is_staff, is_superuser, date_joined, last_login, email_verified_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $10)",
            )
            .bind(user.id)
            .bind(&user.username)
            .bind(&user.email)
            .bind(&user.first_name)
            .bind(&user.last_name)
            .bind(&user.password)
            .bind(user.is_active)
            .bind(user.is_staff)
            .bind(user.is_superuser)
            .bind(user.date_joined)
            .bind(user.last_login)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match inserted.map_err(crate::users::duplicate_or_database) {
            Ok(_) => Ok(ImportOutcome::Imported),
            Err(StoreError::Duplicate { field }) => Ok(ImportOutcome::Failed(format!(
                "the {field} is taken by another user"
            ))),
            Err(err) => Err(err),
        }
    }

    /// Imports one live token of simplejwt's blacklist app: recorded as outstanding and, if
    /// Django blacklisted it, blacklisted. Importing it again changes nothing.
    pub async fn import_django_token(&self, token: &DjangoToken) -> Result<(), StoreError> {
        let record = crate::TokenRecord {
            jti: &token.jti,
            user_id: token.user_id,
            created_at: token.created_at,
            expires_at: token.expires_at,
            session_id: None,
        };
        match token.blacklisted_at {
            Some(at) => self.blacklist(&record, at).await.map(|_| ()),
            None => self.record_outstanding(&record).await,
        }
    }

    /// After importing rows with explicit ids, moves PostgreSQL's id sequence past them so that
    /// new users get fresh ids. (SQLite does this by itself.)
    pub async fn after_import(&self) -> Result<(), StoreError> {
        if let crate::Pool::Postgres(pool) = &self.pool {
            sqlx::query(
                "SELECT setval(pg_get_serial_sequence('users', 'id'), \
                 GREATEST((SELECT MAX(id) FROM users), 1))",
            )
            .execute(pool)
            .await?;
        }
        Ok(())
    }
}
