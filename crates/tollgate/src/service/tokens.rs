//! Issuing tokens to a user: after a login, to a user an administrator names on the command
//! line, or to one a trusted backend names with an API key. Either way the tokens carry the
//! same claims (the password fingerprint with CHECK_REVOKE_TOKEN, TOKEN_USER_CLAIMS, the claim
//! sources, the claims hook's), start a session, and are recorded as outstanding, so that they
//! refresh, log out and are revoked alike.

use tollgate_core::password::revoke_fingerprint;
use tollgate_core::{unix_now, Claims, Issued, SigningError, TokenType};
use tollgate_store::{NewSession, TokenRecord, User};

use super::claims_hook::{self, HookAnswer, HookEvent};
use super::ServiceError;
use crate::state::{AppState, AMR_CLAIM, SID_CLAIM};

/// What the session records of a login: the client, and how the user signed in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// The client's address ("" when there is none, as for a command).
    pub(crate) client_addr: &'a str,
    /// The client's `User-Agent`, or what names the command.
    pub(crate) user_agent: &'a str,
    /// How the user proved who they are (RFC 8176's `amr` values: `pwd`, `otp`, `hwk`...),
    /// carried by the tokens' `amr` claim; empty for tokens no sign-in preceded (a command's),
    /// which then carry no such claim.
    pub(crate) amr: &'a [&'a str],
}

/// A refresh token and an access token made from it, of one new session.
#[derive(Debug)]
pub(crate) struct Pair {
    pub(crate) refresh: Issued,
    pub(crate) access: Issued,
    /// What the claims hook added; its fields go into the login's answer.
    pub(crate) hook: HookAnswer,
}

/// One token (a sliding token, or LOGIN_RESPONSE = "token"'s access token).
#[derive(Debug)]
pub(crate) struct Single {
    pub(crate) token: Issued,
    /// What the claims hook added; its fields go into the login's answer.
    pub(crate) hook: HookAnswer,
}

/// A refresh token and its access token for `user`, in a new session (the refresh token's
/// `sid`, which the access token carries too) with the refresh token recorded as its first.
pub(crate) async fn issue_pair(
    state: &AppState,
    user: &User,
    origin: Origin<'_>,
) -> Result<Pair, ServiceError> {
    let now = unix_now();
    let sid = tollgate_core::new_jti();
    let mut claims = claims_for(state, TokenType::Refresh, user, now, origin.amr);
    claims.insert(SID_CLAIM, sid.as_str());
    // Asked before anything is recorded: a hook that refuses leaves no session behind.
    let hook = ask_hook(state, user, &mut claims).await?;
    let refresh = sign(state, claims)?;
    start_session(state, &sid, user, origin, now, &refresh, refresh.expires_at).await?;
    let access = sign(state, state.codec.access_claims_from(&refresh.claims, now))?;
    state.metrics.issued(TokenType::Refresh);
    state.metrics.issued(TokenType::Access);
    tracing::info!(user_id = user.id, jti = %refresh.jti, session_id = %sid, "token pair obtained");
    Ok(Pair {
        refresh,
        access,
        hook,
    })
}

/// A sliding token for `user`, in a new session that lasts as long as the token can be slid.
pub(crate) async fn issue_sliding(
    state: &AppState,
    user: &User,
    origin: Origin<'_>,
) -> Result<Single, ServiceError> {
    let now = unix_now();
    let sid = tollgate_core::new_jti();
    let mut claims = claims_for(state, TokenType::Sliding, user, now, origin.amr);
    claims.insert(SID_CLAIM, sid.as_str());
    let hook = ask_hook(state, user, &mut claims).await?;
    let sliding = sign(state, claims)?;
    let refreshable_until = sliding
        .claims
        .timestamp(&state.settings.sliding_token_refresh_exp_claim)
        .unwrap_or(sliding.expires_at);
    start_session(state, &sid, user, origin, now, &sliding, refreshable_until).await?;
    state.metrics.issued(TokenType::Sliding);
    tracing::info!(user_id = user.id, jti = %sliding.jti, "sliding token obtained");
    Ok(Single {
        token: sliding,
        hook,
    })
}

/// The claim of a single token (LOGIN_RESPONSE = "token") that holds the time of the login it
/// came from, as djangorestframework-jwt names it: refreshing it is allowed for
/// REFRESH_TOKEN_LIFETIME from then.
pub(crate) const ORIG_IAT_CLAIM: &str = "orig_iat";

/// An access token alone for `user` (LOGIN_RESPONSE = "token", djangorestframework-jwt's
/// answer): no refresh token and no session; the token itself is refreshed, for
/// REFRESH_TOKEN_LIFETIME from its `orig_iat`.
pub(crate) async fn issue_access(
    state: &AppState,
    user: &User,
    amr: &[&str],
) -> Result<Single, ServiceError> {
    let now = unix_now();
    let mut claims = claims_for(state, TokenType::Access, user, now, amr);
    claims.insert(ORIG_IAT_CLAIM, now);
    let hook = ask_hook(state, user, &mut claims).await?;
    let access = sign(state, claims)?;
    state.metrics.issued(TokenType::Access);
    tracing::info!(user_id = user.id, "access token obtained");
    Ok(Single {
        token: access,
        hook,
    })
}

/// Asks the claims hook what to add at a login to a token of `claims`, and adds its claims.
async fn ask_hook(
    state: &AppState,
    user: &User,
    claims: &mut Claims,
) -> Result<HookAnswer, ServiceError> {
    let hook = claims_hook::ask(state, HookEvent::Login, user, claims).await?;
    hook.add_claims_to(claims);
    Ok(hook)
}

/// The claims of a new token for `user`: its id, then (CHECK_REVOKE_TOKEN) the password
/// fingerprint, then TOKEN_USER_CLAIMS, then the claims that code adds, then how the user
/// signed in (`amr`, last so that nothing else can set it).
fn claims_for(state: &AppState, kind: TokenType, user: &User, now: i64, amr: &[&str]) -> Claims {
    let user_id = user.field(state.user_id_field);
    let mut claims = state.codec.claims_for_user(kind, &user_id, now);
    if state.settings.check_revoke_token {
        claims.insert(
            state.settings.revoke_token_claim.clone(),
            revoke_fingerprint(&user.password),
        );
    }
    for field in &state.settings.token_user_claims {
        claims.insert(field.clone(), super::accounts::user_value(user, field));
    }
    for source in &state.claim_sources {
        source.add_claims(user, &mut claims);
    }
    if !amr.is_empty() {
        claims.insert(AMR_CLAIM, amr);
    }
    claims
}

/// Signs claims with the active key.
pub(crate) fn sign(state: &AppState, claims: Claims) -> Result<Issued, SigningError> {
    state.codec.sign(claims)
}

/// Starts session `sid` of `user`, from `origin`, refreshable until `expires_at`, with its
/// first token recorded as outstanding (one transaction).
async fn start_session(
    state: &AppState,
    sid: &str,
    user: &User,
    origin: Origin<'_>,
    now: i64,
    first: &Issued,
    expires_at: i64,
) -> Result<(), ServiceError> {
    let session = NewSession {
        id: sid,
        user_id: user.id,
        created_at: now,
        client_addr: origin.client_addr,
        user_agent: origin.user_agent,
        expires_at,
        amr: origin.amr,
    };
    let record = issued_record(first, Some(user.id));
    Ok(state.store.start_session(&session, &record).await?)
}

/// The record of a token just issued, as the store keeps it outstanding.
pub(crate) fn issued_record(issued: &Issued, user_id: Option<i64>) -> TokenRecord<'_> {
    TokenRecord {
        jti: &issued.jti,
        user_id,
        created_at: Some(issued.issued_at),
        expires_at: issued.expires_at,
        session_id: issued.claims.str(SID_CLAIM),
    }
}
