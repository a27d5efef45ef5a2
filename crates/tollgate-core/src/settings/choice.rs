//! Settings that take one of a few words: parsed once into enums, so that nothing compares
//! their text at request time. Each keeps the spelling of its setting in TOML and the
//! environment, and a bad value is refused with the allowed words.

use super::value::{RawValue, SettingValue};

macro_rules! choice {
    (
        $(#[doc = $doc:literal])+
        $name:ident, expected: $expected:literal, list: $list:literal, refused: $refused:literal,
        { $( $(#[doc = $vdoc:literal])+ $variant:ident = $word:literal, )+ }
    ) => {
        $(#[doc = $doc])+
        // Exhaustive on purpose: a new value must be handled wherever the setting is matched.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[doc = $vdoc])+ $variant, )+
        }

        impl $name {
            /// The word for this value, as the setting spells it.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $word, )+
                }
            }

            /// The value a word names, if any.
            pub fn from_word(word: &str) -> Option<$name> {
                match word {
                    $( $word => Some($name::$variant), )+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl SettingValue for $name {
            const EXPECTED: &'static str = $expected;
            fn parse(raw: &RawValue) -> Result<Self, String> {
                let text = String::parse(raw)?;
                $name::from_word(text.trim()).ok_or_else(|| $refused.to_owned())
            }
            fn render(&self) -> String {
                format!("{:?}", self.as_str())
            }
        }

        impl SettingValue for Vec<$name> {
            const EXPECTED: &'static str = $list;
            fn parse(raw: &RawValue) -> Result<Self, String> {
                Vec::<String>::parse(raw)?
                    .iter()
                    .map(|word| $name::from_word(word).ok_or_else(|| $refused.to_owned()))
                    .collect()
            }
            fn render(&self) -> String {
                let items: Vec<String> = self.iter().map(|v| format!("{:?}", v.as_str())).collect();
                format!("[{}]", items.join(", "))
            }
        }
    };
}

choice! {
    /// How a protected endpoint authenticates a request (one of AUTHENTICATION_CLASSES).
    AuthenticationClass,
    expected: "one of jwt, jwt_stateless, basic",
    list: "a list of jwt, jwt_stateless, basic (TOML array, or comma-separated)",
    refused: "must name one or more of jwt, jwt_stateless and basic",
    {
        /// `jwt`: a bearer token, its user read from the database.
        Jwt = "jwt",
        /// `jwt_stateless`: a bearer token trusted alone, its user made of its claims.
        JwtStateless = "jwt_stateless",
        /// `basic`: HTTP Basic with a username and password.
        Basic = "basic",
    }
}

choice! {
    /// The format of log lines (LOG_FORMAT).
    LogFormat,
    expected: "text or json",
    list: "a list of text, json (TOML array, or comma-separated)",
    refused: "must be text or json",
    {
        /// `text`: lines for people.
        Text = "text",
        /// `json`: one JSON object per line, for log collectors.
        Json = "json",
    }
}

choice! {
    /// The shape of a successful login (LOGIN_RESPONSE).
    LoginResponse,
    expected: "pair or token",
    list: "a list of pair, token (TOML array, or comma-separated)",
    refused: "must be pair or token",
    {
        /// `pair`: `{"refresh", "access"}`, as simplejwt answers.
        Pair = "pair",
        /// `token`: `{"token": <access token>}`, as djangorestframework-jwt answered; no
        /// refresh token is issued.
        Token = "token",
    }
}

choice! {
    /// The user field tokens name their user by (USER_ID_FIELD).
    UserIdField,
    expected: "one of id, username, email",
    list: "a list of id, username, email (TOML array, or comma-separated)",
    refused: "must be one of id, username, email",
    {
        /// `id`: the numeric id, which never changes hands.
        Id = "id",
        /// `username`.
        Username = "username",
        /// `email`.
        Email = "email",
    }
}

choice! {
    /// The user field a login names its user by (USERNAME_FIELD), and the body field it is
    /// sent in.
    UsernameField,
    expected: "username or email",
    list: "a list of username, email (TOML array, or comma-separated)",
    refused: "must be one of username, email",
    {
        /// `username`.
        Username = "username",
        /// `email`.
        Email = "email",
    }
}

choice! {
    /// A user field a login identifier is looked up in (one of LOGIN_FIELDS).
    LoginField,
    expected: "one of username, email, phone",
    list: "a list of username, email, phone (TOML array, or comma-separated)",
    refused: "fields must be username, email or phone",
    {
        /// `username`.
        Username = "username",
        /// `email`.
        Email = "email",
        /// `phone`.
        Phone = "phone",
    }
}

choice! {
    /// Whether a registration must confirm its email address (EMAIL_VERIFICATION, allauth's
    /// names).
    EmailVerification,
    expected: "none, optional or mandatory",
    list: "a list of none, optional, mandatory (TOML array, or comma-separated)",
    refused: "must be none, optional or mandatory",
    {
        /// `none`: no activation mail; the address is taken as given.
        None = "none",
        /// `optional`: registration mails an activation link; logins work before it is followed.
        Optional = "optional",
        /// `mandatory`: a correct password answers `email_not_verified` until the link is
        /// followed.
        Mandatory = "mandatory",
    }
}

choice! {
    /// Who must sign in with a second factor (MFA_REQUIRED).
    MfaRequired,
    expected: "off, staff or all",
    list: "a list of off, staff, all (TOML array, or comma-separated)",
    refused: "must be off, staff or all",
    {
        /// `off`: only users who enrolled a factor are asked for it.
        Off = "off",
        /// `staff`: staff and superusers must enrol one.
        Staff = "staff",
        /// `all`: everyone must enrol one.
        All = "all",
    }
}

choice! {
    /// What a login or refresh does when the claims hook fails (CLAIMS_HOOK_FAILURE).
    ClaimsHookFailure,
    expected: "deny or allow",
    list: "a list of deny, allow (TOML array, or comma-separated)",
    refused: "must be deny or allow",
    {
        /// `deny`: the login or refresh fails (503) and nothing is issued.
        Deny = "deny",
        /// `allow`: tokens are issued without the hook's claims, and a warning is logged.
        Allow = "allow",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(text: &str) -> RawValue {
        RawValue::Env(text.to_owned())
    }

    #[test]
    fn words_parse_into_their_values_and_back() {
        assert_eq!(
            Vec::<AuthenticationClass>::parse(&env("jwt, jwt_stateless,basic")),
            Ok(vec![
                AuthenticationClass::Jwt,
                AuthenticationClass::JwtStateless,
                AuthenticationClass::Basic
            ])
        );
        let array = toml::Value::Array(vec![toml::Value::String("basic".into())]);
        assert_eq!(
            Vec::<AuthenticationClass>::parse(&RawValue::Toml(array)),
            Ok(vec![AuthenticationClass::Basic])
        );
        assert_eq!(
            vec![AuthenticationClass::Jwt, AuthenticationClass::Basic].render(),
            r#"["jwt", "basic"]"#
        );
        assert_eq!(LogFormat::parse(&env("json")), Ok(LogFormat::Json));
        assert_eq!(LogFormat::Text.render(), "\"text\"");
    }

    #[test]
    fn other_words_are_refused_with_the_allowed_ones() {
        assert_eq!(
            Vec::<AuthenticationClass>::parse(&env("jwt,session")),
            Err("must name one or more of jwt, jwt_stateless and basic".to_owned())
        );
        // The spelling is the setting's: no other case.
        assert!(Vec::<AuthenticationClass>::parse(&env("JWT")).is_err());
        assert_eq!(
            LogFormat::parse(&env("yaml")),
            Err("must be text or json".to_owned())
        );
        assert!(LogFormat::parse(&RawValue::Toml(toml::Value::Integer(1))).is_err());
    }
}
