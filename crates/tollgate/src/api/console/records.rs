//! The signing keys (superusers only) and the audit log.

use axum::extract::{RawQuery, State};
use axum::response::Response;
use serde_json::{json, Value};
use tollgate_core::Algorithm;
use tollgate_store::{AuditActor, AuditFilter};

use super::messages::Flash;
use super::session::{Admin, Submitted};
use super::view::{self, Params};
use super::{answer_at, ConsoleState};
use crate::error::ApiError;
use crate::service::admin::{self, page::PageRequest};
use crate::service::Context;

/// Entries on a page of the audit log.
const ENTRIES_PER_PAGE: &str = "50";

/// `GET /admin/keys/`: the signing keys, the active one first, and the rotation form.
pub(super) async fn keys(State(console): State<ConsoleState>, admin: Admin) -> Response {
    let keys = match admin::list_keys(&Context::of(&console.app), &admin.actor).await {
        Ok(keys) => keys,
        Err(err) => return console.pages.problem(ApiError::from(err), Some(&admin)),
    };
    let listed: Vec<Value> = keys
        .iter()
        .map(|key| {
            json!({
                "kid": key.kid,
                "algorithm": key.algorithm.as_str(),
                "state": key.state.as_str(),
                "created": view::time(key.created_at),
                "signs_from": view::time(key.signs_from),
                "verify_until": view::time(key.verify_until),
                "stored": if key.encrypted { "in the database, encrypted" } else { "SIGNING_KEY" },
            })
        })
        .collect();
    let context = json!({
        "title": "Signing keys",
        "section": "keys",
        "keys": listed,
        "algorithms": Algorithm::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
    });
    console.pages.show("keys.html", context, Some(&admin))
}

/// `POST /admin/keys/rotate/` with an optional `algorithm`: a new active key.
pub(super) async fn rotate_keys(State(console): State<ConsoleState>, form: Submitted) -> Response {
    let state = &console.app;
    let name = form
        .payload
        .text("algorithm")
        .ok()
        .flatten()
        .unwrap_or_default();
    let algorithm = match name.as_str() {
        "" => None,
        name => match name.parse::<Algorithm>() {
            Ok(algorithm) => Some(algorithm),
            Err(()) => {
                let flash = Flash::problem(format!("Algorithm: \"{name}\" is not a valid choice."));
                return console.pages.redirect("/admin/keys/", Some(flash));
            }
        },
    };
    let ctx = Context::of(state);
    let outcome = admin::rotate_keys(
        &ctx,
        &form.admin.actor,
        algorithm,
        std::time::Duration::ZERO,
        Some(&state.codec),
    )
    .await
    .map(|rotated| {
        format!(
            "Key {} ({}) signs from now on; {} verifies until it retires.",
            rotated.kid,
            rotated.algorithm.as_str(),
            rotated.retired
        )
    });
    answer_at(&console, &form.admin, "/admin/keys/", outcome)
}

/// `GET /admin/audit/?target=&page=`: a page of the audit log, newest first (of the actions
/// on one account, with `target`).
pub(super) async fn audit(
    State(console): State<ConsoleState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::of(query.as_deref());
    let target = params.get("target");
    let target_id = match target.map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            let refused = ApiError::Fields(vec![(
                "target".to_owned(),
                vec!["Enter a whole number.".to_owned()],
            )]);
            return console.pages.problem(refused, Some(&admin));
        }
    };
    let filter = AuditFilter {
        actor: None,
        target_id,
    };
    let request = PageRequest::parse(params.get("page"), Some(ENTRIES_PER_PAGE));
    let page = match admin::audit_log(&Context::of(&console.app), filter, request).await {
        Ok(page) => page,
        Err(err) => return console.pages.problem(ApiError::from(err), Some(&admin)),
    };
    let entries: Vec<Value> = page
        .results
        .iter()
        .map(|entry| {
            let actor = match &entry.actor {
                AuditActor::User { username, .. } => username.clone(),
                AuditActor::Command { os_user } => format!("command line ({os_user})"),
            };
            json!({
                "time": view::time(Some(entry.at)),
                "actor": actor,
                "action": entry.action,
                "target_id": entry.target_id,
                "target_name": entry.target_name,
                "details": details_in_words(&entry.details),
                "client_address": entry.client_addr,
            })
        })
        .collect();
    let pages = view::pagination(&page, "/admin/audit/", &[("target", target)], "page");
    let context = json!({
        "title": "Audit log",
        "section": "audit",
        "entries": entries,
        "target": target,
        "pages": pages,
    });
    console.pages.show("audit.html", context, Some(&admin))
}

/// An entry's details (a JSON object) as a line: `changed: is_active; is_active: false`.
fn details_in_words(details: &str) -> String {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(details) else {
        return details.to_owned();
    };
    let words = |value: &Value| match value {
        Value::String(text) => text.clone(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map_or_else(|| item.to_string(), str::to_owned)
            })
            .collect::<Vec<_>>()
            .join(", "),
        other => other.to_string(),
    };
    fields
        .iter()
        .map(|(name, value)| format!("{name}: {}", words(value)))
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_written_as_a_line() {
        assert_eq!(
            details_in_words(r#"{"changed":["is_active","email"],"is_active":false}"#),
            "changed: is_active, email; is_active: false"
        );
        assert_eq!(details_in_words(r#"{"session_id":"s1"}"#), "session_id: s1");
        assert_eq!(details_in_words("{}"), "");
        assert_eq!(details_in_words("not json"), "not json");
    }
}
