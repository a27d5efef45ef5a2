//! Confirming a registration's email address (EMAIL_VERIFICATION), in djoser's shapes: the
//! registration mails an activation link to ACTIVATION_URL; the page it opens posts `uid` and
//! `token` back (`activation`); `resend_activation` mails a new link.
//!
//! With `mandatory`, a correct password of an unconfirmed account is answered
//! `email_not_verified` (see [`super::login`]); with `optional`, logins work meanwhile. The
//! link's token is random and stored only as a hash; it works until it expires
//! (ACTIVATION_TIMEOUT) or a newer one is sent, and once the address is confirmed it is stale.

use std::net::IpAddr;

use serde_json::json;
use tollgate_core::account_token::{decode_uid, encode_uid, hash_account_token, new_account_token};
use tollgate_core::identity::normalize_email;
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::settings::EmailVerification;
use tollgate_core::unix_now;
use tollgate_store::{NewAccountToken, User, UserField};

use super::recovery::user_context;
use super::{Context, ServiceError};
use crate::state::AppState;

/// The purpose of activation tokens, and the outbox topic of their mails.
const PURPOSE: &str = "activation";

/// Mails `user` a link that confirms their address, voiding earlier ones.
pub(crate) async fn send_activation(ctx: &Context<'_>, user: &User) -> Result<(), ServiceError> {
    let (Some(mailer), Some(page)) = (&ctx.outbox.mailer, &ctx.settings.activation_url) else {
        return Err(ServiceError::NotConfigured(
            "Email verification is not available: set SMTP_URL and ACTIVATION_URL.",
        ));
    };
    let (token, token_hash) = new_account_token();
    let now = unix_now();
    let timeout = ctx.settings.activation_timeout;
    let lifetime = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
    let fingerprint = revoke_fingerprint(&user.password);
    ctx.store
        .issue_account_token(&NewAccountToken {
            purpose: PURPOSE,
            user_id: user.id,
            token_hash: &token_hash,
            password_fingerprint: &fingerprint,
            created_at: now,
            expires_at: now.saturating_add(lifetime),
        })
        .await?;
    let link = page
        .replace("{uid}", &encode_uid(user.id))
        .replace("{token}", &token);
    let context = json!({
        "user": user_context(user),
        "link": link,
        "valid_for": humantime::format_duration(timeout).to_string(),
    });
    let mail = mailer
        .compose(PURPOSE, &user.email, &context)
        .map_err(ServiceError::Mail)?;
    ctx.outbox.send_mail(ctx.store, PURPOSE, &mail).await?;
    tracing::info!(user_id = user.id, "activation mail queued");
    Ok(())
}

/// Confirms the address of the user `uid` names with the token of an activation link. A uid
/// naming nobody and a token that is not live are refused in djoser's words; a live token of an
/// address already confirmed is stale.
pub(crate) async fn activate(state: &AppState, uid: &str, token: &str) -> Result<(), ServiceError> {
    if state.settings.email_verification == EmailVerification::None {
        return Err(ServiceError::NotConfigured(
            "Email verification is off (EMAIL_VERIFICATION = none).",
        ));
    }
    let field = |name: &str, message: &str| {
        ServiceError::InvalidFields(vec![(name.to_owned(), vec![message.to_owned()])])
    };
    let bad_uid = || field("uid", "Invalid user id or user doesn't exist.");
    let user_id = decode_uid(uid).ok_or_else(bad_uid)?;
    let user = state
        .store
        .find_user(UserField::Id, &user_id.to_string())
        .await?
        .ok_or_else(bad_uid)?;
    let now = unix_now();
    let live = state
        .store
        .find_account_token(PURPOSE, user.id, &hash_account_token(token), now)
        .await?;
    if live.is_none() {
        return Err(field("token", "Invalid token for given user."));
    }
    // The token stays until it expires: presented again, it is stale, as djoser answers.
    if !state.store.confirm_email(user.id, now).await? {
        return Err(ServiceError::StaleToken);
    }
    Context::of(state).users_changed();
    tracing::info!(user_id = user.id, "email address confirmed");
    Ok(())
}

/// Mails a new activation link to the account of `email` if it waits for one. Refused only
/// when verification is off or the address is out of requests; otherwise the answer says
/// nothing of the account.
pub(crate) async fn resend_activation(
    state: &AppState,
    client: IpAddr,
    email: &str,
) -> Result<(), ServiceError> {
    if state.settings.email_verification == EmailVerification::None {
        return Err(ServiceError::NotConfigured(
            "Email verification is off (EMAIL_VERIFICATION = none).",
        ));
    }
    state
        .reset_throttle
        .reserve(client)
        .await
        .map_err(ServiceError::Throttled)?;
    let state = state.clone();
    let email = normalize_email(email);
    tokio::spawn(async move {
        let user = match state.store.find_user(UserField::Email, &email).await {
            Ok(Some(user)) if user.is_active && user.email_verified_at.is_none() => user,
            Ok(_) => return,
            Err(err) => {
                tracing::warn!(cause = %err, "activation: cannot look the address up");
                return;
            }
        };
        if state.reset_throttle.reserve_account(user.id).await.is_err() {
            tracing::info!(
                user_id = user.id,
                "activation: no mail, the account had enough"
            );
            return;
        }
        if let Err(err) = send_activation(&Context::of(&state), &user).await {
            tracing::warn!(cause = %err, "activation: the mail could not be queued");
        }
    });
    Ok(())
}
