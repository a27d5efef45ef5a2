//! Micro benchmarks of the token hot paths: signing, checking, the whole "authorization header →
//! claims" path, per algorithm, and one password hash at the default cost.
//!
//! Run with `cargo bench -p tollgate-core`; `cargo bench -p tollgate-core -- --test` runs each
//! once as a smoke test.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use tollgate_core::auth::{parse_header, HeaderCredentials};
use tollgate_core::password::PasswordHasher;
use tollgate_core::{
    keygen, Algorithm, KeyRing, Keys, KeysEncryptionKey, Settings, StoredKey, TokenCodec, TokenType,
};

const NOW: i64 = 1_700_000_000;

/// Settings signing with a fresh key of `algorithm`, made as `tollgate keygen` makes it.
fn settings_for(algorithm: Algorithm) -> Settings {
    let key = keygen::generate(algorithm).expect("key");
    Settings {
        algorithm,
        signing_key: key.signing_key,
        verifying_key: key.verifying_key.unwrap_or_default(),
        ..Settings::default()
    }
}

fn tokens(c: &mut Criterion) {
    for algorithm in [
        Algorithm::HS256,
        Algorithm::HS512,
        Algorithm::RS256,
        Algorithm::PS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
    ] {
        let codec = TokenCodec::new(&settings_for(algorithm)).expect("codec");
        let name = algorithm.as_str();
        c.bench_function(&format!("{name}/mint access"), |b| {
            b.iter(|| {
                codec
                    .sign(codec.claims_for_user(TokenType::Access, "42", NOW))
                    .expect("signs")
            })
        });
        let token = codec
            .sign(codec.claims_for_user(TokenType::Access, "42", NOW))
            .expect("signs")
            .token;
        c.bench_function(&format!("{name}/verify access"), |b| {
            b.iter(|| {
                codec
                    .decode_as(&token, Some(TokenType::Access), NOW)
                    .expect("valid")
            })
        });
        let header = format!("Bearer {token}");
        let types = vec!["Bearer".to_owned()];
        c.bench_function(&format!("{name}/authorization header to claims"), |b| {
            b.iter(|| {
                let HeaderCredentials::Token(raw) = parse_header(header.as_bytes(), &types) else {
                    panic!("a bearer token")
                };
                codec
                    .authenticate_token(raw, &[TokenType::Access], NOW)
                    .expect("valid")
            })
        });
    }
    rotated(c);
    let codec = TokenCodec::new(&settings_for(Algorithm::HS256)).expect("codec");
    c.bench_function("claims/access from refresh", |b| {
        let refresh = codec.claims_for_user(TokenType::Refresh, "42", NOW);
        b.iter(|| codec.access_claims_from(&refresh, NOW))
    });
    c.bench_function("HS256/refuse garbage token", |b| {
        b.iter(|| codec.decode("abc.def.ghi", NOW).expect_err("invalid"))
    });
}

/// After two rotations the ring holds three keys; a token of the oldest is the last one looked
/// up.
fn rotated(c: &mut Criterion) {
    let settings = settings_for(Algorithm::HS256);
    let before = TokenCodec::new(&settings).expect("codec");
    let token = before
        .sign(before.claims_for_user(TokenType::Access, "42", NOW))
        .expect("signs")
        .token;
    let sealing = KeysEncryptionKey::parse(&"5a".repeat(32)).expect("key");
    let configured = Keys::from_settings(&settings).expect("keys");
    let first = StoredKey::configured(&configured, "", NOW, NOW + 86_400);
    let mut second = StoredKey::generate(Algorithm::HS256, &sealing, NOW).expect("key");
    second.retired_at = Some(NOW + 1);
    second.verify_until = Some(NOW + 86_400);
    let third = StoredKey::generate(Algorithm::HS256, &sealing, NOW).expect("key");
    let ring =
        KeyRing::assemble(configured, &[third, second, first], &[sealing], NOW).expect("ring");
    assert_eq!(ring.kids().len(), 3);
    let codec = TokenCodec::new(&settings).expect("codec");
    codec.replace_keys(ring);
    c.bench_function("HS256/verify access of the oldest of 3 keys", |b| {
        b.iter(|| {
            codec
                .decode_as(&token, Some(TokenType::Access), NOW)
                .expect("valid")
        })
    });
}

fn password(c: &mut Criterion) {
    let defaults = Settings::default();
    let hasher = PasswordHasher::new(
        defaults.argon2_memory_kib,
        defaults.argon2_iterations,
        defaults.argon2_parallelism,
    )
    .expect("params");
    let stored = hasher.hash("benchmark password");
    let mut group = c.benchmark_group("password");
    group.sample_size(10);
    group.bench_function("argon2id verify at the default cost", |b| {
        b.iter_batched(
            || "benchmark password",
            |pw| hasher.verify(pw, &stored),
            BatchSize::SmallInput,
        )
    });
    // The most logins the machine can check: one verify per core at once, as the server's
    // hashing pool runs them. Two argon2 runs share the memory bus and caches, so a round can
    // take longer than one verify alone; logins per second ≤ cores ÷ this round's time.
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    group.bench_function(format!("argon2id verify, {cores} at once"), |b| {
        b.iter_custom(|rounds| {
            let start = std::time::Instant::now();
            for _ in 0..rounds {
                std::thread::scope(|scope| {
                    for _ in 0..cores {
                        scope.spawn(|| hasher.verify("benchmark password", &stored));
                    }
                });
            }
            start.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, tokens, password);
criterion_main!(benches);
