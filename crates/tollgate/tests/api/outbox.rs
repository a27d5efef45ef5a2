//! The outbox across instances: two `tollgate serve` processes on one PostgreSQL database
//! deliver every message once, whichever claims it.

use std::collections::HashMap;
use std::time::Duration;

use crate::common;
use common::binary::{tollgate, Served};
use common::smtp::{delivered, SmtpServer};
use common::{Backend, TestDatabase, TEST_KEY};
use tollgate_store::{NewMessage, Store};

#[tokio::test]
async fn two_instances_on_one_postgres_send_each_message_once() {
    if !common::postgres_available().await {
        return;
    }
    let database = TestDatabase::create(Backend::Postgres).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let smtp = SmtpServer::start_in(dir.path());
    let serve = || {
        let mut command = tollgate(dir.path(), &[]);
        command
            .env("DATABASE_URL", database.url())
            .env("TOLLGATE_SIGNING_KEY", TEST_KEY)
            .env("TOLLGATE_SMTP_URL", smtp.url());
        Served::start(command)
    };
    let (_a, _b) = (serve().await, serve().await);

    let store = Store::connect(&database.url(), tollgate_store::PoolConfig::default())
        .await
        .expect("store");
    const COUNT: usize = 60;
    let now = tollgate_core::unix_now();
    for n in 0..COUNT {
        let body = serde_json::json!({
            "to": format!("user{n}@example.com"),
            "subject": format!("message {n}"),
            "text": "hello",
            "html": "<p>hello</p>",
        })
        .to_string();
        let message = NewMessage {
            channel: "email",
            destination: &format!("user{n}@example.com"),
            topic: "test",
            body: &body,
        };
        store.enqueue(&message, now).await.expect("enqueued");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while store.outbox_depth().await.expect("depth").pending > 0 {
        assert!(tokio::time::Instant::now() < deadline, "not all delivered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Anything sent twice would arrive within the same moment; give it one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut seen: HashMap<String, usize> = HashMap::new();
    for mail in delivered(&smtp.maildir) {
        *seen.entry(mail.subject).or_default() += 1;
    }
    assert_eq!(seen.len(), COUNT, "every message arrived");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "sent more than once: {twice:?}");
    store.close().await;
}
