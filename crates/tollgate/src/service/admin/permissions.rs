//! Who may administer what: the one place where the admin API's permissions are decided.
//!
//! - Only staff members and superusers are administrators ([`authorize`]); with
//!   ADMIN_REQUIRES_MFA, only with a token that shows a second factor.
//! - Staff members manage ordinary accounts. Acting on a staff or superuser account, making one
//!   (granting `is_staff` or `is_superuser`), and the signing keys are for superusers
//!   ([`Actor::may_manage`], [`Actor::may_grant`], [`Actor::require_superuser`]).
//! - Nobody locks themself out: an administrator cannot delete or deactivate their own account
//!   or take away their own flags ([`Actor::may_lock_out`]).
//! - A command may do everything: it runs with the database's own credentials.

use std::net::IpAddr;
use std::sync::Arc;

use tollgate_core::{Claims, Settings};
use tollgate_store::User;

use super::super::audit::Actor;
use super::super::ServiceError;

/// The authentication method a password login reports in `amr` (RFC 8176).
const PASSWORD_METHOD: &str = "pwd";

/// The administrator behind an authenticated request: `user` (as stored) with the token's
/// `claims`, from `client`. [`ServiceError::PermissionDenied`] unless they are staff or a
/// superuser; [`ServiceError::MfaRequired`] when ADMIN_REQUIRES_MFA is on and the token's
/// `amr` claim names no method other than a password.
pub(crate) fn authorize(
    settings: &Settings,
    user: &Arc<User>,
    claims: &Claims,
    client: IpAddr,
) -> Result<Actor, ServiceError> {
    if !user.is_active || !(user.is_staff || user.is_superuser) {
        return Err(ServiceError::PermissionDenied);
    }
    if settings.admin_requires_mfa && !second_factor(claims) {
        return Err(ServiceError::MfaRequired);
    }
    Ok(Actor::Administrator {
        user: Arc::clone(user),
        client,
    })
}

/// Whether the token's `amr` claim (a list of method names) names a method besides a password.
fn second_factor(claims: &Claims) -> bool {
    claims
        .get("amr")
        .and_then(|amr| amr.as_array())
        .is_some_and(|methods| {
            methods
                .iter()
                .filter_map(|method| method.as_str())
                .any(|method| !method.is_empty() && method != PASSWORD_METHOD)
        })
}

impl Actor {
    fn is_superuser(&self) -> bool {
        match self {
            Actor::Administrator { user, .. } => user.is_superuser,
            Actor::Command { .. } => true,
        }
    }

    /// Refuses anyone but a superuser (or a command).
    pub(crate) fn require_superuser(&self) -> Result<(), ServiceError> {
        if self.is_superuser() {
            Ok(())
        } else {
            Err(ServiceError::PermissionDenied)
        }
    }

    /// Refuses to act on a staff or superuser account unless the actor is a superuser.
    pub(crate) fn may_manage(&self, target: &User) -> Result<(), ServiceError> {
        if target.is_staff || target.is_superuser {
            self.require_superuser()
        } else {
            Ok(())
        }
    }

    /// Refuses to set the staff or superuser flag (`Some` of either) unless the actor is a
    /// superuser.
    pub(crate) fn may_grant(
        &self,
        is_staff: Option<bool>,
        is_superuser: Option<bool>,
    ) -> Result<(), ServiceError> {
        if is_staff.is_some() || is_superuser.is_some() {
            self.require_superuser()
        } else {
            Ok(())
        }
    }

    /// Whether `target` is the administrator's own account, on which nothing that would lock
    /// them out (deleting, deactivating, taking their flags away) may be done.
    pub(crate) fn may_lock_out(&self, target: &User) -> bool {
        self.account().is_none_or(|own| own.id != target.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(id: i64, is_staff: bool, is_superuser: bool) -> Arc<User> {
        Arc::new(User {
            id,
            username: format!("user{id}"),
            email: String::new(),
            phone: None,
            first_name: String::new(),
            last_name: String::new(),
            password: String::new(),
            is_active: true,
            is_staff,
            is_superuser,
            date_joined: 0,
            last_login: None,
            profile: "{}".into(),
            identified_since: 0,
            email_verified_at: None,
            pending_email: None,
        })
    }

    fn claims(value: serde_json::Value) -> Claims {
        match value {
            serde_json::Value::Object(map) => Claims(map),
            other => panic!("not an object: {other}"),
        }
    }

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn only_staff_and_superusers_are_administrators() {
        let settings = Settings::default();
        let none = claims(json!({}));
        assert!(matches!(
            authorize(&settings, &user(1, false, false), &none, HERE),
            Err(ServiceError::PermissionDenied)
        ));
        assert!(authorize(&settings, &user(1, true, false), &none, HERE).is_ok());
        assert!(authorize(&settings, &user(1, false, true), &none, HERE).is_ok());
    }

    #[test]
    fn a_second_factor_is_a_method_other_than_a_password() {
        let settings = Settings {
            admin_requires_mfa: true,
            ..Settings::default()
        };
        let staff = user(1, true, false);
        for refused in [
            json!({}),
            json!({"amr": ["pwd"]}),
            json!({"amr": "otp"}),
            json!({"amr": [""]}),
            json!({"amr": [1, "pwd"]}),
        ] {
            assert!(
                matches!(
                    authorize(&settings, &staff, &claims(refused.clone()), HERE),
                    Err(ServiceError::MfaRequired)
                ),
                "{refused}"
            );
        }
        for accepted in [json!({"amr": ["pwd", "otp"]}), json!({"amr": ["hwk"]})] {
            assert!(authorize(&settings, &staff, &claims(accepted), HERE).is_ok());
        }
    }

    #[test]
    fn staff_manage_ordinary_accounts_and_superusers_all() {
        let staff = Actor::Administrator {
            user: user(1, true, false),
            client: HERE,
        };
        let superuser = Actor::Administrator {
            user: user(2, true, true),
            client: HERE,
        };
        let command = Actor::Command {
            os_user: "ops".into(),
        };
        let ordinary = user(3, false, false);
        let privileged = [user(4, true, false), user(5, false, true)];
        assert!(staff.may_manage(&ordinary).is_ok());
        for target in &privileged {
            assert!(staff.may_manage(target).is_err());
            assert!(superuser.may_manage(target).is_ok());
            assert!(command.may_manage(target).is_ok());
        }
        assert!(staff.may_grant(None, None).is_ok());
        assert!(staff.may_grant(Some(false), None).is_err());
        assert!(staff.may_grant(None, Some(true)).is_err());
        assert!(superuser.may_grant(Some(true), Some(true)).is_ok());
        assert!(staff.require_superuser().is_err());
        assert!(command.require_superuser().is_ok());
        assert!(!staff.may_lock_out(&user(1, true, false)));
        assert!(staff.may_lock_out(&ordinary));
        assert!(command.may_lock_out(&ordinary));
    }
}
