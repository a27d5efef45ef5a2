//! Reading users out of a Django database (`auth_user`, on SQLite or PostgreSQL) and importing
//! them with their password hashes, so that they keep logging in with their old passwords.

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

/// Reads every user of a Django `auth_user` table, in id order. `source` is a PostgreSQL URL,
/// a `sqlite:` URL, or the path of a SQLite file (opened read-only).
pub async fn read_django_users(source: &str) -> Result<Vec<DjangoUser>, StoreError> {
    // Django's id is `integer` or, with BigAutoField, `bigint`.
    const COLUMNS: &str =
        "CAST(id AS BIGINT) AS id, username, email, first_name, last_name, password, is_active, \
                           is_staff, is_superuser";
    if source.starts_with("postgres:") || source.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(source)?;
        let mut connection = sqlx::PgConnection::connect_with(&options).await?;
        let sql = format!(
            "SELECT {COLUMNS}, CAST(EXTRACT(EPOCH FROM date_joined) AS BIGINT) AS date_joined, \
             CAST(EXTRACT(EPOCH FROM last_login) AS BIGINT) AS last_login \
             FROM auth_user ORDER BY id"
        );
        let users = sqlx::query_as::<_, DjangoUser>(&sql)
            .fetch_all(&mut connection)
            .await?;
        connection.close().await?;
        return Ok(users);
    }
    let options = if source.starts_with("sqlite:") {
        SqliteConnectOptions::from_str(source)?
    } else {
        SqliteConnectOptions::new().filename(source)
    }
    .read_only(true);
    let mut connection = sqlx::SqliteConnection::connect_with(&options).await?;
    // Django keeps SQLite datetimes as UTC text, "YYYY-MM-DD HH:MM:SS[.ffffff]".
    let sql = format!(
        "SELECT {COLUMNS}, CAST(strftime('%s', date_joined) AS INTEGER) AS date_joined, \
         CAST(strftime('%s', last_login) AS INTEGER) AS last_login FROM auth_user ORDER BY id"
    );
    let users = sqlx::query_as::<_, DjangoUser>(&sql)
        .fetch_all(&mut connection)
        .await?;
    connection.close().await?;
    Ok(users)
}

impl Store {
    /// Imports one Django user with its id and password hash. Importing the same user again
    /// skips it; a username, id or email held by another user fails with the reason.
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
        let inserted = with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO users (id, username, email, first_name, last_name, password, \
                 is_active, is_staff, is_superuser, date_joined, last_login) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
