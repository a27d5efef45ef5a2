//! Login records: the history of login attempts on each account (with the password resets
//! done through a mailed link, which give the account to whoever holds the link), and the
//! lockout counters.

use crate::tokens::FlushPace;
use crate::{with_pool, with_writer, Pool, Store, StoreError};

/// How a login attempt on an existing account ended, or a password reset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The password matched and the account was active.
    Succeeded,
    /// The password did not match.
    WrongPassword,
    /// The password matched but the account is inactive.
    Inactive,
    /// The account (or identifier) was locked; the password was not checked.
    Locked,
    /// The password matched but the email address waits for confirmation.
    Unverified,
    /// Not a login: the password was set with a reset link mailed to the account's address.
    /// Recorded with the logins because whoever held the link could then log in; stored as
    /// not succeeded (nobody was logged in), with the reason `password_reset`.
    PasswordReset,
    /// The password matched; the login waits for the second factor.
    SecondFactorDue,
    /// A wrong second-factor code (or recovery code, or passkey assertion).
    WrongCode,
    /// Not a login: the user enrolled a second factor (or renewed their recovery codes).
    SecondFactorAdded,
    /// Not a login: the user removed a second factor.
    SecondFactorRemoved,
    /// Not a login: an administrator removed every second factor of the account.
    SecondFactorReset,
}

impl LoginOutcome {
    /// The word stored for a failure or a reset; `None` for a successful login.
    fn reason(self) -> Option<&'static str> {
        match self {
            LoginOutcome::Succeeded => None,
            LoginOutcome::WrongPassword => Some("wrong_password"),
            LoginOutcome::Inactive => Some("inactive"),
            LoginOutcome::Locked => Some("locked"),
            LoginOutcome::Unverified => Some("email_not_verified"),
            LoginOutcome::PasswordReset => Some(PASSWORD_RESET),
            LoginOutcome::SecondFactorDue => Some("mfa_required"),
            LoginOutcome::WrongCode => Some("wrong_code"),
            LoginOutcome::SecondFactorAdded => Some("mfa_enabled"),
            LoginOutcome::SecondFactorRemoved => Some("mfa_disabled"),
            LoginOutcome::SecondFactorReset => Some("mfa_reset"),
        }
    }
}

/// The reason of the events that record a password reset ([`LoginOutcome::PasswordReset`]).
const PASSWORD_RESET: &str = "password_reset";

/// One recorded login attempt, or password reset.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginEvent {
    /// The account.
    pub user_id: i64,
    /// Whether it was a successful login.
    pub succeeded: bool,
    /// Why the login failed (`wrong_password`, `inactive`, `locked`, `email_not_verified`), or
    /// `password_reset` for a reset; `None` for a successful login.
    pub reason: Option<String>,
    /// The client's address.
    pub client_addr: String,
    /// The client's `User-Agent`, if it sent one.
    pub user_agent: Option<String>,
    /// When, in epoch seconds.
    pub at: i64,
}

impl LoginEvent {
    /// Whether this records a password reset rather than a login attempt.
    pub fn is_password_reset(&self) -> bool {
        !self.succeeded && self.reason.as_deref() == Some(PASSWORD_RESET)
    }
}

/// The lockout rule: how many consecutive failures lock a key, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutRule {
    /// Consecutive failures that lock.
    pub threshold: u32,
    /// Seconds a lock lasts; `None` until an administrator unlocks it.
    pub duration: Option<i64>,
}

/// What [`Store::reserve_login_attempt`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockoutAdmission {
    /// The password may be checked; the attempt counts as a failure until cleared.
    Admitted {
        /// This attempt reached the threshold: the key is locked for the attempts after it.
        locks: bool,
    },
    /// The key is locked until this time (`i64::MAX`: until an administrator unlocks it).
    Locked {
        /// The end of the lock, epoch seconds.
        until: i64,
    },
}

/// A lock with no end: it stays until an administrator lifts it.
const LOCKED_FOR_GOOD: i64 = i64::MAX;

/// One batch of the oldest login events recorded at or after `$1` and before `$2`, at most `$3`
/// of them: how many, and the newest `at` among them. The rows are deleted where the index
/// scan found them (`ctid`), not looked up again by id: 500,000 events in 2.1–3.0 s against
/// 3.3–4.1 s. An array, as PostgreSQL plans `IN (subquery)` as a scan of the whole table.
const DELETE_OLD_EVENTS_POSTGRES: &str = "WITH gone AS ( \
       DELETE FROM login_events WHERE ctid = ANY(ARRAY( \
         SELECT ctid FROM login_events WHERE at >= $1 AND at < $2 ORDER BY at LIMIT $3)) \
       RETURNING at) \
     SELECT COUNT(*), MAX(at) FROM gone";

/// One batch of the oldest login events recorded before `$1`, at most `$2` of them.
const DELETE_OLD_EVENTS_SQLITE: &str = "DELETE FROM login_events WHERE id IN ( \
       SELECT id FROM login_events WHERE at < $1 ORDER BY at LIMIT $2)";

impl Store {
    /// Records a login attempt on an account, or a password reset.
    pub async fn record_login(
        &self,
        user_id: i64,
        outcome: LoginOutcome,
        client_addr: &str,
        user_agent: Option<&str>,
        at: i64,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO login_events (user_id, succeeded, reason, client_addr, user_agent, at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(user_id)
            .bind(outcome == LoginOutcome::Succeeded)
            .bind(outcome.reason())
            .bind(client_addr)
            .bind(user_agent)
            .bind(at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// An account's most recent login attempts, newest first.
    pub async fn login_events(
        &self,
        user_id: i64,
        limit: i64,
    ) -> Result<Vec<LoginEvent>, StoreError> {
        let events = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, succeeded, reason, client_addr, user_agent, at \
                 FROM login_events WHERE user_id = $1 ORDER BY at DESC, id DESC LIMIT $2",
            )
            .bind(user_id)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(events)
    }

    /// How many login attempts (and resets) are recorded for an account.
    pub async fn count_login_events(&self, user_id: i64) -> Result<i64, StoreError> {
        let count = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT COUNT(*) FROM login_events WHERE user_id = $1")
                .bind(user_id)
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// An account's login attempts, newest first, `limit` of them after skipping `offset`.
    pub async fn login_events_page(
        &self,
        user_id: i64,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<LoginEvent>, StoreError> {
        let events = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, succeeded, reason, client_addr, user_agent, at \
                 FROM login_events WHERE user_id = $1 ORDER BY at DESC, id DESC \
                 LIMIT $2 OFFSET $3",
            )
            .bind(user_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await
        })?;
        Ok(events)
    }

    /// Until when `key` is locked, if it is locked at `now`. `Some(i64::MAX)` means until an
    /// administrator unlocks it.
    pub async fn locked_until(&self, key: &str, now: i64) -> Result<Option<i64>, StoreError> {
        let until: Option<Option<i64>> = with_pool!(self, |pool| {
            sqlx::query_scalar("SELECT locked_until FROM login_lockouts WHERE key = $1")
                .bind(key)
                .fetch_optional(pool)
                .await
        })?;
        Ok(until.flatten().filter(|until| *until > now))
    }

    /// Admits a password check on `key` and counts it as a failure before the password is
    /// checked, so that checks running at the same time each take a place under the
    /// threshold: `Ok(Admitted { locks })` when the key was not locked (`locks` when this
    /// attempt reached the threshold and locked it, for the attempts after it),
    /// `Ok(Locked { until })` when it was (nothing counted). A lock that has run out starts the
    /// count again. A successful check clears the count ([`Store::clear_login_failures`]).
    pub async fn reserve_login_attempt(
        &self,
        key: &str,
        rule: LockoutRule,
        now: i64,
    ) -> Result<LockoutAdmission, StoreError> {
        let until = rule
            .duration
            .map_or(LOCKED_FOR_GOOD, |seconds| now.saturating_add(seconds));
        // One statement, so that concurrent attempts on several instances all count; a locked
        // row is left alone by the WHERE and so returns no row.
        let admitted: Option<Option<i64>> = with_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO login_lockouts (key, failures, last_failure, locked_until) \
                 VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $4 END) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN login_lockouts.locked_until <= $2 THEN 1 \
                                   ELSE login_lockouts.failures + 1 END, \
                   last_failure = $2, \
                   locked_until = CASE \
                     WHEN (CASE WHEN login_lockouts.locked_until <= $2 THEN 1 \
                                ELSE login_lockouts.failures + 1 END) >= $3 THEN $4 \
                     END \
                 WHERE login_lockouts.locked_until IS NULL OR login_lockouts.locked_until <= $2 \
                 RETURNING locked_until",
            )
            .bind(key)
            .bind(now)
            .bind(i64::from(rule.threshold))
            .bind(until)
            .fetch_optional(pool)
            .await
        })?;
        match admitted {
            Some(locks) => Ok(LockoutAdmission::Admitted {
                locks: locks.is_some(),
            }),
            None => Ok(LockoutAdmission::Locked {
                // A lock that ran out between the two statements: refuse this one attempt.
                until: self.locked_until(key, now).await?.unwrap_or(now),
            }),
        }
    }

    /// Forgets the failures counted for these keys (after a successful login, or by an
    /// administrator to lift a lock). Returns how many were locked at `now`.
    pub async fn clear_login_failures(&self, keys: &[String], now: i64) -> Result<u64, StoreError> {
        let mut locked = 0;
        for key in keys {
            let was_locked: Option<Option<i64>> = with_writer!(self, |pool| {
                sqlx::query_scalar(
                    "DELETE FROM login_lockouts WHERE key = $1 RETURNING locked_until",
                )
                .bind(key)
                .fetch_optional(pool)
                .await
            })?;
            if was_locked.flatten().is_some_and(|until| until > now) {
                locked += 1;
            }
        }
        Ok(locked)
    }

    /// Deletes login events recorded before `before`, at the pace of `pace`, and failure
    /// counters that are not locked and saw no failure since then. Returns how many events were
    /// deleted.
    ///
    /// Each batch is its own transaction and takes the oldest events first, along
    /// `login_events_at_idx`, so that months of events (millions of rows) go without one long
    /// transaction or one burst of WAL, and on SQLite the writes queued behind the flush wait
    /// for one batch at most.
    pub async fn flush_login_records(
        &self,
        before: i64,
        now: i64,
        pace: FlushPace,
    ) -> Result<u64, StoreError> {
        let batch = pace.limit();
        let mut events = 0;
        // PostgreSQL keeps the index entries of deleted rows until a vacuum, so a batch that
        // started from the oldest entry would step over every earlier batch's again (5 M
        // events on PostgreSQL 15: 46 s against 25 s). Each batch starts where the last one
        // ended instead: at its newest `at`, not after it, as more events may share that second.
        let mut from = i64::MIN;
        loop {
            let deleted = match &self.pool {
                Pool::Postgres(pool) => {
                    let (deleted, newest): (i64, Option<i64>) =
                        sqlx::query_as(DELETE_OLD_EVENTS_POSTGRES)
                            .bind(from)
                            .bind(before)
                            .bind(batch)
                            .fetch_one(pool)
                            .await?;
                    from = newest.unwrap_or(from);
                    u64::try_from(deleted).unwrap_or(0)
                }
                // SQLite takes deleted rows out of the index at once: the oldest entry left is
                // the next batch's first.
                Pool::Sqlite { write, .. } => sqlx::query(DELETE_OLD_EVENTS_SQLITE)
                    .bind(before)
                    .bind(batch)
                    .execute(write)
                    .await?
                    .rows_affected(),
            };
            events += deleted;
            if deleted < batch.unsigned_abs() {
                break;
            }
            pace.pause().await;
        }
        with_writer!(self, |pool| {
            sqlx::query(
                "DELETE FROM login_lockouts WHERE last_failure < $1 \
                 AND (locked_until IS NULL OR locked_until <= $2)",
            )
            .bind(before)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;
    use crate::NewUser;

    async fn user(store: &Store) -> i64 {
        store
            .create_user(
                &NewUser {
                    username: "ann".into(),
                    password_hash: "x".into(),
                    ..NewUser::default()
                },
                1,
            )
            .await
            .expect("creates")
            .id
    }

    #[tokio::test]
    async fn events_are_listed_newest_first() {
        let store = memory_store().await;
        let id = user(&store).await;
        store
            .record_login(id, LoginOutcome::WrongPassword, "10.0.0.1", None, 100)
            .await
            .expect("records");
        store
            .record_login(id, LoginOutcome::Succeeded, "10.0.0.2", Some("curl/8"), 200)
            .await
            .expect("records");
        let events = store.login_events(id, 10).await.expect("lists");
        assert_eq!(events.len(), 2);
        assert!(events[0].succeeded && events[0].at == 200);
        assert_eq!(events[0].user_agent.as_deref(), Some("curl/8"));
        assert_eq!(events[1].reason.as_deref(), Some("wrong_password"));
        assert_eq!(
            store
                .flush_login_records(150, 300, FlushPace::UNPAUSED)
                .await
                .expect("flushes"),
            1
        );
        assert_eq!(store.login_events(id, 10).await.expect("lists").len(), 1);
    }

    const FOUR_AT_ONCE: FlushPace = FlushPace {
        batch: 4,
        pause: std::time::Duration::ZERO,
    };

    /// Records events at 0, 3, … 45, seven at 50 and five at 100 or later, not in time order,
    /// then flushes those before 100 four per batch: six batches, the last two splitting the
    /// events at 50. Returns what was deleted (twice: a second flush finds nothing) and the
    /// times left.
    async fn flush_in_small_batches(store: &Store) -> (u64, u64, Vec<i64>) {
        let id = user(store).await;
        let mut times: Vec<i64> = (0..16).map(|i| i * 3).collect();
        times.extend([50; 7]);
        times.extend([100, 100, 101, 150, 200]);
        times.sort_by_key(|at| (at % 7, *at));
        for at in times {
            store
                .record_login(id, LoginOutcome::Succeeded, "10.0.0.1", None, at)
                .await
                .expect("records");
        }
        let first = store
            .flush_login_records(100, 300, FOUR_AT_ONCE)
            .await
            .expect("flushes");
        let second = store
            .flush_login_records(100, 300, FOUR_AT_ONCE)
            .await
            .expect("flushes");
        let mut left: Vec<i64> = store
            .login_events(id, 100)
            .await
            .expect("lists")
            .iter()
            .map(|event| event.at)
            .collect();
        left.sort_unstable();
        (first, second, left)
    }

    const KEPT: [i64; 5] = [100, 100, 101, 150, 200];

    #[tokio::test]
    async fn retention_deletes_exactly_the_old_events_across_batches_on_sqlite() {
        let store = memory_store().await;
        assert_eq!(flush_in_small_batches(&store).await, (23, 0, KEPT.to_vec()));
    }

    #[tokio::test]
    async fn retention_deletes_exactly_the_old_events_across_batches_on_postgres() {
        let Some(scratch) = crate::testing::postgres_store().await else {
            return;
        };
        let flushed = flush_in_small_batches(&scratch.store).await;
        scratch.drop_database().await;
        assert_eq!(flushed, (23, 0, KEPT.to_vec()));
    }

    #[tokio::test]
    async fn the_retention_batch_is_found_by_the_index_on_sqlite() {
        let store = memory_store().await;
        let Pool::Sqlite { write, .. } = &store.pool else {
            unreachable!("a memory store is SQLite's");
        };
        // Rows of (id, parent, unused, detail).
        let plan: Vec<(i64, i64, i64, String)> =
            sqlx::query_as(&format!("EXPLAIN QUERY PLAN {DELETE_OLD_EVENTS_SQLITE}"))
                .bind(100_i64)
                .bind(4_i64)
                .fetch_all(write)
                .await
                .expect("explained");
        let plan: Vec<String> = plan.into_iter().map(|row| row.3).collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("USING COVERING INDEX login_events_at_idx (at<?)"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN login_events"), "{plan}");
    }

    #[tokio::test]
    async fn the_retention_batch_is_found_by_the_index_on_postgres() {
        let Some(scratch) = crate::testing::postgres_store().await else {
            return;
        };
        let id = user(&scratch.store).await;
        let Pool::Postgres(pool) = &scratch.store.pool else {
            unreachable!("a PostgreSQL store");
        };
        // Rows and statistics: on an empty table, reading it whole costs nothing and is chosen.
        let plan = async {
            sqlx::query(
                "INSERT INTO login_events (user_id, succeeded, client_addr, at) \
                 SELECT $1, TRUE, '10.0.0.1', n FROM generate_series(1, 20000) AS n",
            )
            .bind(id)
            .execute(pool)
            .await?;
            sqlx::query("ANALYZE login_events").execute(pool).await?;
            sqlx::query_scalar::<_, String>(&format!("EXPLAIN {DELETE_OLD_EVENTS_POSTGRES}"))
                .bind(i64::MIN)
                .bind(10_001_i64)
                .bind(FlushPace::UNPAUSED.limit())
                .fetch_all(pool)
                .await
        }
        .await;
        scratch.drop_database().await;
        let plan = plan.expect("explained").join("\n");
        assert!(
            plan.contains("Index Scan using login_events_at_idx"),
            "{plan}"
        );
        assert!(plan.contains("Tid Scan on login_events"), "{plan}");
        assert!(!plan.contains("Seq Scan"), "{plan}");
    }

    async fn reserve(store: &Store, rule: LockoutRule, now: i64) -> LockoutAdmission {
        store
            .reserve_login_attempt("k", rule, now)
            .await
            .expect("counts")
    }

    #[tokio::test]
    async fn the_threshold_locks_for_the_duration_then_counting_restarts() {
        let store = memory_store().await;
        let rule = LockoutRule {
            threshold: 3,
            duration: Some(60),
        };
        for now in [10, 11] {
            let admitted = LockoutAdmission::Admitted { locks: false };
            assert_eq!(reserve(&store, rule, now).await, admitted);
        }
        assert_eq!(store.locked_until("k", 12).await.expect("reads"), None);
        // The third attempt is still checked, and locks the key for the ones after it.
        assert_eq!(
            reserve(&store, rule, 12).await,
            LockoutAdmission::Admitted { locks: true }
        );
        assert_eq!(store.locked_until("k", 50).await.expect("reads"), Some(72));
        // Attempts while locked are refused and do not extend the lock.
        assert_eq!(
            reserve(&store, rule, 50).await,
            LockoutAdmission::Locked { until: 72 }
        );
        assert_eq!(store.locked_until("k", 72).await.expect("reads"), None);
        // After the lock, one attempt is the first of a new count.
        assert_eq!(
            reserve(&store, rule, 80).await,
            LockoutAdmission::Admitted { locks: false }
        );
        assert_eq!(store.locked_until("k", 81).await.expect("reads"), None);
    }

    #[tokio::test]
    async fn a_lock_without_duration_lasts_until_cleared() {
        let store = memory_store().await;
        let rule = LockoutRule {
            threshold: 1,
            duration: None,
        };
        assert_eq!(
            reserve(&store, rule, 10).await,
            LockoutAdmission::Admitted { locks: true }
        );
        assert_eq!(
            reserve(&store, rule, 1 << 40).await,
            LockoutAdmission::Locked { until: i64::MAX }
        );
        let keys = ["k".to_owned(), "other".to_owned()];
        assert_eq!(
            store.clear_login_failures(&keys, 20).await.expect("clears"),
            1
        );
        assert_eq!(store.locked_until("k", 20).await.expect("reads"), None);
    }
}
