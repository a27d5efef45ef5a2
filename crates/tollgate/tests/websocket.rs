//! `GET /ws/echo/` with a real WebSocket client: the token from the query string, the header or
//! the first message; refused connections closed with 4401 and the reason.

mod common;

use common::{claims, TestServer};
use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "correct horse battery";

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(server: &TestServer, query: &str, authorization: Option<&str>) -> Socket {
    let url = format!("{}/ws/echo/{query}", server.base.replacen("http", "ws", 1));
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
        Some(Ok(Message::Text(text))) => text.to_string(),
        other => panic!("expected a text message, got {other:?}"),
    }
}

async fn closed(socket: &mut Socket) -> (u16, String) {
    match socket.next().await {
        Some(Ok(Message::Close(Some(frame)))) => (u16::from(frame.code), frame.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

on_both_backends! {
    async fn a_valid_access_token_is_greeted_by_name_from_query_header_or_first_message(backend) {
        let server = TestServer::start_on(backend, |_| {}).await;
        server.create_user("ann", PASSWORD).await;
        let (_, access) = server.obtain_pair("ann", PASSWORD).await;

        let mut by_query = connect(&server, &format!("?token={access}"), None).await;
        assert_eq!(next_text(&mut by_query).await, "hello, ann");
        by_query.send(Message::text("ping")).await.expect("send");
        assert_eq!(next_text(&mut by_query).await, "ping");
        by_query.send(Message::binary(vec![1u8, 2, 3])).await.expect("send");
        assert_eq!(
            by_query.next().await.expect("a message").expect("ok"),
            Message::binary(vec![1u8, 2, 3])
        );

        let mut by_header = connect(&server, "", Some(&format!("Bearer {access}"))).await;
        assert_eq!(next_text(&mut by_header).await, "hello, ann");

        let mut by_message = connect(&server, "", None).await;
        by_message.send(Message::text(access.clone())).await.expect("send");
        assert_eq!(next_text(&mut by_message).await, "hello, ann");
        by_message.send(Message::text("again")).await.expect("send");
        assert_eq!(next_text(&mut by_message).await, "again");
        server.stop().await;
    }
}

#[tokio::test]
async fn no_expired_or_refresh_token_is_closed_with_4401_and_the_reason() {
    let server = TestServer::start().await;
    let user = server.create_user("ann", PASSWORD).await;
    let (refresh, _) = server.obtain_pair("ann", PASSWORD).await;
    let expired = server.sign(claims("access", &user.id.to_string(), -10));
    for (token, reason) in [
        (expired, "token_not_valid: Token is expired"),
        (refresh, "token_not_valid: Token has wrong type"),
        (
            "not-a-token".to_owned(),
            "token_not_valid: Token is invalid",
        ),
    ] {
        let mut by_query = connect(&server, &format!("?token={token}"), None).await;
        assert_eq!(closed(&mut by_query).await, (4401, reason.to_owned()));
        let mut by_header = connect(&server, "", Some(&format!("Bearer {token}"))).await;
        assert_eq!(closed(&mut by_header).await, (4401, reason.to_owned()));
        let mut by_message = connect(&server, "", None).await;
        by_message.send(Message::text(token)).await.expect("send");
        assert_eq!(closed(&mut by_message).await, (4401, reason.to_owned()));
    }
    let not_provided = (
        4401,
        "not_authenticated: Authentication credentials were not provided.".to_owned(),
    );
    // An empty first message carries no token.
    let mut empty = connect(&server, "", None).await;
    empty.send(Message::text("")).await.expect("send");
    assert_eq!(closed(&mut empty).await, not_provided);
    // Nothing at all: closed when the first-message wait (10 seconds) is over.
    let mut silent = connect(&server, "", None).await;
    assert_eq!(closed(&mut silent).await, not_provided);
    server.stop().await;
}

#[tokio::test]
async fn a_deactivated_user_is_closed_with_the_reason() {
    let server = TestServer::start().await;
    let user = server.create_user("ann", PASSWORD).await;
    let access = server.sign(claims("access", &user.id.to_string(), 300));
    server
        .store()
        .set_active(user.id, false)
        .await
        .expect("deactivated");
    let mut socket = connect(&server, &format!("?token={access}"), None).await;
    assert_eq!(
        closed(&mut socket).await,
        (4401, "user_inactive: User is inactive".to_owned())
    );
    server.stop().await;
}

#[tokio::test]
async fn a_plain_request_gets_426_with_a_json_body() {
    let server = TestServer::start().await;
    let (status, body) = server.get("/ws/echo/", None).await;
    assert_eq!(status, StatusCode::UPGRADE_REQUIRED);
    assert_eq!(
        body,
        json!({"detail": "This endpoint speaks WebSocket: send an upgrade request."})
    );
    server.stop().await;
}
