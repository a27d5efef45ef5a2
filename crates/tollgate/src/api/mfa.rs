//! Second factors: the caller's enrolment (TOTP, recovery codes) under `<USER_PATH>mfa/`, and
//! the second step of a login, `<TOKEN_OBTAIN_PATH>mfa/`.
//!
//! The enrolment endpoints take the caller's access token, or, when MFA_REQUIRED makes a user
//! enrol before signing in, the `mfa_token` of that login as a bearer token; confirming TOTP
//! with such a token answers the login's tokens beside the recovery codes.

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Map, Value};
use tollgate_core::auth::HeaderCredentials;
use tollgate_store::User;

use super::body::Payload;
use super::cookie;
use super::token::{login_answer, login_body, origin};
use super::users::timestamp;
use crate::auth::{header_credentials, AuthenticatedUser};
use crate::client::{ClientAddr, UserAgent};
use crate::error::ApiError;
use crate::service::mfa::{self, Consent, Proof, SignedIn, AMR_ONE_TIME_CODE, MFA_TOKEN_PREFIX};
use crate::service::Context;
use crate::state::{AppState, SID_CLAIM};

/// Who enrols: a signed-in user, or the user of an enrolment `mfa_token`.
pub(crate) enum Enroller {
    /// A user with a valid access token.
    User(AuthenticatedUser),
    /// A user whose login waits for them to enrol (MFA_REQUIRED).
    Login { user: User, mfa_token: String },
}

impl Enroller {
    pub(crate) fn user(&self) -> &User {
        match self {
            Enroller::User(auth) => &auth.user,
            Enroller::Login { user, .. } => user,
        }
    }
}

impl FromRequestParts<AppState> for Enroller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let mfa_token = match header_credentials(&parts.headers, state) {
            HeaderCredentials::Token(raw) if raw.starts_with(MFA_TOKEN_PREFIX.as_bytes()) => {
                std::str::from_utf8(raw).ok().map(str::to_owned)
            }
            _ => None,
        };
        if let Some(mfa_token) = mfa_token {
            let user = mfa::enrolling_user(state, &mfa_token).await?;
            return Ok(Enroller::Login { user, mfa_token });
        }
        let auth = AuthenticatedUser::from_request_parts(parts, state).await?;
        Ok(Enroller::User(auth.stored(state).await?))
    }
}

/// `GET <USER_PATH>mfa/`: the caller's confirmed factors and recovery codes left.
pub(crate) async fn status(
    State(state): State<AppState>,
    auth: AuthenticatedUser,
) -> Result<Json<Value>, ApiError> {
    let status = mfa::status(&Context::of(&state), &auth.user).await?;
    let factors: Vec<Value> = status
        .factors
        .iter()
        .map(|factor| {
            json!({
                "id": factor.id,
                "type": factor.kind,
                "name": factor.name,
                "created": timestamp(Some(factor.created_at)),
                "last_used": timestamp(factor.last_used_at),
            })
        })
        .collect();
    Ok(Json(json!({
        "enabled": !factors.is_empty(),
        "factors": factors,
        "recovery_codes_left": status.recovery_codes_left,
    })))
}

/// `POST <USER_PATH>mfa/totp/`: a new TOTP secret, pending until confirmed.
pub(crate) async fn begin_totp(
    State(state): State<AppState>,
    enroller: Enroller,
) -> Result<Json<Value>, ApiError> {
    let secret = mfa::begin_totp(&state, enroller.user()).await?;
    Ok(Json(json!({
        "secret": secret.base32,
        "otpauth_url": secret.otpauth_url,
        "qr_svg": secret.qr_svg,
    })))
}

/// `POST <USER_PATH>mfa/totp/confirm/` `{"code"}`: TOTP on, and the recovery codes, shown
/// this once; for an enrolment `mfa_token`, with the login's answer too.
pub(crate) async fn confirm_totp(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    enroller: Enroller,
    payload: Payload,
) -> Result<Response, ApiError> {
    let [code] = payload.char_fields(["code"])?;
    let client_info = client.with(&agent);
    let recovery_codes = mfa::confirm_totp(&state, client_info, enroller.user(), &code).await?;
    let mut body = Map::new();
    body.insert("recovery_codes".to_owned(), json!(recovery_codes));
    enrolled(&state, client, &agent, enroller, body, AMR_ONE_TIME_CODE).await
}

/// The answer to a confirmed enrolment: `body` alone for a signed-in user; for the user of an
/// enrolment `mfa_token` (MFA_REQUIRED), the login completes, signed in with the password and
/// `second_factor` (the factor just enrolled), and `body` joins its answer.
pub(crate) async fn enrolled(
    state: &AppState,
    client: ClientAddr,
    agent: &UserAgent,
    enroller: Enroller,
    body: Map<String, Value>,
    second_factor: &'static str,
) -> Result<Response, ApiError> {
    let Enroller::Login { mfa_token, .. } = enroller else {
        return Ok(Json(Value::Object(body)).into_response());
    };
    let client = client.with(agent);
    let signed_in =
        mfa::complete_enrollment_login(state, client, &mfa_token, second_factor).await?;
    let addr = client.address.to_string();
    let origin = origin(&addr, agent, &signed_in.amr);
    let mut answer = login_body(state, &signed_in.user, signed_in.kind, origin).await?;
    answer.body.extend(body);
    answer.respond(state)
}

/// `DELETE <USER_PATH>mfa/totp/` `{"code"}` or `{"password"}`: TOTP off; the caller's other
/// sessions end.
pub(crate) async fn disable_totp(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<StatusCode, ApiError> {
    let auth = auth.stored(&state).await?;
    let consent = consent(&payload)?;
    let current = auth.claims.str(SID_CLAIM);
    mfa::disable_totp(&state, client.with(&agent), &auth.user, consent, current).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST <USER_PATH>mfa/recovery_codes/` `{"code"}` or `{"password"}`: a fresh set of
/// recovery codes; the old set stops working.
pub(crate) async fn renew_recovery_codes(
    State(state): State<AppState>,
    client: ClientAddr,
    agent: UserAgent,
    auth: AuthenticatedUser,
    payload: Payload,
) -> Result<Json<Value>, ApiError> {
    let auth = auth.stored(&state).await?;
    let consent = consent(&payload)?;
    let codes = mfa::renew_recovery_codes(&state, client.with(&agent), &auth.user, consent).await?;
    Ok(Json(json!({ "recovery_codes": codes })))
}

/// `POST <TOKEN_OBTAIN_PATH>mfa/` `{"mfa_token", "code"}`, `{"mfa_token", "recovery_code"}` or
/// `{"mfa_token", "credential"}` (a passkey's answer): what the login would have answered.
pub(crate) async fn complete_login(
    State(state): State<AppState>,
    _origin_checked: cookie::CookieRequest,
    client: ClientAddr,
    agent: UserAgent,
    payload: Payload,
) -> Result<Response, ApiError> {
    let proof = if payload.has("credential") && !payload.has("code") {
        let [mfa_token] = payload.char_fields(["mfa_token"])?;
        let credential = super::passkeys::required_credential(&payload)?;
        (mfa_token, Proof::Passkey(credential))
    } else if payload.has("recovery_code") && !payload.has("code") {
        let [mfa_token, code] = payload.char_fields(["mfa_token", "recovery_code"])?;
        (mfa_token, Proof::RecoveryCode(code))
    } else {
        let [mfa_token, code] = payload.char_fields(["mfa_token", "code"])?;
        (mfa_token, Proof::Code(code))
    };
    let (mfa_token, proof) = proof;
    let signed_in = mfa::complete_login(&state, client.with(&agent), &mfa_token, proof).await?;
    answer(&state, &client, &agent, &signed_in).await
}

/// A TOTP code or the password, whichever the body has.
pub(crate) fn consent(payload: &Payload) -> Result<Consent, ApiError> {
    if payload.has("password") && !payload.has("code") {
        let [password] = payload.char_fields(["password"])?;
        return Ok(Consent::Password(password));
    }
    let [code] = payload.char_fields(["code"])?;
    Ok(Consent::Code(code))
}

/// The login's answer for a user who has passed the second step.
async fn answer(
    state: &AppState,
    client: &ClientAddr,
    agent: &UserAgent,
    signed_in: &SignedIn,
) -> Result<Response, ApiError> {
    let addr = client.0.to_string();
    let origin = origin(&addr, agent, &signed_in.amr);
    login_answer(state, &signed_in.user, signed_in.kind, origin).await
}
