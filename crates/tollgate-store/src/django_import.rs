//! Importing Django's users with their password hashes, so that they keep logging in with their
//! old passwords, and simplejwt's live tokens, so that blacklisted ones stay refused.
//!
//! A million users cannot go one by one (a lookup or four and an insert per user, each a
//! transaction of its own, is some 2,000 users a second). They go a page at a time: a few
//! set-based lookups find what the database already holds of a page's ids, usernames and
//! emails; each row's outcome is then decided in memory, in id order, against those and the
//! page's earlier rows; and the page's new users are written with one multi-row INSERT. The
//! outcomes are those of importing the rows one by one ([`Store::import_django_user`]), to
//! which a page falls back when its INSERT meets a row written meanwhile (a registration
//! between the lookups and the write).

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use crate::{
    with_pool, with_writer, Backend, DjangoToken, DjangoUser, ImportOutcome, Store, StoreError,
};

/// Rows per page of an import: each page of users is one INSERT, each page of tokens one
/// transaction. Bounded by SQLite's limit on the values bound to one statement (below).
pub const DJANGO_IMPORT_PAGE: usize = 2_000;

/// The most values SQLite (3.32 and later) binds to one statement.
const SQLITE_MAX_BINDS: usize = 32_766;
/// Values bound per user by the users' INSERT.
const USER_BINDS: usize = 12;
const _: () = assert!(DJANGO_IMPORT_PAGE * USER_BINDS <= SQLITE_MAX_BINDS);

/// What the database already holds that a page's users could collide with, found with one
/// statement per kind of collision.
#[derive(Debug, Default)]
struct Holders {
    /// `lower()` of each user's username and email, in page order, as the database folds case
    /// (PostgreSQL's depends on its locale; SQLite's folds ASCII only), so that two rows of
    /// one page collide exactly when the database would say they do.
    folded: Vec<(String, String)>,
    /// The users holding one of the page's usernames: username → id.
    by_username: HashMap<String, i64>,
    /// The users holding one of the page's ids: id → username.
    by_id: HashMap<i64, String>,
    /// `lower(email)` of the users whose (non-empty) email equals a page user's username or
    /// email, without regard to case.
    emails: HashSet<String>,
    /// The phone numbers equal to a page user's username.
    phones: HashSet<String>,
    /// `lower(username)` of the users whose username equals a page user's email, without
    /// regard to case.
    usernames: HashSet<String>,
}

impl Store {
    /// Imports Django users with their ids and password hashes, as [`Store::import_django_user`]
    /// would one by one in the order given (give them in id order): the outcomes, in that
    /// order. Pages of [`DJANGO_IMPORT_PAGE`] users are written in one statement each.
    pub async fn import_django_users(
        &self,
        users: &[DjangoUser],
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let mut outcomes = Vec::with_capacity(users.len());
        for page in users.chunks(DJANGO_IMPORT_PAGE) {
            let decided = decide(page, &self.holders(page).await?);
            outcomes.extend(self.write_page(page, decided).await?);
        }
        Ok(outcomes)
    }

    /// Inserts the users of a page that `decided` imports, in one statement, and returns the
    /// outcomes; if a row written since the lookups collides with one of them, imports the
    /// page row by row instead, so that the user it collides with fails with its reason and
    /// the others go in.
    async fn write_page(
        &self,
        page: &[DjangoUser],
        decided: Vec<ImportOutcome>,
    ) -> Result<Vec<ImportOutcome>, StoreError> {
        let new: Vec<&DjangoUser> = page
            .iter()
            .zip(&decided)
            .filter(|(_, outcome)| **outcome == ImportOutcome::Imported)
            .map(|(user, _)| user)
            .collect();
        match self.insert_django_users(&new).await {
            Ok(()) => Ok(decided),
            Err(sqlx::Error::Database(err)) if err.is_unique_violation() => {
                tracing::info!(cause = %err, "a page of users imported row by row");
                let mut outcomes = Vec::with_capacity(page.len());
                for user in page {
                    outcomes.push(match self.import_django_user(user).await {
                        Ok(outcome) => outcome,
                        Err(err) => ImportOutcome::Failed(err.to_string()),
                    });
                }
                Ok(outcomes)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Imports one Django user with its id and password hash. Importing the same user again
    /// skips it; a username, id or email held by another user fails with the reason, as does a
    /// username that is another user's email address or phone number, or an email address
    /// that is another user's username.
    pub async fn import_django_user(&self, user: &DjangoUser) -> Result<ImportOutcome, StoreError> {
        let by_name = self
            .find_user(crate::UserField::Username, &user.username)
            .await?;
        if let Some(existing) = by_name {
            return Ok(if existing.id == user.id {
                ImportOutcome::Skipped
            } else {
                username_taken(existing.id)
            });
        }
        if let Some(existing) = self
            .find_user(crate::UserField::Id, &user.id.to_string())
            .await?
        {
            return Ok(id_taken(user.id, &existing.username));
        }
        let identifiers = crate::Identifiers {
            username: Some(&user.username),
            email: Some(&user.email),
            phone: None,
        };
        if let Some(clash) = self.identifier_clash(identifiers, Some(user.id)).await? {
            return Ok(clashes(clash.field, clash.other));
        }
        match self.insert_django_users(&[user]).await {
            Ok(()) => Ok(ImportOutcome::Imported),
            Err(err) => match crate::users::duplicate_or_database(err) {
                StoreError::Duplicate { field } => Ok(taken(field)),
                err => Err(err),
            },
        }
    }

    /// Imports live tokens of simplejwt's blacklist app: each recorded as outstanding and, if
    /// Django blacklisted it, blacklisted, in one transaction per page; the blacklisted jtis go
    /// to the Redis denylist too, if there is one, one pipeline per page. `now` is the time
    /// from which the Redis copies count down to their tokens' expiry. Importing a token again
    /// changes nothing.
    pub async fn import_django_tokens(
        &self,
        tokens: &[DjangoToken],
        now: i64,
    ) -> Result<(), StoreError> {
        for page in tokens.chunks(DJANGO_IMPORT_PAGE) {
            let blacklisted: Vec<(&DjangoToken, i64)> = page
                .iter()
                .filter_map(|token| token.blacklisted_at.map(|at| (token, at)))
                .collect();
            let denied: Vec<(&str, i64)> = blacklisted
                .iter()
                .map(|(token, _)| (token.jti.as_str(), token.expires_at))
                .collect();
            // Redis first, as `Store::blacklist` does it and for its reason: an import stopped
            // between the two must not leave servers trusting Redis to accept these tokens.
            let copied = self.redis_add_many(&denied, now).await;
            // The user id is kept only if that user exists (Django may have deleted it): a join,
            // not a subquery per row, each of which would open a cursor of its own on `users`
            // (SQLite's cost of opening one grows with those open). `WHERE true` tells SQLite
            // that ON CONFLICT is the upsert's, not the join's.
            let record = format!(
                "INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at) \
                 SELECT page.column1, users.id, page.column3, page.column4 \
                 FROM (VALUES {}) AS page LEFT JOIN users ON users.id = page.column2 \
                 WHERE true ON CONFLICT (jti) DO NOTHING",
                rows(self.backend(), "($1, $2, $3, $4)", 4, page.len())
            );
            let blacklist = format!(
                "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) VALUES {} \
                 ON CONFLICT (jti) DO NOTHING",
                rows(self.backend(), "($1, $2, $3)", 3, blacklisted.len())
            );
            with_writer!(self, |pool| {
                async {
                    let mut tx = pool.begin().await?;
                    page.iter()
                        .fold(
                            sqlx::query(&record).persistent(page.len() == DJANGO_IMPORT_PAGE),
                            |query, token| {
                                query
                                    .bind(&token.jti)
                                    .bind(token.user_id)
                                    .bind(token.created_at)
                                    .bind(token.expires_at)
                            },
                        )
                        .execute(&mut *tx)
                        .await?;
                    if !blacklisted.is_empty() {
                        // Its length varies from page to page: not worth a cached statement.
                        blacklisted
                            .iter()
                            .fold(
                                sqlx::query(&blacklist).persistent(false),
                                |query, (token, at)| {
                                    query.bind(&token.jti).bind(at).bind(token.expires_at)
                                },
                            )
                            .execute(&mut *tx)
                            .await?;
                    }
                    tx.commit().await
                }
                .await
            })?;
            if !copied {
                // The recovery that the failure started may have filled Redis from the database
                // before this commit.
                let _ = self.redis_add_many(&denied, now).await;
            }
        }
        Ok(())
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

    /// Finds what the database holds of a page's ids, usernames and emails (see [`Holders`]).
    async fn holders(&self, page: &[DjangoUser]) -> Result<Holders, StoreError> {
        let count = page.len();
        // The statements of a full page are the same every page: worth preparing once. Those of
        // the last page are not; nor are they kept, each being large.
        let cached = count == DJANGO_IMPORT_PAGE;
        let fold_sql = format!(
            "SELECT lower(column2), lower(column3) FROM (VALUES {}) AS page ORDER BY column1",
            rows(self.backend(), "($1, $2, $3)", 3, count)
        );
        let by_username_sql = format!(
            "SELECT username, id FROM users WHERE username IN ({})",
            rows(self.backend(), "$1", 1, count)
        );
        let by_id_sql = format!(
            "SELECT id, username FROM users WHERE id IN ({})",
            rows(self.backend(), "$1", 1, count)
        );
        // Every username and email, empty ones too, so that the statement's shape depends on
        // the page's length only: an empty one matches nothing here, and is not asked about.
        let emails_sql = format!(
            "SELECT lower(email) FROM users WHERE email <> '' AND lower(email) IN ({})",
            rows(self.backend(), "lower($1)", 1, 2 * count)
        );
        let phones_sql = format!(
            "SELECT phone FROM users WHERE phone IS NOT NULL AND phone IN ({})",
            rows(self.backend(), "$1", 1, count)
        );
        let usernames_sql = format!(
            "SELECT lower(username) FROM users WHERE lower(username) IN ({})",
            rows(self.backend(), "lower($1)", 1, count)
        );
        let holders = with_pool!(self, |pool| {
            async {
                let folded: Vec<(String, String)> = page
                    .iter()
                    .enumerate()
                    .fold(
                        sqlx::query_as(&fold_sql).persistent(cached),
                        |query, (index, user)| {
                            query
                                .bind(i64::try_from(index).unwrap_or(i64::MAX))
                                .bind(&user.username)
                                .bind(&user.email)
                        },
                    )
                    .fetch_all(pool)
                    .await?;
                let by_username: Vec<(String, i64)> = page
                    .iter()
                    .fold(
                        sqlx::query_as(&by_username_sql).persistent(cached),
                        |query, user| query.bind(&user.username),
                    )
                    .fetch_all(pool)
                    .await?;
                let by_id: Vec<(i64, String)> = page
                    .iter()
                    .fold(
                        sqlx::query_as(&by_id_sql).persistent(cached),
                        |query, user| query.bind(user.id),
                    )
                    .fetch_all(pool)
                    .await?;
                let emails: Vec<(String,)> = page
                    .iter()
                    .map(|user| &user.username)
                    .chain(page.iter().map(|user| &user.email))
                    .fold(
                        sqlx::query_as(&emails_sql).persistent(cached),
                        |query, value| query.bind(value),
                    )
                    .fetch_all(pool)
                    .await?;
                let phones: Vec<(String,)> = page
                    .iter()
                    .fold(
                        sqlx::query_as(&phones_sql).persistent(cached),
                        |query, user| query.bind(&user.username),
                    )
                    .fetch_all(pool)
                    .await?;
                let usernames: Vec<(String,)> = page
                    .iter()
                    .fold(
                        sqlx::query_as(&usernames_sql).persistent(cached),
                        |query, user| query.bind(&user.email),
                    )
                    .fetch_all(pool)
                    .await?;
                Ok::<_, sqlx::Error>(Holders {
                    folded,
                    by_username: by_username.into_iter().collect(),
                    by_id: by_id.into_iter().collect(),
                    emails: emails.into_iter().map(|(email,)| email).collect(),
                    phones: phones.into_iter().map(|(phone,)| phone).collect(),
                    usernames: usernames.into_iter().map(|(name,)| name).collect(),
                })
            }
            .await
        })?;
        Ok(holders)
    }

    /// Inserts users with their Django ids, in one statement: all or none.
    async fn insert_django_users(&self, users: &[&DjangoUser]) -> Result<(), sqlx::Error> {
        if users.is_empty() {
            return Ok(());
        }
        // identified_since stays 0: the tokens Django issued to the users keep working. The
        // address counts as confirmed from the day the user joined.
        let sql = format!(
            "INSERT INTO users (id, username, email, first_name, last_name, password, \
             is_active, is_staff, is_superuser, date_joined, last_login, email_verified_at) \
             VALUES {}",
            rows(
                self.backend(),
                "($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                USER_BINDS,
                users.len()
            )
        );
        with_writer!(self, |pool| {
            users
                .iter()
                .fold(
                    sqlx::query(&sql).persistent(users.len() == DJANGO_IMPORT_PAGE),
                    |query, user| {
                        query
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
                            .bind(user.date_joined)
                    },
                )
                .execute(pool)
                .await
                .map(|_| ())
        })
    }
}

/// The outcome of each of a page's users, as importing them one by one in page order would
/// have it: each is checked against what the database held before the page (`held`) and
/// against the users of the page imported before it.
fn decide(page: &[DjangoUser], held: &Holders) -> Vec<ImportOutcome> {
    // The page's users imported so far, in the forms `held` keeps.
    let mut usernames: HashMap<&str, i64> = HashMap::new();
    let mut ids: HashMap<i64, &str> = HashMap::new();
    let mut emails: HashSet<&str> = HashSet::new();
    let mut folded_usernames: HashSet<&str> = HashSet::new();
    let mut outcomes = Vec::with_capacity(page.len());
    for (user, (username_folded, email_folded)) in page.iter().zip(&held.folded) {
        let username_holder = held
            .by_username
            .get(&user.username)
            .or_else(|| usernames.get(user.username.as_str()));
        let id_holder = held
            .by_id
            .get(&user.id)
            .map(String::as_str)
            .or_else(|| ids.get(&user.id).copied());
        let email_held = |email: &str| held.emails.contains(email) || emails.contains(email);
        // In the order of `Store::import_django_user`'s checks.
        let outcome = if let Some(&holder) = username_holder {
            if holder == user.id {
                ImportOutcome::Skipped
            } else {
                username_taken(holder)
            }
        } else if let Some(holder) = id_holder {
            id_taken(user.id, holder)
        } else if !user.username.is_empty() && email_held(username_folded) {
            clashes("username", "email")
        } else if !user.username.is_empty() && held.phones.contains(&user.username) {
            clashes("username", "phone")
        } else if !user.email.is_empty()
            && (held.usernames.contains(email_folded)
                || folded_usernames.contains(email_folded.as_str()))
        {
            clashes("email", "username")
        } else if !user.email.is_empty() && email_held(email_folded) {
            taken("email")
        } else {
            ImportOutcome::Imported
        };
        if outcome == ImportOutcome::Imported {
            usernames.insert(user.username.as_str(), user.id);
            ids.insert(user.id, user.username.as_str());
            if !user.email.is_empty() {
                emails.insert(email_folded.as_str());
            }
            folded_usernames.insert(username_folded.as_str());
        }
        outcomes.push(outcome);
    }
    outcomes
}

fn username_taken(holder: i64) -> ImportOutcome {
    ImportOutcome::Failed(format!(
        "the username is taken by another user (id {holder})"
    ))
}

fn id_taken(id: i64, holder: &str) -> ImportOutcome {
    ImportOutcome::Failed(format!("id {id} is taken by another user ({holder})"))
}

fn clashes(field: &str, other: &str) -> ImportOutcome {
    ImportOutcome::Failed(format!("the {field} is another user's {other}"))
}

fn taken(field: &str) -> ImportOutcome {
    ImportOutcome::Failed(format!("the {field} is taken by another user"))
}

/// `count` copies of `row`, comma-separated, in which `$1`…`$width` stand for one row's bound
/// values, in the order they appear; on PostgreSQL each copy's are numbered on from the copy
/// before: `rows(Postgres, "($1, lower($2))", 2, 2)` is `($1, lower($2)), ($3, lower($4))`. On
/// SQLite each is an anonymous `?`: looking up a numbered parameter by its number scans
/// every parameter of the statement, and binding thousands of them took seconds a statement.
fn rows(backend: Backend, row: &str, width: usize, count: usize) -> String {
    let mut sql = String::with_capacity(count * (row.len() + 8 * width));
    for copy in 0..count {
        if copy > 0 {
            sql.push_str(", ");
        }
        let mut rest = row;
        while let Some(at) = rest.find('$') {
            sql.push_str(&rest[..at]);
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            match backend {
                Backend::Postgres => {
                    let number: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
                    let _ = write!(sql, "${}", copy * width + number);
                }
                Backend::Sqlite => sql.push('?'),
            }
            rest = &rest[at + 1 + digits..];
        }
        sql.push_str(rest);
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{memory_store, postgres_store};
    use crate::{NewUser, UserField};

    fn django_user(id: i64, username: &str, email: &str) -> DjangoUser {
        DjangoUser {
            id,
            username: username.into(),
            email: email.into(),
            first_name: String::new(),
            last_name: String::new(),
            password: "pbkdf2_sha256$1$salt$hash".into(),
            is_active: true,
            is_staff: false,
            is_superuser: false,
            date_joined: 100,
            last_login: None,
        }
    }

    /// A user registered in Tollgate before the import: id 1, with a phone number.
    async fn registered(store: &Store) {
        let zed = NewUser {
            username: "zed".into(),
            email: "zed@x.com".into(),
            phone: Some("+15550001".into()),
            password_hash: "argon2$x".into(),
            is_active: true,
            ..NewUser::default()
        };
        let zed = store.create_user(&zed, 1).await.expect("created");
        assert_eq!(zed.id, 1);
    }

    /// Users that collide with the registered one, with each other, and (some) only with
    /// users that failed before them, in id order.
    fn colliding_users() -> Vec<DjangoUser> {
        vec![
            django_user(1, "yan", "yan@x.com"),
            django_user(10, "ann", "ann@example.com"),
            django_user(11, "ANN@EXAMPLE.COM", ""),
            django_user(12, "bob", "Ann@Example.com"),
            // bob failed: his username is free as an email address.
            django_user(13, "cid", "BOB"),
            django_user(14, "dan", "ANN"),
            django_user(15, "ann", ""),
            django_user(16, "+15550001", ""),
            django_user(17, "zed@X.com", ""),
            django_user(18, "eve", ""),
            django_user(19, "fay", ""),
            django_user(20, "ZED", "zed2@x.com"),
            django_user(21, "gus", "zed"),
            django_user(22, "Éva", "éva@x.com"),
            // Another user's username but for case, as PostgreSQL folds it; not as SQLite does.
            django_user(23, "hal", "éVA"),
            django_user(24, "éva@X.com", ""),
            django_user(25, "ida", "ida@x.com"),
        ]
    }

    /// The rows left after an import, for comparing two of them.
    async fn stored(store: &Store, users: &[DjangoUser]) -> Vec<Option<(i64, String, String)>> {
        let mut rows = Vec::new();
        for id in std::iter::once(1).chain(users.iter().map(|user| user.id)) {
            let user = store
                .find_user(UserField::Id, &id.to_string())
                .await
                .expect("query");
            rows.push(user.map(|user| (user.id, user.username, user.email)));
        }
        rows
    }

    async fn import_in_pages(
        store: &Store,
        users: &[DjangoUser],
        size: usize,
    ) -> Vec<ImportOutcome> {
        let mut outcomes = Vec::new();
        for page in users.chunks(size) {
            outcomes.extend(store.import_django_users(page).await.expect("imported"));
        }
        outcomes
    }

    async fn import_row_by_row(store: &Store, users: &[DjangoUser]) -> Vec<ImportOutcome> {
        let mut outcomes = Vec::new();
        for user in users {
            outcomes.push(store.import_django_user(user).await.expect("imported"));
        }
        outcomes
    }

    /// A fresh migrated store: in memory, or on a PostgreSQL database of its own.
    enum Scratch {
        Memory(Store),
        Postgres(crate::testing::ScratchPostgres),
    }

    impl Scratch {
        /// None when PostgreSQL is asked for and unreachable (the test is skipped).
        async fn new(postgres: bool) -> Option<Scratch> {
            if postgres {
                postgres_store().await.map(Scratch::Postgres)
            } else {
                Some(Scratch::Memory(memory_store().await))
            }
        }

        fn store(&self) -> &Store {
            match self {
                Scratch::Memory(store) => store,
                Scratch::Postgres(scratch) => &scratch.store,
            }
        }

        async fn remove(self) {
            match self {
                Scratch::Memory(store) => store.close().await,
                Scratch::Postgres(scratch) => scratch.drop_database().await,
            }
        }
    }

    fn failed(reason: &str) -> ImportOutcome {
        ImportOutcome::Failed(reason.to_owned())
    }

    /// Importing in pages of any size gives the outcomes and rows of importing row by row; a
    /// second import skips what the first imported and fails the rest again.
    async fn pages_import_as_rows_do(postgres: bool) {
        let users = colliding_users();
        let Some(reference) = Scratch::new(postgres).await else {
            return;
        };
        registered(reference.store()).await;
        let expected = import_row_by_row(reference.store(), &users).await;
        let expected_rows = stored(reference.store(), &users).await;
        let expected_again = import_row_by_row(reference.store(), &users).await;
        reference.remove().await;
        // The collisions that do not depend on how the database folds case.
        let imported = ImportOutcome::Imported;
        assert_eq!(
            expected[..13],
            [
                failed("id 1 is taken by another user (zed)"),
                imported.clone(),
                failed("the username is another user's email"),
                failed("the email is taken by another user"),
                imported.clone(),
                failed("the email is another user's username"),
                failed("the username is taken by another user (id 10)"),
                failed("the username is another user's phone"),
                failed("the username is another user's email"),
                imported.clone(),
                imported.clone(),
                imported.clone(),
                failed("the email is another user's username"),
            ]
        );
        // Failures may fail again for another reason: a user imported after them (cid, whose
        // email is bob's username) is there from the start of the second import.
        for (first, again) in expected.iter().zip(&expected_again) {
            match first {
                ImportOutcome::Imported => assert_eq!(*again, ImportOutcome::Skipped),
                _ => assert!(matches!(again, ImportOutcome::Failed(_)), "{again:?}"),
            }
        }

        for size in [1, 3, users.len()] {
            let scratch = Scratch::new(postgres)
                .await
                .expect("reachable a moment ago");
            let store = scratch.store();
            registered(store).await;
            assert_eq!(
                import_in_pages(store, &users, size).await,
                expected,
                "pages of {size}"
            );
            assert_eq!(
                stored(store, &users).await,
                expected_rows,
                "pages of {size}"
            );
            assert_eq!(
                import_in_pages(store, &users, size).await,
                expected_again,
                "pages of {size}, again"
            );
            scratch.remove().await;
        }
    }

    #[tokio::test]
    async fn pages_import_as_rows_do_on_sqlite() {
        pages_import_as_rows_do(false).await;
    }

    #[tokio::test]
    async fn pages_import_as_rows_do_on_postgres() {
        pages_import_as_rows_do(true).await;
    }

    /// A user registered between a page's lookups and its insert fails the row it collides
    /// with, with the reason of a row-by-row import; the rest of the page goes in.
    async fn a_row_written_meanwhile_fails_alone(postgres: bool) {
        let Some(scratch) = Scratch::new(postgres).await else {
            return;
        };
        let store = scratch.store();
        let page = [
            django_user(10, "ann", "ann@x.com"),
            django_user(11, "bob", "bob@x.com"),
            django_user(12, "cid", "cid@x.com"),
        ];
        let decided = decide(&page, &store.holders(&page).await.expect("lookups"));
        assert_eq!(decided, vec![ImportOutcome::Imported; 3]);
        for (username, email) in [("bob", ""), ("cy", "CID@x.com")] {
            let new = NewUser {
                username: username.into(),
                email: email.into(),
                password_hash: "argon2$x".into(),
                ..NewUser::default()
            };
            store.create_user(&new, 1).await.expect("registered");
        }
        assert_eq!(
            store.write_page(&page, decided).await.expect("written"),
            [
                ImportOutcome::Imported,
                failed("the username is taken by another user (id 1)"),
                failed("the email is taken by another user"),
            ]
        );
        let ann = store
            .find_user(UserField::Username, "ann")
            .await
            .expect("query")
            .expect("imported");
        assert_eq!(ann.id, 10);
        scratch.remove().await;
    }

    #[tokio::test]
    async fn a_row_written_meanwhile_fails_alone_on_sqlite() {
        a_row_written_meanwhile_fails_alone(false).await;
    }

    #[tokio::test]
    async fn a_row_written_meanwhile_fails_alone_on_postgres() {
        a_row_written_meanwhile_fails_alone(true).await;
    }

    /// Tokens of more than a page are recorded, blacklisted as Django had them, keep their
    /// user only if it exists, and importing them again changes nothing.
    async fn tokens_import_in_pages(postgres: bool) {
        let Some(scratch) = Scratch::new(postgres).await else {
            return;
        };
        let store = scratch.store();
        store
            .import_django_users(&[django_user(7, "ann", "")])
            .await
            .expect("imported");
        let count = DJANGO_IMPORT_PAGE + 1;
        let tokens: Vec<DjangoToken> = (0..count)
            .map(|n| DjangoToken {
                id: i64::try_from(n).expect("small"),
                jti: format!("jti-{n}"),
                user_id: Some(if n % 2 == 0 { 7 } else { 8 }),
                created_at: Some(900),
                expires_at: 5_000,
                blacklisted_at: (n % 10 == 0).then_some(950),
            })
            .collect();
        let blacklisted = i64::try_from(count.div_ceil(10)).expect("small");
        let recorded = i64::try_from(count).expect("small");
        for _ in 0..2 {
            store
                .import_django_tokens(&tokens, 1_000)
                .await
                .expect("imported");
            assert_eq!(
                store.token_counts().await.expect("counts"),
                (recorded, blacklisted)
            );
        }
        for (jti, listed) in [("jti-0", true), ("jti-1", false), ("jti-2000", true)] {
            assert_eq!(
                store.is_blacklisted(jti).await.expect("query"),
                listed,
                "{jti}"
            );
        }
        let owners: Vec<Option<i64>> = with_pool!(store, |pool| {
            sqlx::query_scalar(
                "SELECT user_id FROM outstanding_tokens WHERE jti IN ('jti-0', 'jti-1') ORDER BY jti",
            )
            .fetch_all(pool)
            .await
        })
        .expect("query");
        assert_eq!(owners, [Some(7), None]);
        scratch.remove().await;
    }

    #[tokio::test]
    async fn tokens_import_in_pages_on_sqlite() {
        tokens_import_in_pages(false).await;
    }

    #[tokio::test]
    async fn tokens_import_in_pages_on_postgres() {
        tokens_import_in_pages(true).await;
    }

    #[test]
    fn rows_number_each_copy_on() {
        use Backend::{Postgres, Sqlite};
        assert_eq!(
            rows(Postgres, "($1, lower($2))", 2, 2),
            "($1, lower($2)), ($3, lower($4))"
        );
        assert_eq!(rows(Postgres, "$1", 1, 3), "$1, $2, $3");
        assert_eq!(
            rows(Sqlite, "($1, lower($2))", 2, 2),
            "(?, lower(?)), (?, lower(?))"
        );
        assert_eq!(rows(Sqlite, "$1", 1, 0), "");
    }
}
