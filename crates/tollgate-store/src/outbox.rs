//! The outbox: messages delivered outside the request that caused them (mail, webhooks),
//! kept in the database until they are delivered or given up on.
//!
//! A request adds a message and answers at once; a sender claims due messages, delivers them
//! and records the outcome. Nothing is lost when the receiver is down or the process restarts
//! (the row waits), and several instances never deliver one message at the same time: a claim
//! takes a lease on the row (PostgreSQL skips rows another sender has locked; SQLite has one
//! writer), and a sender that dies mid-delivery leaves a lease that runs out, after which the
//! message is claimed again. Delivery is therefore at least once.
//!
//! A delivered message keeps its row (for listings) but loses its body, which may hold a
//! secret link.

use crate::{with_pool, with_writer, Store, StoreError};

/// A message to add to the outbox.
#[derive(Debug, Clone, Copy)]
pub struct NewMessage<'a> {
    /// What delivers it (`email`, `webhook`).
    pub channel: &'a str,
    /// Where to: an email address, a URL.
    pub destination: &'a str,
    /// What it is, for listings and metrics (`password_reset`, `user.created`, ...).
    pub topic: &'a str,
    /// The message, as its channel reads it.
    pub body: &'a str,
}

/// A message as the outbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxMessage {
    /// Its id, unique and stable across retries.
    pub id: i64,
    /// What delivers it.
    pub channel: String,
    /// Where to.
    pub destination: String,
    /// What it is.
    pub topic: String,
    /// The message; `None` once delivered.
    pub body: Option<String>,
    /// When it was added, epoch seconds.
    pub created_at: i64,
    /// Delivery attempts so far (a claim counts as one).
    pub attempts: i32,
    /// When it is due next, epoch seconds.
    pub next_attempt_at: i64,
    /// When it was delivered.
    pub delivered_at: Option<i64>,
    /// When it was given up on (a dead letter).
    pub failed_at: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
}

/// Which messages a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxFilter {
    /// Not delivered yet and not given up on.
    Pending,
    /// Given up on.
    Failed,
    /// Every message kept.
    All,
}

/// How many messages wait, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxDepth {
    /// Not delivered yet and not given up on.
    pub pending: i64,
    /// Given up on.
    pub failed: i64,
}

const COLUMNS: &str = "id, channel, destination, topic, body, created_at, attempts, \
                       next_attempt_at, delivered_at, failed_at, last_error";

impl Store {
    /// Adds a message, due at once. Returns its id.
    pub async fn enqueue(&self, message: &NewMessage<'_>, now: i64) -> Result<i64, StoreError> {
        Ok(with_writer!(self, |pool| {
            sqlx::query_scalar(
                "INSERT INTO outbox (channel, destination, topic, body, created_at, \
                 next_attempt_at) VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
            )
            .bind(message.channel)
            .bind(message.destination)
            .bind(message.topic)
            .bind(message.body)
            .bind(now)
            .fetch_one(pool)
            .await
        })?)
    }

    /// Claims up to `limit` due messages for `lease` seconds: no other sender claims them until
    /// the lease ends or the outcome is recorded. Each claim counts as an attempt.
    pub async fn claim_due(
        &self,
        now: i64,
        lease: i64,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let lock = match self.backend() {
            crate::Backend::Postgres => "FOR UPDATE SKIP LOCKED",
            // One writer: the statement runs alone.
            crate::Backend::Sqlite => "",
        };
        let sql = format!(
            "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id IN (SELECT id FROM outbox \
               WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 \
               AND (claimed_until IS NULL OR claimed_until <= $2) \
               ORDER BY next_attempt_at, id LIMIT $3 {lock}) \
             RETURNING {COLUMNS}"
        );
        let mut claimed: Vec<OutboxMessage> = with_writer!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(now.saturating_add(lease))
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await
        })?;
        claimed.sort_by_key(|message| message.id);
        Ok(claimed)
    }

    /// Records a delivery: the body is dropped.
    pub async fn mark_delivered(&self, id: i64, now: i64) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE outbox SET delivered_at = $1, body = NULL, claimed_until = NULL, \
                 last_error = NULL WHERE id = $2",
            )
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Records a failed attempt: due again at `retry_at`, or given up on when `None`.
    pub async fn mark_failed(
        &self,
        id: i64,
        error: &str,
        retry_at: Option<i64>,
        now: i64,
    ) -> Result<(), StoreError> {
        with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE outbox SET last_error = $1, claimed_until = NULL, \
                 next_attempt_at = COALESCE($2, next_attempt_at), \
                 failed_at = CASE WHEN $2 IS NULL THEN $3 ELSE NULL END WHERE id = $4",
            )
            .bind(error)
            .bind(retry_at)
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Makes a message that is not delivered due at once again, a dead letter included. False
    /// if there is no such undelivered message.
    pub async fn retry_message(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        self.retry_message_on(None, id, now).await
    }

    /// [`Store::retry_message`] for a message of `channel` only, when given.
    pub async fn retry_message_on(
        &self,
        channel: Option<&str>,
        id: i64,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1, failed_at = NULL, claimed_until = NULL \
                 WHERE id = $2 AND delivered_at IS NULL AND ($3 IS NULL OR channel = $3)",
            )
            .bind(now)
            .bind(id)
            .bind(channel)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done == 1)
    }

    /// Makes every dead letter due at once again; returns how many.
    pub async fn retry_failed_messages(&self, now: i64) -> Result<u64, StoreError> {
        self.retry_failed_messages_on(None, now).await
    }

    /// [`Store::retry_failed_messages`] for the messages of `channel` only, when given.
    pub async fn retry_failed_messages_on(
        &self,
        channel: Option<&str>,
        now: i64,
    ) -> Result<u64, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query(
                "UPDATE outbox SET next_attempt_at = $1, failed_at = NULL, claimed_until = NULL \
                 WHERE failed_at IS NOT NULL AND delivered_at IS NULL \
                 AND ($2 IS NULL OR channel = $2)",
            )
            .bind(now)
            .bind(channel)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }

    /// The newest `limit` messages the filter selects, newest first.
    pub async fn outbox_messages(
        &self,
        filter: OutboxFilter,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        self.outbox_messages_on(None, filter, limit).await
    }

    /// [`Store::outbox_messages`] of `channel` only, when given.
    pub async fn outbox_messages_on(
        &self,
        channel: Option<&str>,
        filter: OutboxFilter,
        limit: i64,
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let condition = match filter {
            OutboxFilter::Pending => "delivered_at IS NULL AND failed_at IS NULL",
            OutboxFilter::Failed => "failed_at IS NOT NULL",
            OutboxFilter::All => "TRUE",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM outbox WHERE {condition} AND ($2 IS NULL OR channel = $2) \
             ORDER BY id DESC LIMIT $1"
        );
        Ok(with_pool!(self, |pool| {
            sqlx::query_as(&sql)
                .bind(limit)
                .bind(channel)
                .fetch_all(pool)
                .await
        })?)
    }

    /// How many messages wait and how many were given up on.
    pub async fn outbox_depth(&self) -> Result<OutboxDepth, StoreError> {
        let (pending, failed): (i64, i64) = with_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT \
                   COUNT(*) FILTER (WHERE delivered_at IS NULL AND failed_at IS NULL), \
                   COUNT(*) FILTER (WHERE failed_at IS NOT NULL) \
                 FROM outbox",
            )
            .fetch_one(pool)
            .await
        })?;
        Ok(OutboxDepth { pending, failed })
    }

    /// Deletes delivered messages older than `before`; returns how many.
    pub async fn prune_delivered(&self, before: i64) -> Result<u64, StoreError> {
        let done = with_writer!(self, |pool| {
            sqlx::query("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1")
                .bind(before)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::testing::memory_store;

    fn mail(to: &str) -> NewMessage<'_> {
        NewMessage {
            channel: "email",
            destination: to,
            topic: "password_reset",
            body: "{\"subject\":\"s\"}",
        }
    }

    #[tokio::test]
    async fn a_claimed_message_is_not_claimed_again_until_its_lease_ends() {
        let store = memory_store().await;
        let id = store.enqueue(&mail("ann@example.com"), 100).await.unwrap();
        let first = store.claim_due(100, 30, 10).await.unwrap();
        assert_eq!(first.iter().map(|m| m.id).collect::<Vec<_>>(), [id]);
        assert_eq!(first[0].attempts, 1);
        assert!(store.claim_due(101, 30, 10).await.unwrap().is_empty());
        // The sender died: the lease runs out and the message is claimed again.
        let again = store.claim_due(130, 30, 10).await.unwrap();
        assert_eq!(again[0].attempts, 2);
    }

    #[tokio::test]
    async fn a_failure_waits_for_its_retry_and_a_dead_letter_for_an_administrator() {
        let store = memory_store().await;
        let id = store.enqueue(&mail("ann@example.com"), 100).await.unwrap();
        store.claim_due(100, 30, 10).await.unwrap();
        store
            .mark_failed(id, "refused", Some(110), 101)
            .await
            .unwrap();
        assert!(store.claim_due(109, 30, 10).await.unwrap().is_empty());
        assert_eq!(store.claim_due(110, 30, 10).await.unwrap().len(), 1);
        store
            .mark_failed(id, "refused again", None, 111)
            .await
            .unwrap();
        assert!(store.claim_due(10_000, 30, 10).await.unwrap().is_empty());
        let depth = store.outbox_depth().await.unwrap();
        assert_eq!(
            depth,
            OutboxDepth {
                pending: 0,
                failed: 1
            }
        );
        let failed = store
            .outbox_messages(OutboxFilter::Failed, 10)
            .await
            .unwrap();
        assert_eq!(failed[0].last_error.as_deref(), Some("refused again"));
        assert!(store.retry_message(id, 200).await.unwrap());
        assert_eq!(store.claim_due(200, 30, 10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_delivered_message_loses_its_body_and_cannot_be_retried() {
        let store = memory_store().await;
        let id = store.enqueue(&mail("ann@example.com"), 100).await.unwrap();
        store.claim_due(100, 30, 10).await.unwrap();
        store.mark_delivered(id, 101).await.unwrap();
        let all = store.outbox_messages(OutboxFilter::All, 10).await.unwrap();
        assert_eq!(
            (all[0].body.as_deref(), all[0].delivered_at),
            (None, Some(101))
        );
        assert!(!store.retry_message(id, 102).await.unwrap());
        assert_eq!(store.outbox_depth().await.unwrap(), OutboxDepth::default());
        assert_eq!(store.prune_delivered(102).await.unwrap(), 1);
    }
}
