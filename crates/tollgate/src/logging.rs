//! Logs: the subscriber (text or JSON) and one line per request with its id, route, status,
//! latency and user. Tokens, passwords and keys are never logged: the access line names the
//! route pattern, not the path, and no header or body.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::EnvFilter;

/// The header that carries a request's id, taken from the client or a proxy when present.
pub(crate) static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Installs the global subscriber: logs to standard error, filtered by `filter` (the LOG
/// setting; RUST_LOG when that is unusable), as text or JSON lines.
pub(crate) fn init(filter: &str, json: bool) {
    let filter = EnvFilter::try_new(filter)
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
    // A subscriber already set (tests run several servers in one process) is not an error.
    drop(result);
}

/// The authenticated user of a request, filled in by authentication for the access log.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestUser(Arc<AtomicI64>);

const NO_USER: i64 = i64::MIN;

impl RequestUser {
    fn new() -> RequestUser {
        RequestUser(Arc::new(AtomicI64::new(NO_USER)))
    }

    /// Records the user that the request authenticated as.
    pub(crate) fn set(&self, user_id: i64) {
        self.0.store(user_id, Ordering::Relaxed);
    }

    fn get(&self) -> Option<i64> {
        Some(self.0.load(Ordering::Relaxed)).filter(|id| *id != NO_USER)
    }
}

/// A fresh request id: 32 lowercase hex characters, a random half chosen once per process, then
/// a counter. Ids differ across instances and restarts without asking the kernel for randomness
/// on every request; unlike a token id, a request id needs no secrecy.
fn new_request_id() -> HeaderValue {
    static PROCESS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let process = PROCESS.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    let id = (u128::from(*process) << 64) | u128::from(count);
    let mut hex = [0u8; 32];
    for (at, digit) in hex.iter_mut().enumerate() {
        *digit = b"0123456789abcdef"[(id >> (4 * (31 - at)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&hex).unwrap_or(HeaderValue::from_static("-"))
}

/// Middleware: gives the request an id (the client's `X-Request-Id` if it is sane), runs it in
/// a span carrying that id, echoes the id in the response, and logs one line when it is done.
pub(crate) async fn access_log(mut request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|value| is_sane_id(value.as_bytes()))
        .cloned()
        .unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let route = request.extensions().get::<MatchedPath>().cloned();
    let user = RequestUser::new();
    request.extensions_mut().insert(user.clone());
    // Span and event fields are only evaluated when INFO is enabled.
    let span = tracing::info_span!(
        "request",
        request_id = %String::from_utf8_lossy(request_id.as_bytes())
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    response
        .headers_mut()
        .insert(REQUEST_ID.clone(), request_id);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        let failed = response
            .extensions()
            .get::<crate::error::ServerErrorCause>();
        match failed.map(|failed| (failed.dependency, &failed.cause)) {
            Some((Some(dependency), cause)) => tracing::warn!(
                dependency,
                cause = %cause,
                "request failed: dependency unavailable"
            ),
            Some((None, cause)) => tracing::error!(cause = %cause, "request failed"),
            None => {}
        }
        tracing::info!(
            method = %method,
            route = %route.as_ref().map_or("unmatched", MatchedPath::as_str),
            status = response.status().as_u16(),
            latency_ms,
            user_id = user.get(),
            "request"
        );
    });
    response
}

/// 1–128 visible ASCII characters: anything else is replaced, so logs cannot be forged.
fn is_sane_id(id: &[u8]) -> bool {
    (1..=128).contains(&id.len()) && id.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn made_request_ids_are_unique_sane_hex() {
        let (a, b) = (new_request_id(), new_request_id());
        assert_ne!(a, b);
        for id in [&a, &b] {
            let text = id.to_str().unwrap();
            assert_eq!(text.len(), 32);
            assert!(text
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
            assert!(is_sane_id(id.as_bytes()));
        }
        // One process prefix, then a counter that only grows.
        let (a, b) = (a.to_str().unwrap(), b.to_str().unwrap());
        assert_eq!(a[..16], b[..16]);
        let count = |id: &str| u64::from_str_radix(&id[16..], 16).unwrap();
        assert!(count(b) > count(a), "{a} then {b}");
    }

    #[test]
    fn request_ids_must_be_short_and_printable() {
        assert!(is_sane_id(b"abc-123"));
        assert!(!is_sane_id(b""));
        assert!(!is_sane_id(b"has space"));
        assert!(!is_sane_id(b"new\nline"));
        assert!(!is_sane_id(&[b'a'; 129]));
    }
}
