//! Reading a request's credentials the way simplejwt's `JWTAuthentication` does.

use crate::codec::TokenCodec;
use crate::rules::ClaimRules;
use crate::token::{Claims, TokenError, TokenType};

/// What the authorization header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderCredentials<'a> {
    /// No header, or a scheme that is not one of AUTH_HEADER_TYPES: not authenticated.
    Absent,
    /// A known scheme but not exactly two space-delimited values.
    Malformed,
    /// The raw token after a known scheme.
    Token(&'a [u8]),
}

/// Splits an authorization header value on whitespace, as simplejwt does: the first word must be
/// one of `header_types` (case-sensitive) and there must be exactly one word after it.
pub fn parse_header<'a>(value: &'a [u8], header_types: &[String]) -> HeaderCredentials<'a> {
    let value = value.trim_ascii();
    if value.is_empty() {
        return HeaderCredentials::Absent;
    }
    let (scheme, rest) = value.split_at(
        value
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(value.len()),
    );
    if !header_types.iter().any(|t| t.as_bytes() == scheme) {
        return HeaderCredentials::Absent;
    }
    // `rest` ends in a word (the value was trimmed): exactly one when no whitespace follows its
    // leading run.
    let token = rest.trim_ascii_start();
    if token.is_empty() || has_ascii_whitespace(token) {
        return HeaderCredentials::Malformed;
    }
    HeaderCredentials::Token(token)
}

/// Whether `bytes` holds ASCII whitespace (`u8::is_ascii_whitespace`: space, tab, line feed,
/// form feed, carriage return). A token is a few hundred bytes, scanned on every request: the
/// test is written as comparisons without an early exit so that it compiles to vector
/// instructions, where a byte-at-a-time `any` loop was the largest part of reading the header.
fn has_ascii_whitespace(bytes: &[u8]) -> bool {
    bytes.iter().fold(false, |found, &b| {
        // Tab, line feed, vertical tab, form feed and carriage return are 9..=13; of these,
        // `is_ascii_whitespace` leaves out the vertical tab (which no HTTP header value holds).
        found | (b == b' ') | ((b.wrapping_sub(b'\t') < 5) & (b != 0x0b))
    })
}

/// The HTTP header name for AUTH_HEADER_NAME, which may be written in Django's META form
/// (`HTTP_X_ACCESS_TOKEN`) or as a header (`X-Access-Token`). `None` if it is not a valid name.
pub fn header_name(setting: &str) -> Option<String> {
    let name = match setting.strip_prefix("HTTP_") {
        Some(meta) => meta.replace('_', "-"),
        None => setting.to_owned(),
    }
    .to_ascii_lowercase();
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    valid.then_some(name)
}

/// One token class's reason for refusing a token, as listed in simplejwt's `messages`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassRefusal {
    /// The token type that was tried.
    pub token_type: TokenType,
    /// Why it refused the token.
    pub error: TokenError,
}

impl ClaimRules {
    /// Tries the token as each type of AUTH_TOKEN_CLASSES in order, as simplejwt's
    /// `get_validated_token` does; on failure every class's refusal is returned. `decode`
    /// checks the signature and the registered claims (see [`ClaimRules::check_registered`]).
    pub fn authenticate_token(
        &self,
        raw: &[u8],
        classes: &[TokenType],
        now: i64,
        decode: impl FnOnce(&str) -> Result<Claims, TokenError>,
    ) -> Result<(TokenType, Claims), Vec<ClassRefusal>> {
        let decoded = std::str::from_utf8(raw)
            .map_err(|_| TokenError::Invalid {
                reason: "token is not UTF-8",
            })
            .and_then(decode);
        let refusal = |token_type, error| ClassRefusal { token_type, error };
        let claims = match decoded {
            Ok(claims) => claims,
            // Every class refuses an undecodable token for the same reason.
            Err(error) => {
                return Err(classes
                    .iter()
                    .map(|&token_type| refusal(token_type, error.clone()))
                    .collect())
            }
        };
        let mut refusals = Vec::with_capacity(classes.len());
        for &token_type in classes {
            match self.check_type(&claims, Some(token_type), now) {
                Ok(()) => return Ok((token_type, claims)),
                Err(error) => refusals.push(refusal(token_type, error)),
            }
        }
        Err(refusals)
    }
}

impl TokenCodec {
    /// [`ClaimRules::authenticate_token`] with this codec's key.
    pub fn authenticate_token(
        &self,
        raw: &[u8],
        classes: &[TokenType],
        now: i64,
    ) -> Result<(TokenType, Claims), Vec<ClassRefusal>> {
        self.rules()
            .authenticate_token(raw, classes, now, |token| self.decode(token, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn types() -> Vec<String> {
        vec!["Bearer".to_owned(), "JWT".to_owned()]
    }

    #[test]
    fn headers_are_split_like_simplejwt() {
        assert_eq!(
            parse_header(b"Bearer abc", &types()),
            HeaderCredentials::Token(b"abc")
        );
        assert_eq!(
            parse_header(b"JWT  abc ", &types()),
            HeaderCredentials::Token(b"abc")
        );
        assert_eq!(
            parse_header(b"bearer abc", &types()),
            HeaderCredentials::Absent
        );
        assert_eq!(
            parse_header(b"Token abc", &types()),
            HeaderCredentials::Absent
        );
        assert_eq!(parse_header(b"", &types()), HeaderCredentials::Absent);
        assert_eq!(
            parse_header(b"Bearer", &types()),
            HeaderCredentials::Malformed
        );
        assert_eq!(
            parse_header(b"Bearer a b", &types()),
            HeaderCredentials::Malformed
        );
    }

    /// simplejwt's rule written the plain way: split on whitespace, drop empty words.
    fn split_like_simplejwt<'a>(value: &'a [u8], types: &[String]) -> HeaderCredentials<'a> {
        let words: Vec<&[u8]> = value
            .split(u8::is_ascii_whitespace)
            .filter(|word| !word.is_empty())
            .collect();
        match words.as_slice() {
            [] => HeaderCredentials::Absent,
            [scheme, ..] if !types.iter().any(|t| t.as_bytes() == *scheme) => {
                HeaderCredentials::Absent
            }
            [_, token] => HeaderCredentials::Token(token),
            _ => HeaderCredentials::Malformed,
        }
    }

    #[test]
    fn whitespace_is_found_as_rust_defines_it() {
        for byte in 0..=u8::MAX {
            for at in [0, 1, 40] {
                let mut bytes = vec![b'a'; 41];
                bytes[at] = byte;
                assert_eq!(
                    has_ascii_whitespace(&bytes),
                    byte.is_ascii_whitespace(),
                    "byte {byte:#04x} at {at}"
                );
            }
        }
        assert!(!has_ascii_whitespace(b""));
    }

    #[test]
    fn header_parsing_agrees_with_the_plain_split_on_every_short_header() {
        // Every header of up to six symbols from an alphabet of words, whitespace of each kind,
        // and a byte that is not whitespace in ASCII's sense (vertical tab).
        let alphabet: [&[u8]; 8] = [
            b"Bearer", b"JWT", b"t.k", b" ", b"\t", b"\r\n", b"\x0c", b"\x0b",
        ];
        let mut headers: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..6 {
            let longer: Vec<Vec<u8>> = headers
                .iter()
                .flat_map(|h| alphabet.iter().map(move |s| [h.as_slice(), s].concat()))
                .collect();
            headers.extend(longer);
            headers.dedup();
        }
        for header in &headers {
            assert_eq!(
                parse_header(header, &types()),
                split_like_simplejwt(header, &types()),
                "{:?}",
                String::from_utf8_lossy(header)
            );
        }
    }

    #[test]
    fn header_names_accept_django_meta_form() {
        assert_eq!(
            header_name("HTTP_AUTHORIZATION").as_deref(),
            Some("authorization")
        );
        assert_eq!(
            header_name("HTTP_X_ACCESS_TOKEN").as_deref(),
            Some("x-access-token")
        );
        assert_eq!(
            header_name("X-Access-Token").as_deref(),
            Some("x-access-token")
        );
        assert_eq!(header_name("bad header"), None);
        assert_eq!(header_name(""), None);
    }
}
