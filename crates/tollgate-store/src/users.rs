//! User accounts.

use crate::{with_pool, with_writer, Store, StoreError};

/// Inside a transaction `tx` of either backend: revokes the user's sessions and blacklists
/// every unexpired refresh or sliding token of the user; evaluates to the blacklisted `(jti,
/// expires_at)` pairs, for the Redis denylist. The sessions first, as every revocation and
/// rotation takes them: a session's row is locked before any of its tokens is claimed.
/// `$blacklist` is the store's [`Store::blacklist_user_sql`].
macro_rules! end_every_session {
    ($tx:ident, $blacklist:expr, $user_id:expr, $now:expr) => {{
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind($now)
        .bind($user_id)
        .execute(&mut *$tx)
        .await?;
        let blacklisted: Vec<(String, i64)> = sqlx::query_as($blacklist)
            .bind($now)
            .bind($user_id)
            .fetch_all(&mut *$tx)
            .await?;
        blacklisted
    }};
}

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
    /// When the user took the value its tokens carry (USER_ID_FIELD), epoch seconds: set at
    /// creation and when that field changes. A token issued before it names whoever held the
    /// value then, not this user. 0 for accounts created before it was recorded.
    pub identified_since: i64,
    /// When the email address was confirmed; `None` while a registration waits for its
    /// activation link (EMAIL_VERIFICATION).
    pub email_verified_at: Option<i64>,
    /// An address the user asked to change to, waiting for its link to be followed.
    pub pending_email: Option<String>,
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
    /// The address waits for confirmation (a registration with EMAIL_VERIFICATION); otherwise
    /// it counts as confirmed from creation.
    pub email_unconfirmed: bool,
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

/// The outcome of [`Store::update_user`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatedUser {
    /// The user as changed.
    pub user: User,
    /// The value of the token-identifying field before the change, when it changed: the
    /// tokens issued under it were ended, and access tokens carrying it are for the caller to
    /// revoke.
    pub previous_identifier: Option<String>,
    /// How many refresh and sliding tokens were blacklisted for it.
    pub blacklisted: u64,
}

/// A login identifier that one account would share with another under a different field
/// (a username equal to someone's email address or phone number, or the reverse): whoever
/// logs in with it could reach either account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clash {
    /// The field of the account being written.
    pub field: &'static str,
    /// The other account's field holding the same value.
    pub other: &'static str,
}

/// The identifiers an account is about to hold, for [`Store::identifier_clash`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Identifiers<'a> {
    /// The username.
    pub username: Option<&'a str>,
    /// The email address.
    pub email: Option<&'a str>,
    /// The phone number.
    pub phone: Option<&'a str>,
}

/// Which other accounts' fields each of an account's identifiers must not equal; emails and
/// usernames compare without regard to case, since email logins ignore it.
const CLASH_QUERIES: [(&str, &str, &str); 4] = [
    (
        "username",
        "email",
        "SELECT id FROM users WHERE lower(email) = lower($1) AND email <> '' AND id <> $2 LIMIT 1",
    ),
    (
        "username",
        "phone",
        "SELECT id FROM users WHERE phone = $1 AND id <> $2 LIMIT 1",
    ),
    (
        "email",
        "username",
        "SELECT id FROM users WHERE lower(username) = lower($1) AND id <> $2 LIMIT 1",
    ),
    (
        "phone",
        "username",
        "SELECT id FROM users WHERE username = $1 AND id <> $2 LIMIT 1",
    ),
];

/// An id no user has, for checks of an account not yet created.
const NO_USER: i64 = -1;

/// [`CLASH_QUERIES`] on an executor of either database (a pool or a transaction), as
/// `Option<Clash>`; `?` inside returns `sqlx::Error`.
macro_rules! find_clash {
    ($executor:expr, $identifiers:expr, $own_id:expr) => {{
        let identifiers: $crate::users::Identifiers<'_> = $identifiers;
        let mut found = None;
        for (field, other, sql) in $crate::users::CLASH_QUERIES {
            let value = match field {
                "username" => identifiers.username,
                "email" => identifiers.email,
                _ => identifiers.phone,
            };
            let Some(value) = value.filter(|value| !value.is_empty()) else {
                continue;
            };
            let holder: Option<i64> = sqlx::query_scalar(sql)
                .bind(value)
                .bind($own_id)
                .fetch_optional($executor)
                .await?;
            if holder.is_some() {
                found = Some($crate::users::Clash { field, other });
                break;
            }
        }
        found
    }};
}

/// A lookup key of either SQL type.
#[derive(Clone, Copy)]
enum Key<'a> {
    Int(i64),
    Text(&'a str),
}

pub(crate) const USER_COLUMNS: &str =
    "id, username, email, phone, first_name, last_name, password, is_active, \
     is_staff, is_superuser, date_joined, last_login, profile, identified_since, email_verified_at, \
     pending_email";

impl Store {
    /// Creates a user; a taken username or email gives [`StoreError::Duplicate`], one that
    /// another account holds under another field [`StoreError::Clash`]. The user is identified
    /// from `now` on: tokens issued earlier were not issued to them.
    pub async fn create_user(&self, new: &NewUser, now: i64) -> Result<User, StoreError> {
        let sql = format!(
            "INSERT INTO users (username, email, password, is_active, is_staff, is_superuser, \
             date_joined, phone, first_name, last_name, profile, identified_since, \
             email_verified_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $7, $12) RETURNING {USER_COLUMNS}"
        );
        let profile = if new.profile.is_empty() {
            "{}"
        } else {
            &new.profile
        };
        let identifiers = Identifiers {
            username: Some(&new.username),
            email: Some(&new.email),
            phone: new.phone.as_deref(),
        };
        let created = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                if let Some(clash) = find_clash!(&mut *tx, identifiers, NO_USER) {
                    return Ok(Err(clash));
                }
                let user = sqlx::query_as::<_, User>(&sql)
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
                    .bind((!new.email_unconfirmed).then_some(now))
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Ok(user))
            }
            .await
        });
        created
            .map_err(duplicate_or_database)?
            .map_err(StoreError::Clash)
    }

    /// The first identifier of `identifiers` that an account other than `own_id` holds under
    /// another field (see [`Clash`]). Creating, updating and importing users check it too;
    /// callers ask first to report it beside their other refusals.
    pub async fn identifier_clash(
        &self,
        identifiers: Identifiers<'_>,
        own_id: Option<i64>,
    ) -> Result<Option<Clash>, StoreError> {
        let own_id = own_id.unwrap_or(NO_USER);
        let clash = with_pool!(self, |pool| {
            async { Ok::<_, sqlx::Error>(find_clash!(pool, identifiers, own_id)) }.await
        })?;
        Ok(clash)
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

    /// Applies changes to a user's own fields; `None` if there is no such user,
    /// [`StoreError::Duplicate`] if a new username, email or phone is taken and
    /// [`StoreError::Clash`] if another account holds it under another field.
    ///
    /// When the value of `key` (USER_ID_FIELD) changes, the tokens issued under the old value
    /// must stop working, since someone else may take it: in the same transaction every
    /// refresh and sliding token of the user is blacklisted, their sessions are revoked, and
    /// the user is identified only from the next second on (`iat` counts whole seconds, so a
    /// token issued in this one may predate the change).
    pub async fn update_user(
        &self,
        user_id: i64,
        changes: &UserChanges,
        key: UserField,
        now: i64,
    ) -> Result<Option<UpdatedUser>, StoreError> {
        let select = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let sql = format!(
            "UPDATE users SET username = COALESCE($2, username), email = COALESCE($3, email), \
             phone = CASE WHEN $4 THEN $5 ELSE phone END, \
             first_name = COALESCE($6, first_name), last_name = COALESCE($7, last_name), \
             profile = COALESCE($8, profile) WHERE id = $1 RETURNING {USER_COLUMNS}"
        );
        let identifiers = Identifiers {
            username: changes.username.as_deref(),
            email: changes.email.as_deref(),
            phone: changes.phone.as_ref().and_then(|phone| phone.as_deref()),
        };
        let blacklist = self.blacklist_user_sql();
        let updated = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let Some(before) = sqlx::query_as::<_, User>(&select)
                    .bind(user_id)
                    .fetch_optional(&mut *tx)
                    .await?
                else {
                    return Ok(Ok(None));
                };
                if let Some(clash) = find_clash!(&mut *tx, identifiers, user_id) {
                    return Ok(Err(clash));
                }
                let mut user = sqlx::query_as::<_, User>(&sql)
                    .bind(user_id)
                    .bind(&changes.username)
                    .bind(&changes.email)
                    .bind(changes.phone.is_some())
                    .bind(changes.phone.clone().flatten())
                    .bind(&changes.first_name)
                    .bind(&changes.last_name)
                    .bind(&changes.profile)
                    .fetch_one(&mut *tx)
                    .await?;
                let previous = before.field(key);
                if previous == user.field(key) {
                    tx.commit().await?;
                    return Ok(Ok(Some((user, None, Vec::new()))));
                }
                user.identified_since = now + 1;
                sqlx::query("UPDATE users SET identified_since = $1 WHERE id = $2")
                    .bind(user.identified_since)
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                let blacklisted = end_every_session!(tx, blacklist, user_id, now);
                tx.commit().await?;
                Ok::<_, sqlx::Error>(Ok(Some((user, Some(previous), blacklisted))))
            }
            .await
        });
        self.users_changed().await;
        let Some((user, previous_identifier, blacklisted)) = updated
            .map_err(duplicate_or_database)?
            .map_err(StoreError::Clash)?
        else {
            return Ok(None);
        };
        self.copy_to_redis(&blacklisted, now).await;
        Ok(Some(UpdatedUser {
            user,
            previous_identifier,
            blacklisted: blacklisted.len() as u64,
        }))
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
        let blacklist = self.blacklist_user_sql();
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
                let blacklisted = end_every_session!(tx, blacklist, user_id, now);
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

    /// Records that the user's email address is confirmed; false if it already was (or there
    /// is no such user): of two concurrent confirmations one gets true.
    pub async fn confirm_email(&self, user_id: i64, now: i64) -> Result<bool, StoreError> {
        let changed = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE users SET email_verified_at = $1 \
                 WHERE id = $2 AND email_verified_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if changed == 1 {
            self.users_changed().await;
        }
        Ok(changed == 1)
    }

    /// Records an address the user asked to change to (`None` forgets it).
    pub async fn set_pending_email(
        &self,
        user_id: i64,
        email: Option<&str>,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("UPDATE users SET pending_email = $1 WHERE id = $2")
                .bind(email)
                .bind(user_id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        self.users_changed().await;
        Ok(())
    }

    /// Ends an email change: the address now in use is confirmed and none waits.
    pub async fn finish_email_change(&self, user_id: i64, now: i64) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE users SET pending_email = NULL, email_verified_at = $1 WHERE id = $2",
            )
            .bind(now)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        self.users_changed().await;
        Ok(())
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

    /// Sets a user's staff and superuser flags (`None` leaves one as it is); false if there is
    /// no such user.
    pub async fn set_privileges(
        &self,
        user_id: i64,
        is_staff: Option<bool>,
        is_superuser: Option<bool>,
    ) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE users SET is_staff = COALESCE($1, is_staff), \
                 is_superuser = COALESCE($2, is_superuser) WHERE id = $3",
            )
            .bind(is_staff)
            .bind(is_superuser)
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
    err.into()
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
    async fn identifiers_may_not_clash_across_fields() {
        let store = memory_store().await;
        let ann = NewUser {
            phone: Some("+15551234567".into()),
            ..new_user("ann", "a@x.com")
        };
        let ann = store.create_user(&ann, 1).await.expect("created");
        for (candidate, field, other) in [
            (new_user("A@X.com", ""), "username", "email"),
            (new_user("+15551234567", ""), "username", "phone"),
            (new_user("bob", "ANN"), "email", "username"),
        ] {
            let err = store.create_user(&candidate, 1).await.unwrap_err();
            assert!(
                matches!(err, StoreError::Clash(clash) if clash == Clash { field, other }),
                "{err}"
            );
        }
        // One's own identifiers are no clash.
        let own = Identifiers {
            username: Some("a@x.com"),
            ..Identifiers::default()
        };
        assert_eq!(
            store
                .identifier_clash(own, Some(ann.id))
                .await
                .expect("query"),
            None
        );
        let bob = store
            .create_user(&new_user("bob", ""), 1)
            .await
            .expect("created");
        let changes = UserChanges {
            username: Some("a@X.COM".into()),
            ..UserChanges::default()
        };
        let err = store
            .update_user(bob.id, &changes, UserField::Username, 5)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Clash(_)), "{err}");
    }

    #[tokio::test]
    async fn changing_the_token_identifier_moves_identified_since() {
        let store = memory_store().await;
        let ann = store
            .create_user(&new_user("ann", "ann@example.com"), 100)
            .await
            .expect("created");
        assert_eq!(ann.identified_since, 100);
        let email = UserChanges {
            email: Some("ann2@example.com".into()),
            ..UserChanges::default()
        };
        // Not the field tokens are keyed on: nothing ends.
        let updated = store
            .update_user(ann.id, &email, UserField::Username, 200)
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(
            (updated.user.identified_since, updated.previous_identifier),
            (100, None)
        );
        let username = UserChanges {
            username: Some("annlee".into()),
            ..UserChanges::default()
        };
        let updated = store
            .update_user(ann.id, &username, UserField::Username, 300)
            .await
            .expect("query")
            .expect("exists");
        assert_eq!(updated.user.identified_since, 301);
        assert_eq!(updated.previous_identifier.as_deref(), Some("ann"));
        assert_eq!(
            store
                .find_user(UserField::Id, &ann.id.to_string())
                .await
                .expect("query")
                .map(|user| user.identified_since),
            Some(301)
        );
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
