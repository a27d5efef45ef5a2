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
                let mut map = Map::new();
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
}
