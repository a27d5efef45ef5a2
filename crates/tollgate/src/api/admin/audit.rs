//! `/api/admin/audit/`: the log of administrative actions, newest first.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};
use tollgate_store::{AuditActor, AuditActorFilter, AuditEntry, AuditFilter};

use super::page::ListQuery;
use super::Administrator;
use crate::api::users::timestamp;
use crate::error::ApiError;
use crate::service::admin;
use crate::service::Context;
use crate::state::AppState;

/// `GET /api/admin/audit/?actor=&target=&page=&page_size=`: a page of the audit log, newest
/// first; `actor` is an administrator's account id or `cli` (the commands), `target` the id of
/// the account acted on.
pub(super) async fn list(
    State(state): State<AppState>,
    _: Administrator,
    query: ListQuery,
) -> Result<Json<Value>, ApiError> {
    let invalid = |field: &str| {
        ApiError::Fields(vec![(
            field.to_owned(),
            vec!["Enter a whole number.".to_owned()],
        )])
    };
    let actor = match query.get("actor") {
        None => None,
        Some("cli") => Some(AuditActorFilter::Command),
        Some(id) => Some(AuditActorFilter::User(
            id.parse().map_err(|_| invalid("actor"))?,
        )),
    };
    let target_id = match query.get("target") {
        None => None,
        Some(id) => Some(id.parse().map_err(|_| invalid("target"))?),
    };
    let filter = AuditFilter { actor, target_id };
    let page = admin::audit_log(&Context::of(&state), filter, query.page()).await?;
    Ok(Json(query.answer(page.map(|entry| entry_json(&entry)))))
}

/// One entry: who (`{"kind": "user", "id", "username"}` or `{"kind": "cli", "os_user"}`),
/// what, on whom, when and from where.
fn entry_json(entry: &AuditEntry) -> Value {
    let actor = match &entry.actor {
        AuditActor::User { id, username } => {
            json!({ "kind": "user", "id": id, "username": username })
        }
        AuditActor::Command { os_user } => json!({ "kind": "cli", "os_user": os_user }),
    };
    let details: Value = serde_json::from_str(&entry.details).unwrap_or_else(|_| json!({}));
    json!({
        "id": entry.id,
        "time": timestamp(Some(entry.at)),
        "actor": actor,
        "action": entry.action,
        "target": entry.target_id.map(|id| json!({ "id": id, "username": entry.target_name })),
        "details": details,
        "client_address": entry.client_addr,
    })
}
