//! The outstanding-token record and the blacklist, keyed by `jti`.

use crate::{with_pool, with_writer, Store, StoreError};

/// What the store keeps of an issued refresh or sliding token: never the token itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenRecord<'a> {
    /// The token's unique id.
    pub jti: &'a str,
    /// The user it was issued to, if that user exists.
    pub user_id: Option<i64>,
    /// Its `iat`, if known.
    pub created_at: Option<i64>,
    /// Its `exp`: after this the row may be flushed.
    pub expires_at: i64,
    /// The session (token family) it belongs to, from its `sid` claim.
    pub session_id: Option<&'a str>,
}

/// What `flushexpiredtokens` deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Outstanding-token rows deleted.
    pub outstanding: u64,
    /// Blacklist rows deleted.
    pub blacklisted: u64,
    /// Access-token revocations deleted (no token they affect is alive any more).
    pub revoked_access: u64,
    /// Session rows deleted.
    pub sessions: u64,
}

/// Records a token as outstanding; the user id is kept only if that user exists (tokens minted
/// elsewhere may name others), and recording the same jti twice is harmless.
pub(crate) const RECORD_OUTSTANDING: &str =
    "INSERT INTO outstanding_tokens (jti, user_id, created_at, expires_at, session_id) \
     VALUES ($1, (SELECT id FROM users WHERE id = $2), $3, $4, $5) ON CONFLICT (jti) DO NOTHING";

/// Blacklists a jti; affects no row if it already was.
const BLACKLIST: &str =
    "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) VALUES ($1, $2, $3) \
     ON CONFLICT (jti) DO NOTHING";

/// How a flush (expired tokens, old login events) spreads its deletes: so many rows per
/// statement, each its own transaction, so that no statement holds locks for long or writes a
/// burst of WAL, and a pause between two statements, in which the traffic of the same database
/// gets its cores, disks and WAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlushPace {
    /// Rows deleted per statement (at least 1).
    pub batch: u32,
    /// The pause between two statements.
    pub pause: std::time::Duration,
}

impl FlushPace {
    /// Large batches without a pause: as fast as the database goes.
    pub const UNPAUSED: FlushPace = FlushPace {
        batch: 10_000,
        pause: std::time::Duration::ZERO,
    };

    /// The batch as a statement's `LIMIT`.
    pub(crate) fn limit(self) -> i64 {
        i64::from(self.batch.max(1))
    }

    /// Waits between two batches.
    pub(crate) async fn pause(self) {
        if !self.pause.is_zero() {
            tokio::time::sleep(self.pause).await;
        }
    }
}

impl Store {
    /// Records an issued token as outstanding; recording the same jti twice is harmless.
    pub async fn record_outstanding(&self, token: &TokenRecord<'_>) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(RECORD_OUTSTANDING)
                .bind(token.jti)
                .bind(token.user_id)
                .bind(token.created_at)
                .bind(token.expires_at)
                .bind(token.session_id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Whether the token with this jti is blacklisted: one Redis lookup when the Redis denylist
    /// is configured and in sync, else a database query.
    pub async fn is_blacklisted(&self, jti: &str) -> Result<bool, StoreError> {
        if let Some(listed) = self.redis_says_blacklisted(jti).await {
            return Ok(listed);
        }
        let found = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i32>("SELECT 1 FROM blacklisted_tokens WHERE jti = $1")
                .bind(jti)
                .fetch_optional(pool)
                .await
        })?;
        Ok(found.is_some())
    }

    /// Blacklists a token, recording it as outstanding first if it was not (a token minted
    /// elsewhere with the same key). Returns false if it was already blacklisted: of two
    /// concurrent calls for one jti, exactly one returns true.
    pub async fn blacklist(&self, token: &TokenRecord<'_>, now: i64) -> Result<bool, StoreError> {
        // Redis first: an instance stopping between the two must not leave a logged-out token
        // that instances trusting Redis still accept (a sliding token would keep
        // authenticating). If the database write then fails, Redis refuses a token the
        // database does not: the safe side, and presenting the token again completes the
        // logout. Copied also when it was already blacklisted: the earlier copy may be missing.
        let copied = self.redis_add(token.jti, token.expires_at, now).await;
        self.record_outstanding(token).await?;
        let done = with_writer!(self, |pool| {
            sqlx::query(BLACKLIST)
                .bind(token.jti)
                .bind(now)
                .bind(token.expires_at)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if !copied {
            // The recovery that the failure started may have filled Redis from the database
            // before this commit.
            let _ = self.redis_add(token.jti, token.expires_at, now).await;
        }
        Ok(done == 1)
    }

    /// Deletes outstanding, blacklisted and access-revocation rows whose token expired at or
    /// before `now`, and sessions whose every token did, in batches at the pace of `pace`;
    /// `progress` is called with the running total after each batch.
    pub async fn flush_expired(
        &self,
        now: i64,
        pace: FlushPace,
        mut progress: impl FnMut(u64),
    ) -> Result<FlushReport, StoreError> {
        let mut report = FlushReport::default();
        for table in [
            "blacklisted_tokens",
            "outstanding_tokens",
            "revoked_access",
            "sessions",
        ] {
            // PostgreSQL plans `id IN (subquery)` as a scan of the whole table per batch; an array
            // of ids makes it look each one up by primary key.
            let sql = match self.backend() {
                crate::Backend::Postgres => format!(
                    "DELETE FROM {table} WHERE id = ANY(ARRAY(SELECT id FROM {table} WHERE expires_at <= $1 LIMIT $2))"
                ),
                crate::Backend::Sqlite => format!(
                    "DELETE FROM {table} WHERE id IN (SELECT id FROM {table} WHERE expires_at <= $1 LIMIT $2)"
                ),
            };
            loop {
                let done = with_writer!(self, |pool| {
                    sqlx::query(&sql)
                        .bind(now)
                        .bind(pace.limit())
                        .execute(pool)
                        .await
                        .map(|d| d.rows_affected())
                })?;
                let deleted = done;
                match table {
                    "blacklisted_tokens" => report.blacklisted += deleted,
                    "revoked_access" => report.revoked_access += deleted,
                    "sessions" => report.sessions += deleted,
                    _ => report.outstanding += deleted,
                }
                progress(
                    report.blacklisted
                        + report.outstanding
                        + report.revoked_access
                        + report.sessions,
                );
                if deleted < pace.limit() as u64 {
                    break;
                }
                pace.pause().await;
            }
        }
        Ok(report)
    }

    /// Blacklist rows whose token is still alive at `now`, by id after `after`: (id, jti, exp).
    pub(crate) async fn live_blacklist_page(
        &self,
        after: i64,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, i64)>, StoreError> {
        let rows = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, jti, expires_at FROM blacklisted_tokens \
                 WHERE id > $1 AND expires_at > $2 ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(now)
            .bind(limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }

    /// How many rows `flush_expired(now)` would delete: outstanding and blacklisted tokens and
    /// access revocations that expired at or before `now` (for a progress bar).
    pub async fn count_expired(&self, now: i64) -> Result<u64, StoreError> {
        let count: i64 = with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT (SELECT COUNT(*) FROM outstanding_tokens WHERE expires_at <= $1) \
                 + (SELECT COUNT(*) FROM blacklisted_tokens WHERE expires_at <= $1) \
                 + (SELECT COUNT(*) FROM revoked_access WHERE expires_at <= $1) \
                 + (SELECT COUNT(*) FROM sessions WHERE expires_at <= $1)",
            )
            .bind(now)
            .fetch_one(pool)
            .await
        })?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// How many tokens are recorded as outstanding and as blacklisted.
    pub async fn token_counts(&self) -> Result<(i64, i64), StoreError> {
        let counts: (i64, i64) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM outstanding_tokens), (SELECT COUNT(*) FROM blacklisted_tokens)",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(counts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    fn record(jti: &str, expires_at: i64) -> TokenRecord<'_> {
        TokenRecord {
            jti,
            user_id: Some(999),
            created_at: Some(1),
            expires_at,
            session_id: None,
        }
    }

    #[tokio::test]
    async fn blacklisting_is_claimed_once() {
        let store = memory_store().await;
        assert!(!store.is_blacklisted("a").await.expect("query"));
        assert!(store.blacklist(&record("a", 50), 10).await.expect("query"));
        assert!(!store.blacklist(&record("a", 50), 11).await.expect("query"));
        assert!(store.is_blacklisted("a").await.expect("query"));
        // The unknown user 999 was not kept, and the token was recorded as outstanding once.
        assert_eq!(store.token_counts().await.expect("query"), (1, 1));
    }

    #[tokio::test]
    async fn flush_deletes_only_expired_rows() {
        let store = memory_store().await;
        store
            .record_outstanding(&record("old", 100))
            .await
            .expect("query");
        store
            .record_outstanding(&record("old", 100))
            .await
            .expect("duplicate ignored");
        store
            .blacklist(&record("old-dead", 100), 1)
            .await
            .expect("query");
        store
            .record_outstanding(&record("live", 300))
            .await
            .expect("query");
        store
            .blacklist(&record("live-dead", 300), 1)
            .await
            .expect("query");
        assert_eq!(store.count_expired(100).await.expect("query"), 3);
        let mut calls = 0;
        let report = store
            .flush_expired(100, FlushPace::UNPAUSED, |_| calls += 1)
            .await
            .expect("flush");
        assert_eq!(
            report,
            FlushReport {
                outstanding: 2,
                blacklisted: 1,
                revoked_access: 0,
                sessions: 0,
            }
        );
        assert!(calls >= 2);
        assert_eq!(store.token_counts().await.expect("query"), (2, 1));
        assert!(store.is_blacklisted("live-dead").await.expect("query"));
    }
}
