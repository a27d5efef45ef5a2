//! The accounts: the list (search, filter, pages), a user's page, and the forms that create,
//! change, activate, deactivate and delete an account.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};
use tollgate_core::body::Payload;
use tollgate_store::UserFilter;

use super::messages::{self, Flash};
use super::session::{Admin, Submitted};
use super::view::{self, Params};
use super::{answer, user_id, ConsoleState};
use crate::error::ApiError;
use crate::service::accounts::PasswordRule;
use crate::service::admin::console::{overview, Managed};
use crate::service::admin::page::PageRequest;
use crate::service::admin::users;
use crate::service::Context;

/// Accounts on a page of the list.
const USERS_PER_PAGE: &str = "25";
/// Login attempts on a page of a user's history.
const EVENTS_PER_PAGE: &str = "20";

/// `GET /admin/users/?search=&is_active=&page=`: a page of accounts, by id.
pub(super) async fn list(
    State(console): State<ConsoleState>,
    admin: Admin,
    RawQuery(query): RawQuery,
) -> Response {
    let params = Params::of(query.as_deref());
    let search = params.get("search").unwrap_or_default();
    let is_active = match params.get("is_active") {
        Some("true") => Some(true),
        Some("false") => Some(false),
        _ => None,
    };
    let filter = UserFilter {
        search: search.to_owned(),
        is_active,
    };
    let request = PageRequest::parse(params.get("page"), Some(USERS_PER_PAGE));
    let ctx = Context::of(&console.app);
    let page = match users::list(&ctx, &filter, request).await {
        Ok(page) => page,
        Err(err) => return console.pages.problem(ApiError::from(err), Some(&admin)),
    };
    let status = is_active.map(|active| if active { "true" } else { "false" });
    let pages = view::pagination(
        &page,
        "/admin/users/",
        &[
            ("search", Some(search).filter(|s| !s.is_empty())),
            ("is_active", status),
        ],
        "page",
    );
    let context = json!({
        "title": "Users",
        "section": "users",
        "search": search,
        "is_active": status.unwrap_or(""),
        "users": page.results.iter().map(view::user).collect::<Vec<Value>>(),
        "pages": pages,
    });
    console.pages.show("users.html", context, Some(&admin))
}

/// `GET /admin/users/new/`: the form that creates an account.
pub(super) async fn new_form(State(console): State<ConsoleState>, admin: Admin) -> Response {
    new_user_form(&console, &admin, StatusCode::OK, None, &[])
}

/// `POST /admin/users/new/`: creates the account as `POST /api/admin/users/` does, then to its
/// page; the form again, as it was filled in, with what was wrong.
pub(super) async fn create(State(console): State<ConsoleState>, form: Submitted) -> Response {
    let Submitted { admin, payload } = form;
    // A browser sends every input, those left empty blank: a blank field is one not given, so
    // that an optional identifier left empty is not refused as a blank one.
    let payload = match payload {
        Payload::Form(pairs) => Payload::Form(
            pairs
                .into_iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .collect(),
        ),
        json => json,
    };
    let ctx = Context::of(&console.app);
    match users::create(&ctx, &admin.actor, &payload, PasswordRule::Policy).await {
        Ok(user) => {
            let flash = Flash::done(format!("The account {} is created.", user.username));
            console
                .pages
                .redirect(&format!("/admin/users/{}/", user.id), Some(flash))
        }
        Err(err) => {
            let err = ApiError::from(err);
            let (status, words) = messages::in_words(&err);
            if status.is_server_error() {
                return console.pages.problem(err, Some(&admin));
            }
            new_user_form(&console, &admin, status, Some(&payload), &words)
        }
    }
}

/// The new-user form with `status`, filled in with what was `sent` (never the password), and
/// the `problems` of that attempt.
fn new_user_form(
    console: &ConsoleState,
    admin: &Admin,
    status: StatusCode,
    sent: Option<&Payload>,
    problems: &[String],
) -> Response {
    let settings = &console.app.settings;
    let required = |name: &str| {
        settings.username_field.as_str() == name
            || settings
                .user_required_fields
                .iter()
                .any(|field| field == name)
    };
    let value = |name: &str| {
        sent.and_then(|payload| payload.text(name).ok().flatten())
            .unwrap_or_default()
    };
    let input = |name: &str, label: &str, kind: &str, id: String| {
        json!({
            "id": id, "name": name, "label": label, "type": kind,
            "required": required(name), "value": value(name),
        })
    };
    let mut fields: Vec<Value> = [
        ("username", "Username", "text"),
        ("email", "Email address", "email"),
        ("phone", "Phone number", "tel"),
        ("first_name", "First name", "text"),
        ("last_name", "Last name", "text"),
    ]
    .into_iter()
    .map(|(name, label, kind)| input(name, label, kind, name.replace('_', "-")))
    .collect();
    // Profile values are JSON of the application's choosing, which the API and
    // `tollgate createuser` take typed; the form offers those an account cannot do without, as
    // text.
    for name in settings
        .user_profile_fields
        .iter()
        .filter(|name| required(name))
    {
        fields.push(input(name, name, "text", format!("profile-{name}")));
    }
    let flag = |name: &str| value(name) == "true";
    let context = json!({
        "title": "New user",
        "section": "users",
        "fields": fields,
        "problems": problems,
        "is_staff": flag("is_staff"),
        "is_superuser": flag("is_superuser"),
    });
    console
        .pages
        .show_with(status, "new_user.html", context, Some(admin))
}

/// `GET /admin/users/{id}/?events_page=`: an account, and (for an administrator who may
/// manage it) its sessions, login history and second factors, with the forms that act on it.
pub(super) async fn page(
    State(console): State<ConsoleState>,
    admin: Admin,
    Path(id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&admin));
    };
    let params = Params::of(query.as_deref());
    let events = PageRequest::parse(params.get("events_page"), Some(EVENTS_PER_PAGE));
    let ctx = Context::of(&console.app);
    let overview = match overview(&ctx, &admin.actor, id, events).await {
        Ok(overview) => overview,
        Err(err) => return console.pages.problem(ApiError::from(err), Some(&admin)),
    };
    let path = format!("/admin/users/{id}/");
    let managed = overview.managed.map(
        |Managed {
             sessions,
             events,
             factors,
         }| {
            json!({
                "sessions": sessions.iter().map(|session| json!({
                    "id": session.id,
                    "created": view::time(Some(session.created_at)),
                    "last_used": view::time(Some(session.last_used_at)),
                    "expires": view::time(Some(session.expires_at)),
                    "client_address": session.client_addr,
                    "user_agent": session.user_agent,
                })).collect::<Vec<Value>>(),
                "events": events.results.iter().map(|event| json!({
                    "time": view::time(Some(event.at)),
                    "succeeded": event.succeeded,
                    "outcome": match (event.succeeded, event.reason.as_deref()) {
                        (true, _) => "succeeded".to_owned(),
                        (false, reason) => reason.unwrap_or("failed").replace('_', " "),
                    },
                    "client_address": event.client_addr,
                    "user_agent": event.user_agent,
                })).collect::<Vec<Value>>(),
                "events_pages": view::pagination(&events, &path, &[], "events_page"),
                "factors": factors,
            })
        },
    );
    let own = admin.actor.account().is_some_and(|own| own.id == id);
    let context = json!({
        "title": format!("User {}", overview.user.username),
        "section": "users",
        "user": view::user(&overview.user),
        "managed": managed,
        "own": own,
        // What a reset link needs (otherwise the form would only be refused).
        "reset_configured": console.app.outbox.mailer.is_some()
            && console.app.settings.password_reset_url.is_some(),
    });
    console.pages.show("user.html", context, Some(&admin))
}

/// `POST /admin/users/{id}/`: changes the account's fields (and, for a superuser, its flags),
/// as `PATCH /api/admin/users/{id}/` does.
pub(super) async fn edit(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let outcome = users::update(&ctx, &form.admin.actor, id, &form.payload)
        .await
        .map(|user| format!("The changes to {} are saved.", user.username));
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/active/` with `active=true|false`: activates or deactivates the
/// account; deactivating ends its sessions and refuses its tokens.
pub(super) async fn set_active(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let active = form.payload.text("active").ok().flatten().as_deref() == Some("true");
    let ctx = Context::of(&console.app);
    let outcome = users::set_active(&ctx, &form.admin.actor, id, active)
        .await
        .map(|ended| {
            if active {
                "The account is active again.".to_owned()
            } else {
                format!("The account is deactivated; {ended} session(s) ended.")
            }
        });
    answer(&console, &form.admin, id, outcome)
}

/// `GET /admin/users/{id}/delete/`: asks whether to delete the account.
pub(super) async fn confirm_delete(
    State(console): State<ConsoleState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&admin));
    };
    match users::get(&Context::of(&console.app), id).await {
        Ok(user) => {
            let context = json!({
                "title": format!("Delete {}?", user.username),
                "section": "users",
                "user": view::user(&user),
            });
            console.pages.show("delete.html", context, Some(&admin))
        }
        Err(err) => console.pages.problem(ApiError::from(err), Some(&admin)),
    }
}

/// `POST /admin/users/{id}/delete/`: deletes the account; back to the list.
pub(super) async fn delete(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    match users::delete(&ctx, &form.admin.actor, id).await {
        Ok(()) => {
            let flash = Flash::done("The account is deleted.");
            console.pages.redirect("/admin/users/", Some(flash))
        }
        Err(err) => answer(&console, &form.admin, id, Err(err)),
    }
}
