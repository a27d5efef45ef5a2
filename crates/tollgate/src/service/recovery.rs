//! Password reset by mail, in djoser's shape: a user who forgot their password asks for a
//! link with their address (`reset_password`), and the page the link opens sends it back with
//! a new password (`reset_password_confirm`).
//!
//! The request answers the same, at once, whether or not the address has an account: looking
//! the address up, issuing the token and queueing the mail happen after the answer. The link's
//! token is random, stored only as a hash, and works once, for PASSWORD_RESET_TIMEOUT, while
//! it is the user's newest and the password is the one it was issued under. A completed reset
//! changes the password as a password change does (every refresh token blacklisted, access
//! tokens revoked), ends every session, lifts a lockout, is recorded in the user's login
//! history (`tollgate events`), and sends the user a notice. Tokens and links never appear in
//! logs.

use std::net::IpAddr;

use serde_json::json;
use tollgate_core::identity::normalize_email;
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::unix_now;
use tollgate_store::{LoginOutcome, User, UserField};

use super::accounts::{self, ChangedBy};
use super::links::{bad_token, live_link, send_link, user_context, Link, LiveLink};
use super::login::Client;
use super::{sessions, Context, ServiceError};
use crate::mail::Mailer;
use crate::state::AppState;

/// The purpose of reset tokens, and the outbox topic of their mails.
const PURPOSE: &str = "password_reset";

/// Asks for a password reset link for the account of `email`, from `client`. Refused only when
/// the feature is off or the address is out of requests; otherwise the answer says nothing of
/// whether a mail goes out.
pub(crate) async fn request_reset(
    state: &AppState,
    client: IpAddr,
    email: &str,
) -> Result<(), ServiceError> {
    reset_link(state)?;
    state
        .reset_throttle
        .reserve(client)
        .await
        .map_err(ServiceError::Throttled)?;
    let state = state.clone();
    let email = normalize_email(email);
    tokio::spawn(async move {
        if let Err(err) = send_reset_link(&state, &email).await {
            tracing::warn!(cause = %err, "password reset: the mail could not be queued");
        }
    });
    Ok(())
}

/// The mailer and PASSWORD_RESET_URL, or why password reset is off.
fn reset_link(state: &AppState) -> Result<(&Mailer, &str), ServiceError> {
    let Some(mailer) = &state.outbox.mailer else {
        return Err(ServiceError::NotConfigured(
            "Password reset is not available: no mail server is configured (SMTP_URL).",
        ));
    };
    let Some(link) = &state.settings.password_reset_url else {
        return Err(ServiceError::NotConfigured(
            "Password reset is not available: no reset page is configured (PASSWORD_RESET_URL).",
        ));
    };
    Ok((mailer, link))
}

async fn send_reset_link(state: &AppState, email: &str) -> Result<(), ServiceError> {
    reset_link(state)?;
    // As Django's PasswordResetForm: active accounts only.
    let user = match state.store.find_user(UserField::Email, email).await? {
        Some(user) if user.is_active && !email.is_empty() => user,
        _ => {
            tracing::info!("password reset asked for an address without an active account");
            return Ok(());
        }
    };
    if state.reset_throttle.reserve_account(user.id).await.is_err() {
        tracing::info!(
            user_id = user.id,
            "password reset: no mail, the account had enough"
        );
        return Ok(());
    }
    mail_reset_link(&Context::of(state), &user).await
}

/// Mails `user` a password reset link at their address, as a request for one does once the
/// address is found (an administrator's, for a user who asked them): without the requests'
/// limits, and refused with [`ServiceError::NotConfigured`] when mail or PASSWORD_RESET_URL is
/// not set.
pub(crate) async fn mail_reset_link(ctx: &Context<'_>, user: &User) -> Result<(), ServiceError> {
    let link = Link {
        purpose: PURPOSE,
        page: ctx.settings.password_reset_url.as_deref(),
        timeout: ctx.settings.password_reset_timeout,
        missing: "Password reset is not available: set SMTP_URL and PASSWORD_RESET_URL.",
    };
    send_link(ctx, user, &link, &user.email, json!({})).await
}

/// Sets the password of the user `uid` names to `new_password` with the token of a reset
/// link, for `client`. A uid that names nobody, and a token that is not live for that user,
/// are refused in djoser's words; so is a password the policy refuses (the token then stays
/// usable).
pub(crate) async fn confirm_reset(
    state: &AppState,
    client: Client<'_>,
    uid: &str,
    token: &str,
    new_password: String,
) -> Result<(), ServiceError> {
    reset_link(state)?;
    let LiveLink {
        user,
        token: stored,
        token_hash,
    } = live_link(&state.store, PURPOSE, uid, token).await?;
    // Issued under another password: the password changed since, by any path.
    if stored.password_fingerprint != revoke_fingerprint(&user.password) {
        return Err(bad_token());
    }
    let ctx = Context::of(state);
    let problems = ctx
        .policy
        .check(&new_password, &accounts::password_attributes(&user));
    if !problems.is_empty() {
        return Err(ServiceError::InvalidFields(vec![(
            "new_password".to_owned(),
            problems,
        )]));
    }
    // Spent here, before the change: of two requests with one link, one changes the password.
    let now = unix_now();
    if !state
        .store
        .use_account_token(PURPOSE, user.id, &token_hash, now)
        .await?
    {
        return Err(bad_token());
    }
    accounts::change_password(&ctx, &user, new_password, ChangedBy::ResetLink).await?;
    sessions::log_out_everywhere(&ctx, &user).await?;
    let keys = super::login::lockout_keys(&user);
    state.store.clear_login_failures(&keys, now).await?;
    let addr = client.address.to_string();
    state
        .store
        .record_login(
            user.id,
            LoginOutcome::PasswordReset,
            &addr,
            client.user_agent,
            now,
        )
        .await?;
    tracing::info!(user_id = user.id, "password reset");
    if let Some(mailer) = &state.outbox.mailer {
        let context = json!({ "user": user_context(&user) });
        match mailer.compose("password_changed", &user.email, &context) {
            Ok(mail) => {
                state
                    .outbox
                    .send_mail(&state.store, "password_changed", &mail)
                    .await?;
            }
            Err(err) => tracing::warn!(cause = %err, "password reset: no notice composed"),
        }
    }
    Ok(())
}
