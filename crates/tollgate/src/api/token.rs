//! The token endpoints: obtain (pair and sliding), refresh, verify, blacklist, sliding refresh.
//! Each reads the request, calls one operation of [`crate::service`] and writes simplejwt's
//! answer; the refresh cookie, when on, carries the refresh token instead of the body.

use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use tollgate_core::auth::HeaderCredentials;
use tollgate_core::{unix_now, Issued};
use tollgate_store::User;

use super::body::Payload;
use super::cookie;
use crate::auth::header_credentials;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::login::{self, Channel};
use crate::service::refresh::{self, RefreshAnswer, Refreshed, Verified};
use crate::service::sessions;
use crate::service::tokens::{self, Origin, Pair};
use crate::state::AppState;
use tollgate_core::settings::LoginResponse;

/// `POST /api/token/`: a refresh and an access token for a username and password. With the
/// refresh cookie on, the request's origin is checked first ([`cookie::CookieRequest`]), since
/// the answer sets the cookie.
pub(crate) async fn obtain_pair(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let user = log_in(&state, client, &agent, &payload).await?;
    let mut refresh_for_cookie = None;
    let hook;
    let mut body = match state.settings.login_response {
        // djangorestframework-jwt's answer: one token, nothing to refresh.
        LoginResponse::Token => {
            let single = tokens::issue_access(&state, &user).await?;
            hook = single.hook;
            json!({ "token": single.token.token })
        }
        LoginResponse::Pair => {
            let addr = client.0.to_string();
            let Pair {
                refresh,
                access,
                hook: added,
            } = tokens::issue_pair(&state, &user, origin(&addr, &agent)).await?;
            hook = added;
            if state.settings.refresh_cookie {
                refresh_for_cookie = Some(refresh);
                json!({ "access": access.token })
            } else {
                json!({ "refresh": refresh.token, "access": access.token })
            }
        }
    };
    if state.settings.login_response_user {
        if let Value::Object(map) = &mut body {
            map.insert("user".to_owned(), super::users::user_json(&state, &user));
        }
    }
    hook.add_fields_to(&mut body);
    match refresh_for_cookie {
        Some(refresh) => with_refresh_cookie(&state, body, &refresh),
        None => Ok(Json(body).into_response()),
    }
}

/// `POST /api/token/sliding/`: a sliding token for a username and password.
pub(crate) async fn obtain_sliding(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let user = log_in(&state, client, &agent, &payload).await?;
    let addr = client.0.to_string();
    let sliding = tokens::issue_sliding(&state, &user, origin(&addr, &agent)).await?;
    let mut body = json!({ "token": sliding.token.token });
    sliding.hook.add_fields_to(&mut body);
    Ok(Json(body))
}

/// Checks the credentials of an obtain request (the USERNAME_FIELD and `password` fields).
async fn log_in(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    payload: &Payload,
) -> Result<User, ApiError> {
    let username_field = state.settings.username_field.as_str();
    let [identifier, password] = payload.char_fields([username_field, "password"])?;
    let client = client.with(agent);
    Ok(login::check_password(state, client, &identifier, password, Channel::Login).await?)
}

/// Where a login came from, as its session records it.
fn origin<'a>(client_addr: &'a str, agent: &'a UserAgent) -> Origin<'a> {
    Origin {
        client_addr,
        user_agent: agent.0.as_deref().unwrap_or_default(),
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
