//! User accounts.

use crate::{with_pool, with_writer, Store, StoreError};

/// A user account, with Django's `auth_user` fields plus a phone and profile fields.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// The primary key.
    pub id: i64,
    /// Unique, case-sensitive (as in Django).
    pub username: String,
    /// Unique without regard to case when not empty.
    pub email: String,
    /// Unique when present.
    pub phone: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// The password hash (`argon2$…` or one of Django's formats); never sent to a client.
    pub password: String,
    /// Inactive users cannot log in, and (with CHECK_USER_IS_ACTIVE) their tokens stop working.
    pub is_active: bool,
    /// May use staff-only endpoints.
    pub is_staff: bool,
    /// Has every permission.
    pub is_superuser: bool,
    /// When the account was created, epoch seconds.
    pub date_joined: i64,
    /// When the user last obtained tokens with a password, epoch seconds.
    pub last_login: Option<i64>,
    /// Free-form profile fields, a JSON object as text.
    pub profile: String,
}

impl User {
    /// The value of a field that can identify a user in a token (USER_ID_FIELD).
    pub fn field(&self, field: UserField) -> String {
        match field {
            UserField::Id => self.id.to_string(),
            UserField::Username => self.username.clone(),
            UserField::Email => self.email.clone(),
            UserField::Phone => self.phone.clone().unwrap_or_default(),
        }
    }
}

/// A field that identifies one user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserField {
    /// The numeric id.
    Id,
    /// The username (case-sensitive).
    Username,
    /// The email address (case-insensitive).
    Email,
    /// The phone number.
    Phone,
}

impl UserField {
    /// Reads a field name as written in settings (`id`, `username`, `email`, `phone`).
    pub fn from_name(name: &str) -> Option<UserField> {
        match name {
            "id" => Some(UserField::Id),
            "username" => Some(UserField::Username),
            "email" => Some(UserField::Email),
            "phone" => Some(UserField::Phone),
            _ => None,
        }
    }
}

/// The fields of an account to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Unique username.
    pub username: String,
    /// Email address, may be empty.
    pub email: String,
    /// Phone number, if any.
    pub phone: Option<String>,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// Profile fields, a JSON object as text; empty means `{}`.
    pub profile: String,
    /// The password hash (already hashed).
    pub password_hash: String,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Staff flag.
    pub is_staff: bool,
    /// Superuser flag.
    pub is_superuser: bool,
}

/// Changes to a user's own fields; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChanges {
    /// New username.
    pub username: Option<String>,
    /// New email address.
    pub email: Option<String>,
    /// New phone number (`Some(None)` removes it).
    pub phone: Option<Option<String>>,
    /// New given name.
    pub first_name: Option<String>,
    /// New family name.
    pub last_name: Option<String>,
    /// New profile, a JSON object as text (replaces the old one).
    pub profile: Option<String>,
}

/// A lookup key of either SQL type.
#[derive(Clone, Copy)]
enum Key<'a> {
    Int(i64),
    Text(&'a str),
}

const USER_COLUMNS: &str =
    "id, username, email, phone, first_name, last_name, password, is_active, \
     is_staff, is_superuser, date_joined, last_login, profile";

impl Store {
    /// Creates a user; a taken username or email gives [`StoreError::Duplicate`].
    pub async fn create_user(&self, new: &NewUser, now: i64) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (username, email, password, is_active, is_staff, is_superuser, \
             date_joined, phone, first_name, last_name, profile) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING {USER_COLUMNS}"
        );
        let profile = if new.profile.is_empty() {
            "{}"
        } else {
            &new.profile
        };
        let created = with_writer!(self, |pool| {
            sqlx::query_as::<_, User>(&sql)
                .bind(&new.username)
                .bind(&new.email)
                .bind(&new.password_hash)
                .bind(new.is_active)
                .bind(new.is_staff)
                .bind(new.is_superuser)
                .bind(now)
                .bind(&new.phone)
                .bind(&new.first_name)
                .bind(&new.last_name)
                .bind(profile)
                .fetch_one(pool)
                .await
        });
        created.map_err(duplicate_or_database)
    }

    /// The user whose `field` equals `value` (email without regard to case).
    pub async fn find_user(
        &self,
        field: UserField,
        value: &str,
    ) -> Result<Option<User>, StoreError> {
        let user = match field {
            UserField::Id => match value.trim().parse::<i64>() {
                Ok(id) => {
                    self.fetch_user(
                        &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                        Key::Int(id),
                    )
                    .await?
                }
                Err(_) => None,
            },
            UserField::Username => {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
                self.fetch_user(&sql, Key::Text(value)).await?
            }
            UserField::Email => {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1) AND email <> ''");
                self.fetch_user(&sql, Key::Text(value)).await?
            }
            UserField::Phone => {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE phone = $1");
                self.fetch_user(&sql, Key::Text(value)).await?
            }
        };
        Ok(user)
    }

    async fn fetch_user(&self, sql: &str, key: Key<'_>) -> Result<Option<User>, StoreError> {
        let user = with_pool!(self, |pool| {
            let query = sqlx::query_as::<_, User>(sql);
            match key {
                Key::Int(id) => query.bind(id),
                Key::Text(text) => query.bind(text),
            }
            .fetch_optional(pool)
            .await
        })?;
        Ok(user)
    }

    /// Records a successful password login.
    pub async fn set_last_login(&self, user_id: i64, at: i64) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2")
                .bind(at)
                .bind(user_id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Replaces a user's password hash; false if there is no such user.
    pub async fn set_password_hash(&self, user_id: i64, hash: &str) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET password = $1 WHERE id = $2")
                .bind(hash)
                .bind(user_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        self.users_changed().await;
        Ok(done == 1)
    }

    /// Applies changes to a user's own fields; `None` if there is no such user, and
    /// [`StoreError::Duplicate`] if a new username, email or phone is taken.
    pub async fn update_user(
        &self,
        user_id: i64,
        changes: &UserChanges,
    ) -> Result<Option<User>, StoreError> {
        let sql = format!(
            "UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email), \
             phone = CASE WHEN $4 THEN $5 ELSE phone END, \
             first_name = COALESCE($6, first_name), last_name = COALESCE($7, last_name), \
             profile = COALESCE($8, profile) WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let updated = with_writer!(self, |pool| {
            sqlx::query_as::<_, User>(&sql)
                .bind(user_id)
                .bind(&changes.username)
                .bind(&changes.email)
                .bind(changes.phone.is_some())
                .bind(changes.phone.clone().flatten())
                .bind(&changes.first_name)
                .bind(&changes.last_name)
                .bind(&changes.profile)
                .fetch_optional(pool)
                .await
        });
        self.users_changed().await;
        updated.map_err(duplicate_or_database)
    }

    /// Sets a new password hash, blacklists every unexpired refresh or sliding token recorded
    /// for the user and revokes the user's sessions, in one transaction; the blacklisted jtis
    /// go to the Redis denylist too. Returns how many tokens were blacklisted, or `None` if
    /// there is no such user.
    pub async fn change_password(
        &self,
        user_id: i64,
        hash: &str,
        now: i64,
    ) -> Result<Option<u64>, StoreError> {
        let changed = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let found = sqlx::query("UPDATE users SET password = $1 WHERE id = $2")
                    .bind(hash)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if found != 1 {
                    tx.rollback().await?;
                    return Ok::<_, sqlx::Error>(None);
                }
                let blacklisted: Vec<(String, i64)> =
                    sqlx::query_as(crate::sessions::BLACKLIST_USER)
                        .bind(now)
                        .bind(user_id)
                        .fetch_all(&mut *tx)
                        .await?;
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some(blacklisted))
            }
            .await
        })?;
        self.users_changed().await;
        let Some(blacklisted) = changed else {
            return Ok(None);
        };
        self.copy_to_redis(&blacklisted, now).await;
        Ok(Some(blacklisted.len() as u64))
    }

    /// Activates or deactivates a user; false if there is no such user.
    pub async fn set_active(&self, user_id: i64, active: bool) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET is_active = $1 WHERE id = $2")
                .bind(active)
                .bind(user_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        self.users_changed().await;
        Ok(done == 1)
    }

    /// Deletes a user and their sessions; their outstanding tokens stay, with no user (refresh
    /// answers that the account is gone). False if there was none. On SQLite this reads through
    /// every recorded token: its index of tokens by user holds live ones only, to keep
    /// rotations cheap.
    pub async fn delete_user(&self, user_id: i64) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(user_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        self.users_changed().await;
        Ok(done == 1)
    }
}

/// Turns a unique violation into [`StoreError::Duplicate`] naming the field. PostgreSQL names
/// the index; SQLite names the column or index in its message.
pub(crate) fn duplicate_or_database(err: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            let text = format!("{} {}", db.constraint().unwrap_or_default(), db.message());
            for field in ["username", "email", "phone"] {
                if text.contains(&format!("users_{field}_key"))
                    || text.contains(&format!("users.{field}"))
                {
                    return StoreError::Duplicate { field };
                }
            }
        }
    }
    StoreError::Database(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    fn new_user(username: &str, email: &str) -> NewUser {
        NewUser {
            username: username.into(),
            email: email.into(),
            password_hash: "argon2$x".into(),
            is_active: true,
            ..NewUser::default()
        }
    }

    #[tokio::test]
    async fn users_are_found_by_each_field() {
        let store = memory_store().await;
        let created = store
            .create_user(&new_user("ann", "Ann@Example.com"), 100)
            .await
            .expect("created");
        assert_eq!(created.date_joined, 100);
        assert!(created.is_active && !created.is_staff);
        for (field, value) in [
            (UserField::Id, created.id.to_string()),
            (UserField::Username, "ann".to_owned()),
            (UserField::Email, "ann@example.COM".to_owned()),
        ] {
            assert_eq!(
                store.find_user(field, &value).await.expect("query"),
                Some(created.clone())
            );
        }
        assert_eq!(
            store
                .find_user(UserField::Username, "ANN")
                .await
                .expect("query"),
            None
        );
        assert_eq!(
            store
                .find_user(UserField::Id, "not a number")
                .await
                .expect("query"),
            None
        );
        assert_eq!(
            store.find_user(UserField::Email, "").await.expect("query"),
            None
        );
    }

    #[tokio::test]
    async fn duplicates_name_the_field() {
        let store = memory_store().await;
        store
            .create_user(&new_user("ann", "ann@example.com"), 1)
            .await
            .expect("created");
        let err = store
            .create_user(&new_user("ann", "other@example.com"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Duplicate { field: "username" }),
            "{err}"
        );
        let err = store
            .create_user(&new_user("bob", "ANN@example.com"), 1)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::Duplicate { field: "email" }),
            "{err}"
        );
        // Empty emails are not unique.
        store
            .create_user(&new_user("c", ""), 1)
            .await
            .expect("created");
        store
            .create_user(&new_user("d", ""), 1)
            .await
            .expect("created");
    }

    #[tokio::test]
    async fn updates_report_whether_the_user_exists() {
        let store = memory_store().await;
        let user = store
            .create_user(&new_user("ann", ""), 1)
            .await
            .expect("created");
        assert!(store.set_active(user.id, false).await.expect("query"));
        assert!(store
            .set_password_hash(user.id, "argon2$y")
            .await
            .expect("query"));
        store.set_last_login(user.id, 55).await.expect("query");
        let found = store
            .find_user(UserField::Id, &user.id.to_string())
            .await
            .expect("query")
            .expect("exists");
        assert!(!found.is_active);
        assert_eq!(
            (found.password.as_str(), found.last_login),
            ("argon2$y", Some(55))
        );
        assert!(store.delete_user(user.id).await.expect("query"));
        assert!(!store.set_active(user.id, true).await.expect("query"));
    }
}
