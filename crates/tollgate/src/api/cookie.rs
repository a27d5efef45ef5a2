//! The refresh cookie (REFRESH_COOKIE): the refresh token travels to browsers in a
//! `Secure; HttpOnly; SameSite=Strict` cookie that page scripts cannot read, and comes back only
//! from allowed origins.
//!
//! Cross-site request forgery is answered twice. `SameSite=Strict` keeps browsers from sending
//! the cookie on requests another site starts. The origin check covers what SameSite does not:
//! other origins of the same site (a sibling subdomain, another port) and clients that ignore
//! SameSite. With the cookie transport on, every endpoint that sets or reads the cookie (login,
//! refresh, logout) takes a [`CookieRequest`], which refuses the request before anything else
//! is done unless it names its origin in `Origin` (every current browser sends it on POST), or
//! else in `Referer`, and that origin is Tollgate's own (its host and port equal the `Host`
//! header) or one of CSRF_TRUSTED_ORIGINS. The check holds whatever the body carries: a forged
//! login with the attacker's password, or a forged refresh with the attacker's own token, would
//! otherwise set the attacker's session in the victim's browser (login CSRF). An origin check is
//! chosen over a double-submit token because it needs no second cookie and no client code: a
//! page calls `fetch(url, {method: "POST", credentials: "include"})` and nothing else.
//!
//! A request with two or more cookies of the refresh cookie's name is refused where the cookie
//! would be read rather than one of them picked: another origin of the site can plant a cookie
//! of the same name with a longer path or a parent domain (cookie tossing), which the browser
//! may send first.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use tollgate_core::Settings;

use super::body::Payload;
use crate::error::ApiError;
use crate::state::AppState;

/// The body field that holds a refresh token.
const FIELD: &str = "refresh";

/// A request to an endpoint that sets or reads the refresh cookie, past the origin check when
/// the cookie transport is on, with the refresh cookie it carries.
pub(crate) struct CookieRequest {
    cookie: Cookie,
}

/// The cookies of one name in a request (the refresh cookie's, the console's).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Cookie {
    /// REFRESH_COOKIE is off: cookies are not read.
    Off,
    /// No refresh cookie, or an empty one.
    Absent,
    /// Exactly one.
    One(String),
    /// Two or more of the name: which one the client meant cannot be known.
    Ambiguous,
}

impl FromRequestParts<AppState> for CookieRequest {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<CookieRequest, ApiError> {
        CookieRequest::of(&state.settings, &parts.headers)
    }
}

impl CookieRequest {
    /// Checks the origin of a request (with the cookie transport on) and reads its cookie.
    fn of(settings: &Settings, headers: &HeaderMap) -> Result<CookieRequest, ApiError> {
        if !settings.refresh_cookie {
            return Ok(CookieRequest {
                cookie: Cookie::Off,
            });
        }
        super::origin::check(settings, headers)?;
        Ok(CookieRequest {
            cookie: read(headers, &settings.refresh_cookie_name),
        })
    }
}

/// The refresh token of a refresh or logout request and whether it came from the cookie.
pub(crate) struct Presented {
    pub(crate) token: String,
    pub(crate) from_cookie: bool,
}

/// The refresh token a request presents: the body's `refresh` field if it has one; otherwise,
/// with the cookie transport on, the one refresh cookie.
pub(crate) fn presented(request: &CookieRequest, payload: &Payload) -> Result<Presented, ApiError> {
    if let Some(token) = presented_cookie(request, payload)? {
        return Ok(Presented {
            token,
            from_cookie: true,
        });
    }
    let [token] = payload.char_fields([FIELD])?;
    Ok(Presented {
        token,
        from_cookie: false,
    })
}

/// The refresh token of the one refresh cookie, when the body has no `refresh` field and the
/// cookie transport is on; two refresh cookies are refused.
pub(crate) fn presented_cookie(
    request: &CookieRequest,
    payload: &Payload,
) -> Result<Option<String>, ApiError> {
    if payload.has(FIELD) {
        return Ok(None);
    }
    match &request.cookie {
        Cookie::One(token) => Ok(Some(token.clone())),
        Cookie::Ambiguous => Err(ApiError::Csrf(
            "the request carries more than one refresh cookie.".to_owned(),
        )),
        Cookie::Off | Cookie::Absent => Ok(None),
    }
}

/// The `Set-Cookie` value that hands a browser a refresh token for `max_age` seconds.
pub(crate) fn set(settings: &Settings, token: &str, max_age: i64) -> Result<HeaderValue, ApiError> {
    let value = format!(
        "{}={token}; Max-Age={}{}",
        settings.refresh_cookie_name,
        max_age.max(0),
        attributes(settings)
    );
    HeaderValue::from_str(&value).map_err(ApiError::internal)
}

/// The `Set-Cookie` value that makes a browser forget the refresh cookie.
pub(crate) fn clear(settings: &Settings) -> Result<HeaderValue, ApiError> {
    let value = format!(
        "{}=; Max-Age=0{}",
        settings.refresh_cookie_name,
        attributes(settings)
    );
    HeaderValue::from_str(&value).map_err(ApiError::internal)
}

/// The attributes shared by setting and clearing: a browser replaces or removes a cookie only
/// when name, path and domain all match.
fn attributes(settings: &Settings) -> String {
    let mut attributes = format!("; Path={}", path(settings));
    if let Some(domain) = &settings.refresh_cookie_domain {
        attributes.push_str("; Domain=");
        attributes.push_str(domain);
    }
    attributes.push_str("; HttpOnly; SameSite=Strict");
    if !settings.development {
        attributes.push_str("; Secure");
    }
    attributes
}

/// REFRESH_COOKIE_PATH, or the longest common folder of the refresh and logout paths.
pub(crate) fn path(settings: &Settings) -> String {
    if let Some(path) = &settings.refresh_cookie_path {
        return path.clone();
    }
    let refresh = settings.token_refresh_path.as_bytes();
    let logout = settings.token_blacklist_path.as_bytes();
    let common = refresh
        .iter()
        .zip(logout)
        .take_while(|(a, b)| a == b)
        .count();
    // Both paths start with '/', so the common prefix holds at least one.
    let folder_end = refresh[..common]
        .iter()
        .rposition(|&b| b == b'/')
        .map_or(1, |i| i + 1);
    settings.token_refresh_path[..folder_end].to_owned()
}

/// The cookies named `name`, over every `Cookie` header.
pub(super) fn read(headers: &HeaderMap, name: &str) -> Cookie {
    let mut values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().trim_matches('"'));
    match (values.next(), values.next()) {
        (Some(_), Some(_)) => Cookie::Ambiguous,
        (Some(value), None) if !value.is_empty() => Cookie::One(value.to_owned()),
        _ => Cookie::Absent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("valid header"));
        }
        map
    }

    fn cookie_settings() -> Settings {
        Settings {
            refresh_cookie: true,
            csrf_trusted_origins: vec!["https://app.example.com".to_owned()],
            ..Settings::default()
        }
    }

    #[test]
    fn default_path_is_the_folder_of_refresh_and_logout() {
        let mut settings = Settings::default();
        assert_eq!(path(&settings), "/api/token/");
        settings.token_refresh_path = "/auth/refresh".to_owned();
        settings.token_blacklist_path = "/auth/refresh-all".to_owned();
        assert_eq!(path(&settings), "/auth/");
        settings.token_blacklist_path = "/logout/".to_owned();
        assert_eq!(path(&settings), "/");
        settings.refresh_cookie_path = Some("/session/".to_owned());
        assert_eq!(path(&settings), "/session/");
    }

    #[test]
    fn cookie_attributes_are_strict_and_secure_outside_development() {
        let mut settings = cookie_settings();
        settings.refresh_cookie_domain = Some("example.com".to_owned());
        assert_eq!(
            set(&settings, "a.b.c", 60).expect("valid"),
            "tollgate_refresh=a.b.c; Max-Age=60; Path=/api/token/; Domain=example.com; \
             HttpOnly; SameSite=Strict; Secure"
        );
        settings.development = true;
        assert_eq!(
            clear(&settings).expect("valid"),
            "tollgate_refresh=; Max-Age=0; Path=/api/token/; Domain=example.com; HttpOnly; \
             SameSite=Strict"
        );
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let map = headers(&[
            ("cookie", "a=1; tollgate_refresh=tok; b=2"),
            ("cookie", "c=3"),
        ]);
        assert_eq!(read(&map, "tollgate_refresh"), Cookie::One("tok".into()));
        assert_eq!(read(&map, "c"), Cookie::One("3".into()));
        assert_eq!(
            read(
                &headers(&[("cookie", "tollgate_refresh=")]),
                "tollgate_refresh"
            ),
            Cookie::Absent
        );
        assert_eq!(read(&map, "tollgate"), Cookie::Absent);
    }

    #[test]
    fn two_cookies_of_the_name_are_ambiguous() {
        for pairs in [
            &[("cookie", "tollgate_refresh=a; tollgate_refresh=b")][..],
            &[
                ("cookie", "tollgate_refresh=a"),
                ("cookie", "tollgate_refresh=a"),
            ],
            &[("cookie", "tollgate_refresh=; x=1; tollgate_refresh=b")],
        ] {
            assert_eq!(
                read(&headers(pairs), "tollgate_refresh"),
                Cookie::Ambiguous,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn body_token_wins_over_the_cookie() {
        let settings = cookie_settings();
        let map = headers(&[
            ("cookie", "tollgate_refresh=from-cookie"),
            ("origin", "https://app.example.com"),
        ]);
        let request = CookieRequest::of(&settings, &map).expect("trusted origin");
        let body = Payload::parse(Some("application/json"), br#"{"refresh":"from-body"}"#)
            .expect("parses");
        let from_body = presented(&request, &body).expect("presented");
        assert_eq!(from_body.token, "from-body");
        assert!(!from_body.from_cookie);
        let empty = Payload::parse(None, b"").expect("parses");
        let from_cookie = presented(&request, &empty).expect("presented");
        assert_eq!(from_cookie.token, "from-cookie");
        assert!(from_cookie.from_cookie);
        // Without an origin the request is refused, whatever the body holds.
        let no_origin = headers(&[("cookie", "tollgate_refresh=from-cookie")]);
        assert!(matches!(
            CookieRequest::of(&settings, &no_origin),
            Err(ApiError::Csrf(_))
        ));
        // With the transport off, neither the origin nor the cookie is looked at.
        let off = CookieRequest::of(&Settings::default(), &no_origin).expect("not checked");
        assert!(matches!(presented(&off, &empty), Err(ApiError::Fields(_))));
    }
}
