//! The service run as its users run it: settings it cannot use stop it at once with exit code 2
//! and a message naming the setting. (Having an integration test also makes
//! `cargo test --workspace` build the service's binary, which Tollgate's two-process test
//! starts.)

use std::process::Command;

fn service(vars: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_protected-service"));
    for name in [
        "JWKS_URL",
        "BIND",
        "AUDIENCE",
        "ISSUER",
        "LEEWAY",
        "JWKS_MIN_INTERVAL",
    ] {
        command.env_remove(name);
    }
    command.envs(vars.iter().copied());
    let output = command.output().expect("the service runs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn settings_it_cannot_use_stop_it_with_a_clear_message() {
    let jwks = ("JWKS_URL", "http://127.0.0.1:9/.well-known/jwks.json");
    for (vars, message) in [
        (vec![], "protected-service: JWKS_URL is not set"),
        (
            vec![jwks, ("LEEWAY", "soon")],
            "protected-service: LEEWAY: \"soon\" is not a number of seconds",
        ),
        (
            vec![jwks, ("JWKS_MIN_INTERVAL", "-1")],
            "protected-service: JWKS_MIN_INTERVAL: \"-1\" is not a number of seconds",
        ),
    ] {
        let (code, stderr) = service(&vars);
        assert_eq!(code, Some(2), "{vars:?}: {stderr}");
        assert_eq!(stderr.trim(), message);
    }
}
