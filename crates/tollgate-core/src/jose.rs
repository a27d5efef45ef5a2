//! Strict reading of a token's JOSE header and payload: what jsonwebtoken lets through but
//! RFC 7515 and RFC 8725 say to refuse.
//!
//! - A `crit` header names extensions the recipient must understand; Tollgate understands
//!   none, so any `crit` is refused (RFC 7515, section 4.1.11).
//! - A JSON object with a repeated member name is ambiguous: parsers disagree on which value
//!   wins, so a token that one service reads one way and another reads the other way is
//!   refused, in the header and in the payload (RFC 7515, section 5.2, and RFC 8725, 3.1).
//!
//! Every token Tollgate signs with a given key has the same header, so the key ring first
//! compares the header segment with the ones Tollgate writes: the hot path costs a string
//! comparison per key, and only other headers are parsed here.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON object whose member names are all distinct.
#[derive(Debug)]
pub(crate) struct UniqueObject(pub(crate) Map<String, Value>);

impl<'de> Deserialize<'de> for UniqueObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<UniqueObject, D::Error> {
        struct ObjectVisitor;

        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = UniqueObject;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueObject, A::Error> {
                // Room for the claims Tollgate writes, so that the map is not grown mid-parse.
                let mut map = Map::with_capacity(8);
                while let Some(name) = access.next_key::<String>()? {
                    let value: Value = access.next_value()?;
                    if map.insert(name, value).is_some() {
                        return Err(A::Error::custom("duplicate member name"));
                    }
                }
                Ok(UniqueObject(map))
            }
        }

        deserializer.deserialize_map(ObjectVisitor)
    }
}

/// Reads a header segment that is not one Tollgate writes: refuses `crit` and repeated
/// members, and returns the `kid`, if there is one. A `kid` that is not a string is refused.
pub(crate) fn header_kid(segment: &str) -> Result<Option<String>, &'static str> {
    let json = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| "bad base64 in header")?;
    let mut header: UniqueObject = serde_json::from_slice(&json)
        .map_err(|_| "header is not a JSON object without duplicates")?;
    if header.0.contains_key("crit") {
        return Err("critical header extension not understood");
    }
    match header.0.remove("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid)),
        Some(_) => Err("kid is not a string"),
    }
}

/// Checks the HMAC of a compact token (`header.payload.signature`) with `key` and returns its
/// payload, an object without repeated members. The caller has matched the header, so that the
/// algorithm is the key's. The signature is compared in constant time, before the payload is
/// read.
pub(crate) fn verify_hmac(
    key: &ring::hmac::Key,
    token: &str,
) -> Result<Map<String, Value>, &'static str> {
    let (signed, signature) = token.rsplit_once('.').ok_or("malformed token")?;
    match signed.split_once('.') {
        Some((_, payload)) if !payload.contains('.') => {
            let signature = URL_SAFE_NO_PAD
                .decode(signature)
                .map_err(|_| "bad base64")?;
            ring::hmac::verify(key, signed.as_bytes(), &signature).map_err(|_| "bad signature")?;
            let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| "bad base64")?;
            serde_json::from_slice::<UniqueObject>(&json)
                .map(|object| object.0)
                .map_err(|_| "bad JSON")
        }
        _ => Err("malformed token"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn the_kid_is_read_from_the_header() {
        let read = |json: &str| header_kid(&URL_SAFE_NO_PAD.encode(json));
        assert_eq!(read(r#"{"alg":"HS256"}"#), Ok(None));
        assert_eq!(read(r#"{"alg":"HS256","kid":"a"}"#), Ok(Some("a".into())));
        assert!(read(r#"{"alg":"HS256","kid":["a"]}"#).is_err());
        assert!(read(r#"{"alg":"HS256","kid":null}"#).is_err());
    }

    #[test]
    fn crit_and_duplicates_are_refused() {
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"none","alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
            r#"["alg"]"#,
        ] {
            assert!(header_kid(&segment(header)).is_err(), "{header}");
        }
        assert!(header_kid("%%%").is_err());
    }

    #[test]
    fn unique_objects_refuse_repeated_names() {
        assert!(serde_json::from_str::<UniqueObject>(r#"{"a":1,"b":{"a":2}}"#).is_ok());
        assert!(serde_json::from_str::<UniqueObject>(r#"{"a":1,"a":1}"#).is_err());
        assert!(serde_json::from_str::<UniqueObject>("[1]").is_err());
    }

    const SECRET: &[u8] = b"a-test-secret-that-is-long-enough-0123456789";

    fn hs256(payload: &str) -> String {
        let signed = format!(
            "{}.{}",
            segment(r#"{"typ":"JWT","alg":"HS256"}"#),
            segment(payload)
        );
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET);
        let tag = ring::hmac::sign(&key, signed.as_bytes());
        format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag))
    }

    fn verify(token: &str) -> Result<Map<String, Value>, &'static str> {
        verify_hmac(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET),
            token,
        )
    }

    /// What jsonwebtoken decides for the same token and key.
    fn jsonwebtoken_accepts(token: &str) -> bool {
        jsonwebtoken::decode::<UniqueObject>(
            token,
            &jsonwebtoken::DecodingKey::from_secret(SECRET),
            &crate::codec::signature_only(jsonwebtoken::Algorithm::HS256),
        )
        .is_ok()
    }

    #[test]
    fn an_hmac_token_yields_its_payload() {
        let claims = verify(&hs256(r#"{"user_id":"1","exp":2}"#)).expect("valid");
        assert_eq!(claims.get("user_id"), Some(&Value::from("1")));
        assert_eq!(claims.get("exp"), Some(&Value::from(2)));
    }

    #[test]
    fn a_forged_or_malformed_hmac_token_is_refused() {
        let token = hs256(r#"{"user_id":"1"}"#);
        let (signed, signature) = token.rsplit_once('.').expect("three parts");
        let other_payload = hs256(r#"{"user_id":"2"}"#);
        let (header, _) = token.split_once('.').expect("three parts");
        let swapped = format!(
            "{header}.{}.{signature}",
            other_payload.split('.').nth(1).expect("payload")
        );
        let other_key =
            ring::hmac::Key::new(ring::hmac::HMAC_SHA256, b"another-secret-0123456789abcdef!");
        let resigned = format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(ring::hmac::sign(&other_key, signed.as_bytes()))
        );
        assert_eq!(verify(&swapped), Err("bad signature"));
        assert_eq!(verify(&resigned), Err("bad signature"));
        assert_eq!(verify(&format!("{signed}.")), Err("bad signature"));
        assert_eq!(verify(&format!("{token}.")), Err("malformed token"));
        assert_eq!(
            verify(&format!("{header}.{signature}")),
            Err("malformed token")
        );
        assert_eq!(
            verify(signed.split('.').next().expect("header")),
            Err("malformed token")
        );
        assert_eq!(verify(&format!("{signed}.{signature}=")), Err("bad base64"));
        assert_eq!(
            verify(&hs256(r#"{"user_id":"1","user_id":"2"}"#)),
            Err("bad JSON")
        );
        assert_eq!(verify(&hs256("[1]")), Err("bad JSON"));
    }

    #[test]
    fn the_hmac_check_agrees_with_jsonwebtoken_on_every_one_character_change() {
        // Each character of a valid token replaced by each character a token may hold, and
        // a few it may not: the fast check accepts exactly what jsonwebtoken accepts (the
        // original, and the changes that decode to the same bytes, such as a signature's
        // last character differing only in bits that base64 drops, which both refuse).
        let token = hs256(r#"{"token_type":"access","exp":1,"jti":"a","user_id":"1"}"#);
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
        let mut accepted = 0;
        for at in 0..token.len() {
            for replacement in alphabet.chars() {
                let mut changed = token.clone();
                changed.replace_range(at..=at, &replacement.to_string());
                let ours = verify(&changed).is_ok();
                assert_eq!(ours, jsonwebtoken_accepts(&changed), "{changed}");
                accepted += usize::from(ours);
            }
        }
        // Only the unchanged token itself: once per position, where the replacement is the
        // character already there.
        assert_eq!(accepted, token.len());
    }
}
