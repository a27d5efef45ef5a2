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
use tollgate_core::identity::normalize_email;
use tollgate_core::settings::EmailVerification;
use tollgate_core::unix_now;
use tollgate_store::{User, UserField};

use super::links::{bad_token, live_link, send_link, user_context, Link, LiveLink};
use super::{Context, ServiceError};
use crate::state::AppState;

/// The purpose of activation tokens, and the outbox topic of their mails.
const PURPOSE: &str = "activation";

/// Mails `user` a link that confirms their address, voiding earlier ones.
pub(crate) async fn send_activation(ctx: &Context<'_>, user: &User) -> Result<(), ServiceError> {
    let link = Link {
        purpose: PURPOSE,
        page: ctx.settings.activation_url.as_deref(),
        timeout: ctx.settings.activation_timeout,
        missing: "Email verification is not available: set SMTP_URL and ACTIVATION_URL.",
    };
    send_link(ctx, user, &link, &user.email, json!({})).await
}

/// The purpose of email change tokens, and the template of their mails.
const EMAIL_CHANGE: &str = "email_change";

/// How email change links are made, or why they cannot be.
pub(crate) fn email_change_link<'a>(ctx: &Context<'a>) -> Result<Link<'a>, ServiceError> {
    let link = Link {
        purpose: EMAIL_CHANGE,
        page: ctx.settings.email_change_url.as_deref(),
        timeout: ctx.settings.activation_timeout,
        missing: "Changing the email address needs its confirmation page: set EMAIL_CHANGE_URL.",
    };
    if link.page.is_none() || ctx.outbox.mailer.is_none() {
        return Err(ServiceError::NotConfigured(link.missing));
    }
    Ok(link)
}

/// Starts changing `user`'s address to `address`: it waits as the pending address, a link to
/// confirm it goes to it, and a notice to the current address. The current address stays until
/// the link is followed.
pub(crate) async fn request_email_change(
    ctx: &Context<'_>,
    user: &User,
    address: &str,
) -> Result<(), ServiceError> {
    let link = email_change_link(ctx)?;
    ctx.store.set_pending_email(user.id, Some(address)).await?;
    ctx.users_changed();
    let extra = json!({ "new_email": address });
    send_link(ctx, user, &link, address, extra.clone()).await?;
    if let Some(mailer) = &ctx.outbox.mailer {
        if !user.email.is_empty() {
            let mut context = json!({ "user": user_context(user) });
            if let Some(map) = context.as_object_mut() {
                map.insert("new_email".to_owned(), extra["new_email"].clone());
            }
            let notice = mailer
                .compose("email_change_notice", &user.email, &context)
                .map_err(ServiceError::Mail)?;
            ctx.outbox
                .send_mail(ctx.store, "email_change_notice", &notice)
                .await?;
        }
    }
    tracing::info!(user_id = user.id, "email change asked");
    Ok(())
}

/// Makes the pending address of the user `uid` names their address, with the token of the
/// link sent to it. Refused as an activation is; an address taken meanwhile is refused as a
/// taken address.
pub(crate) async fn confirm_email_change(
    state: &AppState,
    uid: &str,
    token: &str,
) -> Result<(), ServiceError> {
    let LiveLink {
        user, token_hash, ..
    } = verifying_link(state, EMAIL_CHANGE, uid, token).await?;
    let Some(address) = user.pending_email.clone() else {
        return Err(ServiceError::StaleToken);
    };
    let ctx = Context::of(state);
    let now = unix_now();
    if !state
        .store
        .use_account_token(EMAIL_CHANGE, user.id, &token_hash, now)
        .await?
    {
        return Err(bad_token());
    }
    let changes = tollgate_store::UserChanges {
        email: Some(address),
        ..tollgate_store::UserChanges::default()
    };
    super::accounts::apply(&ctx, user.id, &changes).await?;
    state.store.finish_email_change(user.id, now).await?;
    ctx.users_changed();
    tracing::info!(user_id = user.id, "email address changed");
    Ok(())
}

/// The live link of `purpose` that `uid` and `token` name, while verification is on.
async fn verifying_link(
    state: &AppState,
    purpose: &str,
    uid: &str,
    token: &str,
) -> Result<LiveLink, ServiceError> {
    if state.settings.email_verification == EmailVerification::None {
        return Err(ServiceError::NotConfigured(
            "Email verification is off (EMAIL_VERIFICATION = none).",
        ));
    }
    live_link(&state.store, purpose, uid, token).await
}

/// Confirms the address of the user `uid` names with the token of an activation link. A uid
/// naming nobody and a token that is not live are refused in djoser's words; a live token of an
/// address already confirmed is stale.
pub(crate) async fn activate(state: &AppState, uid: &str, token: &str) -> Result<(), ServiceError> {
    let LiveLink { user, .. } = verifying_link(state, PURPOSE, uid, token).await?;
    let now = unix_now();
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
