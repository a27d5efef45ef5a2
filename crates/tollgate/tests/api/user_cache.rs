//! The user cache (USER_CACHE_TTL, on by default) against changes made by another process: a
//! real `tollgate serve` on the embedded SQLite, and the `tollgate` command changing the user
//! in the same file. The server must notice within about a second, well before the cache's
//! lifetime, through the change counter it reads.

use crate::common;

use std::time::{Duration, Instant};

use common::binary::{create_user, log_in, run, text, tollgate, Served};
use reqwest::StatusCode;
use serde_json::{json, Value};

#[tokio::test]
async fn a_user_deactivated_by_the_command_line_is_refused_within_about_a_second() {
    let dir = tempfile::tempdir().expect("temp dir");
    create_user(tollgate(dir.path(), &[]), "alice", "alice-password");
    // A cache far longer than the test: only the change counter can end it in time.
    let mut command = tollgate(dir.path(), &[]);
    command.env("TOLLGATE_USER_CACHE_TTL", "1h");
    let server = Served::start(command).await;
    let (access, refresh) = log_in(&server.base, "alice", "alice-password").await;
    let client = reqwest::Client::new();
    let bearer = format!("Bearer {access}");
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
        .json(&json!({ "refresh": refresh }))
        .send()
        .await
        .expect("sent");
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
}
