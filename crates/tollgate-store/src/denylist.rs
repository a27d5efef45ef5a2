//! The Redis denylist: blacklisted jtis kept in Redis, each with a TTL equal to its token's
//! remaining lifetime, so that checking a token costs one Redis lookup instead of a database
//! query. The database stays the source of truth.
//!
//! Redis is believed when it says "not blacklisted" only while it holds the `synced` marker,
//! which an instance sets after copying every live blacklist row from the database into Redis.
//! A Redis that restarted empty has no marker, so nobody trusts it until it is filled again.
//! When a Redis call fails, the instance falls back to the database (never accepting a
//! blacklisted token), logs the degradation once, and retries in the background; when Redis
//! answers again it drops the marker, copies the rows (including those blacklisted while it was
//! down) and sets the marker again. The connection, its health and that recovery are
//! `redis_connection`'s.

use std::sync::atomic::Ordering;

use crate::redis_connection::{call, RedisConnection};
use crate::{Store, StoreError};

/// Blacklist rows copied per round trip when filling Redis.
const SYNC_PAGE: i64 = 1000;

impl RedisConnection {
    fn key(&self, jti: &str) -> String {
        format!("{}denylist:{jti}", self.prefix)
    }

    fn marker(&self) -> String {
        format!("{}denylist:synced", self.prefix)
    }
}

impl Store {
    /// Asks Redis whether `jti` is blacklisted: Some(answer) when Redis can be believed, None
    /// when the database must be asked.
    pub(crate) async fn redis_says_blacklisted(&self, jti: &str) -> Option<bool> {
        let redis = self.redis.as_ref()?;
        if !redis.healthy.load(Ordering::Acquire) {
            return None;
        }
        let mut connection = redis.connection()?;
        let mut pipe = redis::pipe();
        pipe.exists(redis.marker()).exists(redis.key(jti));
        match call(pipe.query_async::<(bool, bool)>(&mut connection)).await {
            Ok((true, listed)) => Some(listed),
            Ok((false, _)) => {
                // Redis lost its contents (a restart without persistence): fill it again.
                self.degrade("redis holds no synced denylist");
                self.recover(false);
                None
            }
            Err(err) => {
                self.degrade(&err.to_string());
                self.recover(true);
                None
            }
        }
    }

    /// Copies a blacklisted jti into Redis, expiring with its token. Whether Redis now holds
    /// it or need not (no Redis, token expired); false when it could not be written.
    pub(crate) async fn redis_add(&self, jti: &str, expires_at: i64, now: i64) -> bool {
        self.redis_add_many(&[(jti, expires_at)], now).await
    }

    /// [`Store::redis_add`] for many `(jti, expires_at)` at once, in one pipeline: whether
    /// Redis now holds them all or need not; false when they could not be written.
    pub(crate) async fn redis_add_many(&self, tokens: &[(&str, i64)], now: i64) -> bool {
        let Some(redis) = self.redis.as_ref() else {
            return true;
        };
        let mut pipe = redis::pipe();
        for &(jti, expires_at) in tokens {
            // An expired token has nothing to refuse.
            match u64::try_from(expires_at.saturating_sub(now)) {
                Ok(ttl) if ttl > 0 => {
                    pipe.cmd("SET")
                        .arg(redis.key(jti))
                        .arg(1)
                        .arg("EX")
                        .arg(ttl)
                        .ignore();
                }
                _ => {}
            }
        }
        if pipe.is_empty() {
            return true;
        }
        let Some(mut connection) = redis.connection() else {
            // Not connected: the recovery running in the background copies them from the
            // database.
            return false;
        };
        match call(pipe.query_async::<()>(&mut connection)).await {
            Ok(()) => true,
            Err(err) => {
                // Other instances may still trust a Redis that now lacks these jtis: recovery
                // drops the marker first thing.
                self.redis_failed(&err);
                false
            }
        }
    }
}

/// Makes Redis hold every live blacklisted jti and the marker.
pub(crate) async fn fill(
    redis: &RedisConnection,
    database: &Store,
    refill: bool,
) -> Result<(), StoreError> {
    let mut connection = call(redis.connect()).await.map_err(StoreError::redis)?;
    let marked = call(
        redis::cmd("EXISTS")
            .arg(redis.marker())
            .query_async::<bool>(&mut connection),
    )
    .await
    .map_err(StoreError::redis)?;
    if marked && !refill {
        return Ok(());
    }
    // Nobody may trust Redis while it is being filled.
    call(
        redis::cmd("DEL")
            .arg(redis.marker())
            .query_async::<()>(&mut connection),
    )
    .await
    .map_err(StoreError::redis)?;
    let now = crate::now();
    let mut after = 0;
    let mut copied = 0u64;
    loop {
        let page = database.live_blacklist_page(after, now, SYNC_PAGE).await?;
        let Some(&(last, _, _)) = page.last() else {
            break;
        };
        let mut pipe = redis::pipe();
        for (_, jti, expires_at) in &page {
            pipe.cmd("SET")
                .arg(redis.key(jti))
                .arg(1)
                .arg("EX")
                .arg((expires_at - now).max(1))
                .ignore();
        }
        call(pipe.query_async::<()>(&mut connection))
            .await
            .map_err(StoreError::redis)?;
        copied += page.len() as u64;
        after = last;
    }
    call(
        redis::cmd("SET")
            .arg(redis.marker())
            .arg(1)
            .query_async::<()>(&mut connection),
    )
    .await
    .map_err(StoreError::redis)?;
    tracing::info!(copied, "redis denylist filled from the database");
    Ok(())
}
