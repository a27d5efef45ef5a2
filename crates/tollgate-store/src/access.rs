//! Access-token revocation: an in-process denylist of access tokens that must stop working
//! before they expire, kept in sync across instances.
//!
//! simplejwt can only blacklist refresh and sliding tokens; an access token lives until its
//! `exp`. With revocation, logout and password change also end live access tokens. A check must
//! cost no network round trip (it runs on every protected request), so every instance keeps
//! the denylist in memory:
//!
//! - the database (`revoked_access`) is the source of truth, loaded when sync starts;
//! - on PostgreSQL, every insert into `revoked_access` fires a `NOTIFY` (a trigger, so that
//!   every writer, the command line included, announces it) that each instance applies as it
//!   arrives; after the listening connection was lost, the instance reloads the table, since
//!   notifications sent meanwhile are gone;
//! - on SQLite (one machine), each instance reads the rows added since its last look once a
//!   second (and, for user changes, the counter that a trigger on `users` moves);
//! - with a Redis denylist (REDIS_URL), each revocation is also published on a Redis channel
//!   that every instance subscribes to; after the subscription was lost, the instance
//!   subscribes again and reloads. Either path suffices; an entry seen twice is harmless.
//!
//! An entry is kept only until the longest access token it could affect has expired, so the
//! denylist stays small: a logout adds entries for the lifetime of one access token.
//!
//! The same channel carries user changes (a trigger on `users`), which bump
//! [`Store::user_epoch`]: caches of users compare it to drop what another instance changed.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::{with_pool, with_writer, Pool, Store, StoreError};

/// What to revoke: the access tokens a revocation ends.
///
/// ```
/// use tollgate_store::Revocation;
///
/// // Logging out a session: every access token minted for it stops working.
/// let session = Revocation::Session { sid: "2f6c…" };
/// // A password change at 1_700_000_000: every token of user 42 issued before it.
/// let user = Revocation::UserBefore { user_id: "42", issued_before: 1_700_000_001 };
/// # let _ = (session, user);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation<'a> {
    /// One access token, by its `jti`; kept until `expires_at` (the token's `exp`).
    Token {
        /// The token's `jti` claim.
        jti: &'a str,
        /// The token's `exp` claim.
        expires_at: i64,
    },
    /// Every access token carrying this `sid` claim (a login session and the tokens refreshed
    /// from it).
    Session {
        /// The `sid` claim.
        sid: &'a str,
    },
    /// Every token of a user whose `iat` is before `issued_before` (epoch seconds). The user is
    /// named as in the token's user-id claim (USER_ID_CLAIM, holding USER_ID_FIELD).
    UserBefore {
        /// The value of the user-id claim.
        user_id: &'a str,
        /// Tokens with `iat < issued_before` are revoked.
        issued_before: i64,
    },
}

/// What a revocation check reads of an access token: its claims, each absent if the token
/// lacks it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccessClaims<'a> {
    /// The `jti` claim.
    pub jti: Option<&'a str>,
    /// The `sid` claim.
    pub sid: Option<&'a str>,
    /// The user-id claim.
    pub user_id: Option<&'a str>,
    /// The `iat` claim.
    pub issued_at: Option<i64>,
}

/// The channel on which inserts into `revoked_access` are announced (see the migration).
const REVOKED_CHANNEL: &str = "tollgate_revoked_access";
/// The channel on which changes of `users` are announced.
const USERS_CHANNEL: &str = "tollgate_user_changed";
/// The Redis channels, after REDIS_KEY_PREFIX, carrying the same payloads.
const REDIS_REVOKED_CHANNEL: &str = "revoked_access";
const REDIS_USERS_CHANNEL: &str = "user_changed";
/// How often SQLite is read for new rows, and how often the listener looks up from waiting.
const POLL: Duration = Duration::from_secs(1);
/// How often expired entries are dropped from memory.
const SWEEP: Duration = Duration::from_secs(60);
/// The longest pause between attempts to listen again after the connection was lost.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The entries, by kind; each value is when the entry may be dropped.
#[derive(Debug, Default)]
struct Entries {
    jtis: HashMap<String, i64>,
    sids: HashMap<String, i64>,
    /// User id claim → (issued_before, until).
    users: HashMap<String, (i64, i64)>,
}

impl Entries {
    fn is_empty(&self) -> bool {
        self.jtis.is_empty() && self.sids.is_empty() && self.users.is_empty()
    }

    fn add(&mut self, row: Row) {
        let keep = |until: &mut i64| *until = (*until).max(row.expires_at);
        match row.kind.as_str() {
            "jti" => keep(self.jtis.entry(row.subject).or_insert(row.expires_at)),
            "sid" => keep(self.sids.entry(row.subject).or_insert(row.expires_at)),
            "user" => {
                let entry = self
                    .users
                    .entry(row.subject)
                    .or_insert((row.issued_before, row.expires_at));
                entry.0 = entry.0.max(row.issued_before);
                entry.1 = entry.1.max(row.expires_at);
            }
            other => tracing::warn!(kind = other, "unknown kind of access revocation ignored"),
        }
    }

    fn sweep(&mut self, now: i64) {
        self.jtis.retain(|_, until| *until > now);
        self.sids.retain(|_, until| *until > now);
        self.users.retain(|_, (_, until)| *until > now);
    }

    fn revokes(&self, token: &AccessClaims<'_>) -> bool {
        token.jti.is_some_and(|jti| self.jtis.contains_key(jti))
            || token.sid.is_some_and(|sid| self.sids.contains_key(sid))
            || token.user_id.is_some_and(|user| {
                self.users.get(user).is_some_and(|&(before, _)| {
                    // A token without `iat` cannot show it is newer than the cut-off.
                    token.issued_at.is_none_or(|iat| iat < before)
                })
            })
    }
}

/// One `revoked_access` row.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
struct Row {
    kind: String,
    subject: String,
    issued_before: i64,
    expires_at: i64,
}

impl Row {
    /// The notification payload for this row (what the PostgreSQL trigger writes).
    fn payload(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.kind, self.expires_at, self.issued_before, self.subject
        )
    }

    /// Reads a notification payload: kind, expires_at, issued_before and subject, separated by
    /// tabs (the subject last, so that it may hold anything).
    fn parse(payload: &str) -> Option<Row> {
        let mut parts = payload.splitn(4, '\t');
        let kind = parts.next()?.to_owned();
        let expires_at = parts.next()?.parse().ok()?;
        let issued_before = parts.next()?.parse().ok()?;
        let subject = parts.next()?.to_owned();
        Some(Row {
            kind,
            subject,
            issued_before,
            expires_at,
        })
    }
}

/// The in-process denylist shared by the clones of a [`Store`].
#[derive(Debug, Default)]
pub(crate) struct AccessDenylist {
    entries: RwLock<Entries>,
    /// Whether `entries` may be non-empty: lets the common case skip the lock.
    any: AtomicBool,
    /// Bumped at every user change seen, and whenever changes may have been missed.
    user_epoch: AtomicU64,
    /// The highest `revoked_access` id read (SQLite polling).
    last_id: AtomicI64,
    /// The `user_changes` counter last read (SQLite polling).
    user_version: AtomicI64,
    /// Whether sync was started.
    started: AtomicBool,
}

impl AccessDenylist {
    fn add(&self, row: Row) {
        if let Ok(mut entries) = self.entries.write() {
            entries.add(row);
            self.any.store(true, Ordering::Release);
        }
    }

    fn add_all(&self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        if let Ok(mut entries) = self.entries.write() {
            for row in rows {
                entries.add(row);
            }
            self.any.store(true, Ordering::Release);
        }
    }

    fn sweep(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.sweep(now);
            self.any.store(!entries.is_empty(), Ordering::Release);
        }
    }

    fn user_changed(&self) {
        self.user_epoch.fetch_add(1, Ordering::AcqRel);
    }
}

impl Revocation<'_> {
    /// The row recording this revocation, kept until `until`.
    fn row(&self, access_lifetime: Duration, now: i64) -> Row {
        let lifetime = i64::try_from(access_lifetime.as_secs()).unwrap_or(i64::MAX);
        let (kind, subject, issued_before, expires_at) = match *self {
            Revocation::Token { jti, expires_at } => ("jti", jti, 0, expires_at),
            Revocation::Session { sid } => ("sid", sid, 0, now.saturating_add(lifetime)),
            Revocation::UserBefore {
                user_id,
                issued_before,
            } => (
                "user",
                user_id,
                issued_before,
                // A token issued just before the cut-off lives at most one lifetime past it.
                issued_before.max(now).saturating_add(lifetime),
            ),
        };
        Row {
            kind: kind.to_owned(),
            subject: subject.to_owned(),
            issued_before,
            expires_at,
        }
    }
}

impl Store {
    /// Revokes live access tokens: records the revocation in the database, applies it to this
    /// instance at once, and (through the database's notification, see the module docs) to
    /// every other instance within about a second. `access_lifetime` is the longest lifetime an
    /// affected access token can have (ACCESS_TOKEN_LIFETIME): session and user entries are kept
    /// that long past `now` (past `issued_before` for users) and then dropped.
    ///
    /// This records unconditionally; the server calls it only with ACCESS_TOKEN_REVOCATION on
    /// (`AppState::revoke_access` checks the setting). Revoking the same thing twice is
    /// harmless.
    ///
    /// ```no_run
    /// # async fn logout(store: tollgate_store::Store, sid: &str) -> Result<(), tollgate_store::StoreError> {
    /// use std::time::Duration;
    /// use tollgate_store::Revocation;
    ///
    /// let now = 1_700_000_000;
    /// store.revoke_access(&Revocation::Session { sid }, Duration::from_secs(300), now).await?;
    /// # Ok(()) }
    /// ```
    pub async fn revoke_access(
        &self,
        revocation: &Revocation<'_>,
        access_lifetime: Duration,
        now: i64,
    ) -> Result<(), StoreError> {
        let row = revocation.row(access_lifetime, now);
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO revoked_access (kind, subject, issued_before, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&row.kind)
            .bind(&row.subject)
            .bind(row.issued_before)
            .bind(row.expires_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        self.publish(REDIS_REVOKED_CHANNEL, row.payload()).await;
        self.access.add(row);
        Ok(())
    }

    /// Publishes on a Redis channel when a Redis denylist is configured and connected. A failure
    /// is only logged: the database (and its notifications) stays the source of truth.
    async fn publish(&self, channel: &str, payload: String) {
        let Some(redis) = &self.redis else {
            return;
        };
        let Some(mut connection) = redis.connection() else {
            return;
        };
        let mut publish = redis::cmd("PUBLISH");
        publish
            .arg(format!("{}{channel}", redis.prefix))
            .arg(payload);
        let sent = crate::denylist::call(publish.query_async::<i64>(&mut connection)).await;
        if let Err(err) = sent {
            tracing::debug!(cause = %err, channel, "cannot publish on redis");
        }
    }

    /// Whether an access token was revoked: a lookup in memory, no I/O. Always false until
    /// [`Store::start_sync`] ran with `access` on, except for revocations made through this
    /// store.
    pub fn is_access_revoked(&self, token: &AccessClaims<'_>) -> bool {
        if !self.access.any.load(Ordering::Acquire) {
            return false;
        }
        self.access
            .entries
            .read()
            .map_or(true, |entries| entries.revokes(token))
    }

    /// A number that changes whenever a user may have changed: through this store, or (once
    /// [`Store::start_sync`] ran with `users` on) through any instance or command on the same
    /// database: at once on PostgreSQL (a notification), within about a second on SQLite (a
    /// polled counter). A cache of users made under one value is stale under another.
    pub fn user_epoch(&self) -> u64 {
        self.access.user_epoch.load(Ordering::Acquire)
    }

    /// Marks users as changed in this process (see [`Store::user_epoch`]) and, with Redis,
    /// tells the other instances.
    pub(crate) async fn users_changed(&self) {
        self.access.user_changed();
        self.publish(REDIS_USERS_CHANNEL, String::new()).await;
    }

    /// Loads the revocations still in force and keeps following new ones (`access`), and user
    /// changes (`users`), in the background until the store is closed. Returns once the
    /// denylist is loaded, so that a server started afterwards refuses every revoked token from
    /// its first request. Does nothing when both are off or when already started.
    pub async fn start_sync(&self, access: bool, users: bool) -> Result<(), StoreError> {
        if !(access || users) || self.access.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.pool {
            Pool::Postgres(pool) => {
                // A connection of its own, outside the pool, held for as long as the store.
                let options = (*pool.connect_options()).clone();
                let own = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(pool.options().get_acquire_timeout())
                    .max_lifetime(None)
                    .idle_timeout(None)
                    .connect_lazy_with(options);
                let listener = listen(&own).await?;
                if access {
                    self.load_access().await?;
                }
                tokio::spawn(follow_postgres(self.clone(), own, listener, access));
            }
            Pool::Sqlite { .. } => {
                if access {
                    self.load_access().await?;
                }
                if users {
                    let version = self.user_changes_version().await?;
                    self.access.user_version.store(version, Ordering::Release);
                }
                tokio::spawn(follow_sqlite(self.clone(), access, users));
            }
        }
        if self.redis.is_some() {
            tokio::spawn(follow_redis(self.clone(), access));
        }
        Ok(())
    }

    /// Reads every revocation still in force into memory.
    async fn load_access(&self) -> Result<(), StoreError> {
        let now = now();
        let (last_id, rows) = with_pool!(self, |pool| {
            async {
                let last: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM revoked_access")
                    .fetch_one(pool)
                    .await?;
                let rows: Vec<Row> = sqlx::query_as(
                    "SELECT kind, subject, issued_before, expires_at FROM revoked_access \
                     WHERE expires_at > $1",
                )
                .bind(now)
                .fetch_all(pool)
                .await?;
                Ok::<_, sqlx::Error>((last.unwrap_or(0), rows))
            }
            .await
        })?;
        let count = rows.len();
        self.access.add_all(rows);
        self.access.last_id.fetch_max(last_id, Ordering::AcqRel);
        tracing::debug!(count, "access revocations loaded");
        Ok(())
    }

    /// Reads the revocations added since the last look (SQLite: one writer, so ids commit in
    /// order and none is skipped).
    async fn poll_access(&self) -> Result<(), StoreError> {
        let after = self.access.last_id.load(Ordering::Acquire);
        let rows: Vec<(i64, String, String, i64, i64)> = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, kind, subject, issued_before, expires_at \
                 FROM revoked_access WHERE id > $1 ORDER BY id",
            )
            .bind(after)
            .fetch_all(pool)
            .await
        })?;
        if let Some(&(last, ..)) = rows.last() {
            self.access.last_id.fetch_max(last, Ordering::AcqRel);
        }
        self.access.add_all(
            rows.into_iter()
                .map(|(_, kind, subject, issued_before, expires_at)| Row {
                    kind,
                    subject,
                    issued_before,
                    expires_at,
                })
                .collect(),
        );
        Ok(())
    }

    /// The SQLite counter of user changes (see its migration).
    async fn user_changes_version(&self) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT version FROM user_changes WHERE id = 1")
                .fetch_one(pool)
                .await
        })?)
    }

    /// Bumps the user epoch if the SQLite counter of user changes moved since the last look.
    async fn poll_users(&self) -> Result<(), StoreError> {
        let version = self.user_changes_version().await?;
        if self.access.user_version.swap(version, Ordering::AcqRel) != version {
            self.access.user_changed();
        }
        Ok(())
    }

    fn is_closed(&self) -> bool {
        with_pool!(self, |pool| pool.is_closed())
    }
}

async fn listen(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, StoreError> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    // A lost connection is reported at once, and re-established here, followed by a reload.
    listener.eager_reconnect(false);
    listener
        .listen_all([REVOKED_CHANNEL, USERS_CHANNEL])
        .await?;
    Ok(listener)
}

/// Applies notifications as they come; after the connection was lost, listens again and then
/// reloads, since what was announced meanwhile is gone. Ends when the store is closed.
async fn follow_postgres(
    store: Store,
    own: sqlx::PgPool,
    first: sqlx::postgres::PgListener,
    access: bool,
) {
    let mut ready = Some(first);
    let mut swept = tokio::time::Instant::now();
    loop {
        let mut listener = match ready.take() {
            Some(listener) => listener,
            None => match listen_again(&store, &own, access).await {
                Some(listener) => listener,
                None => break,
            },
        };
        let lost = loop {
            if store.is_closed() {
                break None;
            }
            if swept.elapsed() >= SWEEP {
                store.access.sweep(now());
                swept = tokio::time::Instant::now();
            }
            match tokio::time::timeout(POLL, listener.try_recv()).await {
                Err(_) => {} // Nothing announced: look up and wait again.
                Ok(Ok(Some(notification))) => match notification.channel() {
                    USERS_CHANNEL => store.access.user_changed(),
                    _ if access => match Row::parse(notification.payload()) {
                        Some(row) => store.access.add(row),
                        None => tracing::warn!("unreadable access revocation notification"),
                    },
                    _ => {}
                },
                Ok(Ok(None)) => break Some("the connection was lost".to_owned()),
                Ok(Err(err)) => break Some(err.to_string()),
            }
        };
        drop(listener);
        let Some(cause) = lost else {
            break;
        };
        tracing::warn!(
            cause,
            "revocation listener interrupted: listening again, then reloading"
        );
    }
    own.close().await;
}

/// Listens again, retrying with growing pauses, then reloads the revocations; None once the
/// store is closed.
async fn listen_again(
    store: &Store,
    own: &sqlx::PgPool,
    access: bool,
) -> Option<sqlx::postgres::PgListener> {
    let mut pause = Duration::from_millis(100);
    loop {
        if store.is_closed() {
            return None;
        }
        let reloaded = async {
            let listener = listen(own).await?;
            if access {
                store.load_access().await?;
            }
            Ok::<_, StoreError>(listener)
        };
        match reloaded.await {
            Ok(listener) => {
                // Users may have changed while nobody listened.
                store.access.user_changed();
                tracing::info!("revocation listener back: access revocations reloaded");
                return Some(listener);
            }
            Err(err) => {
                tracing::debug!(cause = %err, "revocation listener still down");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Applies what other instances publish on Redis; after the subscription was lost, subscribes
/// again and reloads. Ends when the store is closed.
async fn follow_redis(store: Store, access: bool) {
    use futures_util::StreamExt;
    let Some(redis) = store.redis.clone() else {
        return;
    };
    let revoked = format!("{}{REDIS_REVOKED_CHANNEL}", redis.prefix);
    let users = format!("{}{REDIS_USERS_CHANNEL}", redis.prefix);
    let mut pause = Duration::from_millis(100);
    let mut subscribed_before = false;
    while !store.is_closed() {
        let subscribe = async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub
                .subscribe(&[revoked.as_str(), users.as_str()])
                .await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match crate::denylist::call(subscribe).await {
            Ok(pubsub) => pubsub,
            Err(err) => {
                tracing::debug!(cause = %err, "redis revocation channel still down");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // Subscribed first, reloaded second: nothing published meanwhile is missed.
        if access {
            if let Err(err) = store.load_access().await {
                tracing::warn!(cause = %err, "cannot reload access revocations");
                tokio::time::sleep(pause).await;
                continue;
            }
        }
        if subscribed_before {
            store.access.user_changed();
            tracing::info!("redis revocation channel back: access revocations reloaded");
        }
        subscribed_before = true;
        pause = Duration::from_millis(100);
        let mut messages = pubsub.into_on_message();
        loop {
            let message = match tokio::time::timeout(POLL, messages.next()).await {
                Err(_) if store.is_closed() => return,
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(message)) => message,
            };
            if message.get_channel_name() == users {
                store.access.user_changed();
            } else if access {
                let payload: String = message.get_payload().unwrap_or_default();
                match Row::parse(&payload) {
                    Some(row) => store.access.add(row),
                    None => tracing::warn!("unreadable access revocation on redis"),
                }
            }
        }
        tracing::warn!("redis revocation channel lost: subscribing again, then reloading");
    }
}

/// Reads new revocations and the user change counter once a second until the store is closed.
async fn follow_sqlite(store: Store, access: bool, users: bool) {
    let mut swept = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(POLL).await;
        if store.is_closed() {
            return;
        }
        if access {
            if let Err(err) = store.poll_access().await {
                tracing::warn!(cause = %err, "cannot read new access revocations");
            }
        }
        if users {
            if let Err(err) = store.poll_users().await {
                // Unknown whether users changed meanwhile: drop what is cached.
                store.access.user_changed();
                tracing::warn!(cause = %err, "cannot read the user change counter");
            }
        }
        if swept.elapsed() >= SWEEP {
            store.access.sweep(now());
            swept = tokio::time::Instant::now();
        }
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// The denylist shared by a new store's clones.
pub(crate) fn new_denylist() -> Arc<AccessDenylist> {
    Arc::default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    const LIFETIME: Duration = Duration::from_secs(300);

    fn token<'a>(jti: &'a str, sid: Option<&'a str>, user: &'a str, iat: i64) -> AccessClaims<'a> {
        AccessClaims {
            jti: Some(jti),
            sid,
            user_id: Some(user),
            issued_at: Some(iat),
        }
    }

    #[tokio::test]
    async fn each_kind_of_revocation_refuses_only_its_tokens() {
        let store = memory_store().await;
        let now = 1_000;
        assert!(!store.is_access_revoked(&token("a", Some("s1"), "7", now)));
        store
            .revoke_access(
                &Revocation::Token {
                    jti: "a",
                    expires_at: now + 300,
                },
                LIFETIME,
                now,
            )
            .await
            .expect("recorded");
        store
            .revoke_access(&Revocation::Session { sid: "s1" }, LIFETIME, now)
            .await
            .expect("recorded");
        store
            .revoke_access(
                &Revocation::UserBefore {
                    user_id: "7",
                    issued_before: now,
                },
                LIFETIME,
                now,
            )
            .await
            .expect("recorded");
        assert!(store.is_access_revoked(&token("a", None, "8", now)));
        assert!(store.is_access_revoked(&token("b", Some("s1"), "8", now)));
        assert!(!store.is_access_revoked(&token("b", Some("s2"), "8", now)));
        assert!(store.is_access_revoked(&token("b", None, "7", now - 1)));
        assert!(
            !store.is_access_revoked(&token("b", None, "7", now)),
            "issued at the cut-off"
        );
        let no_iat = AccessClaims {
            user_id: Some("7"),
            ..AccessClaims::default()
        };
        assert!(store.is_access_revoked(&no_iat));
    }

    #[tokio::test]
    async fn a_second_store_loads_revocations_and_follows_new_ones() {
        let dir = std::env::temp_dir().join(format!("tollgate-access-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let first = Store::connect(&url, crate::PoolConfig::default())
            .await
            .expect("connects");
        first.migrate().await.expect("migrates");
        let now = now();
        first
            .revoke_access(&Revocation::Session { sid: "early" }, LIFETIME, now)
            .await
            .expect("recorded");
        // Expired long ago: not loaded.
        first
            .revoke_access(&Revocation::Session { sid: "old" }, LIFETIME, now - 1000)
            .await
            .expect("recorded");
        let second = Store::connect(&url, crate::PoolConfig::default())
            .await
            .expect("connects");
        second.start_sync(true, false).await.expect("loads");
        let with_sid = |sid| AccessClaims {
            sid: Some(sid),
            ..AccessClaims::default()
        };
        assert!(second.is_access_revoked(&with_sid("early")));
        second.access.sweep(now);
        assert!(!second.is_access_revoked(&with_sid("old")));
        first
            .revoke_access(&Revocation::Session { sid: "late" }, LIFETIME, now)
            .await
            .expect("recorded");
        let mut seen = false;
        for _ in 0..50 {
            if second.is_access_revoked(&with_sid("late")) {
                seen = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(seen, "the second store never read the new revocation");
        first.close().await;
        second.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Whether `store`'s user epoch moves away from `from` within a few poll intervals.
    async fn epoch_moves(store: &Store, from: u64) -> bool {
        for _ in 0..30 {
            if store.user_epoch() != from {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test]
    async fn a_user_changed_by_another_process_on_sqlite_moves_the_epoch() {
        let dir = std::env::temp_dir().join(format!("tollgate-users-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let url = format!("sqlite://{}/db.sqlite", dir.display());
        let watcher = Store::connect(&url, crate::PoolConfig::default())
            .await
            .expect("connects");
        watcher.migrate().await.expect("migrates");
        // Another process's writes reach the file only: a second store stands for it.
        let other = Store::connect(&url, crate::PoolConfig::default())
            .await
            .expect("connects");
        let new = crate::NewUser {
            username: "ann".into(),
            password_hash: "x".into(),
            is_active: true,
            ..crate::NewUser::default()
        };
        let user = other.create_user(&new, 1).await.expect("created");
        watcher.start_sync(false, true).await.expect("follows");

        // A login's last_login update is not a change of the user.
        let epoch = watcher.user_epoch();
        other.set_last_login(user.id, 2).await.expect("updated");
        tokio::time::sleep(POLL * 2).await;
        assert_eq!(
            watcher.user_epoch(),
            epoch,
            "last_login alone moved the epoch"
        );

        // A deactivation is, and so is a deletion.
        other.set_active(user.id, false).await.expect("updated");
        assert!(epoch_moves(&watcher, epoch).await, "deactivation unseen");
        let epoch = watcher.user_epoch();
        other.delete_user(user.id).await.expect("deleted");
        assert!(epoch_moves(&watcher, epoch).await, "deletion unseen");

        watcher.close().await;
        other.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn notification_payloads_round_trip() {
        assert_eq!(
            Row::parse("user\t1300\t1000\tann\twith a tab"),
            Some(Row {
                kind: "user".into(),
                subject: "ann\twith a tab".into(),
                issued_before: 1000,
                expires_at: 1300,
            })
        );
        assert_eq!(Row::parse("jti\tsoon\t0\tx"), None);
    }

    #[test]
    fn sweeping_drops_only_expired_entries() {
        let list = AccessDenylist::default();
        list.add(Revocation::Session { sid: "a" }.row(LIFETIME, 0));
        list.add(Revocation::Session { sid: "b" }.row(LIFETIME, 1000));
        list.sweep(500);
        let entries = list.entries.read().expect("lock");
        assert!(!entries.sids.contains_key("a"));
        assert!(entries.sids.contains_key("b"));
    }
}
