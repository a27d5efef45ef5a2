//! The token endpoints: obtain (pair and sliding), refresh, verify, blacklist, sliding refresh.
//! Each reads the request, calls one operation of [`crate::service`] and writes simplejwt's
//! answer; the refresh cookie, when on, carries the refresh token instead of the body.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tollgate_core::auth::HeaderCredentials;
use tollgate_core::{unix_now, Issued};
use tollgate_store::User;

use super::body::Payload;
use super::cookie;
use crate::auth::header_credentials;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::login;
use crate::service::mfa::{LoginKind, AMR_PASSWORD};
use crate::service::refresh::{self, RefreshAnswer, Refreshed, Verified};
use crate::service::sessions;
use crate::service::tokens::{self, Origin, Pair};
use crate::state::AppState;
use tollgate_core::settings::LoginResponse;

/// `POST /api/token/`: a refresh and an access token for a username and password. With the
/// refresh cookie on, the request's origin is checked first ([`cookie::CookieRequest`]), since
/// the answer sets the cookie. A user with a second factor gets 401 `mfa_required` and an
/// `mfa_token` instead, which `POST /api/token/mfa/` exchanges for this answer.
pub(crate) async fn obtain_pair(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let user = log_in(&state, client, &agent, &payload, LoginKind::Pair).await?;
    let addr = client.0.to_string();
    login_answer(
        &state,
        &user,
        LoginKind::Pair,
        origin(&addr, &agent, &[AMR_PASSWORD]),
    )
    .await
}

/// `POST /api/token/sliding/`: a sliding token for a username and password.
pub(crate) async fn obtain_sliding(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let user = log_in(&state, client, &agent, &payload, LoginKind::Sliding).await?;
    let addr = client.0.to_string();
    login_answer(
        &state,
        &user,
        LoginKind::Sliding,
        origin(&addr, &agent, &[AMR_PASSWORD]),
    )
    .await
}

/// What a login answers once its user has proved who they are (with a password, or a password
/// and a second factor): tokens of `kind`, in LOGIN_RESPONSE's shape, the refresh token in the
/// cookie when REFRESH_COOKIE is on, and the user with LOGIN_RESPONSE_USER.
pub(crate) async fn login_answer(
    state: &AppState,
    user: &User,
    kind: LoginKind,
    origin: Origin<'_>,
) -> Result<Response, ApiError> {
    let answer = login_body(state, user, kind, origin).await?;
    answer.respond(state)
}

/// A login's answer before it is written: its body, and the refresh token that goes in the
/// cookie rather than the body (REFRESH_COOKIE).
pub(crate) struct LoginAnswer {
    pub(crate) body: Map<String, Value>,
    refresh_for_cookie: Option<Issued>,
}

impl LoginAnswer {
    /// The response: the body, and the cookie if there is one.
    pub(crate) fn respond(self, state: &AppState) -> Result<Response, ApiError> {
        let body = Value::Object(self.body);
        match self.refresh_for_cookie {
            Some(refresh) => with_refresh_cookie(state, body, &refresh),
            None => Ok(Json(body).into_response()),
        }
    }
}

/// The tokens of a login, issued, in the answer's shape (see [`login_answer`]).
pub(crate) async fn login_body(
    state: &AppState,
    user: &User,
    kind: LoginKind,
    origin: Origin<'_>,
) -> Result<LoginAnswer, ApiError> {
    let mut body = Map::new();
    let mut refresh_for_cookie = None;
    let hook = match (kind, state.settings.login_response) {
        (LoginKind::Sliding, _) => {
            let sliding = tokens::issue_sliding(state, user, origin).await?;
            body.insert("token".to_owned(), sliding.token.token.into());
            sliding.hook.add_fields_to(&mut body);
            return Ok(LoginAnswer {
                body,
                refresh_for_cookie,
            });
        }
        // djangorestframework-jwt's answer: one token, nothing to refresh.
        (LoginKind::Pair, LoginResponse::Token) => {
            let single = tokens::issue_access(state, user, origin.amr).await?;
            body.insert("token".to_owned(), single.token.token.into());
            single.hook
        }
        (LoginKind::Pair, LoginResponse::Pair) => {
            let Pair {
                refresh,
                access,
                hook,
            } = tokens::issue_pair(state, user, origin).await?;
            if state.settings.refresh_cookie {
                refresh_for_cookie = Some(refresh);
            } else {
                body.insert("refresh".to_owned(), refresh.token.into());
            }
            body.insert("access".to_owned(), access.token.into());
            hook
        }
    };
    if state.settings.login_response_user {
        body.insert("user".to_owned(), super::users::user_json(state, user));
    }
    // The application's fields (CLAIMS_HOOK_URL) go last, beside the answer's own.
    hook.add_fields_to(&mut body);
    Ok(LoginAnswer {
        body,
        refresh_for_cookie,
    })
}

/// Checks the credentials of an obtain request (the USERNAME_FIELD and `password` fields).
async fn log_in(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    payload: &Payload,
    kind: LoginKind,
) -> Result<User, ApiError> {
    let username_field = state.settings.username_field.as_str();
    let [identifier, password] = payload.char_fields([username_field, "password"])?;
    let client = client.with(agent);
    Ok(login::log_in(state, client, &identifier, password, kind).await?)
}

/// Where a login came from, and how the user signed in, as its session records it.
pub(crate) fn origin<'a>(
    client_addr: &'a str,
    agent: &'a UserAgent,
    amr: &'a [&'a str],
) -> Origin<'a> {
    Origin {
        client_addr,
        user_agent: agent.0.as_deref().unwrap_or_default(),
        amr,
    }
}

/// `POST /api/token/refresh/`: a new access token (and, with rotation, a new refresh token);
/// with LOGIN_RESPONSE = "token", djangorestframework-jwt's `{"token"}` for `{"token"}` too.
pub(crate) async fn refresh(
    State(state): State<AppState>,
    request: cookie::CookieRequest,
    payload: Payload,
) -> Result<Response, ApiError> {
    let from_cookie = cookie::presented_cookie(&request, &payload)?;
    let answer = refresh::refresh_request(&state, &payload, from_cookie).await?;
    let Refreshed { access, refresh } = match answer {
        RefreshAnswer::Refreshed(refreshed) => refreshed,
        RefreshAnswer::Token(token) => {
            return Ok(Json(json!({ "token": token.token })).into_response())
        }
    };
    match refresh {
        None => Ok(Json(json!({ "access": access.token })).into_response()),
        Some(refresh) if state.settings.refresh_cookie => {
            with_refresh_cookie(&state, json!({ "access": access.token }), &refresh)
        }
        Some(refresh) => {
            Ok(Json(json!({ "access": access.token, "refresh": refresh.token })).into_response())
        }
    }
}

/// `POST /api/token/verify/`: `{}` if the token is valid, of any type (with LOGIN_RESPONSE =
/// "token", `{"token"}` echoed, as djangorestframework-jwt answers).
pub(crate) async fn verify(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [raw] = payload.char_fields(["token"])?;
    match refresh::verify_request(&state, raw).await? {
        Verified::Empty => Ok(Json(json!({}))),
        Verified::Token(token) => Ok(Json(json!({ "token": token }))),
    }
}

/// `POST /api/token/blacklist/`: logs out a refresh token. Holding the token is enough.
pub(crate) async fn blacklist(
    State(state): State<AppState>,
    request: cookie::CookieRequest,
    headers: HeaderMap,
    payload: Payload,
) -> Result<Response, ApiError> {
    let presented = cookie::presented(&request, &payload)?;
    // The access token the logout was sent with, revoked too with ACCESS_TOKEN_REVOCATION.
    let access = match header_credentials(&headers, &state) {
        HeaderCredentials::Token(raw) => std::str::from_utf8(raw).ok(),
        _ => None,
    };
    let outcome = sessions::log_out(&state, &presented.token, access)
        .await
        .map(|()| Json(json!({})))
        .map_err(ApiError::from);
    // Logging out with the cookie ends with the cookie gone, even when the token in it was
    // already refused: a browser must not keep a cookie that can no longer log anyone in.
    if !presented.from_cookie {
        return outcome.map(|body| body.into_response());
    }
    let clear = cookie::clear(&state.settings)?;
    let mut response = match outcome {
        Ok(body) => body.into_response(),
        Err(err) => err.into_response(),
    };
    response.headers_mut().append(SET_COOKIE, clear);
    Ok(response)
}

/// `POST /api/token/sliding/refresh/`: the same sliding token with a new `exp`, while its
/// refresh window lasts.
pub(crate) async fn refresh_sliding(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [raw] = payload.char_fields(["token"])?;
    let slid = refresh::refresh_sliding(&state, &raw).await?;
    Ok(Json(json!({ "token": slid.token })))
}

/// A JSON answer that hands the refresh token over in the refresh cookie instead of the body.
fn with_refresh_cookie(
    state: &AppState,
    body: Value,
    refresh: &Issued,
) -> Result<Response, ApiError> {
    let max_age = refresh.expires_at - unix_now();
    let set = cookie::set(&state.settings, &refresh.token, max_age)?;
    Ok(([(SET_COOKIE, set)], Json(body)).into_response())
}
