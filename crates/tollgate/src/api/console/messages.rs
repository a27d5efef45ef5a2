//! The words of what happened: the message an action leaves for the next page (in a cookie,
//! across the redirect), and an error as the page shows it, in the API's words.

use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::api::cookie::{self, Cookie};
use crate::error::ApiError;

/// The cookie that carries a message to the page after a redirect.
pub(super) const FLASH_COOKIE: &str = "tollgate_console_flash";
/// The longest message kept: cookies are small.
const MAX_FLASH: usize = 1000;

/// A message for the next page: what an action did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct Flash {
    /// Whether the action failed.
    pub(super) problem: bool,
    pub(super) text: String,
}

impl Flash {
    pub(super) fn done(text: impl Into<String>) -> Flash {
        Flash {
            problem: false,
            text: text.into(),
        }
    }

    pub(super) fn problem(text: impl Into<String>) -> Flash {
        Flash {
            problem: true,
            text: text.into(),
        }
    }

    /// The message a request's flash cookie carries.
    pub(super) fn of(headers: &HeaderMap) -> Option<Flash> {
        let Cookie::One(value) = cookie::read(headers, FLASH_COOKIE) else {
            return None;
        };
        let (kind, text) = value.split_once(':')?;
        let text: String = url::form_urlencoded::parse(format!("t={text}").as_bytes())
            .next()
            .map(|(_, text)| text.into_owned())?;
        Some(Flash {
            problem: kind == "problem",
            text,
        })
    }

    /// The flash cookie's value: the kind, then the text, percent-encoded.
    pub(super) fn cookie_value(&self) -> String {
        let mut text = self.text.clone();
        if text.len() > MAX_FLASH {
            let mut end = MAX_FLASH;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let kind = if self.problem { "problem" } else { "done" };
        let encoded: String = url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
        format!("{kind}:{encoded}")
    }
}

/// What an error says, in the API's words, and its status: the `detail`, or each field's
/// messages after the field's name.
pub(super) fn in_words(err: &ApiError) -> (StatusCode, Vec<String>) {
    let (status, body) = err.status_and_body();
    if let Some(detail) = body.get("detail").and_then(Value::as_str) {
        return (status, vec![detail.to_owned()]);
    }
    let mut words = Vec::new();
    if let Value::Object(fields) = &body {
        for (field, messages) in fields {
            let messages = messages.as_array().into_iter().flatten();
            for message in messages.filter_map(Value::as_str) {
                words.push(match field.as_str() {
                    "non_field_errors" => message.to_owned(),
                    field => format!("{}: {message}", field_label(field)),
                });
            }
        }
    }
    if words.is_empty() {
        words.push(format!("The request failed ({status})."));
    }
    (status, words)
}

/// A field's name as a page shows it: `new_password` is "New password".
fn field_label(field: &str) -> String {
    let spaced = field.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn errors_are_put_in_words() {
        let fields = ApiError::Fields(vec![(
            "new_password".to_owned(),
            vec!["This password is too short.".to_owned()],
        )]);
        assert_eq!(
            in_words(&fields),
            (
                StatusCode::BAD_REQUEST,
                vec!["New password: This password is too short.".to_owned()]
            )
        );
        assert_eq!(
            in_words(&ApiError::NotFound),
            (StatusCode::NOT_FOUND, vec!["Not found.".to_owned()])
        );
        let (status, words) = in_words(&ApiError::Internal("secret cause".to_owned()));
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!words.concat().contains("secret"));
    }

    #[test]
    fn a_flash_survives_its_cookie() {
        let flash = Flash::problem("Email: Enter a valid email address; ünïcode & \"quotes\".");
        let mut headers = HeaderMap::new();
        let cookie = format!("a=1; {FLASH_COOKIE}={}", flash.cookie_value());
        headers.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_str(&cookie).expect("a valid header"),
        );
        assert_eq!(Flash::of(&headers), Some(flash));
    }
}
