//! The origin check of requests that set or read the refresh cookie (see [`super::cookie`]):
//! the request must name its origin in `Origin` (every current browser sends it on POST), or
//! else in `Referer`, and that origin must be Tollgate's own (its scheme, host and port those
//! of the `Host` header) or one of CSRF_TRUSTED_ORIGINS. Origins are compared as the URL
//! standard defines them (`url::Origin`): scheme and host lower-cased, a default port the same
//! as none, credentials, path and query ignored.

use axum::http::header::{HOST, ORIGIN, REFERER};
use axum::http::{HeaderMap, HeaderValue};
use tollgate_core::Settings;
use url::{Origin, Url};

use crate::error::ApiError;

/// Refuses a request that does not come from Tollgate's own origin or a trusted one.
pub(super) fn check(settings: &Settings, headers: &HeaderMap) -> Result<(), ApiError> {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let origin = match (text(ORIGIN), text(REFERER)) {
        (Some(origin), _) => origin_of(origin),
        (None, Some(referer)) => Some(
            origin_of(referer)
                .ok_or_else(|| ApiError::Csrf("Referer is not an absolute URL.".to_owned()))?,
        ),
        (None, None) => {
            return Err(ApiError::Csrf(
                "the refresh cookie needs an Origin or Referer header.".to_owned(),
            ))
        }
    };
    // `Origin: null` (a sandboxed frame, a redirect across origins) is no origin at all.
    let Some(origin) = origin else {
        let sent = text(ORIGIN).unwrap_or_default().trim();
        return Err(ApiError::Csrf(format!("origin {sent} is not trusted.")));
    };
    let trusted = settings
        .csrf_trusted_origins
        .iter()
        .any(|allowed| origin_of(allowed).as_ref() == Some(&origin));
    let own = text(HOST).is_some_and(|host| {
        let Origin::Tuple(scheme, ..) = &origin else {
            return false;
        };
        origin_of(&format!("{scheme}://{}", host.trim())).as_ref() == Some(&origin)
    });
    if trusted || own {
        Ok(())
    } else {
        Err(ApiError::Csrf(format!(
            "origin {} is not trusted.",
            origin.ascii_serialization()
        )))
    }
}

/// The origin of an absolute URL (`scheme://host[:port]`), if it has one.
fn origin_of(text: &str) -> Option<Origin> {
    let origin = Url::parse(text.trim()).ok()?.origin();
    origin.is_tuple().then_some(origin)
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

    #[test]
    fn origins_are_checked() {
        let settings = Settings {
            refresh_cookie: true,
            csrf_trusted_origins: vec!["https://app.example.com".to_owned()],
            ..Settings::default()
        };
        let verdict = |pairs: &[(&'static str, &str)]| check(&settings, &headers(pairs));
        assert!(verdict(&[("origin", "https://app.example.com")]).is_ok());
        assert!(verdict(&[("origin", "HTTPS://APP.example.com")]).is_ok());
        assert!(verdict(&[
            ("origin", "http://auth.local:8000"),
            ("host", "auth.local:8000")
        ])
        .is_ok());
        assert!(verdict(&[("referer", "https://app.example.com/page?x=1")]).is_ok());
        // A default port is the same origin as none; credentials are no part of an origin.
        assert!(verdict(&[("origin", "https://app.example.com:443")]).is_ok());
        assert!(verdict(&[("referer", "https://ann:pw@app.example.com/")]).is_ok());
        assert!(verdict(&[("origin", "http://auth.local"), ("host", "auth.local:80")]).is_ok());
        for refused in [
            &[("origin", "https://evil.example")][..],
            &[("origin", "null")],
            &[("origin", "https://app.example.com.evil.example")],
            &[
                ("origin", "http://auth.local:9000"),
                ("host", "auth.local:8000"),
            ],
            &[("referer", "https://evil.example/https://app.example.com")],
            &[("referer", "not a url")],
            &[("origin", "http://app.example.com")],
            &[("origin", "https://app.example.com:8443")],
            &[],
        ] {
            match verdict(refused) {
                Err(ApiError::Csrf(_)) => {}
                other => panic!("{refused:?} gave {other:?}"),
            }
        }
    }
}
