//! `/graphql` over HTTP and the WebSocket upgrade, as the GraphQL-over-HTTP specification
//! (GraphQL Foundation working draft) and graphql-transport-ws say.
//!
//! - `POST` takes `application/json` only (`charset=utf-8` or none). Every other content type,
//!   or none, is refused with 415 before anything runs: `text/plain`, form and multipart
//!   bodies are what a page on another site can make a browser send without a CORS preflight,
//!   so accepting them would let any page write as its visitors.
//! - `GET ?query=` executes queries and refuses mutations and subscriptions with 405; a browser's
//!   `GET` without a query gets GraphiQL, served from the web UI's own files.
//! - The answer's media type follows `Accept`: `application/graphql-response+json` when asked
//!   for (then a request error, one that stops execution before it starts, is a 400 with no
//!   `data` entry), else `application/json` (request errors are 200, as that media type's
//!   clients expect). Anything else acceptable to the client is 406.
//! - `Authorization`: none, or `Bearer` with nothing after it, is anonymous; another scheme is
//!   400 `BAD_REQUEST`; a token that is not ours or expired is 401 `UNAUTHENTICATED`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::ErrorExtensions;
use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, WebSocketProtocols};
use async_graphql::parser::types::OperationType;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{ConnectInfo, FromRequestParts, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use command_api::auth::{Authorization, Refused, TokenKeys};
use futures::future::BoxFuture;
use serde_json::json;
use tracing::Instrument;

use super::{HttpState, ws};
use crate::caller::Caller;
use crate::{BODY_LIMIT, WS_MESSAGE_LIMIT};

/// RFC 9110's answer to a 415: what a POST may send.
const ACCEPT_POST: header::HeaderName = header::HeaderName::from_static("accept-post");

/// The GraphQL-over-HTTP media type of responses.
pub const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// Which media type an answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphqlResponse,
    /// `application/json`: every well-formed request gets 200.
    Json,
}

impl MediaType {
    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
            Self::Json => "application/json; charset=utf-8",
        })
    }

    /// The media type `Accept` prefers among ours: the highest `q`, the first on a tie; no
    /// header is `application/json`. `None`: the client accepts neither.
    #[must_use]
    pub fn negotiate(headers: &HeaderMap) -> Option<Self> {
        let mut ranges = headers.get_all(header::ACCEPT).iter().peekable();
        if ranges.peek().is_none() {
            return Some(Self::Json);
        }
        let mut best: Option<(f32, Self)> = None;
        for range in ranges
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
        {
            let mut params = range.split(';');
            let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = params
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let ours = match media.as_str() {
                GRAPHQL_RESPONSE_JSON => Self::GraphqlResponse,
                "application/json" | "application/*" | "*/*" => Self::Json,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, ours));
            }
        }
        best.map(|(_, m)| m)
    }
}

/// Whether a POST body's `Content-Type` is one we execute: `application/json`, in UTF-8.
#[must_use]
pub fn executable_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json") {
        return false;
    }
    parts.all(|p| match p.split_once('=') {
        Some((name, charset)) if name.trim().eq_ignore_ascii_case("charset") => charset
            .trim()
            .trim_matches('"')
            .eq_ignore_ascii_case("utf-8"),
        _ => true,
    })
}

/// Why a request's credentials were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadCredentials {
    /// `Authorization` is not `Bearer <token>`.
    Malformed,
    /// The token is not one of ours.
    Invalid,
    /// The token was ours but has expired.
    Expired,
}

impl BadCredentials {
    fn code(self) -> &'static str {
        match self {
            Self::Malformed => "BAD_REQUEST",
            Self::Invalid | Self::Expired => "UNAUTHENTICATED",
        }
    }

    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "MALFORMED_AUTHORIZATION",
            Self::Invalid => "INVALID_TOKEN",
            Self::Expired => "TOKEN_EXPIRED",
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Malformed => {
                "the Authorization header must be `Bearer <access token>` (or absent to read anonymously)"
            }
            Self::Invalid => "invalid access token; sign in again",
            Self::Expired => "access token expired; refresh it or sign in again",
        }
    }

    /// Its HTTP status and the `WWW-Authenticate` challenge RFC 6750 asks for.
    pub(crate) fn status_and_challenge(self) -> (StatusCode, &'static str) {
        match self {
            Self::Malformed => (StatusCode::BAD_REQUEST, "Bearer error=\"invalid_request\""),
            Self::Invalid => (StatusCode::UNAUTHORIZED, "Bearer error=\"invalid_token\""),
            Self::Expired => (
                StatusCode::UNAUTHORIZED,
                "Bearer error=\"invalid_token\", error_description=\"expired\"",
            ),
        }
    }

    /// The HTTP answer, with the `WWW-Authenticate` challenge.
    fn into_response(self) -> Response {
        let (status, challenge) = self.status_and_challenge();
        let mut response = error_response(status, self.code(), self.message());
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
        response
    }

    /// As a GraphQL error (refusing a WebSocket's `connection_init`).
    pub(crate) fn into_graphql_error(self) -> async_graphql::Error {
        async_graphql::Error::new(self.message()).extend_with(|_, e| {
            e.set("code", self.code());
            e.set("reason", self.reason());
        })
    }
}

/// Fills `caller` from an `Authorization` value (a header, or the `connection_init` field).
pub(crate) fn authenticate(
    keys: &TokenKeys,
    authorization: Option<&str>,
    caller: &mut Caller,
) -> Result<(), BadCredentials> {
    let token = match authorization.map(Authorization::parse) {
        None | Some(Authorization::Anonymous) => return Ok(()),
        Some(Authorization::Malformed) => return Err(BadCredentials::Malformed),
        Some(Authorization::Bearer(token)) => token,
    };
    let claims = keys.verify(token).map_err(|e| match e {
        Refused::Expired => BadCredentials::Expired,
        Refused::Invalid => BadCredentials::Invalid,
    })?;
    caller.user_id = Some(claims.sub.to_string());
    caller.name = Some(claims.name);
    caller.username = Some(claims.username);
    caller.roles = claims.roles;
    caller.auth_time = Some(claims.auth_time);
    Ok(())
}

/// Whether a request reads anonymously (so its answer may come from, and go to, the page cache).
fn anonymous(headers: &HeaderMap) -> bool {
    match headers.get(header::AUTHORIZATION) {
        None => true,
        Some(v) => v
            .to_str()
            .is_ok_and(|v| Authorization::parse(v) == Authorization::Anonymous),
    }
}

/// The client's address: the peer, or, when the peer is a proxy on loopback (nginx), the last
/// address in its `X-Forwarded-For`.
fn client_address(headers: &HeaderMap, peer: Option<SocketAddr>) -> Option<String> {
    let forwarded = headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty());
    match peer {
        Some(peer) if !peer.ip().is_loopback() => Some(peer.ip().to_string()),
        Some(peer) => forwarded.or_else(|| Some(peer.ip().to_string())),
        None => forwarded,
    }
}

/// The caller of an HTTP request (or WebSocket upgrade): its address, and its identity when it
/// sent a valid token; refused when it sent a bad one. Identity headers a client sends are
/// ignored: what the command service learns of the caller is in the proof signed for it.
pub(crate) fn authenticated_caller(
    keys: &TokenKeys,
    parts: &axum::http::request::Parts,
) -> Result<Caller, BadCredentials> {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let get = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut who = Caller {
        request_id: get("x-request-id"),
        traceparent: get("traceparent"),
        client: client_address(&parts.headers, peer),
        ..Caller::default()
    };
    let authorization = match parts.headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => Some(v.to_str().map_err(|_| BadCredentials::Malformed)?),
    };
    authenticate(keys, authorization, &mut who)?;
    Ok(who)
}

/// A request error's answer: `{"errors": [...]}` with a stable code.
pub(crate) fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, MediaType::Json.content_type())],
        json!({ "errors": [{ "message": message, "extensions": { "code": code } }] }).to_string(),
    )
        .into_response()
}

/// `POST /graphql`.
pub(crate) async fn graphql_post(
    State(state): State<Arc<HttpState>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    if !executable_content_type(&parts.headers) {
        // Before the body is read or anything runs: the cross-site forms and `text/plain`
        // posts a browser sends without asking are refused here.
        let mut response = error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "send GraphQL requests as Content-Type: application/json",
        );
        response
            .headers_mut()
            .insert(ACCEPT_POST, HeaderValue::from_static("application/json"));
        return response;
    }
    let Some(media) = MediaType::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT + 1).await else {
        return too_large();
    };
    if body.len() > BODY_LIMIT {
        return too_large();
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                &format!("not a GraphQL request: {e}"),
            );
        }
    };
    if request.query.trim().is_empty() {
        return missing_query();
    }
    // Anonymous reads of a post page are answered from the page cache when it has them: no
    // parsing, no execution, no database. A client that must not get a stored answer says so the
    // standard way (a browser's reload does); its fresh answer is stored for the others.
    let anonymous = anonymous(&parts.headers);
    let revalidate = parts
        .headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .chain(parts.headers.get_all(header::PRAGMA))
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("no-cache"));
    if anonymous
        && !revalidate
        && let Some(answer) = state.cache.get(&body)
    {
        return answer_bytes(media, StatusCode::OK, answer);
    }
    let cache_key = anonymous.then_some(body);
    execute(&state, &parts, request, media, cache_key).await
}

/// `GET /graphql`: a WebSocket upgrade, a query in the URL, or GraphiQL for a browser.
pub(crate) async fn graphql_get(State(state): State<Arc<HttpState>>, request: Request) -> Response {
    let (parts, _body) = request.into_parts();
    let upgrade = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if upgrade {
        return websocket(state, parts).await;
    }
    let params: Vec<(String, String)> =
        match axum::extract::Query::<Vec<(String, String)>>::try_from_uri(&parts.uri) {
            Ok(axum::extract::Query(params)) => params,
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "the query string is not form-encoded",
                );
            }
        };
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let Some(query) = param("query") else {
        let html = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"));
        if html {
            return graphiql();
        }
        return missing_query();
    };
    let Some(media) = MediaType::negotiate(&parts.headers) else {
        return not_acceptable();
    };
    let mut fields = serde_json::Map::new();
    fields.insert("query".into(), query.into());
    if let Some(name) = param("operationName").filter(|n| !n.is_empty()) {
        fields.insert("operationName".into(), name.into());
    }
    for name in ["variables", "extensions"] {
        let Some(raw) = param(name).filter(|v| !v.is_empty()) else {
            continue;
        };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(map @ serde_json::Value::Object(_)) => {
                fields.insert(name.into(), map);
            }
            _ => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("`{name}` must be a JSON object"),
                );
            }
        }
    }
    let request: async_graphql::Request =
        match serde_json::from_value(serde_json::Value::Object(fields)) {
            Ok(r) => r,
            Err(e) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    &format!("not a GraphQL request: {e}"),
                );
            }
        };
    // Only queries over GET: a link, an image or a prefetch must never change anything.
    if let Ok(doc) = async_graphql::parser::parse_query(query) {
        let operation = match &request.operation_name {
            Some(name) => doc
                .operations
                .iter()
                .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
                .map(|(_, op)| op.node.ty),
            None => doc.operations.iter().next().map(|(_, op)| op.node.ty),
        };
        if let Some(kind @ (OperationType::Mutation | OperationType::Subscription)) = operation {
            let what = if kind == OperationType::Mutation {
                "mutations"
            } else {
                "subscriptions (use the WebSocket)"
            };
            let mut response = error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                &format!("{what} are not run over GET; POST them as application/json"),
            );
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return response;
        }
    }
    execute(&state, &parts, request, media, None).await
}

/// Runs `request` for the caller of `parts`; stores a successful anonymous answer under
/// `cache_key` when the page cache takes it.
async fn execute(
    state: &HttpState,
    parts: &axum::http::request::Parts,
    request: async_graphql::Request,
    media: MediaType,
    cache_key: Option<axum::body::Bytes>,
) -> Response {
    let mut who = match authenticated_caller(&state.keys, parts) {
        Ok(who) => who,
        Err(bad) => return bad.into_response(),
    };
    // The request's span joins the client's trace (if it sent one) and is the parent of what the
    // command service does for it.
    let span = tracing::info_span!(
        "graphql.request",
        operation = request.operation_name.as_deref().unwrap_or("")
    );
    infra::telemetry::set_parent(&span, who.traceparent.as_deref());
    if let Some(traceparent) = infra::telemetry::traceparent_of(&span) {
        who.traceparent = Some(traceparent);
    }
    let mut request = crate::graphql::loaders::with_loaders(request.data(who), &state.read);
    let scope = if cache_key.is_some() {
        state.cache.scope()
    } else {
        None
    };
    if let Some(scope) = &scope {
        request = request.data(scope.clone());
    }
    let response = state.schema.execute(request).instrument(span).await;
    if let Some(status) = request_error(&response) {
        // Nothing ran: no `data` entry at all (the spec tells this apart from `data: null`).
        let body = json!({ "errors": response.errors }).to_string();
        let status = match media {
            MediaType::GraphqlResponse => status,
            MediaType::Json => StatusCode::OK,
        };
        return answer_bytes(media, status, body.into());
    }
    let Ok(answer) = serde_json::to_vec(&response) else {
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "the answer could not be written",
        );
    };
    let answer = axum::body::Bytes::from(answer);
    if let (Some(scope), Some(key)) = (scope, cache_key)
        && response.is_ok()
    {
        state.cache.put(key, answer.clone(), scope);
    }
    answer_bytes(media, StatusCode::OK, answer)
}

/// The status of a response that is a request error (the document did not parse or validate,
/// the variables did not fit, the request was refused before execution), or `None` when
/// execution began. Field errors always carry a path; request errors never do.
fn request_error(response: &async_graphql::Response) -> Option<StatusCode> {
    if !is_request_error(response) {
        return None;
    }
    let rate_limited = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|c| *c == async_graphql::Value::from("RATE_LIMITED"))
    });
    Some(if rate_limited {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::BAD_REQUEST
    })
}

/// Whether a response reports a request error: nothing executed, so no data and no error with a
/// path (field errors always have one). Over HTTP it is a 400; over graphql-transport-ws an
/// `error` message.
pub(crate) fn is_request_error(response: &async_graphql::Response) -> bool {
    response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty())
}

/// An answer already serialised, in `media`.
fn answer_bytes(media: MediaType, status: StatusCode, body: axum::body::Bytes) -> Response {
    (status, [(header::CONTENT_TYPE, media.content_type())], body).into_response()
}

fn too_large() -> Response {
    error_response(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        "request body too large",
    )
}

fn missing_query() -> Response {
    error_response(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        "no `query`: send {\"query\": \"...\"} as JSON, or ?query= in a GET",
    )
}

fn not_acceptable() -> Response {
    error_response(
        StatusCode::NOT_ACCEPTABLE,
        "NOT_ACCEPTABLE",
        "this endpoint answers application/graphql-response+json or application/json",
    )
}

/// GraphiQL, from the web UI's own files (`web/build/graphiql/`, bundled from npm at build
/// time): nothing is fetched from a CDN, so it works offline.
fn graphiql() -> Response {
    let mut response = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        GRAPHIQL_PAGE,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(GRAPHIQL_CSP),
    );
    response
}

/// GraphiQL's page: React, GraphiQL and graphql-ws from `/graphiql/` (the web UI's build), and
/// the script that starts it, also a file, so the policy needs no inline script.
const GRAPHIQL_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Inkwire GraphiQL</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<style>html,body,#graphiql{height:100%;margin:0}</style>
</head>
<body>
<div id="graphiql"><p style="font-family:sans-serif;padding:1em">Loading GraphiQL… (its files come with the web UI's build: <code>scripts/build-web.sh</code>)</p></div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphql-ws.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/start.js"></script>
</body>
</html>
"#;

/// GraphiQL's policy: its own origin only (it styles inline, and loads fonts as data).
const GRAPHIQL_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The WebSocket upgrade: graphql-transport-ws ([`ws`]) or the legacy graphql-ws protocol.
async fn websocket(state: Arc<HttpState>, mut parts: axum::http::request::Parts) -> Response {
    let protocol = match GraphQLProtocol::from_request_parts(&mut parts, &()).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // The same choice GraphQLProtocol made (the first protocol offered that we speak), which it
    // does not expose.
    let transport_ws = parts
        .headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|offered| {
            offered
                .split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        })
        == Some(WebSocketProtocols::GraphQLWS);
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &()).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    // Browsers cannot set headers on a WebSocket: the token may come in the upgrade request
    // (other clients) or, as graphql-ws does, in `connection_init`.
    let who = match authenticated_caller(&state.keys, &parts) {
        Ok(who) => who,
        Err(bad) => return bad.into_response(),
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // Clients send little (pings, a subscribe); the buffer grows for a longer message.
        .read_buffer_size(256)
        // Room for a batch of frames, written when the connection has no more ready; every
        // batch is flushed, so nothing waits in it for more.
        .write_buffer_size(ws::MAX_UNFLUSHED * 1024)
        .max_message_size(WS_MESSAGE_LIMIT)
        .max_frame_size(WS_MESSAGE_LIMIT)
        // The connection's task lives as long as the connection, with this future in it: boxed
        // here, not in an `async` block, its size is a pointer's rather than the socket's and
        // every capture's again (an idle subscriber costs less; docs/benchmarks.md). It runs on
        // the subscribers' runtime, so the HTTP answers served here never queue behind the
        // connections a push wakes (`infra::rt`); the upgrade's own task ends at once.
        .on_upgrade(move |socket| {
            let live = state.live.clone();
            let keys = state.keys.clone();
            let connection: BoxFuture<'static, ()> = if transport_ws {
                Box::pin(ws::serve(socket, live, KEEPALIVE, move |payload| {
                    connection_data(&keys, who, &payload)
                }))
            } else {
                Box::pin(
                    GraphQLWebSocket::new(socket, live, protocol)
                        .on_connection_init(move |payload: serde_json::Value| async move {
                            connection_data(&keys, who, &payload)
                                .map_err(BadCredentials::into_graphql_error)
                        })
                        .keepalive_timeout(KEEPALIVE)
                        .serve(),
                )
            };
            // Detached: the connection ends when either side closes it, as before.
            drop(infra::rt::subscribers().spawn(connection));
            std::future::ready(())
        })
}

/// A WebSocket client silent this long is disconnected (clients ping; the web UI every 15 s).
const KEEPALIVE: Duration = Duration::from_secs(30);

/// A WebSocket connection's data once `connection_init` arrived: the caller (a token may come in
/// the upgrade request or, as browsers must, in the init payload). Its loaders are the schema's.
fn connection_data(
    keys: &TokenKeys,
    mut who: Caller,
    payload: &serde_json::Value,
) -> Result<async_graphql::Data, BadCredentials> {
    let authorization = payload
        .get("authorization")
        .or_else(|| payload.get("Authorization"));
    let authorization = match authorization {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s.as_str()),
        Some(_) => return Err(BadCredentials::Malformed),
    };
    authenticate(keys, authorization, &mut who)?;
    let mut data = async_graphql::Data::default();
    data.insert(who);
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn only_json_in_utf8_is_executed() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/json;charset=\"UTF-8\"",
        ] {
            assert!(
                executable_content_type(&headers(&[("content-type", ok)])),
                "{ok}"
            );
        }
        for refused in [
            "text/plain",
            "text/plain;charset=UTF-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json; charset=latin1",
            "application/graphql",
        ] {
            assert!(
                !executable_content_type(&headers(&[("content-type", refused)])),
                "{refused}"
            );
        }
        assert!(!executable_content_type(&HeaderMap::new()), "none");
    }

    #[test]
    fn accept_picks_our_media_type() {
        assert_eq!(
            MediaType::negotiate(&HeaderMap::new()),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::negotiate(&headers(&[("accept", "application/graphql-response+json")])),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            MediaType::negotiate(&headers(&[(
                "accept",
                "application/graphql-response+json, application/json;q=0.9"
            )])),
            Some(MediaType::GraphqlResponse)
        );
        assert_eq!(
            MediaType::negotiate(&headers(&[(
                "accept",
                "application/graphql-response+json;q=0.5, application/json"
            )])),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::negotiate(&headers(&[("accept", "*/*")])),
            Some(MediaType::Json)
        );
        assert_eq!(
            MediaType::negotiate(&headers(&[("accept", "text/html")])),
            None
        );
    }
}
