//! The web console's sessions and pages: signing in (the login's password, throttle, lockout
//! and second factor, then the admin API's permission), checking the session on each request,
//! and what a user's page shows.
//!
//! A console session is an ordinary session: a refresh token issued as a login issues it,
//! listed with the user's sessions and revoked like any other. The console keeps the token in
//! a cookie its pages cannot read and checks it, and the administrator behind it, on every
//! request, so that a revoked session, a deactivated account or a withdrawn staff flag ends
//! console access at the next click.

use std::net::IpAddr;
use std::sync::Arc;

use tollgate_core::{Claims, Issued};
use tollgate_store::{LoginEvent, Session, User};

use super::page::{Page, PageRequest};
use super::{activity, authorize, target, Actor};
use crate::service::login::{self, Client};
use crate::service::mfa::{self, LoginKind, Proof, AMR_PASSWORD};
use crate::service::tokens::{self, Origin};
use crate::service::{refresh, Context, ServiceError};
use crate::state::{AppState, AMR_CLAIM};

/// Signs an administrator in with a password: [`login::log_in`] (throttle, lockout, and
/// [`ServiceError::SecondFactorDue`] for a user with a second factor), then the admin API's
/// permission ([`authorize`]). Returns the refresh token of a new session.
pub(crate) async fn sign_in(
    state: &AppState,
    client: Client<'_>,
    identifier: &str,
    password: String,
) -> Result<Issued, ServiceError> {
    let user = login::log_in(state, client, identifier, password, LoginKind::Pair).await?;
    open_session(state, client, &user, &[AMR_PASSWORD]).await
}

/// The second step of a console sign-in (see [`mfa::complete_login`]), then the admin API's
/// permission. Returns the refresh token of a new session.
pub(crate) async fn complete_sign_in(
    state: &AppState,
    client: Client<'_>,
    mfa_token: &str,
    proof: Proof,
) -> Result<Issued, ServiceError> {
    let signed_in = mfa::complete_login(state, client, mfa_token, proof).await?;
    open_session(state, client, &signed_in.user, &signed_in.amr).await
}

/// A session for `user`, signed in with `amr`, if they may administer: refused before anything
/// is issued otherwise.
async fn open_session(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    amr: &[&str],
) -> Result<Issued, ServiceError> {
    // The tokens will carry `amr` as it is here, which ADMIN_REQUIRES_MFA reads.
    let mut claims = Claims::default();
    claims.insert(AMR_CLAIM, amr);
    authorize(
        &state.settings,
        &Arc::new(user.clone()),
        &claims,
        client.address,
    )?;
    let client_addr = client.address.to_string();
    let origin = Origin {
        client_addr: &client_addr,
        user_agent: client.user_agent.unwrap_or_default(),
        amr,
    };
    let pair = tokens::issue_pair(state, user, origin).await?;
    tracing::info!(user_id = user.id, "console session started");
    Ok(pair.refresh)
}

/// The administrator behind a console session's refresh token `raw`, from `client`: the token
/// and its session still live ([`refresh::check_live`]), its user still allowed
/// ([`authorize`], which reads the stored account and the token's `amr`).
pub(crate) async fn administrator(
    state: &AppState,
    raw: &str,
    client: IpAddr,
) -> Result<Actor, ServiceError> {
    let (claims, user) = refresh::check_live(state, raw).await?;
    let user = user.ok_or(ServiceError::NoActiveAccountForToken)?;
    authorize(&state.settings, &user, &claims, client)
}

/// What a user's page shows: the account and, when the administrator may manage it, its
/// sessions, a page of its login history and its second factors.
#[derive(Debug)]
pub(crate) struct Overview {
    pub(crate) user: User,
    pub(crate) managed: Option<Managed>,
}

/// What only an administrator who may manage an account sees of it.
#[derive(Debug)]
pub(crate) struct Managed {
    /// Live sessions, most recently used first.
    pub(crate) sessions: Vec<Session>,
    /// Login attempts, newest first.
    pub(crate) events: Page<LoginEvent>,
    /// How many second factors the user has confirmed.
    pub(crate) factors: usize,
}

/// The page of account `user_id` for `actor`, with page `events` of its login history.
pub(crate) async fn overview(
    ctx: &Context<'_>,
    actor: &Actor,
    user_id: i64,
    events: PageRequest,
) -> Result<Overview, ServiceError> {
    let user = target(ctx, user_id).await?;
    if actor.may_manage(&user).is_err() {
        return Ok(Overview {
            user,
            managed: None,
        });
    }
    let managed = Managed {
        sessions: activity::sessions(ctx, actor, user.id).await?,
        events: activity::login_events(ctx, actor, user.id, events).await?,
        factors: mfa::status(ctx, &user).await?.factors.len(),
    };
    Ok(Overview {
        user,
        managed: Some(managed),
    })
}
