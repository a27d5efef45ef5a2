//! The forms of a user's page that act on how the account signs in: its password, a reset
//! link, its lockout, its second factors and its sessions.

use axum::extract::{Path, State};
use axum::response::Response;

use super::session::Submitted;
use super::{answer, user_id, ConsoleState};
use crate::error::ApiError;
use crate::service::admin::{activity, users};
use crate::service::Context;

/// `POST /admin/users/{id}/password/` with `new_password`: sets the password (the password
/// policy applies; every session of the user ends).
pub(super) async fn set_password(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let new_password = match form.payload.char_fields(["new_password"]) {
        Ok([password]) => password,
        Err(err) => return answer(&console, &form.admin, id, Err(err.into())),
    };
    let ctx = Context::of(&console.app);
    let outcome = users::set_password(&ctx, &form.admin.actor, id, new_password)
        .await
        .map(|_| "The new password is saved; the user's sessions have ended.".to_owned());
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/password_reset/`: mails the user a password reset link.
pub(super) async fn send_password_reset(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let outcome = users::send_password_reset(&ctx, &form.admin.actor, id)
        .await
        .map(|()| "A password reset link is on its way to the user.".to_owned());
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/unlock/`: lifts the lockout and forgets failed logins.
pub(super) async fn unlock(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let throttle = Some(console.app.login_throttle.as_ref());
    let outcome = users::unlock(&ctx, &form.admin.actor, id, throttle)
        .await
        .map(|was_locked| {
            if was_locked {
                "The account is unlocked.".to_owned()
            } else {
                "The account was not locked; its failed logins are forgotten.".to_owned()
            }
        });
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/mfa_reset/`: removes the user's second factors (and ends their
/// sessions).
pub(super) async fn reset_mfa(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let outcome = users::reset_mfa(&ctx, &form.admin.actor, id)
        .await
        .map(|removed| {
            format!("{removed} second factor(s) removed; the user's sessions have ended.")
        });
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/sessions/revoke/`: revokes every session of the user.
pub(super) async fn revoke_all_sessions(
    State(console): State<ConsoleState>,
    Path(id): Path<String>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let outcome = activity::revoke_all_sessions(&ctx, &form.admin.actor, id)
        .await
        .map(|ended| format!("{ended} session(s) revoked."));
    answer(&console, &form.admin, id, outcome)
}

/// `POST /admin/users/{id}/sessions/{sid}/revoke/`: revokes one session of the user.
pub(super) async fn revoke_session(
    State(console): State<ConsoleState>,
    Path((id, sid)): Path<(String, String)>,
    form: Submitted,
) -> Response {
    let Some(id) = user_id(&id) else {
        return console.pages.problem(ApiError::NotFound, Some(&form.admin));
    };
    let ctx = Context::of(&console.app);
    let outcome = activity::revoke_session(&ctx, &form.admin.actor, id, &sid)
        .await
        .map(|()| "The session is revoked.".to_owned());
    answer(&console, &form.admin, id, outcome)
}
