//! The cross-instance change feed: how each instance learns of what the others changed, so
//! that its in-memory state (the revoked access tokens of `revocations`, caches of users keyed
//! by [`Store::user_epoch`]) follows theirs.
//!
//! - On PostgreSQL, every insert into `revoked_access` and every change of `users` fires a
//!   `NOTIFY` (a trigger, so that every writer, the command line included, announces it) that
//!   each instance applies as it arrives; after the listening connection was lost, the
//!   instance reloads the revocations and counts users as changed, since notifications sent
//!   meanwhile are gone.
//! - On SQLite (one machine), each instance reads the revocations added since its last look
//!   once a second, and the counter that a trigger on `users` moves.
//! - With Redis (REDIS_URL), each revocation and user change made by an instance is also
//!   published on a Redis channel that every instance subscribes to; after the subscription
//!   was lost, the instance subscribes again and reloads. Either path suffices; a change seen
//!   twice is harmless.
//!
//! The feed runs in background tasks started by [`Store::start_sync`]; they end when the
//! store is closed or every caller's copy of it is dropped (see `background`).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use crate::now;
use crate::revocations::Row;
use crate::{with_pool, Pool, Store, StoreError};

/// The channel on which inserts into `revoked_access` are announced (see the migration).
const REVOKED_CHANNEL: &str = "tollgate_revoked_access";
/// The channel on which changes of `users` are announced.
const USERS_CHANNEL: &str = "tollgate_user_changed";
/// The Redis channels, after REDIS_KEY_PREFIX, carrying the same payloads.
const REDIS_REVOKED_CHANNEL: &str = "revoked_access";
const REDIS_USERS_CHANNEL: &str = "user_changed";
/// How often SQLite is read for new rows, and how often the listener looks up from waiting.
const POLL: Duration = Duration::from_secs(1);
/// How often expired revocations are dropped from memory.
const SWEEP: Duration = Duration::from_secs(60);
/// The longest pause between attempts to listen again after the connection was lost.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// The feed's state, shared by the clones of a [`Store`].
#[derive(Debug, Default)]
pub(crate) struct Feed {
    /// Bumped at every user change seen, and whenever changes may have been missed.
    user_epoch: AtomicU64,
    /// The `user_changes` counter last read (SQLite polling).
    user_version: AtomicI64,
    /// Whether the feed was started.
    started: AtomicBool,
}

impl Feed {
    fn user_changed(&self) {
        self.user_epoch.fetch_add(1, Ordering::AcqRel);
    }
}

impl Store {
    /// A number that changes whenever a user may have changed: through this store, or (once
    /// [`Store::start_sync`] ran with `users` on) through any instance or command on the same
    /// database: at once on PostgreSQL (a notification), within about a second on SQLite (a
    /// polled counter). A cache of users made under one value is stale under another.
    pub fn user_epoch(&self) -> u64 {
        self.feed.user_epoch.load(Ordering::Acquire)
    }

    /// Marks users as changed in this process (see [`Store::user_epoch`]) and, with Redis,
    /// tells the other instances.
    pub(crate) async fn users_changed(&self) {
        self.feed.user_changed();
        self.publish(REDIS_USERS_CHANNEL, String::new()).await;
    }

    /// Tells the other instances, through Redis when configured, of a revocation just
    /// recorded. The database announces it too (PostgreSQL) or is polled for it (SQLite).
    pub(crate) async fn announce_revocation(&self, row: &Row) {
        self.publish(REDIS_REVOKED_CHANNEL, row.payload()).await;
    }

    /// Loads the revocations still in force and keeps following new ones (`access`), and user
    /// changes (`users`), in the background until the store is closed or every caller's copy
    /// of it is dropped (see `background`). Returns once the
    /// denylist is loaded, so that a server started afterwards refuses every revoked token from
    /// its first request. Does nothing when both are off or when already started.
    pub async fn start_sync(&self, access: bool, users: bool) -> Result<(), StoreError> {
        if !(access || users) || self.feed.started.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        match &self.pool {
            Pool::Postgres(pool) => {
                // A connection of its own, outside the pool, held for as long as the feed runs.
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
                tokio::spawn(follow_postgres(self.for_task(), own, listener, access));
            }
            Pool::Sqlite { .. } => {
                if access {
                    self.load_access().await?;
                }
                if users {
                    let version = self.user_changes_version().await?;
                    self.feed.user_version.store(version, Ordering::Release);
                }
                tokio::spawn(follow_sqlite(self.for_task(), access, users));
            }
        }
        if self.redis.is_some() {
            tokio::spawn(follow_redis(self.for_task(), access));
        }
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
        if self.feed.user_version.swap(version, Ordering::AcqRel) != version {
            self.feed.user_changed();
        }
        Ok(())
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
/// reloads, since what was announced meanwhile is gone. Ends when the feed does
/// ([`Store::ended`]).
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
            if store.ended() {
                break None;
            }
            if swept.elapsed() >= SWEEP {
                store.revoked.sweep(now());
                swept = tokio::time::Instant::now();
            }
            let received = tokio::select! {
                () = store.until_dropped() => break None,
                received = tokio::time::timeout(POLL, listener.try_recv()) => received,
            };
            match received {
                Err(_) => {} // Nothing announced: look up and wait again.
                Ok(Ok(Some(notification))) => match notification.channel() {
                    USERS_CHANNEL => store.feed.user_changed(),
                    _ if access => match Row::parse(notification.payload()) {
                        Some(row) => store.revoked.add(row),
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
/// feed ended.
async fn listen_again(
    store: &Store,
    own: &sqlx::PgPool,
    access: bool,
) -> Option<sqlx::postgres::PgListener> {
    let mut pause = Duration::from_millis(100);
    loop {
        if store.ended() {
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
                store.feed.user_changed();
                tracing::info!("revocation listener back: access revocations reloaded");
                return Some(listener);
            }
            Err(err) => {
                tracing::debug!(cause = %err, "revocation listener still down");
                store.pause(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Applies what other instances publish on Redis; after the subscription was lost, subscribes
/// again and reloads. Ends when the feed does.
async fn follow_redis(store: Store, access: bool) {
    use futures_util::StreamExt;
    let Some(redis) = store.redis.clone() else {
        return;
    };
    let revoked = format!("{}{REDIS_REVOKED_CHANNEL}", redis.prefix);
    let users = format!("{}{REDIS_USERS_CHANNEL}", redis.prefix);
    let mut pause = Duration::from_millis(100);
    let mut subscribed_before = false;
    while !store.ended() {
        let subscribe = async {
            let mut pubsub = redis.client.get_async_pubsub().await?;
            pubsub
                .subscribe(&[revoked.as_str(), users.as_str()])
                .await?;
            Ok::<_, redis::RedisError>(pubsub)
        };
        let pubsub = match crate::redis_connection::call(subscribe).await {
            Ok(pubsub) => pubsub,
            Err(err) => {
                tracing::debug!(cause = %err, "redis revocation channel still down");
                store.pause(pause).await;
                pause = (pause * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        // Subscribed first, reloaded second: nothing published meanwhile is missed.
        if access {
            if let Err(err) = store.load_access().await {
                tracing::warn!(cause = %err, "cannot reload access revocations");
                store.pause(pause).await;
                continue;
            }
        }
        if subscribed_before {
            store.feed.user_changed();
            tracing::info!("redis revocation channel back: access revocations reloaded");
        }
        subscribed_before = true;
        pause = Duration::from_millis(100);
        let mut messages = pubsub.into_on_message();
        loop {
            let next = tokio::select! {
                () = store.until_dropped() => return,
                next = tokio::time::timeout(POLL, messages.next()) => next,
            };
            let message = match next {
                Err(_) if store.ended() => return,
                Err(_) => continue,
                Ok(None) => break,
                Ok(Some(message)) => message,
            };
            if message.get_channel_name() == users {
                store.feed.user_changed();
            } else if access {
                let payload: String = message.get_payload().unwrap_or_default();
                match Row::parse(&payload) {
                    Some(row) => store.revoked.add(row),
                    None => tracing::warn!("unreadable access revocation on redis"),
                }
            }
        }
        tracing::warn!("redis revocation channel lost: subscribing again, then reloading");
    }
}

/// Reads new revocations and the user change counter once a second until the feed ends.
async fn follow_sqlite(store: Store, access: bool, users: bool) {
    let mut swept = tokio::time::Instant::now();
    loop {
        store.pause(POLL).await;
        if store.ended() {
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
                store.feed.user_changed();
                tracing::warn!(cause = %err, "cannot read the user change counter");
            }
        }
        if swept.elapsed() >= SWEEP {
            store.revoked.sweep(now());
            swept = tokio::time::Instant::now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{AccessClaims, Revocation};

    const LIFETIME: Duration = Duration::from_secs(300);

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
        second.revoked.sweep(now);
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

    /// Counts the connections to `database` until none is left, for at most five seconds.
    async fn connections_left(database: &crate::testing::ScratchDatabase) -> i64 {
        let mut left = database.connections().await;
        for _ in 0..50 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            left = database.connections().await;
        }
        left
    }

    #[tokio::test]
    async fn dropping_the_last_handle_ends_the_feed_and_closes_its_connections() {
        let Some(scratch) = crate::testing::postgres_store().await else {
            return;
        };
        let (store, database) = scratch.into_parts();
        store.start_sync(true, true).await.expect("follows");
        // Every kind of connection open: the pool's, the listener's, the rotation writer's.
        let record = |jti| crate::TokenRecord {
            jti,
            user_id: None,
            created_at: Some(1),
            expires_at: i64::MAX,
            session_id: None,
        };
        store
            .rotate(&record("old"), &record("new"), 1)
            .await
            .expect("rotated");
        store
            .revoke_access(&Revocation::Session { sid: "s" }, LIFETIME, now())
            .await
            .expect("recorded");
        let clone = store.clone();
        assert!(database.connections().await >= 3, "connections not open");

        drop(store);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            database.connections().await >= 3,
            "a clone still in use lost its connections"
        );
        assert!(clone.is_access_revoked(&AccessClaims {
            sid: Some("s"),
            ..AccessClaims::default()
        }));
        drop(clone);
        let left = connections_left(&database).await;
        database.drop_database().await;
        assert_eq!(left, 0, "connections left open after the store was dropped");
    }

    #[tokio::test]
    async fn an_unreachable_redis_keeps_no_dropped_store_connected() {
        let Some(scratch) = crate::testing::postgres_store().await else {
            return;
        };
        let (store, database) = scratch.into_parts();
        // Nothing listens on port 1: the Redis recovery and subscription keep retrying.
        let store = store
            .with_redis("redis://127.0.0.1:1/", "tollgate-test-dropped:")
            .await
            .expect("a valid URL");
        store.start_sync(true, true).await.expect("follows");
        store.ping().await.expect("answers");
        drop(store);
        let left = connections_left(&database).await;
        database.drop_database().await;
        assert_eq!(left, 0, "connections left open after the store was dropped");
    }
}
