//! Sessions: one per login, the family of every refresh or sliding token descended from it.
//!
//! A session's id travels in its tokens' `sid` claim; each outstanding token row names its
//! session. Revoking a session marks it revoked and blacklists its unexpired tokens, in one
//! transaction; a refresh checks the mark, so a revoked session cannot be refreshed even where a
//! blacklist check is answered by a Redis copy that missed the change.

use crate::tokens::{TokenRecord, RECORD_OUTSTANDING};
use crate::{with_pool, with_writer, Backend, Store, StoreError};

/// A new session, started by a login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewSession<'a> {
    /// Its id (random; the tokens' `sid`).
    pub id: &'a str,
    /// The user who logged in.
    pub user_id: i64,
    /// When.
    pub created_at: i64,
    /// The client's address.
    pub client_addr: &'a str,
    /// The client's `User-Agent` header, or "".
    pub user_agent: &'a str,
    /// When its first token can no longer be refreshed (a refresh token's `exp`, a sliding
    /// token's `refresh_exp`).
    pub expires_at: i64,
    /// How the user signed in (the tokens' `amr` claim: `pwd`, `otp`, `hwk`...).
    pub amr: &'a [&'a str],
}

/// A live session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// Its id, the tokens' `sid`.
    pub id: String,
    /// Its user.
    pub user_id: i64,
    /// When the user logged in.
    pub created_at: i64,
    /// When a token of the session was last refreshed (the login, before any refresh).
    pub last_used_at: i64,
    /// The address the login came from.
    pub client_addr: String,
    /// The login's `User-Agent`, or "".
    pub user_agent: String,
    /// When its last token expires.
    pub expires_at: i64,
    /// How the user signed in, space-separated (`pwd otp`); "" for sessions older than the
    /// record.
    pub amr: String,
}

/// What became of a rotated refresh token: when it was rotated, and the newest token of the
/// chain of rotations that started from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotatedToken {
    /// When the token was blacklisted by its rotation.
    pub rotated_at: i64,
    /// The jti of the family's newest token.
    pub current_jti: String,
    /// Its `iat`, if recorded.
    pub current_created_at: Option<i64>,
    /// Its `exp`.
    pub current_expires_at: i64,
    /// Its session, if it has one.
    pub session_id: Option<String>,
    /// Whether the newest token is blacklisted too (logged out or revoked): the family ended.
    pub current_blacklisted: bool,
}

/// The newest token of a chain of rotations: when the first was rotated, then the newest's jti,
/// iat, exp, session, and whether it is blacklisted.
type NewestRow = (i64, String, Option<i64>, i64, Option<String>, bool);

/// Blacklists every live outstanding token of one session ($2); `$1` is now. The session's
/// rotated tokens were blacklisted when they were rotated: their rows conflict and are left as
/// they are (with the link to their successors), and only the newly blacklisted come back. Each
/// row is kept until the session expires, not the token's recorded `exp`: a sliding token keeps
/// its jti while its `exp` moves on. `$live` is SQLite's condition for its partial index of live
/// tokens by session (the rotation marks a spent token's row), empty on PostgreSQL.
macro_rules! blacklist_session {
    ($live:literal) => {
        concat!(
            "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) \
             SELECT o.jti, $1, s.expires_at FROM outstanding_tokens o \
             JOIN sessions s ON s.id = o.session_id \
             WHERE o.session_id = $2 AND s.expires_at > $1",
            $live,
            " ON CONFLICT (jti) DO NOTHING RETURNING jti, expires_at"
        )
    };
}
pub(crate) const BLACKLIST_SESSION_POSTGRES: &str = blacklist_session!("");
pub(crate) const BLACKLIST_SESSION_SQLITE: &str = blacklist_session!(" AND o.replaced_by IS NULL");

/// Blacklists every unexpired live outstanding token of one user ($2), with a session or
/// without; each row is kept until its session expires, or its token when it has none. As for
/// a session, a rotated token is blacklisted already. A user's tokens with a session are found
/// through the user's sessions; SQLite indexes by user only the live tokens without one (see
/// migration 20261207180000), so that a rotation writes no entry of an index by user, and
/// `$live` is its condition, as for [`BLACKLIST_SESSION_SQLITE`].
macro_rules! blacklist_user {
    ($live:literal) => {
        concat!(
            "INSERT INTO blacklisted_tokens (jti, blacklisted_at, expires_at) \
             SELECT live.jti, $1, live.expires_at FROM ( \
               SELECT o.jti AS jti, s.expires_at AS expires_at FROM sessions s \
               JOIN outstanding_tokens o ON o.session_id = s.id",
            $live,
            " WHERE s.user_id = $2 AND s.expires_at > $1 \
               UNION ALL \
               SELECT o.jti AS jti, o.expires_at AS expires_at FROM outstanding_tokens o \
               WHERE o.user_id = $2 AND o.session_id IS NULL AND o.expires_at > $1",
            $live,
            " ) AS live WHERE TRUE \
             ON CONFLICT (jti) DO NOTHING RETURNING jti, expires_at"
        )
    };
}
pub(crate) const BLACKLIST_USER_POSTGRES: &str = blacklist_user!("");
pub(crate) const BLACKLIST_USER_SQLITE: &str = blacklist_user!(" AND o.replaced_by IS NULL");

/// How many rotations back a replayed token may lie; beyond it the chain is not followed.
const MAX_CHAIN: i64 = 100_000;

impl Store {
    /// Starts a session and records its first token as outstanding, in one transaction.
    pub async fn start_session(
        &self,
        session: &NewSession<'_>,
        token: &TokenRecord<'_>,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "INSERT INTO sessions (id, user_id, created_at, last_used_at, client_addr, \
                     user_agent, expires_at, amr) VALUES ($1, $2, $3, $3, $4, $5, $6, $7)",
                )
                .bind(session.id)
                .bind(session.user_id)
                .bind(session.created_at)
                .bind(session.client_addr)
                .bind(session.user_agent)
                .bind(session.expires_at)
                .bind(session.amr.join(" "))
                .execute(&mut *tx)
                .await?;
                sqlx::query(RECORD_OUTSTANDING)
                    .bind(token.jti)
                    .bind(token.user_id)
                    .bind(token.created_at)
                    .bind(token.expires_at)
                    .bind(token.session_id)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            }
            .await
        })?;
        Ok(())
    }

    /// Records a refresh of session `id` at `now` (and, after a rotation, its new last expiry).
    /// False if the session was revoked. A session that is not stored passes: the token was
    /// minted elsewhere with the same key (its user is checked on its own), or both expired.
    pub async fn touch_session(
        &self,
        id: &str,
        now: i64,
        expires_at: Option<i64>,
    ) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET last_used_at = $1, \
                 expires_at = CASE WHEN $2 > expires_at THEN $2 ELSE expires_at END \
                 WHERE id = $3 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(expires_at.unwrap_or(i64::MIN))
            .bind(id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if done == 1 {
            return Ok(true);
        }
        let revoked = with_pool!(self, |pool| {
            sqlx::query_scalar::<_, i32>("SELECT 1 FROM sessions WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(revoked.is_none())
    }

    /// A user's live sessions (not revoked, not expired), most recently used first.
    pub async fn sessions_of(&self, user_id: i64, now: i64) -> Result<Vec<Session>, StoreError> {
        let sessions = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, user_id, created_at, last_used_at, client_addr, user_agent, expires_at, \
                 amr FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2 \
                 ORDER BY last_used_at DESC, created_at DESC, id",
            )
            .bind(user_id)
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        Ok(sessions)
    }

    /// Revokes session `id` of user `user_id` (any user's when `None`): marks it revoked and
    /// blacklists its unexpired tokens. False, changing nothing, if that user has no such live
    /// session; so of two concurrent revocations exactly one returns true.
    pub async fn revoke_session(
        &self,
        user_id: Option<i64>,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let blacklist = self.blacklist_session_sql();
        let blacklisted = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let found = sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE id = $2 \
                     AND ($3 = 0 OR user_id = $4) AND revoked_at IS NULL AND expires_at > $1",
                )
                .bind(now)
                .bind(id)
                .bind(i32::from(user_id.is_some()))
                .bind(user_id.unwrap_or_default())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if found != 1 {
                    tx.rollback().await?;
                    return Ok::<_, sqlx::Error>(None);
                }
                let rows: Vec<(String, i64)> = sqlx::query_as(blacklist)
                    .bind(now)
                    .bind(id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(rows))
            }
            .await
        })?;
        let Some(rows) = blacklisted else {
            return Ok(false);
        };
        self.copy_to_redis(&rows, now).await;
        Ok(true)
    }

    /// Logs a user out everywhere: revokes every live session and blacklists every unexpired
    /// token recorded for the user (also those minted without a session), in one transaction.
    /// Returns the ids of the sessions revoked.
    pub async fn revoke_all_sessions(
        &self,
        user_id: i64,
        now: i64,
    ) -> Result<Vec<String>, StoreError> {
        let blacklist = self.blacklist_user_sql();
        let (revoked, rows) = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let revoked: Vec<String> = sqlx::query_scalar(
                    "UPDATE sessions SET revoked_at = $1 \
                     WHERE user_id = $2 AND revoked_at IS NULL AND expires_at > $1 RETURNING id",
                )
                .bind(now)
                .bind(user_id)
                .fetch_all(&mut *tx)
                .await?;
                let rows: Vec<(String, i64)> = sqlx::query_as(blacklist)
                    .bind(now)
                    .bind(user_id)
                    .fetch_all(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>((revoked, rows))
            }
            .await
        })?;
        self.copy_to_redis(&rows, now).await;
        Ok(revoked)
    }

    /// Ends a user's live sessions without blacklisting their tokens (for a deactivated user,
    /// whose refresh is refused as inactive anyway): a refresh in one of them is refused even
    /// once the user is active again. Returns how many sessions ended.
    pub async fn end_sessions(&self, user_id: i64, now: i64) -> Result<u64, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(user_id)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    /// Follows a blacklisted refresh token's rotations to the newest token of its family.
    /// `None` if the token was not rotated (it was logged out, revoked, or is unknown).
    pub async fn rotation(&self, jti: &str) -> Result<Option<RotatedToken>, StoreError> {
        // One read: the chain starts at the token's claim, which holds both when it was rotated
        // and the link to its successor.
        let newest: Option<NewestRow> = with_pool!(self, |pool| {
            sqlx::query_as(
                "WITH RECURSIVE chain (jti, depth, rotated_at) AS ( \
                   SELECT replaced_by, CAST(1 AS BIGINT), blacklisted_at FROM blacklisted_tokens \
                   WHERE jti = $1 AND replaced_by IS NOT NULL \
                   UNION ALL \
                   SELECT b.replaced_by, c.depth + 1, c.rotated_at FROM blacklisted_tokens b \
                   JOIN chain c ON b.jti = c.jti \
                   WHERE b.replaced_by IS NOT NULL AND c.depth < $2) \
                 SELECT c.rotated_at, o.jti, o.created_at, o.expires_at, o.session_id, \
                   EXISTS (SELECT 1 FROM blacklisted_tokens b WHERE b.jti = o.jti) AS blacklisted \
                 FROM chain c JOIN outstanding_tokens o ON o.jti = c.jti \
                 ORDER BY c.depth DESC LIMIT 1",
            )
            .bind(jti)
            .bind(MAX_CHAIN)
            .fetch_optional(pool)
            .await
        })?;
        Ok(newest.map(
            |(
                rotated_at,
                current_jti,
                current_created_at,
                current_expires_at,
                session_id,
                blacklisted,
            )| {
                RotatedToken {
                    rotated_at,
                    current_jti,
                    current_created_at,
                    current_expires_at,
                    session_id,
                    current_blacklisted: blacklisted,
                }
            },
        ))
    }

    /// [`BLACKLIST_SESSION_POSTGRES`] or [`BLACKLIST_SESSION_SQLITE`], for this store.
    pub(crate) fn blacklist_session_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => BLACKLIST_SESSION_POSTGRES,
            Backend::Sqlite => BLACKLIST_SESSION_SQLITE,
        }
    }

    /// [`BLACKLIST_USER_POSTGRES`] or [`BLACKLIST_USER_SQLITE`], for this store.
    pub(crate) fn blacklist_user_sql(&self) -> &'static str {
        match self.backend() {
            Backend::Postgres => BLACKLIST_USER_POSTGRES,
            Backend::Sqlite => BLACKLIST_USER_SQLITE,
        }
    }

    /// Copies newly blacklisted jtis into the Redis denylist, if there is one, in one pipeline.
    pub(crate) async fn copy_to_redis(&self, rows: &[(String, i64)], now: i64) {
        let rows: Vec<(&str, i64)> = rows
            .iter()
            .map(|(jti, expires_at)| (jti.as_str(), *expires_at))
            .collect();
        let _ = self.redis_add_many(&rows, now).await;
    }
}
