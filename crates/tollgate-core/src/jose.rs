//! Strict reading of a token's JOSE header and payload: what jsonwebtoken lets through but
//! RFC 7515 and RFC 8725 say to refuse.
//!
//! - A `crit` header names extensions the recipient must understand; Tollgate understands
//!   none, so any `crit` is refused (RFC 7515, section 4.1.11).
//! - A JSON object with a repeated member name is ambiguous: parsers disagree on which value
//!   wins, so a token that one service reads one way and another reads the other way is
//!   refused, in the header and in the payload (RFC 7515, section 5.2, and RFC 8725, 3.1).
//!
//! Every token Tollgate signs has the same header, so the header check first compares the
//! header segment with the one Tollgate writes: the hot path costs one string comparison.

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

/// Checks the header segment of tokens before jsonwebtoken reads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HeaderCheck {
    /// The header segment of every token Tollgate signs, accepted without parsing.
    ours: String,
}

impl HeaderCheck {
    /// A check that accepts `header` (the one Tollgate signs with) at the cost of a comparison.
    pub(crate) fn new(header: &jsonwebtoken::Header) -> HeaderCheck {
        let json = serde_json::to_vec(header).unwrap_or_default();
        HeaderCheck {
            ours: URL_SAFE_NO_PAD.encode(json),
        }
    }

    /// Whether `segment` is the header Tollgate signs with.
    pub(crate) fn is_ours(&self, segment: &str) -> bool {
        segment == self.ours
    }

    /// Refuses a header with `crit` or a repeated member. A token without a header segment
    /// passes here and is refused by jsonwebtoken as malformed.
    pub(crate) fn check(&self, token: &str) -> Result<(), &'static str> {
        let Some((segment, _)) = token.split_once('.') else {
            return Ok(());
        };
        if self.is_ours(segment) {
            return Ok(());
        }
        let json = URL_SAFE_NO_PAD
            .decode(segment)
            .map_err(|_| "bad base64 in header")?;
        let header: UniqueObject = serde_json::from_slice(&json)
            .map_err(|_| "header is not a JSON object without duplicates")?;
        if header.0.contains_key("crit") {
            return Err("critical header extension not understood");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(json: &str) -> String {
        format!("{}.e30.c2ln", URL_SAFE_NO_PAD.encode(json))
    }

    #[test]
    fn our_own_header_passes_without_parsing() {
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        let check = HeaderCheck::new(&header);
        let token = format!("{}.e30.c2ln", check.ours);
        assert_eq!(check.check(&token), Ok(()));
        assert_eq!(
            check.check(&segment(r#"{"alg":"HS256","kid":"a"}"#)),
            Ok(())
        );
    }

    #[test]
    fn crit_and_duplicates_are_refused() {
        let check = HeaderCheck::new(&jsonwebtoken::Header::default());
        for header in [
            r#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            r#"{"alg":"HS256","crit":[]}"#,
            r#"{"alg":"none","alg":"HS256"}"#,
            r#"{"alg":"HS256","kid":"a","kid":"b"}"#,
            r#"["alg"]"#,
        ] {
            assert!(check.check(&segment(header)).is_err(), "{header}");
        }
        assert!(check.check("%%%.e30.c2ln").is_err());
    }

    #[test]
    fn unique_objects_refuse_repeated_names() {
        assert!(serde_json::from_str::<UniqueObject>(r#"{"a":1,"b":{"a":2}}"#).is_ok());
        assert!(serde_json::from_str::<UniqueObject>(r#"{"a":1,"a":1}"#).is_err());
        assert!(serde_json::from_str::<UniqueObject>("[1]").is_err());
    }
}
