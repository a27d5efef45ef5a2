//! Liveness and readiness.

use std::time::Duration;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::state::AppState;

/// How long a dependency may take to answer a readiness check before it counts as down; shorter
/// than the usual load balancer probe timeout.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up and serving.
pub(crate) async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the database (and Redis, when configured) answer; 503 naming what is down.
pub(crate) async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut checks: Vec<(&'static str, bool)> = Vec::new();
    let database = tokio::time::timeout(CHECK_TIMEOUT, state.store.ping()).await;
    if let Ok(Err(err)) = &database {
        tracing::warn!(cause = %err, "readiness: database down");
    }
    checks.push(("database", matches!(database, Ok(Ok(())))));
    if let Some(up) = state.store.ping_redis().await {
        checks.push(("redis", up));
    }
    if checks.iter().all(|(_, up)| *up) {
        let mut body = serde_json::Map::new();
        body.insert("status".into(), "ok".into());
        for (name, _) in &checks {
            body.insert((*name).into(), "ok".into());
        }
        return Ok(Json(Value::Object(body)));
    }
    Err(ApiError::NotReady(checks))
}
