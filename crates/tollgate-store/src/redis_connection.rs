//! The connection to Redis (REDIS_URL), shared by the denylist (`denylist`), the shared
//! failure counts (`failures`) and the change feed's channels (`change_feed`).
//!
//! Every call is bounded by [`CALL_TIMEOUT`]. Redis is asked only while it is healthy: the
//! last call succeeded and the denylist in it is complete. When a call fails, the instance
//! logs the degradation once, callers go to the database, and a background task reaches Redis
//! again and refills the denylist before Redis is trusted again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::ConnectionManager;

use crate::{Store, StoreError};

/// How long one Redis call may take before it counts as a failure.
const CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// The pause between attempts to reach Redis again.
const RECOVERY_PAUSE: Duration = Duration::from_millis(250);

/// The connection to Redis, shared by the clones of a [`Store`].
pub(crate) struct RedisConnection {
    pub(crate) client: redis::Client,
    connection: Mutex<Option<ConnectionManager>>,
    pub(crate) prefix: String,
    /// Whether Redis may be asked: the last call succeeded and the denylist in Redis is
    /// complete (its marker was seen or set, see `denylist`).
    pub(crate) healthy: AtomicBool,
    /// Whether a background recovery is running.
    recovering: AtomicBool,
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConnection")
            .field("prefix", &self.prefix)
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish()
    }
}

impl RedisConnection {
    pub(crate) fn connection(&self) -> Option<ConnectionManager> {
        self.connection.lock().ok().and_then(|c| c.clone())
    }

    pub(crate) async fn connect(&self) -> Result<ConnectionManager, redis::RedisError> {
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

/// Runs a Redis call, failing it when Redis does not answer within [`CALL_TIMEOUT`].
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
        let connection = Arc::new(RedisConnection {
            client,
            connection: Mutex::new(None),
            prefix: prefix.to_owned(),
            healthy: AtomicBool::new(false),
            recovering: AtomicBool::new(false),
        });
        self.redis = Some(Arc::clone(&connection));
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

    /// After a failed Redis call: blacklist checks go to the database, and Redis is refilled
    /// in the background once it answers (it may have missed writes meanwhile).
    pub(crate) fn redis_failed(&self, err: &redis::RedisError) {
        self.degrade(&err.to_string());
        self.recover(true);
    }

    pub(crate) fn degrade(&self, cause: &str) {
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
    /// (always when `refill`, else only if the marker is missing), then trust it again. Gives
    /// up when the store is closed or every caller's copy of it is dropped.
    pub(crate) fn recover(&self, refill: bool) {
        let Some(redis) = self.redis.clone() else {
            return;
        };
        if redis.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        // A task's copy (see `background`), without Redis: the database is where the fill
        // reads from.
        let database = Store {
            redis: None,
            ..self.for_task()
        };
        tokio::spawn(async move {
            let mut refill = refill;
            loop {
                match crate::denylist::fill(&redis, &database, refill).await {
                    Ok(()) => break,
                    Err(err) => {
                        tracing::debug!(cause = %err, "redis denylist still unavailable");
                        // Whatever happened meanwhile, the next successful contact refills.
                        refill = true;
                        database.pause(RECOVERY_PAUSE).await;
                        if database.ended() {
                            // Nobody is left to use Redis.
                            return;
                        }
                    }
                }
            }
            redis.healthy.store(true, Ordering::Release);
            redis.recovering.store(false, Ordering::Release);
            tracing::info!("redis denylist available: blacklist checks use it");
        });
    }
}

/// Checks REDIS_URL as [`Store::with_redis`] reads it, without connecting: `tollgate check`
/// refuses what `serve` would refuse.
pub fn check_redis_url(url: &str) -> Result<(), StoreError> {
    redis_client(url).map(drop)
}

fn redis_client(url: &str) -> Result<redis::Client, StoreError> {
    redis::Client::open(url).map_err(StoreError::Redis)
}
