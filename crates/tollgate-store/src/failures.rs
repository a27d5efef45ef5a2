//! Attempt counts shared through Redis, so that a limit on attempts (failed logins per account
//! and per client address, registrations per address) holds across every instance that shares
//! the Redis of `REDIS_URL`, not per process.
//!
//! Each subject (`user:42`, `address:192.0.2.7`) is a sorted set of its attempt times in
//! milliseconds, trimmed to the window and to the newest `limit` entries, expiring with the
//! window. An attempt is admitted by [`Store::reserve_shared_attempt`], which checks and records
//! in one Lua script, so that requests arriving together cannot all read "under the limit"
//! before any of them is counted. Without Redis, or while it does not answer, the calls fail or
//! do nothing and the caller falls back to counts of its own.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::aio::ConnectionManager;

use crate::redis_connection::{call, RedisConnection};
use crate::{Store, StoreError};

/// Makes each recorded attempt a distinct member of its set.
static NEXT_ATTEMPT: AtomicU64 = AtomicU64::new(0);

/// Checks the gate subjects and, when none is at its limit, records the attempt on each; then
/// does the same for the last subject alone when `ARGV[4]` is `1`. Answers `{0, 0}` when
/// admitted, `{1, wait}` when a gate subject is full (nothing recorded), `{2, wait}` when only
/// the last subject is full (the gate subjects recorded).
const RESERVE: &str = r"
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local member = ARGV[3]
local gates = #KEYS
if ARGV[4] == '1' then gates = gates - 1 end
local function wait_of(i)
  local limit = tonumber(ARGV[4 + i])
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - window)
  if limit <= 0 then return 0 end
  local full = redis.call('ZRANGE', KEYS[i], -limit, -limit, 'WITHSCORES')
  if #full == 0 then return 0 end
  return math.max(tonumber(full[2]) + window - now, 1)
end
local function add(i)
  local limit = tonumber(ARGV[4 + i])
  if limit <= 0 then return end
  redis.call('ZADD', KEYS[i], now, member)
  redis.call('ZREMRANGEBYRANK', KEYS[i], 0, -(limit + 1))
  redis.call('PEXPIRE', KEYS[i], window)
end
local wait = 0
for i = 1, gates do wait = math.max(wait, wait_of(i)) end
if wait > 0 then return {1, wait} end
for i = 1, gates do add(i) end
if gates < #KEYS then
  wait = wait_of(#KEYS)
  if wait > 0 then return {2, wait} end
  add(#KEYS)
end
return {0, 0}
";

/// What [`Store::reserve_shared_attempt`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedAdmission {
    /// Counted on every subject; `member` names the attempt for
    /// [`Store::refund_shared_attempt`].
    Admitted {
        /// The attempt's member in each subject's set.
        member: String,
    },
    /// A gate subject is at its limit: nothing was recorded; one more attempt is allowed after
    /// the wait.
    GateFull(Duration),
    /// The gate subjects admitted the attempt (and counted it); the last subject is at its
    /// limit and did not count it.
    LastFull {
        /// The attempt's member in the gate subjects' sets.
        member: String,
        /// When the last subject admits one more.
        wait: Duration,
    },
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn window_millis(window: Duration) -> i64 {
    i64::try_from(window.as_millis()).unwrap_or(i64::MAX).max(1)
}

fn unavailable() -> StoreError {
    StoreError::Unavailable {
        dependency: crate::Dependency::Redis,
        cause: "redis is not connected".to_owned(),
    }
}

impl RedisConnection {
    /// The sorted set of a throttle subject's failed logins.
    fn failures_key(&self, subject: &str) -> String {
        format!("{}login_failures:{subject}", self.prefix)
    }
}

impl Store {
    /// Redis and a connection to it, while it answers: once a call failed, the counts wait for
    /// the background recovery (see `denylist`) instead of making every login wait for a
    /// timeout.
    fn answering_redis(&self) -> Option<(&RedisConnection, ConnectionManager)> {
        let redis = self.redis.as_deref()?;
        if !redis.healthy.load(Ordering::Acquire) {
            return None;
        }
        Some((redis, redis.connection()?))
    }

    /// Admits an attempt on `gates` (each subject with its limit; 0 is no limit) and then on
    /// `last`, counting the attempts of every instance on this Redis, atomically: of any number
    /// of attempts arriving together, at most `limit` per subject and window are admitted. An
    /// error when there is no Redis or it does not answer.
    pub async fn reserve_shared_attempt(
        &self,
        gates: &[(&str, u32)],
        last: Option<(&str, u32)>,
        window: Duration,
    ) -> Result<SharedAdmission, StoreError> {
        let (redis, mut connection) = self.answering_redis().ok_or_else(unavailable)?;
        let now = now_millis();
        let member = format!(
            "{now}:{}:{}",
            std::process::id(),
            NEXT_ATTEMPT.fetch_add(1, Ordering::Relaxed)
        );
        let subjects = gates.iter().chain(last.as_ref());
        let keys = subjects
            .clone()
            .map(|(subject, _)| redis.failures_key(subject));
        let mut script = redis::cmd("EVAL");
        script
            .arg(RESERVE)
            .arg(gates.len() + usize::from(last.is_some()));
        for key in keys {
            script.arg(key);
        }
        script
            .arg(now)
            .arg(window_millis(window))
            .arg(&member)
            .arg(if last.is_some() { "1" } else { "0" });
        for (_, limit) in subjects {
            script.arg(*limit);
        }
        let (verdict, wait) = call(script.query_async::<(i64, i64)>(&mut connection))
            .await
            .map_err(|err| {
                self.redis_failed(&err);
                StoreError::redis(err)
            })?;
        let wait = Duration::from_millis(u64::try_from(wait).unwrap_or(0));
        Ok(match verdict {
            0 => SharedAdmission::Admitted { member },
            1 => SharedAdmission::GateFull(wait),
            _ => SharedAdmission::LastFull { member, wait },
        })
    }

    /// Takes one admitted attempt (`member`) back from `subject`: it did not fail after all.
    pub async fn refund_shared_attempt(&self, subject: &str, member: &str) {
        let Some((redis, mut connection)) = self.answering_redis() else {
            return;
        };
        let mut refund = redis::cmd("ZREM");
        refund.arg(redis.failures_key(subject)).arg(member);
        if let Err(err) = call(refund.query_async::<()>(&mut connection)).await {
            self.redis_failed(&err);
        }
    }

    /// Forgets the shared attempts of `subjects` (an account that logged in).
    pub async fn forget_shared_attempts(&self, subjects: &[&str]) {
        let Some((redis, mut connection)) = self.answering_redis() else {
            return;
        };
        let mut forget = redis::cmd("DEL");
        for subject in subjects {
            forget.arg(redis.failures_key(subject));
        }
        if let Err(err) = call(forget.query_async::<()>(&mut connection)).await {
            self.redis_failed(&err);
        }
    }
}
