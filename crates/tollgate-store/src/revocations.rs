//! The set of revoked access tokens: access tokens that must stop working before they expire.
//!
//! simplejwt can only blacklist refresh and sliding tokens; an access token lives until its
//! `exp`. With revocation, logout and password change also end live access tokens. A check must
//! cost no network round trip (it runs on every protected request), so every instance keeps
//! the set in memory. The database (`revoked_access`) is the source of truth: a revocation is
//! recorded there first, then applied in memory; an instance loads the rows still in force when
//! it starts following the other instances, and learns of later ones through the change feed
//! (see `change_feed`), which calls [`Store::load_access`] and [`Store::poll_access`] here.
//!
//! An entry is kept only until the longest access token it could affect has expired, so the
//! set stays small: a logout adds entries for the lifetime of one access token.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use crate::{with_pool, with_writer, Store, StoreError};

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
pub(crate) struct Row {
    kind: String,
    subject: String,
    issued_before: i64,
    expires_at: i64,
}

impl Row {
    /// The announcement of this row to other instances (what the PostgreSQL trigger writes).
    pub(crate) fn payload(&self) -> String {
        format!(
            "{}\t{}\t{}\t{}",
            self.kind, self.expires_at, self.issued_before, self.subject
        )
    }

    /// Reads an announcement: kind, expires_at, issued_before and subject, separated by tabs
    /// (the subject last, so that it may hold anything).
    pub(crate) fn parse(payload: &str) -> Option<Row> {
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

/// The revoked access tokens in memory, shared by the clones of a [`Store`].
#[derive(Debug, Default)]
pub(crate) struct RevokedAccess {
    entries: RwLock<Entries>,
    /// Whether `entries` may be non-empty: lets the common case skip the lock.
    any: AtomicBool,
    /// The highest `revoked_access` id read (SQLite polling).
    last_id: AtomicI64,
}

impl RevokedAccess {
    /// Applies a revocation recorded in the database.
    pub(crate) fn add(&self, row: Row) {
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

    /// Drops the entries that no live access token can need any more at `now`.
    pub(crate) fn sweep(&self, now: i64) {
        if let Ok(mut entries) = self.entries.write() {
            entries.sweep(now);
            self.any.store(!entries.is_empty(), Ordering::Release);
        }
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
    /// instance at once, and (through the change feed, see `change_feed`) to every other
    /// instance within about a second. `access_lifetime` is the longest lifetime an affected
    /// access token can have (ACCESS_TOKEN_LIFETIME): session and user entries are kept that
    /// long past `now` (past `issued_before` for users) and then dropped.
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
        self.announce_revocation(&row).await;
        self.revoked.add(row);
        Ok(())
    }

    /// Whether an access token was revoked: a lookup in memory, no I/O. Always false until
    /// [`Store::start_sync`] ran with `access` on, except for revocations made through this
    /// store.
    pub fn is_access_revoked(&self, token: &AccessClaims<'_>) -> bool {
        if !self.revoked.any.load(Ordering::Acquire) {
            return false;
        }
        self.revoked
            .entries
            .read()
            .map_or(true, |entries| entries.revokes(token))
    }

    /// Reads every revocation still in force into memory.
    pub(crate) async fn load_access(&self) -> Result<(), StoreError> {
        let now = crate::now();
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
        self.revoked.add_all(rows);
        self.revoked.last_id.fetch_max(last_id, Ordering::AcqRel);
        tracing::debug!(count, "access revocations loaded");
        Ok(())
    }

    /// Reads the revocations added since the last look (SQLite: one writer, so ids commit in
    /// order and none is skipped).
    pub(crate) async fn poll_access(&self) -> Result<(), StoreError> {
        let after = self.revoked.last_id.load(Ordering::Acquire);
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
            self.revoked.last_id.fetch_max(last, Ordering::AcqRel);
        }
        self.revoked.add_all(
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
        let set = RevokedAccess::default();
        set.add(Revocation::Session { sid: "a" }.row(LIFETIME, 0));
        set.add(Revocation::Session { sid: "b" }.row(LIFETIME, 1000));
        set.sweep(500);
        let entries = set.entries.read().expect("lock");
        assert!(!entries.sids.contains_key("a"));
        assert!(entries.sids.contains_key("b"));
    }
}
