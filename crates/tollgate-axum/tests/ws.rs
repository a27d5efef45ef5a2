//! WebSocket authentication with a real WebSocket client over a real socket.

mod common;

use std::time::Duration;

use axum::extract::ws::{Message, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use common::{issuer, token, token_aged, verifying_settings};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Client;
use tollgate_axum::ws::{recv_until, Expiry, WebSocketAuth, CLOSE_UNAUTHENTICATED};
use tollgate_axum::Verifier;
use tollgate_core::TokenType;

async fn echo(
    ws: WebSocketUpgrade,
    auth: WebSocketAuth,
    State(verifier): State<Verifier>,
) -> Response {
    let auth = auth.first_message_timeout(Duration::from_millis(300));
    auth.limit(ws).on_upgrade(move |mut socket| async move {
        let Some(user) = auth.authenticate(&mut socket, &verifier).await else {
            return;
        };
        let _ = socket
            .send(Message::Text(format!("hello, {}", user.username).into()))
            .await;
        let expiry = Expiry::of(&verifier, &user);
        while let Some(Message::Text(text)) = recv_until(&mut socket, &expiry).await {
            let _ = socket.send(Message::Text(text)).await;
        }
    })
}

/// Greets a socket of any token type with its type; closes it.
async fn untyped(
    ws: WebSocketUpgrade,
    auth: WebSocketAuth,
    State(verifier): State<Verifier>,
) -> Response {
    let auth = auth
        .any_token_type()
        .first_message_timeout(Duration::from_millis(300));
    auth.limit(ws).on_upgrade(move |mut socket| async move {
        let Some(user) = auth.authenticate(&mut socket, &verifier).await else {
            return;
        };
        let greeting = format!("hello, {} ({})", user.username, user.token_type.as_str());
        let _ = socket.send(Message::Text(greeting.into())).await;
    })
}

/// Greets a user by name and a socket without a token as anonymous, then echoes what users
/// send and refuses anonymous messages.
async fn open(
    ws: WebSocketUpgrade,
    auth: WebSocketAuth,
    State(verifier): State<Verifier>,
) -> Response {
    auth.limit(ws).on_upgrade(move |mut socket| async move {
        let Ok(user) = auth.authenticate_optional(&mut socket, &verifier).await else {
            return;
        };
        let greeting = match &user {
            Some(user) => format!("hello, {}", user.username),
            None => "hello, anonymous".to_owned(),
        };
        let _ = socket.send(Message::Text(greeting.into())).await;
        while let Some(Ok(Message::Text(text))) = socket.recv().await {
            let answer = match &user {
                Some(_) => text,
                None => "anonymous users may not post".into(),
            };
            let _ = socket.send(Message::Text(answer)).await;
        }
    })
}

async fn start() -> String {
    let verifier = Verifier::from_settings(&verifying_settings('a')).expect("verifier");
    let app = Router::new()
        .route("/ws", get(echo))
        .route("/ws/untyped", get(untyped))
        .route("/ws/open", get(open))
        .with_state(verifier);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("ws://{address}/ws")
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(url: &str, authorization: Option<String>) -> Socket {
    let mut request = url.into_client_request().expect("request");
    if let Some(value) = authorization {
        request
            .headers_mut()
            .insert("authorization", value.parse().expect("header value"));
    }
    tokio_tungstenite::connect_async(request)
        .await
        .expect("handshake")
        .0
}

async fn next_text(socket: &mut Socket) -> String {
    match socket.next().await {
        Some(Ok(Client::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

/// The close frame's code and reason.
async fn closed(socket: &mut Socket) -> (u16, String) {
    match socket.next().await {
        Some(Ok(Client::Close(Some(frame)))) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

fn access(name: &str) -> String {
    token(
        &issuer('a'),
        TokenType::Access,
        "1",
        json!({ "username": name }),
    )
}

#[tokio::test]
async fn a_token_in_the_query_string_is_greeted_by_name_then_echoed() {
    let url = start().await;
    let mut socket = connect(&format!("{url}?token={}", access("ann")), None).await;
    assert_eq!(next_text(&mut socket).await, "hello, ann");
    socket.send(Client::text("ping")).await.expect("send");
    assert_eq!(next_text(&mut socket).await, "ping");
}

#[tokio::test]
async fn a_token_in_the_authorization_header_is_accepted() {
    let url = start().await;
    let mut socket = connect(&url, Some(format!("Bearer {}", access("bob")))).await;
    assert_eq!(next_text(&mut socket).await, "hello, bob");
}

#[tokio::test]
async fn a_token_in_the_first_message_is_accepted() {
    let url = start().await;
    let mut socket = connect(&url, None).await;
    socket.send(Client::text(access("cy"))).await.expect("send");
    assert_eq!(next_text(&mut socket).await, "hello, cy");
    socket.send(Client::text("again")).await.expect("send");
    assert_eq!(next_text(&mut socket).await, "again");
}

#[tokio::test]
async fn no_token_is_closed_with_4401_and_the_reason() {
    let url = start().await;
    let mut socket = connect(&url, None).await;
    assert_eq!(
        closed(&mut socket).await,
        (
            CLOSE_UNAUTHENTICATED,
            "not_authenticated: Authentication credentials were not provided.".to_owned()
        )
    );
}

#[tokio::test]
async fn expired_refresh_and_foreign_tokens_are_closed_with_their_reason() {
    let url = start().await;
    let expired = token_aged(&issuer('a'), TokenType::Access, "1", json!({}), 301);
    let refresh = token(&issuer('a'), TokenType::Refresh, "1", json!({}));
    let foreign = token(&issuer('b'), TokenType::Access, "1", json!({}));
    for (token, reason) in [
        (expired, "token_not_valid: Token is expired"),
        (refresh, "token_not_valid: Token has wrong type"),
        (foreign, "token_not_valid: Token is invalid"),
    ] {
        let mut by_query = connect(&format!("{url}?token={token}"), None).await;
        assert_eq!(closed(&mut by_query).await, (4401, reason.to_owned()));
        let mut by_message = connect(&url, None).await;
        by_message.send(Client::text(token)).await.expect("send");
        assert_eq!(closed(&mut by_message).await, (4401, reason.to_owned()));
    }
    let mut malformed = connect(&url, Some("Bearer a b".to_owned())).await;
    assert_eq!(
        closed(&mut malformed).await,
        (
            4401,
            "bad_authorization_header: Authorization header must contain two space-delimited values"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn an_open_socket_is_closed_with_4401_when_its_token_expires() {
    let url = start().await;
    // Issued 298 s ago with a 300 s lifetime: expires in about 2 s.
    let token = token_aged(
        &issuer('a'),
        TokenType::Access,
        "1",
        json!({"username": "ann"}),
        298,
    );
    let mut socket = connect(&format!("{url}?token={token}"), None).await;
    assert_eq!(next_text(&mut socket).await, "hello, ann");
    socket.send(Client::text("ping")).await.expect("send");
    assert_eq!(next_text(&mut socket).await, "ping");
    let frame = tokio::time::timeout(Duration::from_secs(10), closed(&mut socket))
        .await
        .expect("closed once the token expired");
    assert_eq!(
        frame,
        (
            CLOSE_UNAUTHENTICATED,
            "token_not_valid: Token is expired".to_owned()
        )
    );
}

#[tokio::test]
async fn a_first_message_over_the_limit_is_closed_with_1009() {
    let url = start().await;
    let mut socket = connect(&url, None).await;
    let big = "x".repeat(tollgate_axum::ws::FIRST_MESSAGE_MAX_SIZE + 1);
    socket.send(Client::text(big)).await.expect("send");
    let frame = tokio::time::timeout(Duration::from_secs(10), closed(&mut socket))
        .await
        .expect("closed at once");
    assert_eq!(
        frame,
        (
            tollgate_axum::ws::CLOSE_TOO_BIG,
            "message too big".to_owned()
        )
    );
}

/// `any_token_type`: an access, refresh or sliding token authenticates the socket (simplejwt's
/// `UntypedToken`), from the query, the header or the first message; an expired or foreign
/// one is still refused, and the default keeps refusing a refresh token.
#[tokio::test]
async fn any_token_type_accepts_access_refresh_and_sliding_tokens() {
    let url = start().await;
    let untyped = format!("{url}/untyped");
    for kind in [TokenType::Access, TokenType::Refresh, TokenType::Sliding] {
        let token = token(&issuer('a'), kind, "1", json!({"username": "ann"}));
        let expected = format!("hello, ann ({})", kind.as_str());
        let mut by_query = connect(&format!("{untyped}?token={token}"), None).await;
        assert_eq!(next_text(&mut by_query).await, expected);
        let mut by_header = connect(&untyped, Some(format!("Bearer {token}"))).await;
        assert_eq!(next_text(&mut by_header).await, expected);
        let mut by_message = connect(&untyped, None).await;
        by_message.send(Client::text(token)).await.expect("send");
        assert_eq!(next_text(&mut by_message).await, expected);
    }
    let expired = token_aged(&issuer('a'), TokenType::Refresh, "1", json!({}), 86_401);
    let foreign = token(&issuer('b'), TokenType::Sliding, "1", json!({}));
    for (token, message) in [(expired, "Token is expired"), (foreign, "Token is invalid")] {
        let mut socket = connect(&format!("{untyped}?token={token}"), None).await;
        assert_eq!(
            closed(&mut socket).await,
            (CLOSE_UNAUTHENTICATED, format!("token_not_valid: {message}"))
        );
    }
    let refresh = token(&issuer('a'), TokenType::Refresh, "1", json!({}));
    let mut typed = connect(&format!("{url}?token={refresh}"), None).await;
    assert_eq!(
        closed(&mut typed).await,
        (
            CLOSE_UNAUTHENTICATED,
            "token_not_valid: Token has wrong type".to_owned()
        )
    );
}

/// `authenticate_optional`: a socket without a token continues as anonymous (and the handler
/// can refuse what it sends); one with a valid token is its user; a refused token or a
/// malformed header still closes the socket with 4401 and the reason.
#[tokio::test]
async fn a_socket_without_a_token_continues_as_anonymous() {
    let url = start().await;
    let open = format!("{url}/open");
    let mut anonymous = connect(&open, None).await;
    assert_eq!(next_text(&mut anonymous).await, "hello, anonymous");
    anonymous.send(Client::text("hi")).await.expect("send");
    assert_eq!(
        next_text(&mut anonymous).await,
        "anonymous users may not post"
    );

    let mut ann = connect(&format!("{open}?token={}", access("ann")), None).await;
    assert_eq!(next_text(&mut ann).await, "hello, ann");
    ann.send(Client::text("hi")).await.expect("send");
    assert_eq!(next_text(&mut ann).await, "hi");

    let expired = token_aged(&issuer('a'), TokenType::Access, "1", json!({}), 301);
    let mut refused = connect(&format!("{open}?token={expired}"), None).await;
    assert_eq!(
        closed(&mut refused).await,
        (
            CLOSE_UNAUTHENTICATED,
            "token_not_valid: Token is expired".to_owned()
        )
    );
    let mut malformed = connect(&open, Some("Bearer a b".to_owned())).await;
    assert_eq!(closed(&mut malformed).await.0, CLOSE_UNAUTHENTICATED);
}
