//! Passkeys (WebAuthn): registered by a signed-in user, used as the second factor of a login,
//! and, with PASSKEY_LOGIN, to sign in alone (a discoverable credential: the authenticator
//! names the user).
//!
//! Each ceremony takes two requests: the first answers the options for the browser's
//! `navigator.credentials.create()` or `.get()` and stores the library's state under a token the
//! client carries back; the second takes that state (once) and checks the browser's answer.
//! The state waits in the database, so that any instance finishes what another began.

use serde_json::Value;
use tollgate_core::settings::SettingsError;
use tollgate_core::{unix_now, Settings};
use tollgate_store::{LoginOutcome, MfaFactor, Store, User, UserField};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, DiscoverableKey, Passkey, PasskeyAuthentication,
    PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn,
    WebauthnBuilder,
};

use super::{codes, has_second_factor, login, Client, LoginKind, ServiceError, SignedIn};
use crate::state::AppState;
use crate::webhooks::{user_data, Event};

/// The kind of a passkey factor.
pub(super) const PASSKEY: &str = "passkey";
/// `amr` of a passkey: a hardware-bound key.
pub(crate) const AMR_HARDWARE_KEY: &str = "hwk";

const REGISTRATION: &str = "passkey_registration";
const SECOND_FACTOR: &str = "passkey_second_factor";
const SIGN_IN: &str = "passkey_sign_in";
/// How long a registration or a passwordless sign-in may take between its two requests.
const CEREMONY_SECONDS: i64 = 300;
/// The high half of every user handle: "tollgate" in ASCII. The low half is the user's id.
const HANDLE_PREFIX: u64 = u64::from_be_bytes(*b"tollgate");

/// The relying party of PASSKEY_RP_ID and PASSKEY_ORIGINS; `None` when passkeys are off.
pub(crate) fn relying_party(settings: &Settings) -> Result<Option<Webauthn>, SettingsError> {
    let invalid = |key: &'static str, message: String| SettingsError::Invalid { key, message };
    let rp_id = settings.passkey_rp_id.trim();
    if rp_id.is_empty() {
        if settings.passkey_login {
            return Err(invalid(
                "PASSKEY_LOGIN",
                "needs PASSKEY_RP_ID, the domain passkeys are registered under".to_owned(),
            ));
        }
        return Ok(None);
    }
    let origins = if settings.passkey_origins.is_empty() {
        vec![format!("https://{rp_id}")]
    } else {
        settings.passkey_origins.clone()
    };
    let origins = origins
        .iter()
        .map(|origin| {
            Url::parse(origin).map_err(|err| {
                invalid(
                    "PASSKEY_ORIGINS",
                    format!("{origin:?} is not an origin ({err}): e.g. https://app.example.com"),
                )
            })
        })
        .collect::<Result<Vec<Url>, SettingsError>>()?;
    let mut builder = WebauthnBuilder::new(rp_id, &origins[0])
        .map_err(|err| {
            invalid(
                "PASSKEY_RP_ID",
                format!("{rp_id:?} does not fit the origin {} ({err})", origins[0]),
            )
        })?
        .rp_name(&settings.mfa_issuer);
    for origin in &origins[1..] {
        builder = builder.append_allowed_origin(origin);
    }
    builder
        .build()
        .map(Some)
        .map_err(|err| invalid("PASSKEY_RP_ID", format!("no relying party: {err}")))
}

fn relying_party_of(state: &AppState) -> Result<&Webauthn, ServiceError> {
    state.passkeys.as_deref().ok_or(ServiceError::NotConfigured(
        "Passkeys are off: set PASSKEY_RP_ID.",
    ))
}

/// The user handle the authenticator keeps for `user_id`: no name, no email.
fn user_handle(user_id: i64) -> Uuid {
    Uuid::from_u64_pair(HANDLE_PREFIX, u64::try_from(user_id).unwrap_or(0))
}

fn user_of_handle(handle: Uuid) -> Option<i64> {
    let (prefix, id) = handle.as_u64_pair();
    (prefix == HANDLE_PREFIX)
        .then(|| i64::try_from(id).ok())
        .flatten()
}

/// The confirmed passkeys of `user_id`, each with its stored row.
async fn passkeys_of(
    store: &Store,
    user_id: i64,
) -> Result<Vec<(MfaFactor, Passkey)>, ServiceError> {
    let factors = store.mfa_factors(user_id).await?;
    Ok(factors
        .into_iter()
        .filter(|factor| factor.kind == PASSKEY && factor.confirmed_at.is_some())
        .filter_map(|factor| {
            let passkey = serde_json::from_str(&factor.secret).ok()?;
            Some((factor, passkey))
        })
        .collect())
}

/// The first request of a ceremony: the token the client sends back, and the options for the
/// browser.
#[derive(Debug)]
pub(crate) struct Ceremony {
    pub(crate) token: String,
    pub(crate) options: Value,
}

fn state_text<T: serde::Serialize>(value: &T) -> Result<String, ServiceError> {
    serde_json::to_string(value).map_err(|err| ServiceError::Secret(err.to_string()))
}

fn options_json<T: serde::Serialize>(value: &T) -> Result<Value, ServiceError> {
    serde_json::to_value(value).map_err(|err| ServiceError::Secret(err.to_string()))
}

/// Starts registering a passkey for `user`: options for `navigator.credentials.create()`, the
/// user's passkeys excluded. With PASSKEY_LOGIN, the passkey must be discoverable.
pub(crate) async fn begin_registration(
    state: &AppState,
    user: &User,
) -> Result<Ceremony, ServiceError> {
    let relying_party = relying_party_of(state)?;
    let existing = passkeys_of(&state.store, user.id).await?;
    let exclude = existing
        .iter()
        .map(|(_, key)| key.cred_id().clone())
        .collect();
    let display_name = [user.first_name.as_str(), user.last_name.as_str()].join(" ");
    let display_name = match display_name.trim() {
        "" => user.username.as_str(),
        name => name,
    };
    let (options, registration) = relying_party
        .start_passkey_registration(
            user_handle(user.id),
            &user.username,
            display_name,
            Some(exclude),
        )
        .map_err(|err| ServiceError::Secret(err.to_string()))?;
    let mut options = options_json(&options)?;
    if state.settings.passkey_login {
        // A passkey that signs in alone must be found by the authenticator without a user name.
        let selection = &mut options["publicKey"]["authenticatorSelection"];
        selection["residentKey"] = "required".into();
        selection["requireResidentKey"] = true.into();
    }
    let (token, hash) = codes::new_ceremony_token();
    let now = unix_now();
    state
        .store
        .add_webauthn_ceremony(
            &hash,
            Some(user.id),
            REGISTRATION,
            &state_text(&registration)?,
            now,
            now + CEREMONY_SECONDS,
        )
        .await?;
    Ok(Ceremony { token, options })
}

/// A passkey registered: its id, and the recovery codes when it is the user's first factor.
#[derive(Debug)]
pub(crate) struct Registered {
    pub(crate) id: i64,
    pub(crate) recovery_codes: Option<Vec<String>>,
}

/// Finishes registering: checks the browser's answer against the ceremony `token` began, and
/// stores the passkey under `name`.
pub(crate) async fn finish_registration(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    token: &str,
    credential: Value,
    name: &str,
) -> Result<Registered, ServiceError> {
    let relying_party = relying_party_of(state)?;
    let now = unix_now();
    let refused = |message: &str| super::super::links::invalid("credential", message);
    let (owner, registration) = state
        .store
        .take_webauthn_ceremony(&codes::ceremony_token_hash(token), REGISTRATION, now)
        .await?
        .filter(|(owner, _)| *owner == Some(user.id))
        .ok_or_else(|| {
            super::super::links::invalid("registration_token", "Invalid or expired: begin again.")
        })?;
    debug_assert_eq!(owner, Some(user.id));
    let registration: PasskeyRegistration =
        serde_json::from_str(&registration).map_err(|err| ServiceError::Secret(err.to_string()))?;
    let credential: RegisterPublicKeyCredential =
        serde_json::from_value(credential).map_err(|_| {
            refused("Not a WebAuthn registration answer (a PublicKeyCredential as JSON).")
        })?;
    let passkey = relying_party
        .finish_passkey_registration(&credential, &registration)
        .map_err(|err| {
            tracing::info!(user_id = user.id, error = %err, "passkey registration refused");
            refused("The passkey was not accepted.")
        })?;
    let first = !has_second_factor(&state.store, user.id).await?;
    let name = match name.trim() {
        "" => "Passkey",
        name => name,
    };
    let id = state
        .store
        .add_passkey(user.id, name, &state_text(&passkey)?, now)
        .await?;
    let recovery_codes = if first || state.store.recovery_codes_left(user.id).await? == 0 {
        Some(super::renew_recovery_codes_unchecked(&state.store, user.id).await?)
    } else {
        None
    };
    super::record(state, user, client, LoginOutcome::SecondFactorAdded).await?;
    let data = serde_json::json!({ "user": user_data(user), "method": PASSKEY });
    state
        .outbox
        .emit(&state.store, Event::MfaEnabled, data)
        .await;
    tracing::info!(user_id = user.id, factor = id, "passkey registered");
    Ok(Registered { id, recovery_codes })
}

/// Options for `navigator.credentials.get()` with the passkeys of the user whose login waits
/// for its second step (`mfa_token`).
pub(crate) async fn begin_second_factor(
    state: &AppState,
    mfa_token: &str,
) -> Result<Value, ServiceError> {
    let relying_party = relying_party_of(state)?;
    let (challenge, user) = super::live_challenge(state, mfa_token, super::LOGIN).await?;
    let keys: Vec<Passkey> = passkeys_of(&state.store, user.id)
        .await?
        .into_iter()
        .map(|(_, key)| key)
        .collect();
    if keys.is_empty() {
        return Err(super::super::links::invalid(
            "mfa_token",
            "This account has no passkey.",
        ));
    }
    let (options, authentication) = relying_party
        .start_passkey_authentication(&keys)
        .map_err(|err| ServiceError::Secret(err.to_string()))?;
    state
        .store
        .add_webauthn_ceremony(
            &codes::mfa_token_hash(mfa_token),
            Some(user.id),
            SECOND_FACTOR,
            &state_text(&authentication)?,
            unix_now(),
            challenge.expires_at,
        )
        .await?;
    options_json(&options)
}

/// Whether `credential` answers the passkey ceremony of the login `mfa_token_hash` names, for
/// `user`; the ceremony is used up either way.
pub(super) async fn verify_second_factor(
    state: &AppState,
    user: &User,
    mfa_token_hash: &str,
    credential: &Value,
) -> Result<bool, ServiceError> {
    let relying_party = relying_party_of(state)?;
    let Some((owner, authentication)) = state
        .store
        .take_webauthn_ceremony(mfa_token_hash, SECOND_FACTOR, unix_now())
        .await?
    else {
        return Ok(false);
    };
    let Ok(credential) = serde_json::from_value::<PublicKeyCredential>(credential.clone()) else {
        return Ok(false);
    };
    let authentication: PasskeyAuthentication = serde_json::from_str(&authentication)
        .map_err(|err| ServiceError::Secret(err.to_string()))?;
    if owner != Some(user.id) {
        return Ok(false);
    }
    match relying_party.finish_passkey_authentication(&credential, &authentication) {
        Ok(result) => {
            update_counter(state, user.id, &result).await?;
            Ok(true)
        }
        Err(err) => {
            tracing::info!(user_id = user.id, error = %err, "passkey assertion refused");
            Ok(false)
        }
    }
}

/// Keeps the sign counter the authenticator reported, so that a cloned key shows.
async fn update_counter(
    state: &AppState,
    user_id: i64,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<(), ServiceError> {
    for (factor, mut key) in passkeys_of(&state.store, user_id).await? {
        if key.cred_id() == result.cred_id() {
            key.update_credential(result);
            state
                .store
                .update_mfa_secret(factor.id, &state_text(&key)?, unix_now())
                .await?;
        }
    }
    Ok(())
}

/// Starts a passwordless sign-in (PASSKEY_LOGIN): options for `navigator.credentials.get()`
/// with no credentials named, for the authenticator to offer the passkeys it holds.
pub(crate) async fn begin_sign_in(state: &AppState) -> Result<Ceremony, ServiceError> {
    let relying_party = relying_party_of(state)?;
    if !state.settings.passkey_login {
        return Err(ServiceError::NotConfigured(
            "Signing in with a passkey alone is off: set PASSKEY_LOGIN=true.",
        ));
    }
    let (mut options, authentication) = relying_party
        .start_discoverable_authentication()
        .map_err(|err| ServiceError::Secret(err.to_string()))?;
    // A button's sign-in, not the autofill of a user name field: the page chooses.
    options.mediation = None;
    let (token, hash) = codes::new_ceremony_token();
    let now = unix_now();
    state
        .store
        .add_webauthn_ceremony(
            &hash,
            None,
            SIGN_IN,
            &state_text(&authentication)?,
            now,
            now + CEREMONY_SECONDS,
        )
        .await?;
    Ok(Ceremony {
        token,
        options: options_json(&options)?,
    })
}

/// Finishes a passwordless sign-in: the authenticator names the user and the passkey, whose
/// signature must check. The user signs in with `hwk`.
pub(crate) async fn finish_sign_in(
    state: &AppState,
    client: Client<'_>,
    token: &str,
    credential: Value,
) -> Result<SignedIn, ServiceError> {
    let relying_party = relying_party_of(state)?;
    let (_, authentication) = state
        .store
        .take_webauthn_ceremony(&codes::ceremony_token_hash(token), SIGN_IN, unix_now())
        .await?
        .ok_or(ServiceError::PasskeyRefused)?;
    let authentication: DiscoverableAuthentication = serde_json::from_str(&authentication)
        .map_err(|err| ServiceError::Secret(err.to_string()))?;
    let credential: PublicKeyCredential =
        serde_json::from_value(credential).map_err(|_| ServiceError::PasskeyRefused)?;
    let (handle, credential_id) = relying_party
        .identify_discoverable_authentication(&credential)
        .map_err(|_| ServiceError::PasskeyRefused)?;
    let user_id = user_of_handle(handle).ok_or(ServiceError::PasskeyRefused)?;
    let mut user = state
        .store
        .find_user(UserField::Id, &user_id.to_string())
        .await?
        .filter(|user| user.is_active)
        .ok_or(ServiceError::PasskeyRefused)?;
    let key = passkeys_of(&state.store, user.id)
        .await?
        .into_iter()
        .find(|(_, key)| key.cred_id().as_slice() == credential_id)
        .map(|(_, key)| DiscoverableKey::from(&key))
        .ok_or(ServiceError::PasskeyRefused)?;
    let result =
        match relying_party.finish_discoverable_authentication(&credential, authentication, &[key])
        {
            Ok(result) => result,
            Err(err) => {
                tracing::info!(user_id = user.id, error = %err, "passkey sign-in refused");
                super::record(state, &user, client, LoginOutcome::WrongCode).await?;
                return Err(ServiceError::PasskeyRefused);
            }
        };
    update_counter(state, user.id, &result).await?;
    let identifier = user.username.clone();
    let amr = vec![AMR_HARDWARE_KEY];
    login::logged_in(state, &mut user, client, &identifier, &amr).await?;
    Ok(SignedIn {
        user,
        kind: LoginKind::Pair,
        amr,
    })
}

/// Removes passkey `id` of `user`, who proves it is them (see [`super::disable_totp`]); the
/// other sessions end.
pub(crate) async fn remove(
    state: &AppState,
    client: Client<'_>,
    user: &User,
    id: i64,
    consent: super::Consent,
    current_session: Option<&str>,
) -> Result<(), ServiceError> {
    let owned = passkeys_of(&state.store, user.id)
        .await?
        .iter()
        .any(|(factor, _)| factor.id == id);
    if !owned {
        return Err(ServiceError::FactorNotFound);
    }
    super::check_consent(state, client, user, consent).await?;
    if !state.store.remove_mfa_factor(user.id, id).await? {
        return Err(ServiceError::FactorNotFound);
    }
    super::after_removal(state, client, user, PASSKEY, current_session).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_handles_name_the_user_and_nothing_else() {
        assert_eq!(user_of_handle(user_handle(42)), Some(42));
        assert_eq!(user_of_handle(Uuid::from_u64_pair(7, 42)), None);
    }

    #[test]
    fn passkey_settings_are_checked_naming_the_setting() {
        let mut settings = Settings::default();
        assert!(relying_party(&settings).expect("off").is_none());
        settings.passkey_login = true;
        let err = relying_party(&settings)
            .expect_err("login needs an id")
            .to_string();
        assert!(err.contains("PASSKEY_LOGIN"), "{err}");
        settings.passkey_rp_id = "example.com".into();
        assert!(relying_party(&settings).expect("default origin").is_some());
        settings.passkey_origins = vec!["not a url".into()];
        let err = relying_party(&settings)
            .expect_err("bad origin")
            .to_string();
        assert!(err.contains("PASSKEY_ORIGINS"), "{err}");
        settings.passkey_origins = vec!["https://elsewhere.org".into()];
        let err = relying_party(&settings)
            .expect_err("origin outside the id")
            .to_string();
        assert!(err.contains("PASSKEY_RP_ID"), "{err}");
    }
}
