//! The user cache (USER_CACHE_TTL, on by default) against changes made by another process: a
//! real `tollgate serve` on the embedded SQLite, and the `tollgate` command changing the user
//! in the same file. The server must notice within about a second, well before the cache's
//! lifetime, through the change counter it reads.

mod common;

use std::time::{Duration, Instant};

use common::binary::{run, text, tollgate, Served};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_user_deactivated_by_the_command_line_is_refused_within_about_a_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    let created = run(tollgate(
        dir.path(),
        &["createuser", "--username", "alice", "--no-input"],
    )
    .env("TOLLGATE_USER_PASSWORD", "alice-password"));
    assert!(created.status.success(), "{}", text(&created.stderr));
    // A cache far longer than the test: only the change counter can end it in time.
    let mut command = tollgate(dir.path(), &[]);
    command.env("TOLLGATE_USER_CACHE_TTL", "1h");
    let server = Served::start(command).await;
    let client = reqwest::Client::new();
    let pair: Value = client
        .post(format!("{}/api/token/", server.base))
        .json(&json!({"username": "alice", "password": "alice-password"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("JSON");
    let bearer = format!("Bearer {}", pair["access"].as_str().expect("access"));
    let index = || {
        client
            .get(format!("{}/api/index/", server.base))
            .header("Authorization", &bearer)
            .send()
    };
    assert_eq!(index().await.expect("sent").status(), StatusCode::OK);

    let deactivated = run(tollgate(dir.path(), &["deactivate", "alice"]));
    assert!(
        deactivated.status.success(),
        "{}",
        text(&deactivated.stderr)
    );
    let changed = Instant::now();
    loop {
        let response = index().await.expect("sent");
        if response.status() == StatusCode::UNAUTHORIZED {
            let body: Value = response.json().await.expect("JSON");
            assert_eq!(body["code"], "user_inactive");
            break;
        }
        assert_eq!(response.status(), StatusCode::OK);
        assert!(
            changed.elapsed() < Duration::from_secs(5),
            "the deactivation was not seen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The refresh token is refused the same way.
    let refreshed = client
        .post(format!("{}/api/token/refresh/", server.base))
        .json(&json!({"refresh": pair["refresh"]}))
        .send()
        .await
        .expect("sent");
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
}
