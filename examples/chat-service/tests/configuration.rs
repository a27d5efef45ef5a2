//! The service run as its users run it: without JWKS_URL it stops at once with exit code 2 and
//! a message naming it. (Having an integration test also makes `cargo test --workspace` build
//! the service's binary, which Tollgate's test of the chat starts.)

use std::process::Command;

#[test]
fn without_a_jwks_url_it_stops_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_chat-service"))
        .env_remove("JWKS_URL")
        .env_remove("BIND")
        .output()
        .expect("the service runs");
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr).trim(),
        "chat-service: JWKS_URL is not set"
    );
}
