//! The request-body parser against any bytes, as JSON and as a form: every body becomes fields
//! or the content type's own client error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tollgate_core::body::{BodyError, Payload};

fuzz_target!(|data: &[u8]| {
    for content_type in ["application/json", "application/x-www-form-urlencoded"] {
        let result = Payload::parse(Some(content_type), data)
            .and_then(|payload| payload.char_fields(["username", "password"]));
        let json = content_type == "application/json";
        match result {
            Ok([username, password]) => {
                assert!(!username.is_empty() && !password.is_empty());
                assert_eq!(username.trim(), username);
            }
            Err(BodyError::Fields(fields)) => assert!(!fields.is_empty()),
            Err(BodyError::JsonParse(_) | BodyError::NonField(_)) => assert!(json),
            Err(BodyError::UnsupportedMediaType(_)) => assert!(!json),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
});
