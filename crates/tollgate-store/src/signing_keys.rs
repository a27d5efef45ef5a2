//! Rotated signing keys (table `signing_keys`): the active key and the retired keys that still
//! verify. Private material arrives here already sealed; the store never sees a usable secret.

use crate::{with_pool, with_writer, Store, StoreError};

/// One row of `signing_keys`. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SigningKeyRecord {
    /// The key id written in the tokens it signs.
    pub kid: String,
    /// The algorithm's name (`ES256`, `HS256`, ...).
    pub algorithm: String,
    /// The PEM public key; `None` for HMAC keys.
    pub public_key: Option<String>,
    /// The private key or HMAC secret, sealed (AES-256-GCM) by the caller; `None` for the key
    /// configured in SIGNING_KEY.
    pub sealed_key: Option<String>,
    /// When the key was stored.
    pub created_at: i64,
    /// When it stopped signing; `None` for the active key.
    pub retired_at: Option<i64>,
    /// When a retired key stops verifying.
    pub verify_until: Option<i64>,
    /// When a pre-published key starts signing; `None` when it signed from `created_at`.
    pub signs_from: Option<i64>,
}

const COLUMNS: &str =
    "kid, algorithm, public_key, sealed_key, created_at, retired_at, verify_until, signs_from";

/// What a signing-key rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRotation {
    /// The key that was active before (the configured key's id on the first rotation).
    pub retired: String,
}

impl Store {
    /// Every stored signing key, the active one first, then the most recently retired. Of keys
    /// retired within the same second, the configured SIGNING_KEY (stored without a sealed
    /// secret) comes last: it was retired by the very first rotation, so it is the oldest.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let query = format!(
            "SELECT {COLUMNS} FROM signing_keys \
             ORDER BY retired_at IS NOT NULL, retired_at DESC, created_at DESC, \
             sealed_key IS NULL, kid"
        );
        let rows = with_pool!(self, |pool| {
            sqlx::query_as::<_, SigningKeyRecord>(&query)
                .fetch_all(pool)
                .await
        })?;
        Ok(rows)
    }

    /// Makes `new` the next key in one transaction: it signs from `switch_at` (`now`, or later
    /// for a key published before it signs), when the active key retires, to verify until
    /// `verify_until`. Without an active row (the first rotation), `configured` (the row that
    /// stands for SIGNING_KEY) is recorded as the retiring key instead. Of two rotations at
    /// once, one fails with [`StoreError::KeyRotationRace`] and changes nothing; while a
    /// pre-published key waits to sign, a rotation fails with
    /// [`StoreError::KeyRotationPending`].
    pub async fn rotate_signing_key(
        &self,
        new: &SigningKeyRecord,
        configured: &SigningKeyRecord,
        now: i64,
        switch_at: i64,
        verify_until: i64,
    ) -> Result<KeyRotation, StoreError> {
        let insert = format!(
            "INSERT INTO signing_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (kid) DO UPDATE SET retired_at = excluded.retired_at, \
             verify_until = excluded.verify_until"
        );
        let signs_from = (switch_at > now).then_some(switch_at);
        let outcome = with_writer!(self, |pool| {
            async {
                let mut tx = pool.begin().await?;
                let active: Option<(String, Option<i64>)> = sqlx::query_as(
                    "SELECT kid, signs_from FROM signing_keys WHERE retired_at IS NULL",
                )
                .fetch_optional(&mut *tx)
                .await?;
                let retired = match active {
                    Some((kid, Some(from))) if from > now => {
                        tx.rollback().await?;
                        return Ok(Err((kid, from)));
                    }
                    Some((kid, _)) => {
                        let done = sqlx::query(
                            "UPDATE signing_keys SET retired_at = $1, verify_until = $2 \
                             WHERE kid = $3 AND retired_at IS NULL",
                        )
                        .bind(switch_at)
                        .bind(verify_until)
                        .bind(&kid)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if done != 1 {
                            tx.rollback().await?;
                            return Ok::<_, sqlx::Error>(Ok(None));
                        }
                        kid
                    }
                    None => {
                        sqlx::query(&insert)
                            .bind(&configured.kid)
                            .bind(&configured.algorithm)
                            .bind(&configured.public_key)
                            .bind(None::<String>)
                            .bind(configured.created_at)
                            .bind(switch_at)
                            .bind(verify_until)
                            .bind(None::<i64>)
                            .execute(&mut *tx)
                            .await?;
                        configured.kid.clone()
                    }
                };
                sqlx::query(&insert)
                    .bind(&new.kid)
                    .bind(&new.algorithm)
                    .bind(&new.public_key)
                    .bind(&new.sealed_key)
                    .bind(new.created_at)
                    .bind(None::<i64>)
                    .bind(None::<i64>)
                    .bind(signs_from)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Ok(Some(retired)))
            }
            .await
        });
        match outcome {
            Ok(Ok(Some(retired))) => Ok(KeyRotation { retired }),
            Ok(Ok(None)) => Err(StoreError::KeyRotationRace),
            Ok(Err((kid, signs_from))) => Err(StoreError::KeyRotationPending { kid, signs_from }),
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::KeyRotationRace)
            }
            Err(err) => Err(err.into()),
        }
    }

    /// Replaces a key's sealed material with `new`, if it is still `old` (so that two reseals at
    /// once cannot overwrite each other with stale data). Returns whether the row changed.
    pub async fn reseal_signing_key(
        &self,
        kid: &str,
        old: &str,
        new: &str,
    ) -> Result<bool, StoreError> {
        let changed = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE signing_keys SET sealed_key = $1 WHERE kid = $2 AND sealed_key = $3",
            )
            .bind(new)
            .bind(kid)
            .bind(old)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// Ends a retired key's life now: its `verify_until` becomes `now` unless it has passed
    /// already. Returns false, changing nothing, when no retired key has this id (the active key,
    /// and a key that signs until a pre-published key takes over, cannot be ended this way).
    pub async fn expire_signing_key(&self, kid: &str, now: i64) -> Result<bool, StoreError> {
        let changed = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE signing_keys SET verify_until = $1 \
                 WHERE kid = $2 AND retired_at <= $1 AND verify_until > $1",
            )
            .bind(now)
            .bind(kid)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(changed == 1)
    }

    /// Deletes retired keys whose `verify_until` is at or before `now`; returns their ids.
    pub async fn prune_signing_keys(&self, now: i64) -> Result<Vec<String>, StoreError> {
        let kids = with_writer!(self, |pool| {
            sqlx::query_scalar::<_, String>(
                "DELETE FROM signing_keys \
                 WHERE retired_at IS NOT NULL AND verify_until <= $1 RETURNING kid",
            )
            .bind(now)
            .fetch_all(pool)
            .await
        })?;
        Ok(kids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::memory_store;

    fn key(kid: &str, now: i64) -> SigningKeyRecord {
        SigningKeyRecord {
            kid: kid.to_owned(),
            algorithm: "ES256".to_owned(),
            public_key: Some(format!("public {kid}")),
            sealed_key: Some(format!("sealed {kid}")),
            created_at: now,
            retired_at: None,
            verify_until: None,
            signs_from: None,
        }
    }

    fn configured() -> SigningKeyRecord {
        SigningKeyRecord {
            sealed_key: None,
            ..key("configured", 0)
        }
    }

    #[tokio::test]
    async fn rotations_retire_the_active_key_and_prune_drops_expired_ones() {
        let store = memory_store().await;
        assert!(store.signing_keys().await.expect("lists").is_empty());
        let first = store
            .rotate_signing_key(&key("one", 100), &configured(), 100, 100, 200)
            .await
            .expect("rotates");
        assert_eq!(first.retired, "configured");
        let second = store
            .rotate_signing_key(&key("two", 150), &configured(), 150, 150, 300)
            .await
            .expect("rotates");
        assert_eq!(second.retired, "one");
        let rows = store.signing_keys().await.expect("lists");
        let summary: Vec<(&str, Option<i64>, Option<i64>, bool)> = rows
            .iter()
            .map(|r| {
                (
                    r.kid.as_str(),
                    r.retired_at,
                    r.verify_until,
                    r.sealed_key.is_some(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("two", None, None, true),
                ("one", Some(150), Some(300), true),
                ("configured", Some(100), Some(200), false),
            ]
        );
        assert_eq!(
            store.prune_signing_keys(199).await.expect("prunes"),
            Vec::<String>::new()
        );
        assert_eq!(
            store.prune_signing_keys(200).await.expect("prunes"),
            ["configured"]
        );
        assert_eq!(
            store.prune_signing_keys(10_000).await.expect("prunes"),
            ["one"]
        );
        let left = store.signing_keys().await.expect("lists");
        assert_eq!(left.len(), 1, "the active key is never pruned");
        assert_eq!(left[0].kid, "two");
    }

    #[tokio::test]
    async fn a_pre_published_key_waits_and_blocks_other_rotations_until_it_signs() {
        let store = memory_store().await;
        store
            .rotate_signing_key(&key("one", 100), &configured(), 100, 100, 200)
            .await
            .expect("rotates");
        store
            .rotate_signing_key(&key("two", 150), &configured(), 150, 180, 400)
            .await
            .expect("stages");
        let rows = store.signing_keys().await.expect("lists");
        // (kid, retired_at, verify_until, signs_from)
        type Summary<'a> = (&'a str, Option<i64>, Option<i64>, Option<i64>);
        let summary: Vec<Summary> = rows
            .iter()
            .map(|r| (r.kid.as_str(), r.retired_at, r.verify_until, r.signs_from))
            .collect();
        assert_eq!(
            summary,
            [
                ("two", None, None, Some(180)),
                ("one", Some(180), Some(400), None),
                ("configured", Some(100), Some(200), None),
            ]
        );
        // The key signing until 180 cannot be ended early, nor a third key staged.
        assert!(!store.expire_signing_key("one", 170).await.expect("query"));
        let refused = store
            .rotate_signing_key(&key("three", 170), &configured(), 170, 170, 500)
            .await;
        assert!(
            matches!(&refused, Err(StoreError::KeyRotationPending { kid, signs_from: 180 }) if kid == "two"),
            "{refused:?}"
        );
        store
            .rotate_signing_key(&key("three", 180), &configured(), 180, 180, 500)
            .await
            .expect("rotates once the staged key signs");
        assert!(store.expire_signing_key("one", 190).await.expect("query"));
    }

    #[tokio::test]
    async fn a_second_active_key_is_refused() {
        let store = memory_store().await;
        store
            .rotate_signing_key(&key("one", 100), &configured(), 100, 100, 200)
            .await
            .expect("rotates");
        let raced = with_writer!(store, |pool| {
            sqlx::query(
                "INSERT INTO signing_keys (kid, algorithm, created_at) VALUES ('x', 'ES256', 1)",
            )
            .execute(pool)
            .await
            .map(|_| ())
        });
        assert!(raced.is_err(), "two active keys at once");
    }
}
