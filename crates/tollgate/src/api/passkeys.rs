//! Passkeys: registering one (`<USER_PATH>mfa/passkeys/`), removing one, the passkey
//! ceremony of a login's second step (`<TOKEN_OBTAIN_PATH>mfa/passkey/`), and, with
//! PASSKEY_LOGIN, signing in with a passkey alone (`<TOKEN_OBTAIN_PATH>passkey/`).
//!
//! Each ceremony answers the options for the browser's WebAuthn call under `publicKey`, as
//! `navigator.credentials.create()` and `.get()` take them once their base64url fields are
//! decoded, beside the token to send back with the browser's answer (`credential`, the
//! `PublicKeyCredential` with its binary fields base64url-encoded).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde_json::{json, Value};

use super::body::Payload;
use super::cookie;
use super::mfa::{consent, Enroller};
use super::token::{login_answer, origin};
use crate::auth::AuthenticatedUser;
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::mfa::passkeys;
use crate::state::{AppState, SID_CLAIM};

/// `POST <USER_PATH>mfa/passkeys/`: options for `navigator.credentials.create()` and the
/// `registration_token` to send back.
pub(crate) async fn begin_registration(
    State(state): State<AppState>,
    enroller: Enroller,
) -> Result<Json<Value>, ApiError> {
    let ceremony = passkeys::begin_registration(&state, enroller.user()).await?;
    Ok(Json(with_token(
        ceremony.options,
        "registration_token",
        ceremony.token,
    )))
}

/// `POST <USER_PATH>mfa/passkeys/confirm/` `{"registration_token", "credential", "name"}`: the
/// passkey is registered; the recovery codes when it is the first factor; with an enrolment
/// `mfa_token`, the login's answer too.
pub(crate) async fn finish_registration(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    enroller: Enroller,
    payload: Payload,
) -> Result<Response, ApiError> {
    let [token] = payload.char_fields(["registration_token"])?;
    let credential = required_credential(&payload)?;
    let name = payload.text("name").ok().flatten().unwrap_or_default();
    let client_info = client.with(&agent);
    let registered = passkeys::finish_registration(
        &state,
        client_info,
        enroller.user(),
        &token,
        credential,
        &name,
    )
    .await?;
    let mut body = serde_json::Map::new();
    body.insert("id".to_owned(), registered.id.into());
    if let Some(codes) = registered.recovery_codes {
        body.insert("recovery_codes".to_owned(), json!(codes));
    }
    let second_factor = passkeys::AMR_HARDWARE_KEY;
    super::mfa::enrolled(&state, client, &agent, enroller, body, second_factor).await
}

/// `DELETE <USER_PATH>mfa/passkeys/{id}/` `{"code"}` or `{"password"}`: the passkey is
/// removed; the caller's other sessions end.
pub(crate) async fn remove(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    auth: AuthenticatedUser,
    id: Result<Path<i64>, PathRejection>,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let Ok(Path(id)) = id else {
        return Err(ApiError::NotFound);
    };
    let auth = auth.stored(&state).await?;
    let consent = consent(&payload)?;
    let current = auth.claims.str(SID_CLAIM);
    passkeys::remove(
        &state,
        client.with(&agent),
        &auth.user,
        id,
        consent,
        current,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST <TOKEN_OBTAIN_PATH>mfa/passkey/` `{"mfa_token"}`: options for
/// `navigator.credentials.get()` with the passkeys of the login's user; the answer goes to
/// `<TOKEN_OBTAIN_PATH>mfa/` as `{"mfa_token", "credential"}`.
pub(crate) async fn begin_second_factor(
    State(state): State<AppState>,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let [mfa_token] = payload.char_fields(["mfa_token"])?;
    Ok(Json(
        passkeys::begin_second_factor(&state, &mfa_token).await?,
    ))
}

/// `POST <TOKEN_OBTAIN_PATH>passkey/begin/`: options for `navigator.credentials.get()` with no
/// credential named, and the `passkey_token` to send back (PASSKEY_LOGIN).
pub(crate) async fn begin_sign_in(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let ceremony = passkeys::begin_sign_in(&state).await?;
    Ok(Json(with_token(
        ceremony.options,
        "passkey_token",
        ceremony.token,
    )))
}

/// `POST <TOKEN_OBTAIN_PATH>passkey/` `{"passkey_token", "credential"}`: a login's answer, for
/// the user the passkey names (PASSKEY_LOGIN).
pub(crate) async fn finish_sign_in(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let [token] = payload.char_fields(["passkey_token"])?;
    let credential = required_credential(&payload)?;
    let signed_in =
        passkeys::finish_sign_in(&state, client.with(&agent), &token, credential).await?;
    let addr = client.0.to_string();
    let origin = origin(&addr, &agent, &signed_in.amr);
    login_answer(&state, &signed_in.user, signed_in.kind, origin).await
}

/// The browser's answer, a JSON object under `credential`.
pub(crate) fn required_credential(payload: &Payload) -> Result<Value, ApiError> {
    match payload.value("credential") {
        Some(credential @ Value::Object(_)) => Ok(credential),
        Some(_) => Err(ApiError::Fields(vec![(
            "credential".to_owned(),
            vec!["Expected the PublicKeyCredential as a JSON object.".to_owned()],
        )])),
        None => Err(ApiError::Fields(vec![(
            "credential".to_owned(),
            vec!["This field is required.".to_owned()],
        )])),
    }
}

fn with_token(mut options: Value, name: &str, token: String) -> Value {
    if let Value::Object(map) = &mut options {
        map.insert(name.to_owned(), token.into());
    }
    options
}
