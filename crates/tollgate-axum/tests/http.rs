//! The layer and the extractors, in process: statuses, exact bodies, challenge headers.

mod common;

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::FromRef;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use axum::{Extension, Router};
use common::{issuer, issuer_with, token, token_aged, verifying_settings};
use serde_json::{json, Value};
use tollgate_axum::{
    AuthLayer, BoxError, CurrentUser, Permissions, Staff, Superuser, TokenUser, UserStore,
    VerifiedToken, Verifier,
};
use tollgate_core::{Settings, TokenType};
use tower::ServiceExt;

async fn call(app: &Router, header: Option<(&str, String)>) -> (StatusCode, Option<String>, Value) {
    let mut request = Request::get("/");
    if let Some((name, value)) = header {
        request = request.header(name, value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let challenge = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ascii").to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, challenge, body)
}

fn bearer(token: String) -> Option<(&'static str, String)> {
    Some(("authorization", format!("Bearer {token}")))
}

async fn claims_of(Extension(token): Extension<VerifiedToken>) -> axum::Json<Value> {
    axum::Json(json!({ "user_id": token.claims.get("user_id"), "type": token.token_type.as_str() }))
}

fn layered(settings: &Settings) -> Router {
    let verifier = Verifier::from_settings(settings).expect("verifier");
    Router::new()
        .route("/", get(claims_of))
        .layer(AuthLayer::new(verifier))
}

#[tokio::test]
async fn layer_admits_a_valid_access_token_and_passes_its_claims_on() {
    let app = layered(&verifying_settings('a'));
    let access = token(&issuer('a'), TokenType::Access, "42", json!({}));
    let (status, _, body) = call(&app, bearer(access)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"user_id": "42", "type": "access"}));
}

#[tokio::test]
async fn layer_without_credentials_is_401_with_drfs_body_and_a_challenge() {
    let app = layered(&verifying_settings('a'));
    for header in [None, Some(("authorization", "Basic dTpw".to_owned()))] {
        let (status, challenge, body) = call(&app, header).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"api\""));
        assert_eq!(
            body,
            json!({"detail": "Authentication credentials were not provided."})
        );
    }
}

#[tokio::test]
async fn layer_refuses_expired_refresh_and_foreign_tokens_with_simplejwts_messages() {
    let app = layered(&verifying_settings('a'));
    let refused = |message: &str| {
        json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
        })
    };
    let expired = token_aged(&issuer('a'), TokenType::Access, "1", json!({}), 301);
    let refresh = token(&issuer('a'), TokenType::Refresh, "1", json!({}));
    let foreign = token(&issuer('b'), TokenType::Access, "1", json!({}));
    for (token, message) in [
        (expired, "Token is expired"),
        (refresh, "Token has wrong type"),
        (foreign, "Token is invalid"),
        ("not.a.token".to_owned(), "Token is invalid"),
    ] {
        let (status, challenge, body) = call(&app, bearer(token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("Bearer realm=\"api\""));
        assert_eq!(body, refused(message));
    }
    let (status, _, body) = call(&app, Some(("authorization", "Bearer a b".into()))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        body,
        json!({"detail": "Authorization header must contain two space-delimited values",
               "code": "bad_authorization_header"})
    );
}

#[tokio::test]
async fn layer_honours_auth_header_types_and_name() {
    let settings = Settings {
        auth_header_types: vec!["JWT".into(), "Token".into()],
        auth_header_name: "HTTP_X_ACCESS_TOKEN".into(),
        ..verifying_settings('a')
    };
    let app = layered(&settings);
    let access = token(&issuer('a'), TokenType::Access, "7", json!({}));
    for scheme in ["JWT", "Token"] {
        let (status, _, _) =
            call(&app, Some(("x-access-token", format!("{scheme} {access}")))).await;
        assert_eq!(status, StatusCode::OK, "{scheme}");
    }
    // Another scheme, or the right one in another header, is no credentials at all.
    for (name, value) in [
        ("x-access-token", format!("Bearer {access}")),
        ("authorization", format!("JWT {access}")),
    ] {
        let (status, challenge, body) = call(&app, Some((name, value))).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(challenge.as_deref(), Some("JWT realm=\"api\""));
        assert_eq!(
            body["detail"],
            "Authentication credentials were not provided."
        );
    }
}

#[tokio::test]
async fn layer_checks_audience_issuer_and_leeway_as_configured() {
    let settings = Settings {
        audience: vec!["orders".into()],
        issuer: Some("https://auth.example.com".into()),
        leeway: std::time::Duration::from_secs(60),
        ..verifying_settings('a')
    };
    let app = layered(&settings);
    let matching = issuer_with('a', |s| {
        s.audience = vec!["orders".into()];
        s.issuer = Some("https://auth.example.com".into());
    });
    let (status, _, _) = call(
        &app,
        bearer(token(&matching, TokenType::Access, "1", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Expired 30 s ago: within the leeway.
    let late = token_aged(&matching, TokenType::Access, "1", json!({}), 330);
    assert_eq!(call(&app, bearer(late)).await.0, StatusCode::OK);
    let too_late = token_aged(&matching, TokenType::Access, "1", json!({}), 370);
    assert_eq!(
        call(&app, bearer(too_late)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let other_audience = issuer_with('a', |s| {
        s.audience = vec!["billing".into()];
        s.issuer = Some("https://auth.example.com".into());
    });
    let no_issuer = issuer_with('a', |s| s.audience = vec!["orders".into()]);
    for codec in [other_audience, no_issuer] {
        let (status, _, body) = call(
            &app,
            bearer(token(&codec, TokenType::Access, "1", json!({}))),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["messages"][0]["message"], "Token is invalid");
    }
}

#[tokio::test]
async fn optional_layer_lets_anonymous_requests_through_but_not_bad_tokens() {
    let verifier = Verifier::from_settings(&verifying_settings('a')).expect("verifier");
    let app = Router::new()
        .route(
            "/",
            get(|token: Option<Extension<VerifiedToken>>| async move {
                axum::Json(json!({ "authenticated": token.is_some() }))
            }),
        )
        .layer(AuthLayer::optional(verifier));
    assert_eq!(call(&app, None).await.2, json!({"authenticated": false}));
    let access = token(&issuer('a'), TokenType::Access, "1", json!({}));
    assert_eq!(
        call(&app, bearer(access)).await.2,
        json!({"authenticated": true})
    );
    let foreign = token(&issuer('b'), TokenType::Access, "1", json!({}));
    assert_eq!(
        call(&app, bearer(foreign)).await.0,
        StatusCode::UNAUTHORIZED
    );
}

#[derive(Clone, Debug)]
struct Account {
    name: String,
    active: bool,
    staff: bool,
}

impl Permissions for Account {
    fn is_staff(&self) -> bool {
        self.staff
    }
    fn is_superuser(&self) -> bool {
        false
    }
}

#[derive(Clone)]
struct Accounts(Arc<HashMap<String, Account>>);

impl UserStore for Accounts {
    type User = Account;
    async fn find_user(&self, user_id: &str) -> Result<Option<Account>, BoxError> {
        Ok(self.0.get(user_id).cloned())
    }
    fn is_active(user: &Account) -> bool {
        user.active
    }
}

#[derive(Clone, FromRef)]
struct AppState {
    verifier: Verifier,
    accounts: Accounts,
}

fn extractor_app(settings: &Settings) -> Router {
    let accounts = [
        (
            "1",
            Account {
                name: "ann".into(),
                active: true,
                staff: true,
            },
        ),
        (
            "2",
            Account {
                name: "bob".into(),
                active: false,
                staff: false,
            },
        ),
        (
            "3",
            Account {
                name: "cy".into(),
                active: true,
                staff: false,
            },
        ),
    ]
    .into_iter()
    .map(|(id, account)| (id.to_owned(), account))
    .collect();
    let state = AppState {
        verifier: Verifier::from_settings(settings).expect("verifier"),
        accounts: Accounts(Arc::new(accounts)),
    };
    Router::new()
        .route(
            "/",
            get(|user: TokenUser| async move {
                axum::Json(json!({ "id": user.id, "username": user.username }))
            }),
        )
        .route(
            "/db",
            get(
                |CurrentUser { user, .. }: CurrentUser<Accounts>| async move {
                    axum::Json(json!({ "name": user.name }))
                },
            ),
        )
        .route(
            "/staff",
            get(|Staff(user): Staff<TokenUser>| async move { user.id }),
        )
        .route(
            "/superuser",
            get(|Superuser(user): Superuser<TokenUser>| async move { user.id }),
        )
        .route(
            "/db/staff",
            get(|Staff(user): Staff<CurrentUser<Accounts>>| async move { user.user.name }),
        )
        .with_state(state)
}

async fn get_path(app: &Router, path: &str, token: Option<String>) -> (StatusCode, Value) {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).expect("request"))
        .await
        .expect("infallible");
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("body");
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn token_user_comes_from_the_token_alone() {
    let app = extractor_app(&verifying_settings('a'));
    let codec = issuer('a');
    // User 99 exists in no store: the stateless user does not care.
    let access = token(&codec, TokenType::Access, "99", json!({"username": "zed"}));
    assert_eq!(
        get_path(&app, "/", Some(access)).await,
        (StatusCode::OK, json!({"id": "99", "username": "zed"}))
    );
    let mut claims = codec.claims_for_user(TokenType::Access, "1", tollgate_core::unix_now());
    claims.0.remove("user_id");
    let anonymous = codec.sign(claims).expect("signs").token;
    assert_eq!(
        get_path(&app, "/", Some(anonymous)).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "Token contained no recognizable user identification", "code": "token_not_valid"})
        )
    );
    assert_eq!(get_path(&app, "/", None).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn current_user_is_loaded_and_missing_or_inactive_users_are_refused() {
    let app = extractor_app(&verifying_settings('a'));
    let codec = issuer('a');
    let access = |id: &str| Some(token(&codec, TokenType::Access, id, json!({})));
    assert_eq!(
        get_path(&app, "/db", access("1")).await,
        (StatusCode::OK, json!({"name": "ann"}))
    );
    assert_eq!(
        get_path(&app, "/db", access("2")).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "User is inactive", "code": "user_inactive"})
        )
    );
    assert_eq!(
        get_path(&app, "/db", access("404")).await,
        (
            StatusCode::UNAUTHORIZED,
            json!({"detail": "User not found", "code": "user_not_found"})
        )
    );
    // CHECK_USER_IS_ACTIVE off: inactive users pass, as in simplejwt.
    let lenient = extractor_app(&Settings {
        check_user_is_active: false,
        ..verifying_settings('a')
    });
    assert_eq!(
        get_path(&lenient, "/db", access("2")).await,
        (StatusCode::OK, json!({"name": "bob"}))
    );
}

#[tokio::test]
async fn guards_answer_403_with_drfs_body_to_users_without_the_flag() {
    let app = extractor_app(&verifying_settings('a'));
    let codec = issuer('a');
    let denied = (
        StatusCode::FORBIDDEN,
        json!({"detail": "You do not have permission to perform this action."}),
    );
    let staff = token(&codec, TokenType::Access, "5", json!({"is_staff": true}));
    let admin = token(
        &codec,
        TokenType::Access,
        "6",
        json!({"is_staff": true, "is_superuser": true}),
    );
    let plain = token(&codec, TokenType::Access, "7", json!({"is_staff": "yes"}));
    assert_eq!(
        get_path(&app, "/staff", Some(staff.clone())).await.0,
        StatusCode::OK
    );
    assert_eq!(get_path(&app, "/superuser", Some(staff)).await, denied);
    assert_eq!(
        get_path(&app, "/superuser", Some(admin)).await.0,
        StatusCode::OK
    );
    assert_eq!(get_path(&app, "/staff", Some(plain)).await, denied);
    // Without a token the guard is a 401, not a 403.
    assert_eq!(
        get_path(&app, "/staff", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    // The database user's own flags count, not the token's.
    let claims_staff_db_not = token(&codec, TokenType::Access, "3", json!({"is_staff": true}));
    assert_eq!(
        get_path(&app, "/db/staff", Some(claims_staff_db_not)).await,
        denied
    );
    let db_staff = token(&codec, TokenType::Access, "1", json!({}));
    assert_eq!(
        get_path(&app, "/db/staff", Some(db_staff)).await.0,
        StatusCode::OK
    );
}
