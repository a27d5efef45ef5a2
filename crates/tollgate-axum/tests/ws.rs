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

async fn start() -> String {
    let verifier = Verifier::from_settings(&verifying_settings('a')).expect("verifier");
    let app = Router::new().route("/ws", get(echo)).with_state(verifier);
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
