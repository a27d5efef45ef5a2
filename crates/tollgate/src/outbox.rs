//! The outbox's sender: delivers what requests put in the outbox (see
//! [`tollgate_store::Store::enqueue`]), outside those requests.
//!
//! Each instance runs one sender while it serves. It wakes when this instance adds a message,
//! and once a second for messages other instances or earlier runs left; claims due messages
//! (a lease, so that no two instances deliver one message at once); delivers each through its
//! channel; and records the outcome. A failed delivery is tried again after 2 s, then after
//! twice as long each time (at most an hour apart), until it succeeds or a day has passed
//! since the message was added; then it is given up on (a dead letter, which `tollgate outbox
//! retry` sends again). A refusal that retrying cannot change (an SMTP 5xx, a webhook endpoint's 4xx
//! other than 408 and 429) is given up on at once.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::Value;
use tokio::sync::Notify;
use tollgate_core::unix_now;
use tollgate_store::{NewMessage, OutboxMessage, Store, StoreError};

use crate::mail::{Mail, Mailer};
use crate::state::AppState;
use crate::webhooks::{event_body, Event, Webhooks, WEBHOOK};

/// The channel of mail.
pub(crate) const EMAIL: &str = "email";

/// How often the sender looks for due messages when nothing woke it.
const POLL: Duration = Duration::from_secs(1);
/// How long a claim holds a message: longer than one delivery can take (SMTP gives up after
/// 15 s, a webhook after 10 s), so that a live sender never loses its claim.
const LEASE_SECONDS: i64 = 60;
/// Messages claimed at once.
const BATCH: i64 = 16;
/// The first pause after a failed delivery; each further failure doubles it.
const FIRST_RETRY: i64 = 2;
/// The longest pause between attempts.
const MAX_RETRY: i64 = 3600;
/// How long after it was added a message is still tried.
const GIVE_UP_AFTER: i64 = 24 * 3600;

/// The outbox of a server (or of a command, whose messages a server delivers): what delivers
/// its channels, and the bell that wakes its sender.
#[derive(Debug)]
pub(crate) struct Outbox {
    wake: Notify,
    /// Mail, when SMTP_URL is set.
    pub(crate) mailer: Option<Mailer>,
    /// Event webhooks, when WEBHOOK_URLS is set.
    pub(crate) webhooks: Option<Webhooks>,
}

impl Outbox {
    pub(crate) fn new(mailer: Option<Mailer>, webhooks: Option<Webhooks>) -> Outbox {
        Outbox {
            wake: Notify::new(),
            mailer,
            webhooks,
        }
    }

    /// Puts `event` with `data` in the outbox, one message per WEBHOOK_URLS endpoint, if
    /// WEBHOOK_EVENTS lets it through, and wakes the sender. What happened has happened
    /// already: a failure to record the event is logged, not returned.
    pub(crate) async fn emit(&self, store: &Store, event: Event, data: Value) {
        let Some(webhooks) = &self.webhooks else {
            return;
        };
        if !webhooks.wants(event) {
            return;
        }
        let body = event_body(event, data, SystemTime::now());
        let now = unix_now();
        for url in webhooks.urls() {
            let message = NewMessage {
                channel: WEBHOOK,
                destination: url,
                topic: event.as_str(),
                body: &body,
            };
            if let Err(err) = store.enqueue(&message, now).await {
                tracing::error!(event = event.as_str(), cause = %err, "outbox: cannot add a webhook event");
            }
        }
        self.wake.notify_one();
    }

    /// Puts `mail` in the outbox under `topic` (what it is, for listings) and wakes the sender.
    pub(crate) async fn send_mail(
        &self,
        store: &Store,
        topic: &str,
        mail: &Mail,
    ) -> Result<i64, StoreError> {
        let body = json_text(mail);
        let message = NewMessage {
            channel: EMAIL,
            destination: &mail.to,
            topic,
            body: &body,
        };
        let id = store.enqueue(&message, unix_now()).await?;
        self.wake.notify_one();
        Ok(id)
    }
}

fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The sender of a serving instance; it stops when this is dropped.
pub(crate) struct Sender(tokio::task::JoinHandle<()>);

impl Drop for Sender {
    fn drop(&mut self) {
        // A delivery cut short leaves its claim, which runs out: the message is sent again.
        self.0.abort();
    }
}

/// Starts the sender of `state`'s outbox.
pub(crate) fn start(state: AppState) -> Sender {
    Sender(tokio::spawn(run(state)))
}

async fn run(state: AppState) {
    let outbox = Arc::clone(&state.outbox);
    loop {
        if let Err(err) = deliver_due(&state).await {
            tracing::warn!(cause = %err, "outbox: cannot claim messages");
        }
        // Woken by a new message of this instance, or after POLL for the others'.
        let _ = tokio::time::timeout(POLL, outbox.wake.notified()).await;
    }
}

/// Claims and delivers due messages until none is left.
async fn deliver_due(state: &AppState) -> Result<(), StoreError> {
    loop {
        let now = unix_now();
        let due = state.store.claim_due(now, LEASE_SECONDS, BATCH).await?;
        if due.is_empty() {
            return Ok(());
        }
        // Side by side, so that a slow receiver holds up the batch for at most its timeout
        // instead of once per message.
        let mut deliveries = tokio::task::JoinSet::new();
        for message in due {
            let state = state.clone();
            deliveries.spawn(async move {
                let started = std::time::Instant::now();
                let outcome = deliver(&state, &message).await;
                observe(&state, &message, &outcome, started.elapsed());
                record(&state, &message, outcome).await
            });
        }
        while let Some(recorded) = deliveries.join_next().await {
            if let Ok(recorded) = recorded {
                recorded?;
            }
        }
    }
}

/// How a delivery went.
enum Outcome {
    Delivered,
    /// Worth trying again.
    Failed(String),
    /// Retrying cannot help.
    Refused(String),
}

async fn deliver(state: &AppState, message: &OutboxMessage) -> Outcome {
    let Some(body) = &message.body else {
        return Outcome::Refused("the message has no body".to_owned());
    };
    match message.channel.as_str() {
        EMAIL => {
            let Some(mailer) = &state.outbox.mailer else {
                // Mail was turned off since: kept, and tried again, until it is back on.
                return Outcome::Failed("mail is off (SMTP_URL is not set)".to_owned());
            };
            let mail: Mail = match serde_json::from_str(body) {
                Ok(mail) => mail,
                Err(err) => return Outcome::Refused(format!("unreadable mail: {err}")),
            };
            match mailer.send(&mail).await {
                Ok(()) => Outcome::Delivered,
                Err(err) if err.permanent => Outcome::Refused(err.message),
                Err(err) => Outcome::Failed(err.message),
            }
        }
        WEBHOOK => {
            let Some(webhooks) = &state.outbox.webhooks else {
                // Kept, and tried again, until WEBHOOK_URLS is set again.
                return Outcome::Failed("webhooks are off (WEBHOOK_URLS is not set)".to_owned());
            };
            match webhooks
                .deliver(message.id, &message.destination, body)
                .await
            {
                Ok(()) => Outcome::Delivered,
                Err(err) if err.permanent => Outcome::Refused(err.message),
                Err(err) => Outcome::Failed(err.message),
            }
        }
        other => Outcome::Refused(format!("unknown channel {other:?}")),
    }
}

/// Feeds the latency histograms: the attempt's duration, and for a delivery the delay since
/// the message was added.
fn observe(state: &AppState, message: &OutboxMessage, outcome: &Outcome, took: Duration) {
    let delivered = matches!(outcome, Outcome::Delivered);
    let delay = delivered.then(|| {
        let added = SystemTime::UNIX_EPOCH
            + Duration::from_secs(u64::try_from(message.created_at).unwrap_or(0));
        SystemTime::now()
            .duration_since(added)
            .unwrap_or(Duration::ZERO)
    });
    state
        .metrics
        .outbox_latency(&message.channel, delivered, took, delay);
}

async fn record(
    state: &AppState,
    message: &OutboxMessage,
    outcome: Outcome,
) -> Result<(), StoreError> {
    let now = unix_now();
    let (id, channel, topic) = (message.id, &message.channel, &message.topic);
    match outcome {
        Outcome::Delivered => {
            state.store.mark_delivered(id, now).await?;
            state.metrics.outbox_delivered(channel, true);
            tracing::info!(id, channel, topic, "outbox: delivered");
        }
        Outcome::Failed(error) => {
            let retry_at = retry_at(message, now);
            state.store.mark_failed(id, &error, retry_at, now).await?;
            state.metrics.outbox_delivered(channel, false);
            match retry_at {
                Some(at) => {
                    tracing::warn!(id, channel, topic, attempts = message.attempts, retry_in = at - now, cause = %error, "outbox: delivery failed")
                }
                None => {
                    tracing::error!(id, channel, topic, attempts = message.attempts, cause = %error, "outbox: delivery given up after a day of failures")
                }
            }
        }
        Outcome::Refused(error) => {
            state.store.mark_failed(id, &error, None, now).await?;
            state.metrics.outbox_delivered(channel, false);
            tracing::error!(id, channel, topic, cause = %error, "outbox: delivery refused for good");
        }
    }
    Ok(())
}

/// When a message that failed its `attempts`-th delivery is tried again; `None` once a day has
/// passed since it was added.
fn retry_at(message: &OutboxMessage, now: i64) -> Option<i64> {
    if now.saturating_sub(message.created_at) >= GIVE_UP_AFTER {
        return None;
    }
    let doublings = u32::try_from(message.attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(20);
    let pause = FIRST_RETRY.saturating_mul(1 << doublings).min(MAX_RETRY);
    Some(now + pause)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(attempts: i32, created_at: i64) -> OutboxMessage {
        OutboxMessage {
            id: 1,
            channel: EMAIL.to_owned(),
            destination: "ann@example.com".to_owned(),
            topic: "password_reset".to_owned(),
            body: Some("{}".to_owned()),
            created_at,
            attempts,
            next_attempt_at: created_at,
            delivered_at: None,
            failed_at: None,
            last_error: None,
        }
    }

    #[test]
    fn retries_come_within_seconds_then_back_off_and_end_after_a_day() {
        let pauses: Vec<i64> = (1..=6)
            .map(|attempts| retry_at(&failed(attempts, 0), 10).unwrap() - 10)
            .collect();
        assert_eq!(pauses, [2, 4, 8, 16, 32, 64]);
        assert_eq!(retry_at(&failed(40, 0), 10), Some(10 + MAX_RETRY));
        assert_eq!(retry_at(&failed(3, 0), GIVE_UP_AFTER), None);
    }
}
