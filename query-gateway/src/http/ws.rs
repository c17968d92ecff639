//! The `graphql-transport-ws` protocol (the one the web UI's `graphql-ws` client speaks),
//! served here rather than by async-graphql so that a shared event goes out as the bytes the
//! group serialised once: per subscriber, a `next` frame is its id spliced around them.
//!
//! Behaviour follows the protocol (github.com/enisdenjo/graphql-ws, PROTOCOL.md) exactly:
//! `connection_ack` after a good `connection_init`, 4403 `Forbidden` after one with bad
//! credentials, 4429 after a second one, 4408 when none came in time; `pong` for `ping`, before
//! the ack too; `next` for each response and `complete` at the end of each stream, or a single
//! `error` message (and no `complete`) when the operation fails validation; `subscribe` before
//! the ack closes with 4401, a duplicate id with 4409; a message that is not JSON, has an
//! unknown `type` or lacks a field closes with 4400. Close reasons are cut to 123 bytes, the
//! room RFC 6455 leaves in a close frame. A client silent for the keep-alive timeout is closed
//! with 3008.

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Data;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::json;
use tokio_stream::StreamMap;

use crate::live::fanout::{LiveExecutor, Outgoing, OutgoingStream};

/// How long a client may take to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until either side closes it. `init` turns the `connection_init`
/// payload into the connection's data, or the reason to refuse it.
///
/// This future lives as long as the connection, once per subscriber: what happens to a client's
/// message is decided in [`Connection::on_message`], a plain function, so the parsed message and
/// its temporaries never take room in the state kept across waits.
pub async fn serve<I, E>(mut socket: WebSocket, live: LiveExecutor, keepalive: Duration, init: I)
where
    I: FnOnce(serde_json::Value) -> Result<Data, E>,
{
    // Not split: each branch's future is dropped before its handler runs, so the handlers may
    // send on the socket the `recv` branch was reading from, with no lock between two halves.
    let mut connection = Connection {
        live,
        init: Some(init),
        data: None,
        streams: StreamMap::new(),
    };
    // One timer: until `connection_init`, its deadline; then the keep-alive.
    let deadline = tokio::time::sleep(INIT_TIMEOUT.min(keepalive));
    tokio::pin!(deadline);
    // Frames written to the socket's buffer but not yet to the socket.
    let mut unflushed = 0;
    loop {
        let step = tokio::select! {
            // Outgoing frames first: a delivery wakes this task, and when its frame is ready the
            // socket's read side is not polled for nothing.
            biased;
            Some((_, text)) = connection.streams.next(), if !connection.streams.is_empty() => {
                Step::Deliver(text)
            }
            // No other frame is ready: send what was buffered, in one write.
            () = std::future::ready(()), if unflushed > 0 => Step::Flush,
            message = socket.recv() => {
                // Any message but a WebSocket ping or pong shows the client is alive.
                let alive = matches!(message, Some(Ok(Message::Text(_) | Message::Binary(_))));
                let step = connection.on_message(message);
                if alive && connection.data.is_some() {
                    deadline.as_mut().reset(tokio::time::Instant::now() + keepalive);
                }
                step
            }
            () = &mut deadline => match connection.data {
                None => Step::Close(4408, "Connection initialisation timeout".into()),
                Some(_) => Step::Close(3008, "timeout".into()),
            },
        };
        match step {
            // A subscriber that fell a few events behind (a burst, a busy machine) catches up
            // with one write and one packet for all of them rather than one each.
            Step::Deliver(text) => {
                if socket.feed(Message::Text(text.into())).await.is_err() {
                    return;
                }
                unflushed += 1;
                if unflushed == MAX_UNFLUSHED {
                    unflushed = 0;
                    if socket.flush().await.is_err() {
                        return;
                    }
                }
            }
            Step::Flush => {
                unflushed = 0;
                if socket.flush().await.is_err() {
                    return;
                }
            }
            Step::Send(text) => {
                unflushed = 0;
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            Step::Nothing => {}
            Step::Close(code, reason) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: close_reason(&reason).into(),
                    })))
                    .await;
                return;
            }
            Step::Quit => return,
        }
    }
}

/// Most bytes of a close frame's reason: a control frame carries 125 bytes, two of them the code.
pub const MAX_CLOSE_REASON: usize = 123;

/// `reason` cut at a character boundary to fit a close frame.
fn close_reason(reason: &str) -> &str {
    if reason.len() <= MAX_CLOSE_REASON {
        return reason;
    }
    let mut end = MAX_CLOSE_REASON;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

/// A client's message, as graphql-transport-ws names them (and nothing else).
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    ConnectionInit {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Ping {
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Pong {
        #[allow(dead_code)]
        #[serde(default)]
        payload: Option<serde_json::Value>,
    },
    Subscribe {
        id: String,
        // Boxed: a request is large, and the other messages are small.
        payload: Box<async_graphql::Request>,
    },
    Complete {
        id: String,
    },
}

/// Why a message could not be read, in words short enough for a close frame.
fn unreadable(text: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(text) else {
        return "Invalid message received: not JSON".to_owned();
    };
    const KNOWN: [&str; 5] = ["connection_init", "ping", "pong", "subscribe", "complete"];
    match value.get("type").and_then(serde_json::Value::as_str) {
        None => "Invalid message received: no type".to_owned(),
        Some(kind) if !KNOWN.contains(&kind) => "Invalid message received: unknown type".to_owned(),
        Some(kind) => format!("Invalid message received: malformed {kind}"),
    }
}

/// Most frames buffered before a write: few, as the buffer keeps the room it grew to.
pub const MAX_UNFLUSHED: usize = 4;

/// What the connection does next.
enum Step {
    /// Buffer a subscription's frame; it goes out when no other is ready.
    Deliver(String),
    /// Write the buffered frames.
    Flush,
    /// Send this message now (with any buffered before it).
    Send(String),
    Nothing,
    /// Close with this code and reason.
    Close(u16, String),
    /// Stop without a word (the client closed, or asked to terminate).
    Quit,
}

/// A connection's state between messages.
struct Connection<I> {
    live: LiveExecutor,
    init: Option<I>,
    data: Option<Arc<Data>>,
    /// Per subscription, the messages to send.
    streams: StreamMap<String, Frames>,
}

/// A subscription's messages: its `next` frames, then its `complete`. Written out rather than
/// `map(..).chain(..)` in a box: each delivery polls through it.
struct Frames {
    outgoing: OutgoingStream,
    /// The `next` frame's opening.
    prefix: String,
    /// The `complete` frame, until sent.
    complete: Option<String>,
    /// Until the first response went out: a first response that is a request error becomes
    /// an `error` message instead.
    first: bool,
}

impl futures::Stream for Frames {
    type Item = String;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<String>> {
        let this = self.get_mut();
        if this.complete.is_none() {
            // Done: the responses ended and `complete` went out.
            return std::task::Poll::Ready(None);
        }
        std::task::Poll::Ready(match std::task::ready!(this.outgoing.poll_next_unpin(cx)) {
            Some(outgoing) => {
                if std::mem::take(&mut this.first)
                    && let Outgoing::Own(response) = &outgoing
                    && crate::http::graphql::is_request_error(response)
                {
                    // The operation never started: `error`, and no `complete` after it.
                    this.complete = None;
                    return std::task::Poll::Ready(Some(error_frame(&this.prefix, response)));
                }
                Some(next_frame(&this.prefix, &outgoing))
            }
            None => this.complete.take(),
        })
    }
}

impl<I, E> Connection<I>
where
    I: FnOnce(serde_json::Value) -> Result<Data, E>,
{
    fn on_message(&mut self, message: Option<Result<Message, axum::Error>>) -> Step {
        let text = match &message {
            Some(Ok(Message::Text(t))) => std::borrow::Cow::Borrowed(t.as_str()),
            Some(Ok(Message::Binary(b))) => String::from_utf8_lossy(b),
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => return Step::Nothing,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return Step::Quit,
        };
        let message: ClientMessage = match serde_json::from_str(&text) {
            Ok(m) => m,
            Err(_) => return Step::Close(4400, unreadable(&text)),
        };
        match message {
            ClientMessage::ConnectionInit { payload } => {
                let payload = match payload {
                    None | Some(serde_json::Value::Null) => {
                        serde_json::Value::Object(Default::default())
                    }
                    Some(p @ serde_json::Value::Object(_)) => p,
                    Some(_) => {
                        return Step::Close(
                            4400,
                            "Invalid message received: the connection_init payload must be an object"
                                .into(),
                        );
                    }
                };
                let Some(init) = self.init.take() else {
                    return Step::Close(4429, "Too many initialisation requests".into());
                };
                match init(payload) {
                    Ok(d) => {
                        self.data = Some(Arc::new(d));
                        Step::Send(json!({ "type": "connection_ack" }).to_string())
                    }
                    Err(_) => Step::Close(4403, "Forbidden".into()),
                }
            }
            ClientMessage::Subscribe { id, payload } => {
                if payload.query.trim().is_empty() {
                    return Step::Close(
                        4400,
                        "Invalid message received: subscribe without a query".into(),
                    );
                }
                let Some(data) = &self.data else {
                    return Step::Close(4401, "Unauthorized".into());
                };
                if self.streams.contains_key(&id) {
                    return Step::Close(4409, format!("Subscriber for {id} already exists"));
                }
                // The `next` frame's opening (`{"type":"next","id":…,"payload":`), once.
                let prefix = format!(
                    "{{\"type\":\"next\",\"id\":{},\"payload\":",
                    serde_json::Value::String(id.clone())
                );
                let complete = json!({ "type": "complete", "id": id }).to_string();
                let frames = Frames {
                    outgoing: self.live.execute_outgoing(*payload, data.clone()),
                    prefix,
                    complete: Some(complete),
                    first: true,
                };
                self.streams.insert(id, frames);
                Step::Nothing
            }
            ClientMessage::Complete { id } => {
                self.streams.remove(&id);
                Step::Nothing
            }
            ClientMessage::Ping { payload } => Step::Send(
                match payload {
                    Some(p) => json!({ "type": "pong", "payload": p }),
                    None => json!({ "type": "pong" }),
                }
                .to_string(),
            ),
            ClientMessage::Pong { .. } => Step::Nothing,
        }
    }
}

/// An `error` message for the subscription whose `next` frames open with `prefix`.
fn error_frame(prefix: &str, response: &async_graphql::Response) -> String {
    let errors = serde_json::to_string(&response.errors).unwrap_or_else(|_| "[]".to_owned());
    let opening = prefix.replacen("\"type\":\"next\"", "\"type\":\"error\"", 1);
    format!("{opening}{errors}}}")
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
