//! Second factors: TOTP codes and recovery codes, the second step of a login, and what
//! MFA_REQUIRED demands.
//!
//! A login whose password is right, for a user with a confirmed factor, issues nothing: it
//! answers an `mfa_token` (random, stored as a hash, single-use, short-lived, bound to the user,
//! the password they had and the kind of answer the login asked for), which
//! `POST /api/token/mfa/` exchanges with a code for what the login would have answered. The
//! token is no JWT: nothing that takes a bearer token accepts it, except the enrolment
//! endpoints when MFA_REQUIRED makes a user enrol first.
//!
//! Every code is checked behind the login throttle and lockout, and works once.

mod codes;
pub(crate) mod passkeys;
mod totp;

use serde_json::json;
use tollgate_core::password::revoke_fingerprint;
use tollgate_core::settings::MfaRequired;
use tollgate_core::unix_now;
use tollgate_store::{LoginOutcome, MfaChallenge, MfaFactor, NewMfaChallenge, Store, User};

pub(crate) use codes::MFA_TOKEN_PREFIX;
pub(crate) use totp::NewSecret;

use super::login::{self, Client};
use super::{sessions, Context, ServiceError};
use crate::state::AppState;
use crate::webhooks::{user_data, Event};

/// `amr` of a password.
pub(crate) const AMR_PASSWORD: &str = "pwd";
/// `amr` of a one-time code: TOTP or a recovery code.
pub(crate) const AMR_ONE_TIME_CODE: &str = "otp";

/// The kind of a TOTP factor.
const TOTP: &str = "totp";
/// A challenge's purpose: a second factor is due.
const LOGIN: &str = "login";
/// A challenge's purpose: MFA_REQUIRED demands a factor the user has yet to enrol.
const ENROLLMENT: &str = "enrollment";
/// Wrong codes one `mfa_token` takes before it is void (the login throttle and lockout count
/// them too).
const CODES_PER_CHALLENGE: i32 = 5;

/// What a login asked for, which its second step answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginKind {
    /// `POST /api/token/`: a pair (or, with LOGIN_RESPONSE = "token", one token).
    Pair,
    /// `POST /api/token/sliding/`: a sliding token.
    Sliding,
}

impl LoginKind {
    fn as_str(self) -> &'static str {
        match self {
            LoginKind::Pair => "pair",
            LoginKind::Sliding => "sliding",
        }
    }

    fn from_stored(word: &str) -> LoginKind {
        if word == "sliding" {
            LoginKind::Sliding
        } else {
            LoginKind::Pair
        }
    }
}

/// How a user proves the second factor.
#[derive(Debug)]
pub(crate) enum Proof {
    /// A code from their authenticator app.
    Code(String),
    /// One of their recovery codes.
    RecoveryCode(String),
    /// A passkey's answer (a `PublicKeyCredential` as JSON) to the options
    /// [`passkeys::begin_second_factor`] gave.
    Passkey(serde_json::Value),
}

/// A second step done: who signed in, what their login asked for, and how they signed in.
#[derive(Debug)]
pub(crate) struct SignedIn {
    pub(crate) user: User,
    pub(crate) kind: LoginKind,
    pub(crate) amr: Vec<&'static str>,
}

/// What a user has enrolled.
#[derive(Debug)]
pub(crate) struct Status {
    /// Confirmed factors, oldest first.
    pub(crate) factors: Vec<MfaFactor>,
    /// Unused recovery codes.
    pub(crate) recovery_codes_left: i64,
}

/// Whether `user_id` has a confirmed second factor.
pub(crate) async fn has_second_factor(store: &Store, user_id: i64) -> Result<bool, ServiceError> {
    Ok(confirmed(store, user_id).await?.next().is_some())
}

async fn confirmed(
    store: &Store,
    user_id: i64,
) -> Result<impl Iterator<Item = MfaFactor>, ServiceError> {
    let factors = store.mfa_factors(user_id).await?;
    Ok(factors
        .into_iter()
        .filter(|factor| factor.confirmed_at.is_some()))
}

/// The factors `user` has confirmed and the recovery codes left.
pub(crate) async fn status(ctx: &Context<'_>, user: &User) -> Result<Status, ServiceError> {
    Ok(Status {
        factors: confirmed(ctx.store, user.id).await?.collect(),
        recovery_codes_left: ctx.store.recovery_codes_left(user.id).await?,
    })
}

/// Whether MFA_REQUIRED demands a second factor of `user`.
fn required_of(state: &AppState, user: &User) -> bool {
    match state.settings.mfa_required {
        MfaRequired::Off => false,
        MfaRequired::Staff => user.is_staff || user.is_superuser,
        MfaRequired::All => true,
    }
}

/// After a right password: `Ok` when the login may go on with the password alone; else the
/// second step's error, with a new `mfa_token` ([`ServiceError::SecondFactorDue`], or
/// [`ServiceError::EnrollmentDue`] when MFA_REQUIRED demands a factor the user lacks).
pub(crate) async fn second_step(
    state: &AppState,
    user: &User,
    kind: LoginKind,
    client: Client<'_>,
) -> Result<(), ServiceError> {
    let factors: Vec<MfaFactor> = confirmed(&state.store, user.id).await?.collect();
    let purpose = if !factors.is_empty() {
        LOGIN
    } else if required_of(state, user) {
        ENROLLMENT
    } else {
        return Ok(());
    };
    let (mfa_token, token_hash) = codes::new_mfa_token();
    let now = unix_now();
    let lifetime = i64::try_from(state.settings.mfa_token_lifetime.as_secs()).unwrap_or(300);
    let addr = client.address.to_string();
    let fingerprint = revoke_fingerprint(&user.password);
    state
        .store
        .add_mfa_challenge(&NewMfaChallenge {
            token_hash: &token_hash,
            user_id: user.id,
            purpose,
            login_kind: kind.as_str(),
            password_fingerprint: &fingerprint,
            client_addr: &addr,
            user_agent: client.user_agent.unwrap_or_default(),
            created_at: now,
            expires_at: now.saturating_add(lifetime),
        })
        .await?;
    if purpose == ENROLLMENT {
        tracing::info!(
            user_id = user.id,
            "login waits for a second factor to be enrolled"
        );
        return Err(ServiceError::EnrollmentDue { mfa_token });
    }
    state
        .store
        .record_login(
            user.id,
            LoginOutcome::SecondFactorDue,
            &addr,
            client.user_agent,
            now,
        )
        .await?;
    let methods = methods_of(&state.store, user.id, &factors).await?;
    tracing::info!(user_id = user.id, "login waits for the second factor");
    Err(ServiceError::SecondFactorDue { mfa_token, methods })
}

/// How user `user_id`, with confirmed `factors`, may answer a second step: `totp`, `passkey`,
/// `recovery_code` (while some are left).
async fn methods_of(
    store: &Store,
    user_id: i64,
    factors: &[MfaFactor],
) -> Result<Vec<&'static str>, ServiceError> {
    let mut methods = Vec::new();
    if factors.iter().any(|factor| factor.kind == TOTP) {
        methods.push("totp");
    }
    if factors
        .iter()
        .any(|factor| factor.kind == passkeys::PASSKEY)
    {
        methods.push(passkeys::PASSKEY);
    }
    if store.recovery_codes_left(user_id).await? > 0 {
        methods.push("recovery_code");
    }
    Ok(methods)
}

/// How the login waiting for its second step under `mfa_token` may still be answered, for a
/// page that asks again after a wrong answer; [`ServiceError::MfaTokenInvalid`] once it no
/// longer waits.
pub(crate) async fn pending_methods(
    state: &AppState,
    mfa_token: &str,
) -> Result<Vec<&'static str>, ServiceError> {
    let (_, user) = live_challenge(state, mfa_token, LOGIN).await?;
    let factors: Vec<MfaFactor> = confirmed(&state.store, user.id).await?.collect();
    methods_of(&state.store, user.id, &factors).await
}

/// The live challenge an `mfa_token` names, of `purpose`, and its user, still active and with
/// the password the challenge was issued under.
async fn live_challenge(
    state: &AppState,
    mfa_token: &str,
    purpose: &str,
) -> Result<(MfaChallenge, User), ServiceError> {
    let token_hash = codes::mfa_token_hash(mfa_token);
    let challenge = state
        .store
        .find_mfa_challenge(&token_hash, unix_now())
        .await?
        .filter(|challenge| challenge.purpose == purpose)
        .ok_or(ServiceError::MfaTokenInvalid)?;
    let user = state
        .store
        .find_user(
            tollgate_store::UserField::Id,
            &challenge.user_id.to_string(),
        )
        .await?
        .filter(|user| {
            user.is_active && revoke_fingerprint(&user.password) == challenge.password_fingerprint
        })
        .ok_or(ServiceError::MfaTokenInvalid)?;
    Ok((challenge, user))
}

/// The second step of a login: the `mfa_token` and a code, or a recovery code. A wrong code
/// counts toward the throttle and lockout of the account and of the token (void after a few);
/// a right one uses the token up and signs the user in.
pub(crate) async fn complete_login(
    state: &AppState,
    client: Client<'_>,
    mfa_token: &str,
    proof: Proof,
) -> Result<SignedIn, ServiceError> {
    let (challenge, user) = live_challenge(state, mfa_token, LOGIN).await?;
    let token_hash = codes::mfa_token_hash(mfa_token);
    let (method, second_factor) = match &proof {
        Proof::Code(_) => ("totp", AMR_ONE_TIME_CODE),
        Proof::RecoveryCode(_) => ("recovery_code", AMR_ONE_TIME_CODE),
        Proof::Passkey(_) => (passkeys::PASSKEY, passkeys::AMR_HARDWARE_KEY),
    };
    let check = async {
        match &proof {
            Proof::Passkey(credential) => {
                passkeys::verify_second_factor(state, &user, &token_hash, credential).await
            }
            _ => verify_proof(state, &user, &proof).await,
        }
    };
    let matched =
        login::check_own_secret(state, client, &user, LoginOutcome::WrongCode, check).await?;
    if !matched {
        let failures = state
            .store
            .fail_mfa_challenge(&token_hash, CODES_PER_CHALLENGE)
            .await?;
        let data = json!({
            "user": user_data(&user),
            "identifier": user.username,
            "ip_address": client.address.to_string(),
            "user_agent": client.user_agent,
            "reason": "wrong_code",
            "method": method,
        });
        state
            .outbox
            .emit(&state.store, Event::UserLoginFailed, data)
            .await;
        tracing::info!(user_id = user.id, failures, "wrong second-factor code");
        return Err(ServiceError::WrongCode);
    }
    let amr = vec![AMR_PASSWORD, second_factor];
    sign_in(state, client, &token_hash, &challenge, user, amr).await
}

/// The end of a second step: the challenge used up (of two requests with one `mfa_token`, one
/// gets here) and the user signed in with `amr`.
async fn sign_in(
    state: &AppState,
    client: Client<'_>,
    token_hash: &str,
    challenge: &MfaChallenge,
    mut user: User,
    amr: Vec<&'static str>,
) -> Result<SignedIn, ServiceError> {
    if !state
        .store
        .use_mfa_challenge(token_hash, unix_now())
        .await?
    {
        return Err(ServiceError::MfaTokenInvalid);
    }
    let identifier = user.username.clone();
    login::logged_in(state, &mut user, client, &identifier, &amr).await?;
    Ok(SignedIn {
        user,
        kind: LoginKind::from_stored(&challenge.login_kind),
        amr,
    })
}

/// Whether `proof` is right for `user`, using it up if so: a TOTP code works once (its time
/// step is recorded), a recovery code too.
async fn verify_proof(state: &AppState, user: &User, proof: &Proof) -> Result<bool, ServiceError> {
    let now = unix_now();
    match proof {
        Proof::Code(code) => {
            for factor in confirmed(&state.store, user.id).await? {
                if factor.kind != TOTP {
                    continue;
                }
                let Some(step) = totp_step(state, &factor, code, now)? else {
                    continue;
                };
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                return Ok(state.store.use_totp_step(factor.id, step, now).await?);
            }
            Ok(false)
        }
        Proof::RecoveryCode(code) => {
            let hash = codes::recovery_code_hash(user.id, code);
            Ok(state.store.use_recovery_code(user.id, &hash, now).await?)
        }
        // Checked with its ceremony, by the caller.
        Proof::Passkey(_) => Ok(false),
    }
}

/// The time step `code` is of for a TOTP factor's secret, if it is a right code now.
fn totp_step(
    state: &AppState,
    factor: &MfaFactor,
    code: &str,
    now: i64,
) -> Result<Option<u64>, ServiceError> {
    let keys = state.encryption_keys.opening();
    let secret = totp::open(keys, factor.user_id, &factor.secret).ok_or_else(|| {
        ServiceError::Secret(format!(
            "the TOTP secret of user {} does not open with KEYS_ENCRYPTION_KEY",
            factor.user_id
        ))
    })?;
    Ok(totp::matching_step(
        &secret,
        code,
        u64::try_from(now).unwrap_or(0),
    ))
}

/// The user an enrolment `mfa_token` (MFA_REQUIRED) stands for.
pub(crate) async fn enrolling_user(
    state: &AppState,
    mfa_token: &str,
) -> Result<User, ServiceError> {
    Ok(live_challenge(state, mfa_token, ENROLLMENT).await?.1)
}

/// Starts TOTP enrolment: a new secret, pending until [`confirm_totp`]. Starting again
/// replaces a pending secret; a user with TOTP confirmed must disable it first.
pub(crate) async fn begin_totp(state: &AppState, user: &User) -> Result<NewSecret, ServiceError> {
    let factors = state.store.mfa_factors(user.id).await?;
    if factors
        .iter()
        .any(|factor| factor.kind == TOTP && factor.confirmed_at.is_some())
    {
        return Err(ServiceError::MfaAlreadyEnabled);
    }
    let account = if user.email.is_empty() {
        &user.username
    } else {
        &user.email
    };
    let secret = totp::new_secret(&state.settings.mfa_issuer, account);
    let key = state.encryption_keys.sealing();
    let stored = totp::seal(key, user.id, &secret.base32)
        .map_err(|err| ServiceError::Secret(err.to_owned()))?;
    state
        .store
        .add_mfa_factor(user.id, TOTP, "", &stored, unix_now())
        .await?;
    tracing::info!(user_id = user.id, "TOTP enrolment started");
    Ok(secret)
}

/// Confirms TOTP enrolment with a code from the app (checked behind the throttle, and
/// used up): TOTP is on, and a fresh set of recovery codes is returned, to be shown once.
pub(crate) async fn confirm_totp(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    code: &str,
) -> Result<Vec<String>, ServiceError> {
    let now = unix_now();
    let pending = state
        .store
        .mfa_factors(user.id)
        .await?
        .into_iter()
        .find(|factor| factor.kind == TOTP && factor.confirmed_at.is_none())
        .ok_or_else(|| super::links::invalid("code", "Start TOTP enrolment first."))?;
    // Cheap to compute, and only told once the attempt is admitted under the throttle.
    let step = totp_step(state, &pending, code, now)?;
    let check = async { Ok(step.is_some()) };
    if !login::check_own_secret(state, client, user, LoginOutcome::WrongCode, check).await? {
        return Err(super::links::invalid("code", "The code is not valid."));
    }
    let step = step.map(|step| i64::try_from(step).unwrap_or(i64::MAX));
    if !state
        .store
        .confirm_mfa_factor(pending.id, step, now)
        .await?
    {
        return Err(super::links::invalid("code", "Start TOTP enrolment first."));
    }
    let recovery_codes = renew_recovery_codes_unchecked(&state.store, user.id).await?;
    record(state, user, client, LoginOutcome::SecondFactorAdded).await?;
    let data = json!({ "user": user_data(user), "method": TOTP });
    state
        .outbox
        .emit(&state.store, Event::MfaEnabled, data)
        .await;
    tracing::info!(user_id = user.id, "TOTP enabled");
    Ok(recovery_codes)
}

/// Signs in the user of an enrolment `mfa_token` once they have confirmed a factor: the token
/// is used up, and the login answers as it would have.
pub(crate) async fn complete_enrollment_login(
    state: &AppState,
    client: Client<'_>,
    mfa_token: &str,
    second_factor: &'static str,
) -> Result<SignedIn, ServiceError> {
    let (challenge, user) = live_challenge(state, mfa_token, ENROLLMENT).await?;
    let token_hash = codes::mfa_token_hash(mfa_token);
    let amr = vec![AMR_PASSWORD, second_factor];
    sign_in(state, client, &token_hash, &challenge, user, amr).await
}

/// How a user proves they may remove a factor or renew their recovery codes.
#[derive(Debug)]
pub(crate) enum Consent {
    /// A current TOTP code.
    Code(String),
    /// Their password.
    Password(String),
}

/// Checks a consent behind the throttle and lockout.
async fn check_consent(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    consent: Consent,
) -> Result<(), ServiceError> {
    let (matched, field) = match consent {
        Consent::Code(code) => {
            let proof = Proof::Code(code);
            let check = verify_proof(state, user, &proof);
            let outcome = LoginOutcome::WrongCode;
            (
                login::check_own_secret(state, client, user, outcome, check).await?,
                "code",
            )
        }
        Consent::Password(password) => (
            login::check_own_password(state, client, user, password).await?,
            "password",
        ),
    };
    if matched {
        Ok(())
    } else {
        let message = if field == "code" {
            "The code is not valid."
        } else {
            "The password is not valid."
        };
        Err(super::links::invalid(field, message))
    }
}

/// Turns TOTP off for `user`, who proves it is them with a code or their password; every other
/// session (all but `current_session`) ends, since whoever held one may have been the reason.
pub(crate) async fn disable_totp(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    consent: Consent,
    current_session: Option<&str>,
) -> Result<(), ServiceError> {
    if !confirmed(&state.store, user.id)
        .await?
        .any(|f| f.kind == TOTP)
    {
        return Err(ServiceError::MfaNotEnabled);
    }
    check_consent(state, client, user, consent).await?;
    state.store.remove_mfa_factors(user.id, Some(TOTP)).await?;
    after_removal(state, client, user, TOTP, current_session).await
}

/// What follows the removal of a factor by its user: pending second steps void, every other
/// session ended, the event recorded and sent.
async fn after_removal(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    method: &str,
    current_session: Option<&str>,
) -> Result<(), ServiceError> {
    state.store.void_mfa_challenges(user.id).await?;
    let ctx = Context::of(state);
    sessions::revoke_other_sessions(&ctx, user, current_session).await?;
    record(state, user, client, LoginOutcome::SecondFactorRemoved).await?;
    let data = json!({ "user": user_data(user), "method": method, "by": "user" });
    state
        .outbox
        .emit(&state.store, Event::MfaDisabled, data)
        .await;
    tracing::info!(user_id = user.id, method, "second factor removed");
    Ok(())
}

/// A fresh set of recovery codes for `user` (the old set stops working), who proves it is them
/// with a code or their password.
pub(crate) async fn renew_recovery_codes(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    consent: Consent,
) -> Result<Vec<String>, ServiceError> {
    if !has_second_factor(&state.store, user.id).await? {
        return Err(ServiceError::MfaNotEnabled);
    }
    check_consent(state, client, user, consent).await?;
    let codes = renew_recovery_codes_unchecked(&state.store, user.id).await?;
    record(state, user, client, LoginOutcome::SecondFactorAdded).await?;
    tracing::info!(user_id = user.id, "recovery codes renewed");
    Ok(codes)
}

async fn renew_recovery_codes_unchecked(
    store: &Store,
    user_id: i64,
) -> Result<Vec<String>, ServiceError> {
    let (codes, hashes) = codes::new_recovery_codes(user_id);
    store
        .set_recovery_codes(user_id, &hashes, unix_now())
        .await?;
    Ok(codes)
}

/// Removes every second factor of `user`, with their recovery codes and pending second steps,
/// and ends every session: an administrator's answer to a lost phone (`tollgate mfa reset`,
/// the admin API). Returns how many factors went.
pub(crate) async fn reset(ctx: &Context<'_>, user: &User) -> Result<u64, ServiceError> {
    let removed = ctx.store.remove_mfa_factors(user.id, None).await?;
    ctx.store.void_mfa_challenges(user.id).await?;
    sessions::log_out_everywhere(ctx, user).await?;
    ctx.store
        .record_login(
            user.id,
            LoginOutcome::SecondFactorReset,
            "",
            None,
            unix_now(),
        )
        .await?;
    let data = json!({ "user": user_data(user), "method": "all", "by": "administrator" });
    ctx.emit(Event::MfaDisabled, data).await;
    tracing::info!(user_id = user.id, removed, "second factors reset");
    Ok(removed)
}

async fn record(
    state: &AppState,
    user: &User,
    client: Client<'_>,
    outcome: LoginOutcome,
) -> Result<(), ServiceError> {
    let addr = client.address.to_string();
    state
        .store
        .record_login(user.id, outcome, &addr, client.user_agent, unix_now())
        .await?;
    Ok(())
}
