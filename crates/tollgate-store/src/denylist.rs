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
//! down) and sets the marker again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::{Store, StoreError};

/// How long one Redis call may take before it counts as a failure.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// The pause between attempts to reach Redis again.
const RECOVERY_PAUSE: Duration = Duration::from_millis(250);
/// Blacklist rows copied per round trip when filling Redis.
const SYNC_PAGE: i64 = 1000;

/// A Redis denylist shared by the clones of a [`Store`].
pub(crate) struct RedisDenylist {
    pub(crate) client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    pub(crate) prefix: String,
    /// Whether Redis may be asked: the last call succeeded and the marker was seen or set.
    pub(crate) healthy: AtomicBool,
    /// Whether a background recovery is running.
    recovering: AtomicBool,
}

impl std::fmt::Debug for RedisDenylist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDenylist")
            .field("prefix", &self.prefix)
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish()
    }
}

impl RedisDenylist {
    fn key(&self, jti: &str) -> String {
        format!("{}denylist:{jti}", self.prefix)
    }

    fn marker(&self) -> String {
        format!("{}denylist:synced", self.prefix)
    }

    /// The sorted set of a throttle subject's failed logins (see `failures`).
    pub(crate) fn failures_key(&self, subject: &str) -> String {
        format!("{}login_failures:{subject}", self.prefix)
    }

    pub(crate) fn connection(&self) -> Option<ConnectionManager> {
        self.connection.lock().ok().and_then(|c| c.clone())
    }

    async fn connect(&self) -> Result<ConnectionManager, redis::RedisError> {
        if let Some(connection) = self.connection() {
            return Ok(connection);
        }
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(CALL_TIMEOUT)
            .set_response_timeout(CALL_TIMEOUT)
            .set_number_of_retries(1);
        let connection = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        if let Ok(mut slot) = self.connection.lock() {
            *slot = Some(connection.clone());
        }
        Ok(connection)
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "redis call timed out"))
}

pub(crate) async fn call<T>(
    work: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> redis::RedisResult<T> {
    tokio::time::timeout(CALL_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| Err(timed_out()))
}

impl Store {
    /// This store with a Redis denylist at `url`, its keys starting with `prefix`. Fails only
    /// on a malformed URL: an unreachable Redis is tried again in the background while checks
    /// go to the database.
    pub async fn with_redis(mut self, url: &str, prefix: &str) -> Result<Store, StoreError> {
        let client = redis_client(url)?;
        let denylist = Arc::new(RedisDenylist {
            client,
            connection: Mutex::new(None),
            prefix: prefix.to_owned(),
            healthy: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
        });
        self.redis = Some(Arc::clone(&denylist));
        // Fill Redis if no instance has yet; with Redis down, this keeps retrying.
        self.recover(false);
        Ok(self)
    }

    /// Whether blacklist checks currently go to Redis; None without REDIS_URL.
    pub fn redis_healthy(&self) -> Option<bool> {
        self.redis
            .as_ref()
            .map(|r| r.healthy.load(Ordering::Acquire))
    }

    /// One round trip to Redis; None without REDIS_URL.
    pub async fn ping_redis(&self) -> Option<bool> {
        let redis = self.redis.as_ref()?;
        let answered = async {
            let mut connection = redis.connect().await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        Some(call(answered).await.is_ok())
    }

    /// Publishes on a Redis channel when a Redis denylist is configured and connected. A failure
    /// is only logged: the database (and its notifications) stays the source of truth.
    pub(crate) async fn publish(&self, channel: &str, payload: String) {
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
        let sent = call(publish.query_async::<i64>(&mut connection)).await;
        if let Err(err) = sent {
            tracing::debug!(cause = %err, channel, "cannot publish on redis");
        }
    }

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
        let Some(redis) = self.redis.as_ref() else {
            return true;
        };
        let Ok(ttl) = u64::try_from(expires_at.saturating_sub(now)) else {
            return true; // Already expired: nothing to refuse.
        };
        if ttl == 0 {
            return true;
        }
        let Some(mut connection) = redis.connection() else {
            // Not connected: the recovery running in the background copies it from the database.
            return false;
        };
        let mut set = redis::cmd("SET");
        set.arg(redis.key(jti)).arg(1).arg("EX").arg(ttl);
        match call(set.query_async::<()>(&mut connection)).await {
            Ok(()) => true,
            Err(err) => {
                // Other instances may still trust a Redis that now lacks this jti: recovery
                // drops the marker first thing.
                self.redis_failed(&err);
                false
            }
        }
    }

    /// After a failed Redis call: blacklist checks go to the database, and Redis is refilled
    /// in the background once it answers (it may have missed writes meanwhile).
    pub(crate) fn redis_failed(&self, err: &redis::RedisError) {
        self.degrade(&err.to_string());
        self.recover(true);
    }

    fn degrade(&self, cause: &str) {
        if let Some(redis) = &self.redis {
            if redis.healthy.swap(false, Ordering::AcqRel) {
                tracing::warn!(
                    cause,
                    "redis denylist unavailable: blacklist checks go to the database"
                );
            }
        }
    }

    /// Starts the background recovery unless one runs: reach Redis, fill it from the database
    /// (always when `refill`, else only if the marker is missing), then trust it again.
    fn recover(&self, refill: bool) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        if redis.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let database = Store {
            pool: self.pool.clone(),
            rotations: self.rotations.clone(),
            redis: None,
            revoked: Arc::clone(&self.revoked),
            feed: Arc::clone(&self.feed),
        };
        tokio::spawn(async move {
            let mut refill = refill;
            loop {
                match sync(&redis, &database, refill).await {
                    Ok(()) => break,
                    Err(err) => {
                        tracing::debug!(cause = %err, "redis denylist still unavailable");
                        // Whatever happened meanwhile, the next successful contact refills.
                        refill = true;
                        tokio::time::sleep(RECOVERY_PAUSE).await;
                    }
                }
            }
            redis.healthy.store(true, Ordering::Release);
            redis.recovering.store(false, Ordering::Release);
            tracing::info!("redis denylist available: blacklist checks use it");
        });
    }
}

/// Makes Redis hold every live blacklisted jti and the marker.
async fn sync(redis: &RedisDenylist, database: &Store, refill: bool) -> Result<(), StoreError> {
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
    let now = tollgate_now();
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

fn tollgate_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Checks REDIS_URL as [`Store::with_redis`] reads it, without connecting: `tollgate check`
/// refuses what `serve` would refuse.
pub fn check_redis_url(url: &str) -> Result<(), StoreError> {
    redis_client(url).map(drop)
}

fn redis_client(url: &str) -> Result<redis::Client, StoreError> {
    redis::Client::open(url).map_err(StoreError::Redis)
}
