//! A small GraphQL client for tests: queries and mutations over HTTP, subscriptions over
//! `graphql-transport-ws` (the protocol the npm `graphql-ws` client speaks).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// POSTs a GraphQL request to `url` (`http://…/graphql`) as `user`; returns the whole response.
pub async fn gql(
    http: &reqwest::Client,
    url: &str,
    user: Option<&str>,
    query: &str,
    variables: Value,
) -> Value {
    let mut req = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(user) = user {
        req = req.bearer_auth(super::token_for(user));
    }
    let resp = match req.send().await {
        Ok(resp) => resp,
        Err(e) => return json!({ "transport_error": e.to_string() }),
    };
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    // A proxy in front of a dying gateway answers with its own error page: report it as such.
    serde_json::from_str(&text).unwrap_or_else(|_| json!({ "http_status": status, "body": text }))
}

/// The `extensions.code` of the first error, if any.
pub fn error_code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

/// Adds a comment through the gateway; returns (comment id, whole response).
pub async fn add_comment(
    http: &reqwest::Client,
    url: &str,
    post: &str,
    body: &str,
    wait: bool,
) -> (String, Value) {
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($input: AddCommentInput!, $wait: Boolean) { addComment(input: $input, waitForProjection: $wait) { comment { id } position } }",
        json!({ "input": { "postId": post, "body": body }, "wait": wait }),
    )
    .await;
    let id = r["data"]["addComment"]["comment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (id, r)
}

/// The cursor to subscribe to `post`'s comment events from, read with the post as the web UI
/// reads it: a subscription from it misses nothing written after this read.
pub async fn comment_events_cursor(http: &reqwest::Client, url: &str, post: &str) -> String {
    let r = gql(
        http,
        url,
        None,
        "query($id: ID) { post(id: $id) { commentEventsCursor } }",
        json!({ "id": post }),
    )
    .await;
    r["data"]["post"]["commentEventsCursor"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned()
}

/// Creates and publishes a post through the gateway; returns its id.
pub async fn published_post(http: &reqwest::Client, url: &str) -> String {
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
        json!({ "input": { "title": "Live post", "body": "Hello", "slug": super::unique("live").replace('_', "-") } }),
    )
    .await;
    let id = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{r}"))
        .to_owned();
    let r = gql(
        http,
        url,
        Some(super::AUTHOR),
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { post { status } } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        r["data"]["publishPost"]["post"]["status"], "PUBLISHED",
        "{r}"
    );
    id
}

/// The subscription document the tests use.
pub const COMMENT_EVENTS: &str = "subscription($postId: ID!, $after: String) { commentEvents(postId: $postId, after: $after) { kind cursor comment { id body postId } } }";

/// A `graphql-transport-ws` connection.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a subscription yielded.
#[derive(Debug)]
pub enum WsEvent {
    /// A `next` message's payload.
    Next(String, Value),
    /// An `error` message's payload.
    Error(String, Value),
    /// A `complete` message.
    Complete(String),
    /// The server closed the connection (code, reason).
    Closed(Option<u16>, String),
}

impl WsClient {
    /// Connects to `url` (`ws://…/graphql`) and completes the `connection_init` handshake.
    pub async fn connect(url: &str) -> Self {
        Self::try_connect(url)
            .await
            .unwrap_or_else(|e| panic!("WebSocket to {url}: {e}"))
    }

    /// Like [`WsClient::connect`], but reports failure instead of panicking.
    pub async fn try_connect(url: &str) -> Result<Self, String> {
        Self::connect_with(url, json!({})).await
    }

    /// Opens the WebSocket, speaking graphql-transport-ws, without `connection_init`.
    pub async fn open(url: &str) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { ws })
    }

    /// Connects with `payload` in `connection_init`; `Err` with the close frame when refused.
    pub async fn connect_with(url: &str, payload: Value) -> Result<Self, String> {
        let mut client = Self::open(url).await?;
        client
            .send(json!({ "type": "connection_init", "payload": payload }))
            .await;
        match tokio::time::timeout(Duration::from_secs(10), client.ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) if t.contains("connection_ack") => Ok(client),
            other => Err(format!("no connection_ack: {other:?}")),
        }
    }

    /// Sends a raw JSON message.
    pub async fn send(&mut self, message: Value) {
        let _ = self
            .ws
            .send(Message::Text(message.to_string().into()))
            .await;
    }

    /// Sends raw text (for garbage-frame tests).
    pub async fn send_text(&mut self, text: &str) {
        let _ = self.ws.send(Message::Text(text.to_owned().into())).await;
    }

    /// Subscribes to the comment events of `post` under operation `id`.
    pub async fn subscribe(&mut self, id: &str, post: &str, after: Option<&str>) {
        self.send(json!({
            "id": id, "type": "subscribe",
            "payload": { "query": COMMENT_EVENTS, "variables": { "postId": post, "after": after } }
        }))
        .await;
    }

    /// The next message from the server as JSON, or how the connection ended (close code and
    /// reason); `None` after `within`.
    pub async fn message(
        &mut self,
        within: Duration,
    ) -> Option<Result<Value, (Option<u16>, String)>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            match msg {
                None => return Some(Err((None, String::new()))),
                Some(Err(e)) => return Some(Err((None, e.to_string()))),
                Some(Ok(Message::Close(frame))) => {
                    return Some(Err((
                        frame.as_ref().map(|f| u16::from(f.code)),
                        frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    )));
                }
                Some(Ok(Message::Text(t))) => {
                    return Some(Ok(serde_json::from_str(&t).expect("server sends JSON")));
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// The next subscription message, answering pings; `None` after `within`.
    pub async fn next(&mut self, within: Duration) -> Option<WsEvent> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = match self.message(left).await? {
                Ok(v) => v,
                Err((code, reason)) => return Some(WsEvent::Closed(code, reason)),
            };
            let id = v["id"].as_str().unwrap_or_default().to_owned();
            match v["type"].as_str() {
                Some("next") => return Some(WsEvent::Next(id, v["payload"].clone())),
                Some("error") => return Some(WsEvent::Error(id, v["payload"].clone())),
                Some("complete") => return Some(WsEvent::Complete(id)),
                Some("ping") => self.send(json!({ "type": "pong" })).await,
                _ => {}
            }
        }
    }
}

/// (kind, comment id, cursor) of a `next` payload of [`COMMENT_EVENTS`].
pub fn comment_event(payload: &Value) -> (String, String, String) {
    let e = &payload["data"]["commentEvents"];
    (
        e["kind"]
            .as_str()
            .unwrap_or_else(|| panic!("not a comment event: {payload}"))
            .to_owned(),
        e["comment"]["id"].as_str().unwrap_or_default().to_owned(),
        e["cursor"].as_str().unwrap_or_default().to_owned(),
    )
}

/// The comment ids of a `comments { edges { node { id } } }` answer, in order.
pub fn comment_ids(r: &Value) -> Vec<String> {
    r["data"]["comments"]["edges"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .map(|e| e["node"]["id"].as_str().expect("id").to_owned())
        .collect()
}
