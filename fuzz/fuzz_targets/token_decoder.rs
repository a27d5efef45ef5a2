//! The token decoder against any bytes, as they arrive in an `Authorization` header: under an
//! HMAC and an ECDSA key, every input is refused or decoded without a panic, and a token that
//! decodes has the claims a request would be authenticated by.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use tollgate_core::auth::{parse_header, HeaderCredentials};
use tollgate_core::settings::Secret;
use tollgate_core::{Algorithm, Settings, TokenCodec, TokenType};

const NOW: i64 = 1_700_000_000;

static CODECS: LazyLock<[TokenCodec; 2]> = LazyLock::new(|| {
    let hmac = Settings {
        signing_key: Secret("fuzz-signing-key-0123456789-abcdefghijklmnopqrstuvwxyz".into()),
        ..Settings::default()
    };
    let ecdsa = Settings {
        algorithm: Algorithm::ES256,
        signing_key: Secret(
            include_str!("../../crates/tollgate-core/fixtures/keys/p256_a.pem").into(),
        ),
        verifying_key: include_str!("../../crates/tollgate-core/fixtures/keys/p256_a.pub.pem")
            .into(),
        ..Settings::default()
    };
    [hmac, ecdsa].map(|settings| TokenCodec::new(&settings).expect("valid settings"))
});

fuzz_target!(|data: &[u8]| {
    let header_types = ["Bearer".to_owned(), "JWT".to_owned()];
    let raw = match parse_header(data, &header_types) {
        HeaderCredentials::Token(token) => token,
        _ => data,
    };
    for codec in CODECS.iter() {
        let classes = [TokenType::Access, TokenType::Sliding];
        if let Ok((token_type, claims)) = codec.authenticate_token(raw, &classes, NOW) {
            // Only a token this key signed gets here: its claims must say what it is.
            assert!(classes.contains(&token_type));
            assert!(codec.check_type(&claims, Some(token_type), NOW).is_ok());
        }
        if let Ok(token) = std::str::from_utf8(raw) {
            let _ = codec.decode_as(token, Some(TokenType::Refresh), NOW);
        }
    }
});
