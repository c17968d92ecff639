//! The `graphql-transport-ws` protocol (the one the web UI's `graphql-ws` client speaks),
//! served here rather than by async-graphql so that a shared event goes out as the bytes the
//! group serialised once: per subscriber, a `next` frame is its id spliced around them.
//!
//! Behaviour follows the protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md) as async-graphql
//! served it before: `connection_ack` after a good `connection_init` (closed with 1002 and the
//! reason after a bad one, 4429 after a second one, 4408 when none came in time); `pong` for
//! `ping`; `next` for each response, `complete` at the end of each stream; `subscribe` before
//! the ack closes with 4401, a duplicate id with 4409, an unreadable message with 1002 (as before,
//! where the protocol suggests 4400); a client
//! silent for the keep-alive timeout is closed with 3008.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ClientMessage;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::json;
use tokio_stream::StreamMap;

use crate::fanout::{LiveExecutor, Outgoing};

/// How long a client may take to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until either side closes it. `init` turns the `connection_init`
/// payload into the connection's data, or the reason to refuse it.
pub async fn serve(
    mut socket: WebSocket,
    live: LiveExecutor,
    keepalive: Duration,
    init: impl FnOnce(serde_json::Value) -> Result<Data, String>,
) {
    // Not split: each branch's future is dropped before its handler runs, so the handlers may
    // send on the socket the `recv` branch was reading from, with no lock between two halves.
    let mut init = Some(init);
    let mut data: Option<Arc<Data>> = None;
    // Per subscription, the messages to send: its `next` frames, then its `complete`.
    let mut streams: StreamMap<String, BoxStream<'static, String>> = StreamMap::new();
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    let idle = tokio::time::sleep(keepalive);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            // Outgoing frames first: a delivery wakes this task, and when its frame is ready the
            // socket's read side is not polled for nothing.
            biased;
            Some((_, text)) = streams.next(), if !streams.is_empty() => {
                if send(&mut socket, text).await.is_err() {
                    return;
                }
            }
            message = socket.recv() => {
                let text = match message {
                    Some(Ok(Message::Text(t))) => t.as_str().to_owned(),
                    Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(&b).into_owned(),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                idle.as_mut().reset(tokio::time::Instant::now() + keepalive);
                let message: ClientMessage = match serde_json::from_str(&text) {
                    Ok(m) => m,
                    Err(e) => return close(&mut socket, 1002, &e.to_string()).await,
                };
                match message {
                    ClientMessage::ConnectionInit { payload } => {
                        let Some(init) = init.take() else {
                            return close(&mut socket, 4429, "Too many initialisation requests.").await;
                        };
                        match init(payload.unwrap_or_default()) {
                            Ok(d) => {
                                data = Some(Arc::new(d));
                                if send(&mut socket, json!({ "type": "connection_ack" }).to_string()).await.is_err() {
                                    return;
                                }
                            }
                            Err(reason) => return close(&mut socket, 1002, &reason).await,
                        }
                    }
                    ClientMessage::Start { id, payload } => {
                        let Some(data) = &data else {
                            return close(&mut socket, 4401, "Unauthorized").await;
                        };
                        if streams.contains_key(&id) {
                            let reason = format!("Subscriber for {id} already exists");
                            return close(&mut socket, 4409, &reason).await;
                        }
                        // The `next` frame's opening (`{"type":"next","id":…,"payload":`), once.
                        let prefix = format!(
                            "{{\"type\":\"next\",\"id\":{},\"payload\":",
                            serde_json::Value::String(id.clone())
                        );
                        let complete = json!({ "type": "complete", "id": id }).to_string();
                        let stream = live
                            .execute_outgoing(payload, data.clone())
                            .map(move |outgoing| next_frame(&prefix, &outgoing))
                            .chain(futures::stream::once(async move { complete }))
                            .boxed();
                        streams.insert(id, stream);
                    }
                    ClientMessage::Stop { id } => {
                        streams.remove(&id);
                    }
                    ClientMessage::ConnectionTerminate => return,
                    ClientMessage::Ping { payload } => {
                        let pong = match payload {
                            Some(p) => json!({ "type": "pong", "payload": p }),
                            None => json!({ "type": "pong" }),
                        };
                        if send(&mut socket, pong.to_string()).await.is_err() {
                            return;
                        }
                    }
                    ClientMessage::Pong { .. } => {}
                }
            }
            () = &mut init_deadline, if data.is_none() => {
                return close(&mut socket, 4408, "Connection initialisation timeout").await;
            }
            () = &mut idle => return close(&mut socket, 3008, "timeout").await,
        }
    }
}

/// A `next` message: `prefix`, the payload, `}`.
fn next_frame(prefix: &str, outgoing: &Outgoing) -> String {
    let own;
    let payload: &[u8] = match outgoing {
        Outgoing::Shared(frame) => frame.payload(),
        Outgoing::Own(response) => {
            own = serde_json::to_vec(response).unwrap_or_else(|_| b"null".to_vec());
            &own
        }
    };
    let mut text = String::with_capacity(prefix.len() + payload.len() + 1);
    text.push_str(prefix);
    // Serialised by serde_json: UTF-8.
    text.push_str(std::str::from_utf8(payload).unwrap_or("null"));
    text.push('}');
    text
}

async fn send(socket: &mut WebSocket, text: String) -> Result<(), axum::Error> {
    socket.send(Message::Text(text.into())).await
}

async fn close(socket: &mut WebSocket, code: u16, reason: &str) {
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
}
