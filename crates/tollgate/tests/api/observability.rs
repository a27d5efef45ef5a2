//! Metrics, request ids and the access log.

use crate::common;

use common::binary::{tollgate, Served};
use common::{claims, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

async fn metrics_text(server: &TestServer, token: Option<&str>) -> (StatusCode, String) {
    let mut request = server.client.get(server.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("sent");
    (response.status(), response.text().await.expect("body"))
}

#[tokio::test]
async fn metrics_are_off_by_default() {
    let server = TestServer::start().await;
    assert_eq!(
        server.get("/metrics", None).await,
        (StatusCode::NOT_FOUND, json!({"detail": "Not found."}))
    );
}

#[tokio::test]
async fn metrics_count_requests_logins_tokens_and_rejections() {
    let server = TestServer::start_with(|s| {
        s.metrics_enabled = true;
        s.rotate_refresh_tokens = true;
        s.blacklist_after_rotation = true;
    })
    .await;
    server.create_user("user1", PASSWORD).await;
    let (refresh, _) = server.obtain_pair("user1", PASSWORD).await;
    server
        .post_json(
            "/api/token/",
            json!({"username": "user1", "password": "wrong"}),
        )
        .await;
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        server
            .post_json("/api/token/refresh/", json!({"refresh": refresh}))
            .await
            .0,
        StatusCode::UNAUTHORIZED
    );
    let expired = server.sign(claims("access", "1", -10));
    server
        .get("/api/index/", Some(&format!("Bearer {expired}")))
        .await;

    let (status, text) = metrics_text(&server, None).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        r#"tollgate_logins_total{outcome="succeeded"} 1"#,
        r#"tollgate_logins_total{outcome="failed"} 1"#,
        r#"tollgate_tokens_issued_total{token_type="access"} 2"#,
        r#"tollgate_tokens_issued_total{token_type="refresh"} 2"#,
        "tollgate_tokens_refreshed_total 1",
        "tollgate_tokens_blacklisted_total 1",
        r#"tollgate_tokens_rejected_total{reason="blacklisted"} 1"#,
        r#"tollgate_tokens_rejected_total{reason="expired"} 1"#,
        r#"tollgate_http_requests_total{method="POST",route="/api/token/",status="200"} 1"#,
        r#"tollgate_http_requests_total{method="POST",route="/api/token/",status="401"} 1"#,
        r#"tollgate_http_requests_total{method="GET",route="/api/index/",status="401"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        text.contains(
            r#"tollgate_http_request_duration_seconds_bucket{le="0.0001",method="POST",route="/api/token/",status="200"}"#
        ),
        "{text}"
    );
    assert!(text.contains("tollgate_db_pool_connections "), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
}

/// Logins refused by the lockout, the throttle or an inactive account are counted by reason,
/// whatever answer the client got.
#[tokio::test]
async fn metrics_count_login_refusals_by_reason() {
    let server = TestServer::start_with(|s| {
        s.metrics_enabled = true;
        s.login_lockout_threshold = 1;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let bob = server.create_user("bob", PASSWORD).await;
    server
        .store()
        .set_active(bob.id, false)
        .await
        .expect("deactivated");
    let login = |username: &'static str, password: &'static str| {
        let server = &server;
        async move {
            server
                .post_json(
                    "/api/token/",
                    json!({"username": username, "password": password}),
                )
                .await
                .0
        }
    };
    assert_eq!(login("ann", "wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login("ann", PASSWORD).await, StatusCode::FORBIDDEN);
    assert_eq!(login("bob", PASSWORD).await, StatusCode::UNAUTHORIZED);
    let (_, text) = metrics_text(&server, None).await;
    for line in [
        r#"tollgate_login_refusals_total{reason="locked"} 1"#,
        r#"tollgate_login_refusals_total{reason="inactive"} 1"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }

    let server = TestServer::start_with(|s| {
        s.metrics_enabled = true;
        s.login_failures_per_address = 1;
    })
    .await;
    server.create_user("ann", PASSWORD).await;
    let login = |password: &'static str| {
        let server = &server;
        async move {
            server
                .post_json(
                    "/api/token/",
                    json!({"username": "ann", "password": password}),
                )
                .await
                .0
        }
    };
    assert_eq!(login("wrong").await, StatusCode::UNAUTHORIZED);
    assert_eq!(login(PASSWORD).await, StatusCode::TOO_MANY_REQUESTS);
    let (_, text) = metrics_text(&server, None).await;
    let line = r#"tollgate_login_refusals_total{reason="throttled"} 1"#;
    assert!(
        text.lines().any(|l| l == line),
        "missing {line:?} in:\n{text}"
    );
}

/// The build's version and the process's resources are exposed, and the latency histogram
/// carries the method and status of each request.
#[tokio::test]
async fn metrics_show_build_process_and_latency_by_method_and_status() {
    let server = TestServer::start_with(|s| s.metrics_enabled = true).await;
    server.get("/healthz", None).await;
    server
        .post_json(
            "/api/token/",
            json!({"username": "nobody", "password": "x"}),
        )
        .await;
    let (_, text) = metrics_text(&server, None).await;
    let build = format!(
        r#"tollgate_build_info{{version="{}"}} 1"#,
        env!("CARGO_PKG_VERSION")
    );
    assert!(
        text.lines().any(|l| l == build),
        "{build} missing in:\n{text}"
    );
    for prefix in [
        r#"tollgate_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1"#,
        r#"tollgate_http_request_duration_seconds_count{method="POST",route="/api/token/",status="401"} 1"#,
        "process_resident_memory_bytes ",
        "process_cpu_seconds_total ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(prefix)),
            "missing {prefix:?} in:\n{text}"
        );
    }
    let resident: f64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .and_then(|v| v.parse().ok())
        .expect("a number");
    assert!(resident > 1_000_000.0, "{resident}");
}

/// `Accept: text/plain` gets the Prometheus text format (counters named by their `_total`
/// sample, no `# EOF`); Prometheus's own Accept header, which ranks OpenMetrics first, and no
/// preference get OpenMetrics.
#[tokio::test]
async fn metrics_honour_accept_text_plain() {
    let server = TestServer::start_with(|s| s.metrics_enabled = true).await;
    server.get("/healthz", None).await;
    let scrape = |accept: Option<&'static str>| {
        let server = &server;
        async move {
            let mut request = server.client.get(server.url("/metrics"));
            if let Some(accept) = accept {
                request = request.header("accept", accept);
            }
            let response = request.send().await.expect("sent");
            let content_type = response.headers()["content-type"]
                .to_str()
                .expect("ascii")
                .to_owned();
            (content_type, response.text().await.expect("body"))
        }
    };
    let (content_type, text) = scrape(Some("text/plain")).await;
    assert_eq!(content_type, "text/plain; version=0.0.4; charset=utf-8");
    for line in [
        "# TYPE tollgate_http_requests_total counter",
        "# TYPE tollgate_build_info gauge",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE tollgate_http_request_duration_seconds histogram",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing {line:?} in:\n{text}"
        );
    }
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    let openmetrics = "application/openmetrics-text; version=1.0.0; charset=utf-8";
    for accept in [
        None,
        Some("application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.4,*/*;q=0.1"),
    ] {
        let (content_type, text) = scrape(accept).await;
        assert_eq!(content_type, openmetrics, "{accept:?}");
        assert!(text.lines().any(|l| l == "# TYPE tollgate_http_requests counter"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }
}

#[tokio::test]
async fn metrics_can_require_a_token() {
    let server = TestServer::start_with(|s| {
        s.metrics_enabled = true;
        s.metrics_token = tollgate_core::settings::Secret("scrape-secret".into());
    })
    .await;
    assert_eq!(
        metrics_text(&server, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics_text(&server, Some("wrong")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        metrics_text(&server, Some("scrape-secret")).await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn request_ids_are_echoed_or_made() {
    let server = TestServer::start().await;
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "trace-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "trace-42");
    let response = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let made = response.headers()["x-request-id"]
        .to_str()
        .expect("ASCII")
        .to_owned();
    assert_eq!(made.len(), 32);
    let response = server
        .client
        .get(server.url("/healthz"))
        .header("x-request-id", "two words")
        .send()
        .await
        .expect("sent");
    assert_ne!(response.headers()["x-request-id"], "two words");
}

/// One JSON line per request with route, status, latency, user id and request id; never a
/// token or a password.
#[tokio::test]
async fn json_access_log_lines_carry_the_request_and_never_a_secret() {
    let dir = tempfile::tempdir().expect("temp dir");
    common::binary::create_user(tollgate(dir.path(), &[]), "ann", PASSWORD);
    let mut command = tollgate(dir.path(), &[]);
    command
        .env("TOLLGATE_LOG_FORMAT", "json")
        .env("TOLLGATE_LOG", "debug");
    let mut server = Served::start(command).await;
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/api/token/", server.base))
        .header("x-request-id", "req-login-1")
        .json(&json!({"username": "ann", "password": PASSWORD}))
        .send()
        .await
        .expect("sent");
    let pair: Value = response.json().await.expect("JSON");
    let access = pair["access"].as_str().expect("access").to_owned();
    let refresh = pair["refresh"].as_str().expect("refresh").to_owned();
    let response = client
        .get(format!("{}/api/index/", server.base))
        .bearer_auth(&access)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    client
        .post(format!("{}/api/token/refresh/", server.base))
        .json(&json!({"refresh": refresh}))
        .send()
        .await
        .expect("sent");

    // The access line is written after the response; give the log pipe a moment.
    let mut lines = Vec::new();
    for _ in 0..50 {
        lines.extend(server.drain_logs());
        if lines
            .iter()
            .filter(|l| l.contains("\"message\":\"request\""))
            .count()
            >= 3
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    let requests: Vec<&Value> = records
        .iter()
        .filter(|r| r["message"] == "request")
        .collect();
    assert_eq!(requests.len(), 3, "{lines:#?}");
    let login = requests
        .iter()
        .find(|r| r["route"] == "/api/token/")
        .expect("login line");
    assert_eq!(login["status"], 200);
    assert_eq!(login["method"], "POST");
    assert_eq!(login["span"]["request_id"], "req-login-1");
    assert!(login["latency_ms"].as_f64().expect("latency") >= 0.0);
    let index = requests
        .iter()
        .find(|r| r["route"] == "/api/index/")
        .expect("index line");
    assert_eq!(index["user_id"], 1);
    let all = lines.join("\n");
    for secret in [access.as_str(), refresh.as_str(), PASSWORD] {
        assert!(!all.contains(secret), "a secret reached the logs");
    }
}

/// The OpenAPI description and the docs page are served by Tollgate itself (no CDN).
#[tokio::test]
async fn openapi_schema_and_docs_page_are_served_locally() {
    let server = TestServer::start_with(|s| s.token_obtain_path = "/auth/login/".into()).await;
    let (status, schema) = server.get("/api/schema/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        schema["openapi"]
            .as_str()
            .expect("version")
            .starts_with("3.1"),
        "{schema}"
    );
    let paths = schema["paths"].as_object().expect("paths");
    assert!(
        paths.contains_key("/auth/login/"),
        "configured paths are described"
    );
    assert!(!paths.contains_key("/api/token/"));
    assert!(paths["/auth/login/"]["post"]["requestBody"]["content"]
        .as_object()
        .expect("content")
        .contains_key("application/x-www-form-urlencoded"));
    let page = server
        .client
        .get(server.url("/api/docs/"))
        .send()
        .await
        .expect("sent");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("HTML");
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(!html.contains("https://"), "no asset comes from elsewhere");
    let css = server
        .client
        .get(server.url("/api/docs/swagger-ui.css"))
        .send()
        .await
        .expect("sent");
    assert_eq!(css.status(), StatusCode::OK);
    // The page's settings name no validator, so no browser sends the schema's address out.
    let initializer = server
        .client
        .get(server.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .expect("sent");
    assert_eq!(initializer.status(), StatusCode::OK);
    let script = initializer.text().await.expect("script");
    assert!(script.contains(r#""validatorUrl": "none""#), "{script}");
    assert!(script.contains(r#""url": "/api/schema/""#), "{script}");
    let disabled = TestServer::start_with(|s| s.api_docs_enabled = false).await;
    assert_eq!(
        disabled.get("/api/schema/", None).await.0,
        StatusCode::NOT_FOUND
    );
}
