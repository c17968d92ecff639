//! [`HttpCommands`]: the command service over its internal HTTP API, each request carrying a
//! caller proof signed here (the command service trusts nothing else; docs/security.md).

use crate::auth::{CALLER_PROOF_HEADER, CallerKeys};
use serde::de::DeserializeOwned;

use crate::{
    Accepted, AccountCommand, Caller, CommandApi, CommandError, Done, ErrorBody, PostCommand,
    Route, Session, SessionCommand,
};

/// A client of a command service at a base URL.
#[derive(Clone)]
pub struct HttpCommands {
    client: reqwest::Client,
    base: String,
    callers: CallerKeys,
}

impl HttpCommands {
    /// A client for the command service at `base` (e.g. `http://127.0.0.1:8081`), signing
    /// caller proofs with `callers`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(base: &str, callers: CallerKeys) -> Result<Self, reqwest::Error> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .pool_max_idle_per_host(64)
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            callers,
        })
    }

    async fn send<T: DeserializeOwned>(
        &self,
        caller: &Caller,
        route: Route,
        if_match: Option<i64>,
    ) -> Result<T, CommandError> {
        let proof = self
            .callers
            .sign(caller.user_id.map(|u| u.0), caller.client.as_deref())
            .map_err(|e| {
                tracing::error!(error = %e, "caller proof not signed");
                CommandError::Internal
            })?;
        let mut request = self
            .client
            .request(route.method, format!("{}{}", self.base, route.path))
            .header(CALLER_PROOF_HEADER, proof);
        if let Some(v) = &caller.request_id {
            request = request.header("x-request-id", v);
        }
        if let Some(v) = &caller.traceparent {
            request = request.header("traceparent", v);
        }
        if let Some(v) = if_match {
            request = request.header("if-match", format!("\"{v}\""));
        }
        if let Some(body) = &route.body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| {
            tracing::warn!(error = %e, "command service unreachable");
            CommandError::Unavailable
        })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| {
            tracing::warn!(error = %e, "command service answer lost");
            CommandError::Unavailable
        })?;
        decode(status.as_u16(), &bytes)
    }
}

/// The answer to a request: the success body as `T`, or the refusal.
///
/// # Errors
/// The refusal; [`CommandError::Unavailable`] for a server error without our body (a proxy's
/// page); [`CommandError::Internal`] for an answer that is not ours at all.
pub(crate) fn decode<T: DeserializeOwned>(status: u16, bytes: &[u8]) -> Result<T, CommandError> {
    if (200..300).contains(&status) {
        return serde_json::from_slice(bytes).map_err(|e| {
            tracing::error!(error = %e, "unexpected command service answer");
            CommandError::Internal
        });
    }
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(ErrorBody { error }) => Err(error.into()),
        Err(_) if status >= 500 => Err(CommandError::Unavailable),
        Err(_) => {
            tracing::error!(status, "unexpected command service error body");
            Err(CommandError::Internal)
        }
    }
}

#[async_trait::async_trait]
impl CommandApi for HttpCommands {
    async fn post(
        &self,
        caller: &Caller,
        command: PostCommand,
        expected_version: Option<i64>,
    ) -> Result<Accepted, CommandError> {
        self.send(caller, command.route(), expected_version).await
    }

    async fn session(
        &self,
        caller: &Caller,
        command: SessionCommand,
    ) -> Result<Session, CommandError> {
        self.send(caller, command.route(), None).await
    }

    async fn account(
        &self,
        caller: &Caller,
        command: AccountCommand,
    ) -> Result<Done, CommandError> {
        self.send(caller, command.route(), None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorCode, Refusal};

    #[test]
    fn refusals_keep_their_code_reason_and_field() {
        let body = br#"{"error":{"code":"VALIDATION","reason":"TITLE_TOO_LONG","message":"too long","field":"body_markdown"}}"#;
        assert_eq!(
            decode::<Accepted>(422, body),
            Err(CommandError::Refused(Refusal {
                code: ErrorCode::Validation,
                reason: "TITLE_TOO_LONG".into(),
                message: "too long".into(),
                field: Some("body_markdown".into()),
            }))
        );
    }

    #[test]
    fn a_proxy_error_page_is_unavailable_not_internal() {
        assert_eq!(
            decode::<Accepted>(502, b"<html>bad gateway</html>"),
            Err(CommandError::Unavailable)
        );
    }

    #[test]
    fn the_service_saying_unavailable_is_unavailable() {
        let body =
            br#"{"error":{"code":"UNAVAILABLE","reason":"DATABASE_UNAVAILABLE","message":"x"}}"#;
        assert_eq!(decode::<Done>(503, body), Err(CommandError::Unavailable));
    }
}
