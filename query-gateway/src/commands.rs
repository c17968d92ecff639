//! Forwards commands to the command service and reads its answer: over HTTP in the distributed
//! setup, or straight into its router in the one-process `inkwire dev` (same requests, same
//! answers, no socket). Each command carries a caller proof signed here after the access token
//! was checked; the command service trusts nothing else (docs/security.md).

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use tower::ServiceExt;
use uuid::Uuid;

use infra::auth::{CALLER_PROOF_HEADER, CallerKeys};

use crate::error::GatewayError;

/// Who is asking, passed on to the command service.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The signed-in user's id.
    pub user_id: Option<String>,
    /// Their display name.
    pub name: Option<String>,
    /// `x-request-id`, for correlation.
    pub request_id: Option<String>,
    /// W3C `traceparent`.
    pub traceparent: Option<String>,
    /// The client's address (for sign-in throttling).
    pub client: Option<String>,
    /// The username, from the token.
    pub username: Option<String>,
    /// Roles named in the token (the command service decides with its own, current ones).
    pub roles: Vec<String>,
    /// When the session began (the token's `auth_time`).
    pub auth_time: Option<i64>,
}

/// The command service's answer to an accepted command.
#[derive(Debug, Clone, Deserialize)]
pub struct Accepted {
    /// The post.
    pub post_id: Uuid,
    /// The comment, for comment commands.
    #[serde(default)]
    pub comment_id: Option<Uuid>,
    /// The post's stream version after the command.
    pub version: i64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    code: String,
    #[serde(default)]
    reason: Option<String>,
    message: String,
    #[serde(default)]
    field: Option<String>,
}

/// Where commands go, and the keys that prove to the command service who is calling.
#[derive(Clone)]
pub struct CommandClient {
    transport: Transport,
    callers: CallerKeys,
}

#[derive(Clone)]
enum Transport {
    /// A command service over HTTP at this base URL (e.g. `http://127.0.0.1:8081`).
    Http {
        client: reqwest::Client,
        base: String,
    },
    /// The command service's router in this process.
    InProcess(Router),
}

impl CommandClient {
    /// A client for the command service at `base`, signing caller proofs with `callers`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn http(base: &str, callers: CallerKeys) -> Result<Self, reqwest::Error> {
        Ok(Self {
            transport: Transport::Http {
                client: reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(30))
                    .pool_max_idle_per_host(64)
                    .build()?,
                base: base.trim_end_matches('/').to_owned(),
            },
            callers,
        })
    }

    /// A client for the command service's `router` in this process (`inkwire dev`): the same
    /// requests and proofs, no socket.
    #[must_use]
    pub fn in_process(router: Router, callers: CallerKeys) -> Self {
        Self {
            transport: Transport::InProcess(router),
            callers,
        }
    }

    /// Sends a command; decodes the acceptance.
    ///
    /// # Errors
    /// The command service's refusal with its code, or `Unavailable` when it cannot be reached.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        caller: &Caller,
    ) -> Result<Accepted, GatewayError> {
        self.call(method, path, body, caller).await
    }

    /// Sends `body` to `path` with `method` as `caller`; decodes the answer as `T`.
    ///
    /// # Errors
    /// The command service's refusal with its code, or `Unavailable` when it cannot be reached.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        caller: &Caller,
    ) -> Result<T, GatewayError> {
        let headers = self.caller_headers(caller)?;
        let (status, bytes) = match &self.transport {
            Transport::Http { client, base } => {
                let mut request = client.request(method, format!("{base}{path}"));
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                if let Some(body) = &body {
                    request = request.json(body);
                }
                let response = request.send().await.map_err(|e| {
                    tracing::warn!(error = %e, "command service unreachable");
                    GatewayError::Unavailable
                })?;
                let status = response.status();
                let bytes = response.bytes().await.map_err(|e| {
                    tracing::warn!(error = %e, "command service answer lost");
                    GatewayError::Unavailable
                })?;
                (status, bytes.to_vec())
            }
            Transport::InProcess(router) => {
                let mut request = Request::builder().method(method).uri(path);
                for (name, value) in headers {
                    request = request.header(name, value);
                }
                let request = match &body {
                    Some(body) => request
                        .header("content-type", "application/json")
                        .body(Body::from(body.to_string())),
                    None => request.body(Body::empty()),
                }
                .map_err(|e| {
                    tracing::error!(error = %e, "command request not built");
                    GatewayError::Internal
                })?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .map_err(|_| GatewayError::Internal)?;
                let status = response.status();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
                    .await
                    .map_err(|_| GatewayError::Internal)?;
                (status, bytes.to_vec())
            }
        };
        decode(status, &bytes)
    }
}

impl CommandClient {
    /// The headers that go with a command: the caller proof (who, from where), correlation and
    /// trace context.
    fn caller_headers(&self, caller: &Caller) -> Result<Vec<(&'static str, String)>, GatewayError> {
        let user = match caller.user_id.as_deref().map(str::parse::<Uuid>) {
            Some(Ok(id)) => Some(id),
            Some(Err(_)) => return Err(GatewayError::Internal),
            None => None,
        };
        let proof = self
            .callers
            .sign(user, caller.client.as_deref())
            .map_err(|e| {
                tracing::error!(error = %e, "caller proof not signed");
                GatewayError::Internal
            })?;
        let mut headers = vec![(CALLER_PROOF_HEADER, proof)];
        if let Some(v) = &caller.request_id {
            headers.push(("x-request-id", v.clone()));
        }
        if let Some(v) = &caller.traceparent {
            headers.push(("traceparent", v.clone()));
        }
        Ok(headers)
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    status: StatusCode,
    bytes: &[u8],
) -> Result<T, GatewayError> {
    if status.is_success() {
        return serde_json::from_slice(bytes).map_err(|e| {
            tracing::error!(error = %e, "unexpected command service answer");
            GatewayError::Internal
        });
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(ErrorBody { error }) => {
            let code = match error.code.as_str() {
                // Malformed requests are the gateway's fault or the client's input.
                "BAD_REQUEST" | "PAYLOAD_TOO_LARGE" | "UNSUPPORTED_MEDIA_TYPE" => {
                    "BAD_USER_INPUT".to_owned()
                }
                "INTERNAL" => return Err(GatewayError::Internal),
                "UNAVAILABLE" => return Err(GatewayError::Unavailable),
                other => other.to_owned(),
            };
            Err(GatewayError::Domain {
                reason: error.reason.unwrap_or_else(|| code.clone()),
                code,
                message: error.message,
                field: error.field.map(|f| to_camel(&f)),
            })
        }
        Err(_) if status == StatusCode::SERVICE_UNAVAILABLE || status.is_server_error() => {
            Err(GatewayError::Unavailable)
        }
        Err(_) => {
            tracing::error!(%status, "unexpected command service error body");
            Err(GatewayError::Internal)
        }
    }
}

/// `body_markdown` → `bodyMarkdown`: the command service names fields as its JSON does, the
/// GraphQL inputs in camel case.
fn to_camel(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut upper = false;
    for c in field.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    match out.as_str() {
        "bodyMarkdown" => "body".to_owned(),
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_their_code_reason_and_field() {
        let body = br#"{"error":{"code":"VALIDATION","reason":"TITLE_TOO_LONG","message":"too long","field":"body_markdown"}}"#;
        match decode::<Accepted>(StatusCode::UNPROCESSABLE_ENTITY, body) {
            Err(GatewayError::Domain {
                code,
                reason,
                field,
                ..
            }) => {
                assert_eq!(code, "VALIDATION");
                assert_eq!(reason, "TITLE_TOO_LONG");
                assert_eq!(field.as_deref(), Some("body"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_proxy_error_page_is_unavailable_not_internal() {
        assert!(matches!(
            decode::<Accepted>(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>"),
            Err(GatewayError::Unavailable)
        ));
    }
}
