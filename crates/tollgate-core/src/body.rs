//! Request bodies as Django REST framework reads them: JSON or form-encoded, validated field by
//! field with DRF's `CharField` rules and messages.
//!
//! ```
//! use tollgate_core::body::{BodyError, Payload};
//!
//! let body = Payload::parse(Some("application/json"), br#"{"username": " ann ", "password": 42}"#)?;
//! assert_eq!(body.char_fields(["username", "password"])?, ["ann".to_owned(), "42".to_owned()]);
//! let form = Payload::parse(Some("application/x-www-form-urlencoded"), b"username=ann")?;
//! assert_eq!(
//!     form.char_fields(["username", "password"]),
//!     Err(BodyError::Fields(vec![("password".into(), vec!["This field is required.".into()])]))
//! );
//! # Ok::<(), BodyError>(())
//! ```

use serde_json::{Map, Value};

/// Why a body was refused, in DRF's terms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// Field validation errors, in the order asked: `{"field": ["message"]}`.
    #[error("invalid fields")]
    Fields(Vec<(String, Vec<String>)>),
    /// A body that is not an object: `{"non_field_errors": ["message"]}`.
    #[error("{0}")]
    NonField(String),
    /// The body is not valid JSON; the parser's message.
    #[error("JSON parse error - {0}")]
    JsonParse(String),
    /// The content type (as sent) is neither JSON nor a form, or the form cannot be read.
    #[error("unsupported media type {0:?}")]
    UnsupportedMediaType(String),
}

/// A parsed request body.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// A JSON object.
    Json(Map<String, Value>),
    /// Form fields in the order sent; a repeated field's last value wins, as in Django.
    Form(Vec<(String, String)>),
}

impl Payload {
    /// Parses a body by its content type. An empty body, or one with no content type, is an
    /// empty set of fields (DRF does the same), so the answer is "This field is required.".
    pub fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Payload, BodyError> {
        let Some(content_type) = content_type.filter(|_| !body.is_empty()) else {
            return Ok(Payload::Json(Map::new()));
        };
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match media_type.as_str() {
            "application/json" => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => Ok(Payload::Json(map)),
                Ok(other) => Err(BodyError::NonField(format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    python_type_name(&other)
                ))),
                Err(err) => Err(BodyError::JsonParse(err.to_string())),
            },
            "application/x-www-form-urlencoded" => {
                serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                    .map(Payload::Form)
                    .map_err(|_| BodyError::UnsupportedMediaType(content_type.to_owned()))
            }
            _ => Err(BodyError::UnsupportedMediaType(content_type.to_owned())),
        }
    }

    /// Reads required string fields with DRF's `CharField` rules (surrounding whitespace
    /// trimmed, numbers accepted as text); every field's error is reported, in order.
    pub fn char_fields<const N: usize>(&self, names: [&str; N]) -> Result<[String; N], BodyError> {
        let mut errors = Vec::new();
        let values = names.map(|name| match self.char_field(name) {
            Ok(value) => value,
            Err(message) => {
                errors.push((name.to_owned(), vec![message.to_owned()]));
                String::new()
            }
        });
        if errors.is_empty() {
            Ok(values)
        } else {
            Err(BodyError::Fields(errors))
        }
    }

    /// Whether the body has the field at all, whatever its value.
    pub fn has(&self, name: &str) -> bool {
        match self {
            Payload::Form(pairs) => pairs.iter().any(|(key, _)| key == name),
            Payload::Json(map) => map.contains_key(name),
        }
    }

    fn char_field(&self, name: &str) -> Result<String, &'static str> {
        let text = self.text(name)?.ok_or("This field is required.")?;
        if text.is_empty() {
            return Err("This field may not be blank.");
        }
        Ok(text)
    }

    /// An optional string field with DRF's `CharField` rules: `None` when absent, trimmed
    /// text (possibly empty) when present.
    pub fn text(&self, name: &str) -> Result<Option<String>, &'static str> {
        let text = match self {
            Payload::Form(pairs) => pairs
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone()),
            Payload::Json(map) => match map.get(name) {
                None => None,
                Some(Value::Null) => return Err("This field may not be null."),
                Some(Value::String(text)) => Some(text.clone()),
                Some(Value::Number(number)) => Some(number.to_string()),
                Some(_) => return Err("Not a valid string."),
            },
        };
        Ok(text.map(|text| text.trim().to_owned()))
    }

    /// A field's raw value: any JSON value, or a form field's text.
    pub fn value(&self, name: &str) -> Option<Value> {
        match self {
            Payload::Form(pairs) => pairs
                .iter()
                .rev()
                .find(|(key, _)| key == name)
                .map(|(_, value)| Value::String(value.clone())),
            Payload::Json(map) => map.get(name).cloned(),
        }
    }
}

/// Python's name for a JSON value's type, as DRF's message quotes it.
fn python_type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(
        content_type: Option<&str>,
        body: &str,
        names: [&str; 2],
    ) -> Result<[String; 2], BodyError> {
        Payload::parse(content_type, body.as_bytes())?.char_fields(names)
    }

    const JSON: Option<&str> = Some("application/json");
    const FORM: Option<&str> = Some("application/x-www-form-urlencoded; charset=utf-8");

    #[test]
    fn json_and_forms_give_the_same_fields() {
        let names = ["username", "password"];
        let from_json =
            fields(JSON, r#"{"username":"ann","password":" pw "}"#, names).expect("valid");
        let from_form =
            fields(FORM, "username=x&username=ann&password=+pw+", names).expect("valid");
        assert_eq!(from_json, ["ann", "pw"]);
        assert_eq!(from_form, from_json);
        assert_eq!(
            fields(JSON, r#"{"username":5,"password":1.5}"#, names).expect("valid"),
            ["5", "1.5"]
        );
    }

    #[test]
    fn field_errors_are_drfs() {
        let names = ["username", "password"];
        let messages = |body: &str| match fields(JSON, body, names) {
            Err(BodyError::Fields(errors)) => errors,
            other => panic!("expected field errors, got {other:?}"),
        };
        assert_eq!(
            messages("{}"),
            vec![
                (
                    "username".to_owned(),
                    vec!["This field is required.".to_owned()]
                ),
                (
                    "password".to_owned(),
                    vec!["This field is required.".to_owned()]
                ),
            ]
        );
        assert_eq!(
            messages(r#"{"username":"a","password":"  "}"#),
            vec![(
                "password".to_owned(),
                vec!["This field may not be blank.".to_owned()]
            )]
        );
        assert_eq!(
            messages(r#"{"username":null,"password":"x"}"#)[0].1,
            ["This field may not be null."]
        );
        assert_eq!(
            messages(r#"{"username":true,"password":"x"}"#)[0].1,
            ["Not a valid string."]
        );
    }

    /// Login bodies: any bytes, under either content type, parse to fields or to that content
    /// type's client error; never a panic. `scripts/fuzz.sh` runs this for a
    /// time budget (TOLLGATE_FUZZ_SECONDS).
    #[test]
    fn no_login_body_panics_or_fails_internally() {
        let seconds = std::env::var("TOLLGATE_FUZZ_SECONDS")
            .ok()
            .and_then(|s| s.parse::<u64>().ok());
        let seed = std::env::var("TOLLGATE_FUZZ_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0x2545_F491_4F6C_DD1D);
        let pieces: [&[u8]; 14] = [
            b"{",
            b"}",
            b"[",
            b"]",
            b"\"username\"",
            b"\"password\"",
            b":",
            b",",
            b"\"",
            b"null",
            b"1e999",
            b"=",
            b"&",
            b"%ff",
        ];
        let mut state = seed | 1;
        let mut next = move |n: usize| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1) as u64) as usize
        };
        let started = std::time::Instant::now();
        let mut count = 0u64;
        loop {
            let mut body = Vec::new();
            for _ in 0..next(12) {
                if next(3) == 0 {
                    body.push(u8::try_from(next(256)).unwrap_or(0));
                } else {
                    body.extend_from_slice(pieces[next(pieces.len())]);
                }
            }
            for content_type in [JSON, FORM] {
                let result = Payload::parse(content_type, &body)
                    .and_then(|p| p.char_fields(["username", "password"]));
                // Each content type fails only in its own way.
                let foreign = matches!(
                    (content_type == JSON, &result),
                    (true, Err(BodyError::UnsupportedMediaType(_)))
                        | (false, Err(BodyError::JsonParse(_) | BodyError::NonField(_)))
                );
                assert!(!foreign, "seed {seed}: {body:?} gave {result:?}");
            }
            count += 1;
            let done = match seconds {
                Some(limit) => started.elapsed().as_secs() >= limit,
                None => count >= 3_000,
            };
            if done {
                break;
            }
        }
    }

    #[test]
    fn bad_bodies_are_refused_clearly() {
        assert!(matches!(
            fields(JSON, r#"{"username":"#, ["a", "b"]),
            Err(BodyError::JsonParse(_))
        ));
        match fields(JSON, "[1]", ["a", "b"]) {
            Err(BodyError::NonField(message)) => {
                assert_eq!(
                    message,
                    "Invalid data. Expected a dictionary, but got list."
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            fields(Some("text/plain"), "x", ["a", "b"]),
            Err(BodyError::UnsupportedMediaType(_))
        ));
        // No body at all reads as no fields.
        assert!(matches!(
            fields(JSON, "", ["a", "b"]),
            Err(BodyError::Fields(_))
        ));
    }
}
