//! The links the account flows mail (password reset, activation, email change): a single-use
//! token of a purpose, stored as a hash, in a link to a frontend page with `{uid}` and
//! `{token}`, composed from the purpose's template and put in the outbox.

use serde_json::{json, Value};
use tollgate_core::account_token::{decode_uid, encode_uid, hash_account_token, new_account_token};
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::unix_now;
use tollgate_store::{AccountToken, NewAccountToken, Store, User, UserField};

use super::{Context, ServiceError};

/// A kind of link an account flow mails.
pub(crate) struct Link<'a> {
    /// What its tokens are for, and its template.
    pub(crate) purpose: &'static str,
    /// The frontend page it opens, with `{uid}` and `{token}`.
    pub(crate) page: Option<&'a str>,
    pub(crate) timeout: std::time::Duration,
    /// Why it cannot be sent when mail or the page is not configured.
    pub(crate) missing: &'static str,
}

/// Issues a token of `link.purpose` to `user` (voiding earlier ones) and mails its link to
/// `to`, with `extra` beside `user`, `link` and `valid_for` for the template.
pub(crate) async fn send_link(
    ctx: &Context<'_>,
    user: &User,
    link: &Link<'_>,
    to: &str,
    extra: Value,
) -> Result<(), ServiceError> {
    let (Some(mailer), Some(page)) = (&ctx.outbox.mailer, link.page) else {
        return Err(ServiceError::NotConfigured(link.missing));
    };
    let (token, token_hash) = new_account_token();
    let now = unix_now();
    let lifetime = i64::try_from(link.timeout.as_secs()).unwrap_or(i64::MAX);
    let fingerprint = revoke_fingerprint(&user.password);
    ctx.store
        .issue_account_token(&NewAccountToken {
            purpose: link.purpose,
            user_id: user.id,
            token_hash: &token_hash,
            password_fingerprint: &fingerprint,
            created_at: now,
            expires_at: now.saturating_add(lifetime),
        })
        .await?;
    let url = page
        .replace("{uid}", &encode_uid(user.id))
        .replace("{token}", &token);
    let mut context = json!({
        "user": user_context(user),
        "link": url,
        "valid_for": humantime::format_duration(link.timeout).to_string(),
    });
    if let (Some(context), Value::Object(extra)) = (context.as_object_mut(), extra) {
        context.extend(extra);
    }
    let mail = mailer
        .compose(link.purpose, to, &context)
        .map_err(ServiceError::Mail)?;
    ctx.outbox.send_mail(ctx.store, link.purpose, &mail).await?;
    tracing::info!(
        user_id = user.id,
        purpose = link.purpose,
        "link mail queued"
    );
    Ok(())
}

/// A presented link whose token is live: its user, the stored token and the token's hash.
pub(crate) struct LiveLink {
    pub(crate) user: User,
    pub(crate) token: AccountToken,
    pub(crate) token_hash: String,
}

/// The user `uid` names and the live token of `purpose` issued to them with this text;
/// refused in djoser's words: a uid that names nobody on `uid`, any other token on `token`.
pub(crate) async fn live_link(
    store: &Store,
    purpose: &str,
    uid: &str,
    token: &str,
) -> Result<LiveLink, ServiceError> {
    let bad_uid = || invalid("uid", "Invalid user id or user doesn't exist.");
    let user_id = decode_uid(uid).ok_or_else(bad_uid)?;
    let user = store
        .find_user(UserField::Id, &user_id.to_string())
        .await?
        .ok_or_else(bad_uid)?;
    let token_hash = hash_account_token(token);
    let token = store
        .find_account_token(purpose, user.id, &token_hash, unix_now())
        .await?
        .ok_or_else(bad_token)?;
    Ok(LiveLink {
        user,
        token,
        token_hash,
    })
}

/// The refusal of a token that is not live for the user.
pub(crate) fn bad_token() -> ServiceError {
    invalid("token", "Invalid token for given user.")
}

/// A refusal of one field, in djoser's words.
pub(crate) fn invalid(name: &str, message: &str) -> ServiceError {
    ServiceError::InvalidFields(vec![(name.to_owned(), vec![message.to_owned()])])
}

/// What templates may say of a user.
pub(crate) fn user_context(user: &User) -> Value {
    json!({
        "id": user.id,
        "username": user.username,
        "email": user.email,
        "first_name": user.first_name,
        "last_name": user.last_name,
    })
}
