//! Prometheus metrics at `/metrics` (when METRICS_ENABLED): requests and latency histograms by
//! method, route and status, logins and the refusals of the throttle, the lockout and inactive
//! accounts, tokens issued, refreshed, blacklisted and rejected by reason, requests failed by an
//! unavailable dependency, database pool usage, outbox deliveries with their duration and delay,
//! the build's version and the process's memory, CPU time and file descriptors. OpenMetrics by
//! default, the Prometheus text format for `Accept: text/plain`. When metrics are off, none of
//! this costs anything per request.

mod exposition;
mod process;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tollgate_core::TokenType;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TokenLabels {
    token_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyLabels {
    dependency: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    trigger: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    channel: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutboxLabels {
    state: &'static str,
}

struct Registered {
    registry: Registry,
    /// The `process_*` metrics, which carry no `tollgate_` prefix.
    process: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    logins: Family<OutcomeLabels, Counter>,
    login_refusals: Family<ReasonLabels, Counter>,
    issued: Family<TokenLabels, Counter>,
    refreshed: Counter,
    blacklisted: Counter,
    rejected: Family<ReasonLabels, Counter>,
    unavailable: Family<DependencyLabels, Counter>,
    key_reloads: Family<ReloadLabels, Counter>,
    pool_connections: Gauge,
    pool_idle: Gauge,
    outbox_deliveries: Family<DeliveryLabels, Counter>,
    outbox_messages: Family<OutboxLabels, Gauge>,
    outbox_attempt_duration: Family<DeliveryLabels, Histogram>,
    outbox_delivery_delay: Family<ChannelLabels, Histogram>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelLabels {
    channel: String,
}

fn attempt_histogram() -> Histogram {
    // 1 ms to ~16 s: a receiver on the same network answers in milliseconds, and a webhook
    // attempt gives up after 10 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

fn delay_histogram() -> Histogram {
    // 0.5 s to ~1.5 days: moments when the receiver is up, the retry schedule when it is not.
    Histogram::new(exponential_buckets(0.5, 2.0, 19))
}

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~1.6 s: token checks take well under a millisecond, password hashes tens of ms.
    Histogram::new(exponential_buckets(0.0001, 2.0, 15))
}

/// The metrics of one server; a no-op handle when metrics are off.
#[derive(Clone, Default)]
pub(crate) struct Metrics(Option<Arc<Registered>>);

impl Metrics {
    /// A registry with every Tollgate metric, or a no-op handle when `enabled` is false.
    pub(crate) fn new(enabled: bool) -> Metrics {
        if !enabled {
            return Metrics(None);
        }
        let mut registry = Registry::with_prefix("tollgate");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route and status",
            requests.clone(),
        );
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by method, route and status",
            latency.clone(),
        );
        let logins = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "logins",
            "Password logins by outcome (succeeded, failed)",
            logins.clone(),
        );
        let login_refusals = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "login_refusals",
            "Login attempts refused before or despite the password, by reason (throttled: out \
             of attempts; locked: LOGIN_LOCKOUT_THRESHOLD reached; inactive: right password, \
             inactive account)",
            login_refusals.clone(),
        );
        let issued = Family::<TokenLabels, Counter>::default();
        registry.register(
            "tokens_issued",
            "Tokens signed, by token type",
            issued.clone(),
        );
        let refreshed = Counter::default();
        registry.register(
            "tokens_refreshed",
            "Successful refreshes (pair and sliding)",
            refreshed.clone(),
        );
        let blacklisted = Counter::default();
        registry.register(
            "tokens_blacklisted",
            "Tokens blacklisted by logout or rotation",
            blacklisted.clone(),
        );
        let rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "tokens_rejected",
            "Tokens refused, by reason",
            rejected.clone(),
        );
        let unavailable = Family::<DependencyLabels, Counter>::default();
        registry.register(
            "dependency_unavailable",
            "Requests answered 503 because a dependency (database, redis) was unreachable or \
             overloaded",
            unavailable.clone(),
        );
        let key_reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "signing_key_reloads",
            "Reads of the stored signing keys, by trigger (interval, SIGHUP) and outcome \
             (rotated, reloaded, unchanged, failed)",
            key_reloads.clone(),
        );
        let pool_connections = Gauge::default();
        registry.register(
            "db_pool_connections",
            "Open database connections",
            pool_connections.clone(),
        );
        let pool_idle = Gauge::default();
        registry.register(
            "db_pool_idle_connections",
            "Idle database connections",
            pool_idle.clone(),
        );
        let outbox_deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "outbox_deliveries",
            "Outbox delivery attempts, by channel (email) and outcome (delivered, failed)",
            outbox_deliveries.clone(),
        );
        let outbox_messages = Family::<OutboxLabels, Gauge>::default();
        registry.register(
            "outbox_messages",
            "Outbox messages waiting to be delivered (pending) and given up on (failed)",
            outbox_messages.clone(),
        );
        let outbox_attempt_duration = Family::<DeliveryLabels, Histogram>::new_with_constructor(
            attempt_histogram as fn() -> Histogram,
        );
        registry.register(
            "outbox_attempt_duration_seconds",
            "How long one outbox delivery attempt took (the receiver's or mail server's answer), \
             by channel and outcome",
            outbox_attempt_duration.clone(),
        );
        let outbox_delivery_delay = Family::<ChannelLabels, Histogram>::new_with_constructor(
            delay_histogram as fn() -> Histogram,
        );
        registry.register(
            "outbox_delivery_delay_seconds",
            "How long after it was added to the outbox a message was delivered, retries \
             included (whole seconds of its addition), by channel",
            outbox_delivery_delay.clone(),
        );
        registry.register(
            "build",
            "The running build of Tollgate",
            Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]),
        );
        let mut process = Registry::default();
        process.register_collector(Box::new(process::ProcessCollector));
        Metrics(Some(Arc::new(Registered {
            outbox_attempt_duration,
            outbox_delivery_delay,
            outbox_deliveries,
            outbox_messages,
            registry,
            process,
            requests,
            latency,
            logins,
            login_refusals,
            issued,
            refreshed,
            blacklisted,
            rejected,
            unavailable,
            key_reloads,
            pool_connections,
            pool_idle,
        })))
    }

    /// Whether metrics are collected.
    pub(crate) fn enabled(&self) -> bool {
        self.0.is_some()
    }

    /// A password login's outcome.
    pub(crate) fn login(&self, succeeded: bool) {
        if let Some(m) = &self.0 {
            m.logins
                .get_or_create(&OutcomeLabels {
                    outcome: if succeeded { "succeeded" } else { "failed" },
                })
                .inc();
        }
    }

    /// A login refused by the throttle, the lockout or an inactive account (see
    /// [`LoginRefusal`]).
    pub(crate) fn login_refused(&self, reason: LoginRefusal) {
        if let Some(m) = &self.0 {
            m.login_refusals
                .get_or_create(&ReasonLabels {
                    reason: reason.as_str(),
                })
                .inc();
        }
    }

    /// A token was signed.
    pub(crate) fn issued(&self, token_type: TokenType) {
        if let Some(m) = &self.0 {
            m.issued
                .get_or_create(&TokenLabels {
                    token_type: token_type.as_str(),
                })
                .inc();
        }
    }

    /// A refresh succeeded.
    pub(crate) fn refreshed(&self) {
        if let Some(m) = &self.0 {
            m.refreshed.inc();
        }
    }

    /// An outbox delivery attempt on `channel`, and whether it delivered.
    pub(crate) fn outbox_delivered(&self, channel: &str, delivered: bool) {
        if let Some(m) = &self.0 {
            let outcome = if delivered { "delivered" } else { "failed" };
            m.outbox_deliveries
                .get_or_create(&DeliveryLabels {
                    channel: channel.to_owned(),
                    outcome,
                })
                .inc();
        }
    }

    /// An outbox delivery attempt on `channel` took `took`; a delivered message was added
    /// `delay` before.
    pub(crate) fn outbox_latency(
        &self,
        channel: &str,
        delivered: bool,
        took: std::time::Duration,
        delay: Option<std::time::Duration>,
    ) {
        if let Some(m) = &self.0 {
            let outcome = if delivered { "delivered" } else { "failed" };
            m.outbox_attempt_duration
                .get_or_create(&DeliveryLabels {
                    channel: channel.to_owned(),
                    outcome,
                })
                .observe(took.as_secs_f64());
            if let Some(delay) = delay {
                m.outbox_delivery_delay
                    .get_or_create(&ChannelLabels {
                        channel: channel.to_owned(),
                    })
                    .observe(delay.as_secs_f64());
            }
        }
    }

    /// A token was blacklisted.
    pub(crate) fn blacklisted(&self) {
        if let Some(m) = &self.0 {
            m.blacklisted.inc();
        }
    }

    /// The stored signing keys were read (see `keyring::watch`): `trigger` is what asked,
    /// `outcome` what came of it.
    pub(crate) fn key_reload(&self, trigger: &'static str, outcome: &'static str) {
        if let Some(m) = &self.0 {
            m.key_reloads
                .get_or_create(&ReloadLabels { trigger, outcome })
                .inc();
        }
    }
}

/// Why a login was refused other than for a wrong password or an unknown user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginRefusal {
    /// The client's address, the identifier or the account was out of attempts.
    Throttled,
    /// The identifier or the account was locked (LOGIN_LOCKOUT_THRESHOLD).
    Locked,
    /// The password matched an inactive account.
    Inactive,
}

impl LoginRefusal {
    fn as_str(self) -> &'static str {
        match self {
            LoginRefusal::Throttled => "throttled",
            LoginRefusal::Locked => "locked",
            LoginRefusal::Inactive => "inactive",
        }
    }
}

/// Why a response refused a token, left on the response by [`ApiError`] for the metrics layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RejectReason(pub(crate) &'static str);

/// The dependency that made a response a 503, left on the response by [`ApiError`] for the
/// metrics layer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unavailable(pub(crate) tollgate_store::Dependency);

/// Middleware (only installed when metrics are on): counts every request and its latency.
pub(crate) async fn track(
    State(metrics): State<Metrics>,
    request: Request,
    next: Next,
) -> Response {
    let Some(m) = metrics.0.clone() else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let response = next.run(request).await;
    if let Some(RejectReason(reason)) = response.extensions().get::<RejectReason>() {
        m.rejected.get_or_create(&ReasonLabels { reason }).inc();
    }
    if let Some(Unavailable(dependency)) = response.extensions().get::<Unavailable>() {
        m.unavailable
            .get_or_create(&DependencyLabels {
                dependency: dependency.as_str(),
            })
            .inc();
    }
    let labels = RequestLabels {
        method,
        route,
        status: response.status().as_u16(),
    };
    m.latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    m.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`: the OpenMetrics text exposition, or the Prometheus text format when `Accept`
/// prefers `text/plain`; behind METRICS_TOKEN when one is set.
pub(crate) async fn expose(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(m) = &state.metrics.0 else {
        return Err(ApiError::NotFound);
    };
    let token = state.settings.metrics_token.expose();
    if !token.is_empty() {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
            return Err(ApiError::Auth(tollgate_axum::AuthError::NotAuthenticated));
        }
    }
    let (size, idle) = state.store.pool_usage();
    m.pool_connections.set(i64::from(size));
    m.pool_idle.set(i64::try_from(idle).unwrap_or(i64::MAX));
    // The outbox's depth needs the database; without it the scrape goes on with the last
    // values, so that metrics stay readable during an outage.
    match state.store.outbox_depth().await {
        Ok(depth) => {
            for (name, count) in [("pending", depth.pending), ("failed", depth.failed)] {
                m.outbox_messages
                    .get_or_create(&OutboxLabels { state: name })
                    .set(count);
            }
        }
        Err(err) => tracing::debug!(cause = %err, "metrics: outbox depth unknown"),
    }
    let mut body = String::new();
    for registry in [&m.registry, &m.process] {
        prometheus_client::encoding::text::encode_registry(&mut body, registry)
            .map_err(ApiError::internal)?;
    }
    prometheus_client::encoding::text::encode_eof(&mut body).map_err(ApiError::internal)?;
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = exposition::Format::negotiate(accept);
    if format == exposition::Format::PrometheusText {
        body = exposition::to_prometheus_text(&body);
    }
    let content_type = format.content_type();
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
