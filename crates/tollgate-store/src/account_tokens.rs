//! The single-use tokens of the account flows (password reset), stored only as hashes. A token
//! is void once used, once expired, and once a newer one of its purpose is issued to its user;
//! the password fingerprint it was issued under lets the caller void it once the password has
//! changed, by whatever path.

use crate::{with_pool, with_writer, Store, StoreError};

/// A token to store.
#[derive(Debug, Clone, Copy)]
pub struct NewAccountToken<'a> {
    /// What it is for (`password_reset`).
    pub purpose: &'a str,
    /// The user it was issued to.
    pub user_id: i64,
    /// The token's hash (see `tollgate_core::account_token`).
    pub token_hash: &'a str,
    /// The fingerprint of the password hash the user had when it was issued.
    pub password_fingerprint: &'a str,
    /// When it was issued, epoch seconds.
    pub created_at: i64,
    /// When it stops working, epoch seconds.
    pub expires_at: i64,
}

/// A stored token that has not expired.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AccountToken {
    /// The user it was issued to.
    pub user_id: i64,
    /// The fingerprint of the password hash the user had when it was issued.
    pub password_fingerprint: String,
    /// When it stops working, epoch seconds.
    pub expires_at: i64,
}

impl Store {
    /// Stores a token, voiding the user's earlier ones of its purpose.
    pub async fn issue_account_token(&self, token: &NewAccountToken<'_>) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                sqlx::query("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2")
                    .bind(token.user_id)
                    .bind(token.purpose)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO account_tokens (token_hash, purpose, user_id, \
                     password_fingerprint, created_at, expires_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(token.token_hash)
                .bind(token.purpose)
                .bind(token.user_id)
                .bind(token.password_fingerprint)
                .bind(token.created_at)
                .bind(token.expires_at)
                .execute(&mut *tx)
                .await?;
                tx.commit().await
            }
            .await
        })?;
        Ok(())
    }

    /// The live token of `purpose` with this hash issued to `user_id`, if any.
    pub async fn find_account_token(
        &self,
        purpose: &str,
        user_id: i64,
        token_hash: &str,
        now: i64,
    ) -> Result<Option<AccountToken>, StoreError> {
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT user_id, password_fingerprint, expires_at FROM account_tokens \
                 WHERE token_hash = $1 AND purpose = $2 AND user_id = $3 AND expires_at > $4",
            )
            .bind(token_hash)
            .bind(purpose)
            .bind(user_id)
            .bind(now)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Uses a live token: deletes it. False if it was not live (used meanwhile, expired, or
    /// voided): of two concurrent uses exactly one gets true.
    pub async fn use_account_token(
        &self,
        purpose: &str,
        user_id: i64,
        token_hash: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let deleted = with_writer!(self, |pool| {
            sqlx::query(
                "DELETE FROM account_tokens \
                 WHERE token_hash = $1 AND purpose = $2 AND user_id = $3 AND expires_at > $4",
            )
            .bind(token_hash)
            .bind(purpose)
            .bind(user_id)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(deleted == 1)
    }

    /// Voids every token of `user_id` of `purpose`.
    pub async fn void_account_tokens(&self, user_id: i64, purpose: &str) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query("DELETE FROM account_tokens WHERE user_id = $1 AND purpose = $2")
                .bind(user_id)
                .bind(purpose)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// Deletes expired tokens; returns how many.
    pub async fn flush_account_tokens(&self, now: i64) -> Result<u64, StoreError> {
        let deleted = with_writer!(self, |pool| {
            sqlx::query("DELETE FROM account_tokens WHERE expires_at <= $1")
                .bind(now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(deleted)
    }
}
