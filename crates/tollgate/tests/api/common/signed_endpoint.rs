//! An HTTP endpoint on a real socket for what Tollgate sends signed (webhooks, the claims hook):
//! it records every request and answers as its test decides. And the check of a Standard
//! Webhooks signature, written out here, independently of Tollgate's code.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

/// One request the endpoint got.
#[derive(Debug, Clone)]
pub(crate) struct SignedRequest {
    pub(crate) id: String,
    pub(crate) timestamp: String,
    pub(crate) signature: String,
    pub(crate) body: String,
}

impl SignedRequest {
    pub(crate) fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }
}

/// What the endpoint answers a request: a status, a JSON body, after a delay.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: String,
    pub(crate) delay: Duration,
}

impl Reply {
    /// An empty answer with `status`, at once.
    pub(crate) fn status(status: u16) -> Reply {
        Reply {
            status,
            body: String::new(),
            delay: Duration::ZERO,
        }
    }

    /// 200 with `body`, at once.
    pub(crate) fn json(body: Value) -> Reply {
        Reply {
            status: 200,
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }
}

/// The endpoint: `POST <path>` on 127.0.0.1, stopped when dropped.
pub(crate) struct SignedEndpoint {
    addr: SocketAddr,
    path: &'static str,
    requests: Arc<Mutex<Vec<SignedRequest>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SignedEndpoint {
    /// On a free port.
    pub(crate) async fn start(
        path: &'static str,
        reply: impl Fn(&SignedRequest) -> Reply + Send + Sync + 'static,
    ) -> SignedEndpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        SignedEndpoint::serve(listener, path, reply)
    }

    /// On `listener` (a port the test chose, to stop and start again).
    pub(crate) fn serve(
        listener: tokio::net::TcpListener,
        path: &'static str,
        reply: impl Fn(&SignedRequest) -> Reply + Send + Sync + 'static,
    ) -> SignedEndpoint {
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&requests);
        let reply = Arc::new(reply);
        let app = axum::Router::new().route(
            path,
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (log, reply) = (Arc::clone(&log), Arc::clone(&reply));
                async move {
                    let header = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|value| value.to_str().ok())
                            .unwrap_or_default()
                            .to_owned()
                    };
                    let request = SignedRequest {
                        id: header("webhook-id"),
                        timestamp: header("webhook-timestamp"),
                        signature: header("webhook-signature"),
                        body,
                    };
                    let answer = reply(&request);
                    log.lock().expect("lock").push(request);
                    tokio::time::sleep(answer.delay).await;
                    let status = StatusCode::from_u16(answer.status).expect("status");
                    if answer.body.is_empty() {
                        return status.into_response();
                    }
                    (status, [("content-type", "application/json")], answer.body).into_response()
                }
            }),
        );
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        SignedEndpoint {
            addr,
            path,
            requests,
            task,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}{}", self.addr, self.path)
    }

    /// Every request so far, in order.
    pub(crate) fn requests(&self) -> Vec<SignedRequest> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits until `count` requests have arrived (or `limit` has passed) and returns them.
    pub(crate) async fn wait_for(&self, count: usize, limit: Duration) -> Vec<SignedRequest> {
        let start = Instant::now();
        while self.requests().len() < count && start.elapsed() < limit {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.requests()
    }
}

impl Drop for SignedEndpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Checks a request's signature as a receiver would: the key is the base64 after `whsec_`;
/// the signature, `v1,` and the base64 HMAC-SHA256 of `{webhook-id}.{webhook-timestamp}.{body}`;
/// one of the space-separated signatures must match; the timestamp is now, the id a message's.
#[track_caller]
pub(crate) fn assert_signed(request: &SignedRequest, secret: &str) {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .expect("base64 key");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{}.{}.{}", request.id, request.timestamp, request.body).as_bytes());
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    assert!(
        request.signature.split(' ').any(|part| part == expected),
        "signature {:?} does not match {expected:?}",
        request.signature
    );
    let timestamp: i64 = request.timestamp.parse().expect("epoch seconds");
    assert!(
        (tollgate_core::unix_now() - timestamp).abs() < 300,
        "timestamp {timestamp} is not now"
    );
    assert!(request.id.starts_with("msg_"), "{}", request.id);
}
