//! Second factors (TOTP secrets, passkeys), recovery codes, and the challenges that stand
//! between a right password and the tokens of a user who has a second factor.
//!
//! Every "works once" rule is one conditional statement, so that of two requests racing with
//! the same code, recovery code or challenge, exactly one wins.

use crate::{with_pool, with_writer, Store, StoreError};

/// A second factor as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MfaFactor {
    /// Its id.
    pub id: i64,
    /// Its user.
    pub user_id: i64,
    /// `totp` or `passkey`.
    pub kind: String,
    /// What the user calls it (a passkey's name; "" for TOTP).
    pub name: String,
    /// The TOTP secret (sealed when KEYS_ENCRYPTION_KEY is set) or the passkey credential.
    pub secret: String,
    /// When it was added.
    pub created_at: i64,
    /// When the user proved they hold it; `None` while enrolment is pending.
    pub confirmed_at: Option<i64>,
    /// The TOTP time step of the last code accepted.
    pub last_used_step: Option<i64>,
    /// When it last completed a login.
    pub last_used_at: Option<i64>,
}

/// A second-step challenge to store.
#[derive(Debug, Clone, Copy)]
pub struct NewMfaChallenge<'a> {
    /// The hash of the `mfa_token` handed to the client.
    pub token_hash: &'a str,
    /// The user whose password was right.
    pub user_id: i64,
    /// `login` (a second factor is due) or `enrollment` (one must be enrolled first).
    pub purpose: &'a str,
    /// What the login asked for (`pair`, `sliding`, `token`), answered once the step is done.
    pub login_kind: &'a str,
    /// The fingerprint of the password hash it was issued under.
    pub password_fingerprint: &'a str,
    /// Where the login came from.
    pub client_addr: &'a str,
    /// The login's `User-Agent`, or "".
    pub user_agent: &'a str,
    /// When it was issued, epoch seconds.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// A live challenge.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct MfaChallenge {
    /// The user whose password was right.
    pub user_id: i64,
    /// `login` or `enrollment`.
    pub purpose: String,
    /// What the login asked for.
    pub login_kind: String,
    /// The fingerprint of the password hash it was issued under.
    pub password_fingerprint: String,
    /// Where the login came from.
    pub client_addr: String,
    /// The login's `User-Agent`.
    pub user_agent: String,
    /// Wrong codes presented with it so far.
    pub failures: i32,
    /// When it stops working.
    pub expires_at: i64,
}

const FACTOR_COLUMNS: &str = "id, user_id, kind, name, secret, created_at, confirmed_at, \
                              last_used_step, last_used_at";

impl Store {
    /// Adds a pending factor; returns its id. A pending factor of the same kind is replaced, so
    /// that starting enrolment again gives a fresh secret.
    pub async fn add_mfa_factor(
        &self,
        user_id: i64,
        kind: &str,
        name: &str,
        secret: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "DELETE FROM mfa_factors \
                     WHERE user_id = $1 AND kind = $2 AND confirmed_at IS NULL",
                )
                .bind(user_id)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO mfa_factors (user_id, kind, name, secret, created_at) \
                     VALUES ($1, $2, $3, $4, $5) RETURNING id",
                )
                .bind(user_id)
                .bind(kind)
                .bind(name)
                .bind(secret)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(id)
            }
            .await
        })?)
    }

    /// The factors of `user_id`, pending ones included, oldest first.
    pub async fn mfa_factors(&self, user_id: i64) -> Result<Vec<MfaFactor>, StoreError> {
        let sql = format!(
            "SELECT {FACTOR_COLUMNS} FROM mfa_factors WHERE user_id = $1 ORDER BY created_at, id"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql).bind(user_id).fetch_all(pool).await
        })?)
    }

    /// Marks a pending factor confirmed, with the TOTP step of the code that confirmed it (so
    /// that code cannot log in too). False if it was not pending (confirmed meanwhile, or gone).
    pub async fn confirm_mfa_factor(
        &self,
        id: i64,
        step: Option<i64>,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE mfa_factors SET confirmed_at = $2, last_used_step = $3 \
                 WHERE id = $1 AND confirmed_at IS NULL",
            )
            .bind(id)
            .bind(now)
            .bind(step)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// Accepts TOTP time step `step` of factor `id` if no code of that step or a later one was
    /// accepted before: of two requests with the same code, one gets true.
    pub async fn use_totp_step(&self, id: i64, step: i64, now: i64) -> Result<bool, StoreError> {
        let updated = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE mfa_factors SET last_used_step = $2, last_used_at = $3 \
                 WHERE id = $1 AND confirmed_at IS NOT NULL \
                 AND (last_used_step IS NULL OR last_used_step < $2)",
            )
            .bind(id)
            .bind(step)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// Replaces the secret of a factor (a passkey's sign counter after a use).
    pub async fn update_mfa_secret(
        &self,
        id: i64,
        secret: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("UPDATE mfa_factors SET secret = $2, last_used_at = $3 WHERE id = $1")
                .bind(id)
                .bind(secret)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Removes factors of `user_id`: those of `kind`, or all when `None`, with the recovery
    /// codes when no confirmed factor is left. Returns how many factors went.
    pub async fn remove_mfa_factors(
        &self,
        user_id: i64,
        kind: Option<&str>,
    ) -> Result<u64, StoreError> {
        self.remove_factors(user_id, kind, None).await
    }

    /// Removes factor `id` of `user_id`, with the recovery codes when no confirmed factor is
    /// left. False if the user has no such factor.
    pub async fn remove_mfa_factor(&self, user_id: i64, id: i64) -> Result<bool, StoreError> {
        Ok(self.remove_factors(user_id, None, Some(id)).await? == 1)
    }

    async fn remove_factors(
        &self,
        user_id: i64,
        kind: Option<&str>,
        id: Option<i64>,
    ) -> Result<u64, StoreError> {
        Ok(with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let removed = sqlx::query(
                    "DELETE FROM mfa_factors WHERE user_id = $1 \
                     AND ($2 IS NULL OR kind = $2) AND ($3 IS NULL OR id = $3)",
                )
                .bind(user_id)
                .bind(kind)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                // Recovery codes stand in for a factor: with none left, they go too.
                sqlx::query(
                    "DELETE FROM mfa_recovery_codes WHERE user_id = $1 AND NOT EXISTS \
                     (SELECT 1 FROM mfa_factors \
                      WHERE user_id = $1 AND confirmed_at IS NOT NULL)",
                )
                .bind(user_id)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok::<_, sqlx::Error>(removed)
            }
            .await
        })?)
    }

    /// Replaces the recovery codes of `user_id` with these hashes.
    pub async fn set_recovery_codes(
        &self,
        user_id: i64,
        code_hashes: &[String],
        now: i64,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&mut *tx)
                    .await?;
                for hash in code_hashes {
                    sqlx::query(
                        "INSERT INTO mfa_recovery_codes (user_id, code_hash, created_at) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(user_id)
                    .bind(hash)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await
            }
            .await
        })?;
        Ok(())
    }

    /// Uses a recovery code: true if it was unused (and now is used).
    pub async fn use_recovery_code(
        &self,
        user_id: i64,
        code_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let updated = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE mfa_recovery_codes SET used_at = $3 \
                 WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(code_hash)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(updated == 1)
    }

    /// How many unused recovery codes `user_id` has left.
    pub async fn recovery_codes_left(&self, user_id: i64) -> Result<i64, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_scalar(
                "SELECT COUNT(*) FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Stores a challenge.
    pub async fn add_mfa_challenge(
        &self,
        challenge: &NewMfaChallenge<'_>,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO mfa_challenges (token_hash, user_id, purpose, login_kind, \
                 password_fingerprint, client_addr, user_agent, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(challenge.token_hash)
            .bind(challenge.user_id)
            .bind(challenge.purpose)
            .bind(challenge.login_kind)
            .bind(challenge.password_fingerprint)
            .bind(challenge.client_addr)
            .bind(challenge.user_agent)
            .bind(challenge.created_at)
            .bind(challenge.expires_at)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// The live challenge with this hash, if any.
    pub async fn find_mfa_challenge(
        &self,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<MfaChallenge>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, purpose, login_kind, password_fingerprint, client_addr, \
                 user_agent, failures, expires_at FROM mfa_challenges \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Uses a live challenge up: true for exactly one of concurrent callers.
    pub async fn use_mfa_challenge(&self, token_hash: &str, now: i64) -> Result<bool, StoreError> {
        let deleted = with_writer!(self, |pool| {
            sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = $1 AND expires_at > $2")
                .bind(token_hash)
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(deleted == 1)
    }

    /// Counts a wrong code against a challenge; past `limit` wrong codes it is void. Returns
    /// the failures counted so far.
    pub async fn fail_mfa_challenge(
        &self,
        token_hash: &str,
        limit: i32,
    ) -> Result<i32, StoreError> {
        Ok(with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let failures: Option<i32> = sqlx::query_scalar(
                    "UPDATE mfa_challenges SET failures = failures + 1 \
                     WHERE token_hash = $1 RETURNING failures",
                )
                .bind(token_hash)
                .fetch_optional(&mut *tx)
                .await?;
                let failures = failures.unwrap_or(limit);
                if failures >= limit {
                    sqlx::query("DELETE FROM mfa_challenges WHERE token_hash = $1")
                        .bind(token_hash)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok::<_, sqlx::Error>(failures)
            }
            .await
        })?)
    }

    /// Voids every challenge of `user_id` (the password changed, the factors were reset).
    pub async fn void_mfa_challenges(&self, user_id: i64) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("DELETE FROM mfa_challenges WHERE user_id = $1")
                .bind(user_id)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes expired challenges and passkey ceremonies; returns how many.
    pub async fn flush_mfa_challenges(&self, now: i64) -> Result<u64, StoreError> {
        Ok(with_writer!(self, |pool| {
            async {
                let mut flushed = 0;
                for table in ["mfa_challenges", "webauthn_ceremonies"] {
                    flushed += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= $1"))
                        .bind(now)
                        .execute(pool)
                        .await?
                        .rows_affected();
                }
                Ok::<_, sqlx::Error>(flushed)
            }
            .await
        })?)
    }

    /// Adds a confirmed passkey of `user_id`; returns its id.
    pub async fn add_passkey(
        &self,
        user_id: i64,
        name: &str,
        credential: &str,
        now: i64,
    ) -> Result<i64, StoreError> {
        Ok(with_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO mfa_factors (user_id, kind, name, secret, created_at, confirmed_at) \
                 VALUES ($1, 'passkey', $2, $3, $4, $4) RETURNING id",
            )
            .bind(user_id)
            .bind(name)
            .bind(credential)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Stores the state of a passkey ceremony under `token_hash` (replacing one there).
    pub async fn add_webauthn_ceremony(
        &self,
        token_hash: &str,
        user_id: Option<i64>,
        kind: &str,
        state: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query("DELETE FROM webauthn_ceremonies WHERE token_hash = $1")
                    .bind(token_hash)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO webauthn_ceremonies \
                     (token_hash, user_id, kind, state, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token_hash)
                .bind(user_id)
                .bind(kind)
                .bind(state)
                .bind(now)
                .bind(expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            }
            .await
        })?;
        Ok(())
    }

    /// Takes the live ceremony of `kind` under `token_hash`: its user and state, deleted so
    /// that it is answered once (of concurrent takers, one gets it).
    pub async fn take_webauthn_ceremony(
        &self,
        token_hash: &str,
        kind: &str,
        now: i64,
    ) -> Result<Option<(Option<i64>, String)>, StoreError> {
        Ok(with_writer!(self, |pool| {
            sqlx::query_as(
                "DELETE FROM webauthn_ceremonies \
                 WHERE token_hash = $1 AND kind = $2 AND expires_at > $3 \
                 RETURNING user_id, state",
            )
            .bind(token_hash)
            .bind(kind)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?)
    }
}
