//! Failed-login counts shared through Redis, so that a limit on failures (per account, per
//! client address) holds across every instance that shares the Redis of `REDIS_URL`, not per
//! process.
//!
//! Each subject (`account:ann`, `address:192.0.2.7`) is a sorted set of its failure times in
//! milliseconds, trimmed to the window and to the newest `limit` entries, expiring with the
//! window. A subject is at its limit when it holds `limit` failures within the window; it may
//! fail again once the oldest of those leaves the window. Without Redis, or while it does not
//! answer, recording does nothing and the wait is an error: the caller falls back to counts of
//! its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use crate::denylist::{call, RedisDenylist};
use crate::{Store, StoreError};

/// Makes each recorded failure a distinct member of its set.
static NEXT_FAILURE: AtomicU64 = AtomicU64::new(0);

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn window_millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1)
}

impl Store {
    /// Redis and a connection to it, while it answers: once a call failed, the counts wait for
    /// the background recovery (see `denylist`) instead of making every login wait for a
    /// timeout.
    fn answering_redis(&self) -> Option<(&RedisDenylist, ConnectionManager)> {
        let redis = self.redis.as_deref()?;
        if !redis.healthy.load(Ordering::Acquire) {
            return None;
        }
        Some((redis, redis.connection()?))
    }

    /// The longest wait before any of `subjects` (each with its limit; 0 is no limit) may fail
    /// again, counting the failures of every instance on this Redis; `Ok(None)` when none is at
    /// its limit. An error when there is no Redis or it does not answer.
    pub async fn shared_failure_wait(
        &self,
        subjects: &[(&str, u32)],
        window: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let unavailable = || {
            StoreError::Redis(redis::RedisError::from((
                redis::ErrorKind::IoError,
                "redis is not connected",
            )))
        };
        let (redis, mut connection) = self.answering_redis().ok_or_else(unavailable)?;
        let now = now_millis();
        let window = window_millis(window);
        let mut pipe = redis::pipe();
        for (subject, limit) in subjects.iter().filter(|(_, l)| *l > 0) {
            let key = redis.failures_key(subject);
            let limit = i64::from(*limit);
            pipe.cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now - window)
                .ignore()
                // The failure that has to leave the window before one more is allowed: the
                // limit-th newest (none while fewer than `limit` remain).
                .cmd("ZRANGE")
                .arg(&key)
                .arg(-limit)
                .arg(-limit)
                .arg("WITHSCORES");
        }
        let answers = call(pipe.query_async::<Vec<Vec<(String, i64)>>>(&mut connection))
            .await
            .map_err(|err| {
                self.redis_failed(&err);
                StoreError::Redis(err)
            })?;
        Ok(answers
            .iter()
            .filter_map(|entries| entries.first())
            .map(|(_, failed_at)| {
                let left = (failed_at + window - now).max(0);
                Duration::from_millis(u64::try_from(left).unwrap_or(0))
            })
            .filter(|wait| !wait.is_zero())
            .max())
    }

    /// Records a failed login against each of `subjects` (with its limit; 0 is no limit), for
    /// every instance on this Redis to count. Does nothing without an answering Redis.
    pub async fn record_shared_failure(&self, subjects: &[(&str, u32)], window: Duration) {
        let Some((redis, mut connection)) = self.answering_redis() else {
            return;
        };
        let now = now_millis();
        let window = window_millis(window);
        let member = format!(
            "{now}:{}:{}",
            std::process::id(),
            NEXT_FAILURE.fetch_add(1, Ordering::Relaxed)
        );
        let mut pipe = redis::pipe();
        for (subject, limit) in subjects.iter().filter(|(_, l)| *l > 0) {
            let key = redis.failures_key(subject);
            pipe.cmd("ZADD")
                .arg(&key)
                .arg(now)
                .arg(&member)
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&key)
                .arg("-inf")
                .arg(now - window)
                .ignore()
                .cmd("ZREMRANGEBYRANK")
                .arg(&key)
                .arg(0)
                .arg(-(i64::from(*limit) + 1))
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(window)
                .ignore();
        }
        if let Err(err) = call(pipe.query_async::<()>(&mut connection)).await {
            self.redis_failed(&err);
        }
    }

    /// Forgets the shared failures of `subject` (an account that logged in).
    pub async fn forget_shared_failures(&self, subject: &str) {
        let Some((redis, mut connection)) = self.answering_redis() else {
            return;
        };
        let mut forget = redis::cmd("DEL");
        forget.arg(redis.failures_key(subject));
        if let Err(err) = call(forget.query_async::<()>(&mut connection)).await {
            self.redis_failed(&err);
        }
    }
}
