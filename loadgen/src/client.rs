//! The one GraphQL client of the load tools and the integration tests: requests over HTTP, and
//! subscriptions over `graphql-transport-ws` (the protocol the npm `graphql-ws` client speaks),
//! either as a [`WsClient`] that reads message by message or, for thousands of subscribers, as a
//! bare stream with small buffers ([`subscribe`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A WebSocket to a gateway.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// POSTs a GraphQL request to `url` (`http://…/graphql`) with `token` as its bearer; the whole
/// answer, errors included. An answer that is not JSON (a proxy's error page) comes back as
/// `{"http_status", "body"}`.
///
/// # Errors
/// When the request does not reach the server or its answer is cut.
pub async fn request(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    query: &str,
    variables: Value,
) -> Result<Value, reqwest::Error> {
    let mut request = http
        .post(url)
        .json(&json!({ "query": query, "variables": variables }));
    if let Some(token) = token.filter(|t| !t.is_empty()) {
        request = request.bearer_auth(token);
    }
    let response = request.send().await?;
    let status = response.status().as_u16();
    let text = response.text().await?;
    Ok(serde_json::from_str(&text)
        .unwrap_or_else(|_| json!({ "http_status": status, "body": text })))
}

/// [`request`], with a GraphQL error or a non-GraphQL answer as an error.
///
/// # Errors
/// As [`request`], and when the answer carries `errors` or is not GraphQL.
pub async fn gql(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    query: &str,
    variables: Value,
) -> anyhow::Result<Value> {
    let r = request(http, url, Some(token), query, variables).await?;
    if let Some(status) = r.get("http_status") {
        // A proxy's refusal (nginx's 429) or an error page.
        anyhow::bail!("HTTP {status} without a GraphQL answer");
    }
    if r.get("errors").is_some() {
        anyhow::bail!("GraphQL error: {r}");
    }
    Ok(r)
}

/// The `extensions.code` of the first error, if any.
#[must_use]
pub fn error_code(response: &Value) -> Option<&str> {
    response["errors"][0]["extensions"]["code"].as_str()
}

/// Signs `username` in; returns the token.
///
/// # Errors
/// When the sign-in is refused.
pub async fn sign_in(
    http: &reqwest::Client,
    url: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<String> {
    let r = gql(
        http,
        url,
        "",
        "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
        json!({ "u": username, "p": password }),
    )
    .await?;
    r["data"]["login"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no token: {r}"))
}

/// Creates and publishes a post ("Bench post") as `token`'s author, waiting until queries show
/// it; its id and slug.
///
/// # Errors
/// When either mutation is refused.
pub async fn published_post(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> anyhow::Result<(String, String)> {
    let slug = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let r = gql(
        http,
        url,
        token,
        "mutation($input: CreatePostInput!) { createPost(input: $input) { post { id } } }",
        json!({ "input": { "title": "Bench post", "body": "A post with a *little* markdown.", "slug": slug, "tags": ["bench"] } }),
    )
    .await?;
    let id = r["data"]["createPost"]["post"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    gql(
        http,
        url,
        token,
        "mutation($id: ID!) { publishPost(id: $id, waitForProjection: true) { position } }",
        json!({ "id": id }),
    )
    .await?;
    Ok((id, slug))
}

/// A WebSocket to `url` speaking `graphql-transport-ws`, initialised, with `payload` subscribed
/// as operation `1`; the `connection_ack` is for the caller to read.
///
/// # Errors
/// When the connection cannot be opened.
pub async fn subscribe(url: &str, payload: &Value) -> anyhow::Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "graphql-transport-ws".parse()?);
    // Thousands of these run at once: a small read buffer (the default is 128 KiB, zeroed as it
    // is used) keeps the load generator from measuring its own memset.
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, _) =
        tokio_tungstenite::connect_async_with_config(request, Some(config), true).await?;
    ws.send(Message::Text(
        json!({ "type": "connection_init" }).to_string().into(),
    ))
    .await?;
    ws.send(Message::Text(
        json!({ "type": "subscribe", "id": "1", "payload": payload })
            .to_string()
            .into(),
    ))
    .await?;
    Ok(ws)
}

/// A tick every 10 s, to ping on: the gateway closes a graphql-transport-ws connection that says
/// nothing for 30 s (the web UI pings every 15 s).
#[must_use]
pub fn keepalive() -> tokio::time::Interval {
    let mut every = tokio::time::interval(Duration::from_secs(10));
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every
}

/// The graphql-transport-ws `ping` message.
#[must_use]
pub fn ping() -> Message {
    Message::Text(json!({ "type": "ping" }).to_string().into())
}

/// Waits until `ready` counts `want` acknowledged subscriber connections.
///
/// # Errors
/// When fewer connected `within`.
pub async fn wait_connected(
    ready: &AtomicU64,
    want: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    while ready.load(Ordering::Relaxed) < want as u64 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {} of {want} subscribers connected",
            ready.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// The comment-events subscription the tests and [`WsClient::subscribe`] use.
pub const COMMENT_EVENTS: &str = "subscription($postId: ID!, $after: String) { commentEvents(postId: $postId, after: $after) { kind cursor comment { id body postId } } }";

/// A `graphql-transport-ws` connection read message by message.
pub struct WsClient {
    ws: Socket,
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
    ///
    /// # Errors
    /// When the connection fails or is not acknowledged.
    pub async fn connect(url: &str) -> Result<Self, String> {
        Self::connect_with(url, json!({})).await
    }

    /// Opens the WebSocket, speaking graphql-transport-ws, without `connection_init`.
    ///
    /// # Errors
    /// When the connection fails.
    pub async fn open(url: &str) -> Result<Self, String> {
        let mut request = url.into_client_request().map_err(|e| e.to_string())?;
        request.headers_mut().insert(
            "sec-websocket-protocol",
            tokio_tungstenite::tungstenite::http::HeaderValue::from_static("graphql-transport-ws"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self { ws })
    }

    /// Connects with `payload` in `connection_init`.
    ///
    /// # Errors
    /// With the close frame (or whatever came instead of `connection_ack`) when refused.
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

    /// Sends a JSON message (a failed send shows as the connection's end on the next read).
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

    /// Subscribes to the comment events of `post` under operation `id` ([`COMMENT_EVENTS`]).
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
                    return Some(
                        serde_json::from_str(&t)
                            .map_err(|e| (None, format!("not JSON ({e}): {t}"))),
                    );
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
