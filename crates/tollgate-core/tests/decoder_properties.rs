//! Properties of the token decoder (#6): a valid token with any byte changed is refused, and no
//! input, however malformed, makes the decoder panic.
//!
//! Mutations come from a seeded generator: `cargo test` runs a fixed number of cases;
//! `scripts/fuzz.sh` sets TOLLGATE_FUZZ_SECONDS to run for a time budget with a fresh seed
//! (TOLLGATE_FUZZ_SEED, printed on failure so that a case can be replayed).

use std::time::{Duration, Instant};

use tollgate_core::settings::Secret;
use tollgate_core::{Settings, TokenCodec, TokenType};

const NOW: i64 = 1_700_000_000;

/// xorshift64*: small, deterministic, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// The seed and how long to run: a fixed seed and case count unless TOLLGATE_FUZZ_SECONDS is set.
fn budget() -> (u64, Option<Duration>) {
    let seconds = std::env::var("TOLLGATE_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok());
    let seed = std::env::var("TOLLGATE_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(if seconds.is_some() {
            u64::from(std::process::id()) | 1
        } else {
            0x9E37_79B9_7F4A_7C15
        });
    (seed, seconds.map(Duration::from_secs))
}

fn run_cases(mut case: impl FnMut(&mut Rng)) {
    let (seed, time) = budget();
    let mut rng = Rng(seed);
    let started = Instant::now();
    let mut count = 0u64;
    loop {
        case(&mut rng);
        count += 1;
        match time {
            Some(limit) if started.elapsed() < limit => {}
            Some(_) => break,
            None if count < 3_000 => {}
            None => break,
        }
    }
    eprintln!("{count} cases, seed {seed}");
}

fn codec() -> TokenCodec {
    TokenCodec::new(&Settings {
        signing_key: Secret("property-test-signing-key-0123456789-abcdefgh".into()),
        ..Settings::default()
    })
    .expect("valid settings")
}

const ALPHABET: &[u8] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00\xff";

#[test]
fn any_changed_byte_is_refused() {
    let codec = codec();
    let token = codec
        .sign(codec.claims_for_user(TokenType::Access, "42", NOW))
        .expect("signs")
        .token;
    assert!(codec
        .decode_as(&token, Some(TokenType::Access), NOW)
        .is_ok());
    let (seed, _) = budget();
    run_cases(|rng| {
        let mut bytes = token.clone().into_bytes();
        let at = rng.below(bytes.len());
        let replacement = ALPHABET[rng.below(ALPHABET.len())];
        if bytes[at] == replacement {
            return;
        }
        bytes[at] = replacement;
        let changed = String::from_utf8_lossy(&bytes);
        assert!(
            codec.decode_as(&changed, None, NOW).is_err(),
            "seed {seed}: {changed} was accepted"
        );
    });
}

#[test]
fn malformed_tokens_never_panic() {
    let codec = codec();
    let token = codec
        .sign(codec.claims_for_user(TokenType::Refresh, "42", NOW))
        .expect("signs")
        .token;
    let parts: Vec<&str> = token.split('.').collect();
    run_cases(|rng| {
        // Splice, duplicate, drop and insert pieces of a real token and random bytes.
        let mut text = String::new();
        for _ in 0..rng.below(6) {
            match rng.below(4) {
                0 => text.push_str(parts[rng.below(parts.len())]),
                1 => text.push('.'),
                2 => {
                    let part = parts[rng.below(parts.len())];
                    let cut = rng.below(part.len());
                    text.push_str(&part[..cut]);
                }
                _ => {
                    for _ in 0..rng.below(8) {
                        text.push(char::from(ALPHABET[rng.below(ALPHABET.len())]));
                    }
                }
            }
        }
        let _ = codec.decode_as(&text, Some(TokenType::Refresh), NOW);
    });
}
