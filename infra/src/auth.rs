//! Access tokens: JWTs signed with HMAC-SHA256 under a secret shared by the gateways (which
//! check them) and the command services (which issue them at sign-up and sign-in). Only HS256
//! is accepted: a token with `alg: none` or any other algorithm, a bad signature, a wrong issuer
//! or a past expiry is refused.

use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The `iss` of every token.
pub const ISSUER: &str = "inkwire";

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    /// The username.
    pub username: String,
    /// The display name.
    pub name: String,
    /// Roles when issued (informational: the command service decides with current roles).
    pub roles: Vec<String>,
    /// Issuer.
    pub iss: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
    /// When the user signed in with their password (seconds since the epoch); refreshed tokens
    /// keep it, so a session cannot be stretched past its maximum age.
    #[serde(default)]
    pub auth_time: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid token: {0}")]
pub struct TokenError(String);

/// The signing and checking keys.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("lifetime", &self.lifetime)
            .finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from `secret` (at least 32 bytes in production), issuing tokens valid for `lifetime`.
    #[must_use]
    pub fn new(secret: &[u8], lifetime: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            lifetime,
        }
    }

    /// A signed token for the user.
    ///
    /// # Errors
    /// When signing fails (it does not with an HMAC key).
    pub fn issue(
        &self,
        user: Uuid,
        username: &str,
        name: &str,
        roles: &[String],
    ) -> Result<String, TokenError> {
        self.issue_since(user, username, name, roles, chrono::Utc::now().timestamp())
    }

    /// A signed token for a session that began at `auth_time` (a refresh).
    ///
    /// # Errors
    /// When signing fails (it does not with an HMAC key).
    pub fn issue_since(
        &self,
        user: Uuid,
        username: &str,
        name: &str,
        roles: &[String],
        auth_time: i64,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: user,
            username: username.to_owned(),
            name: name.to_owned(),
            roles: roles.to_vec(),
            iss: ISSUER.to_owned(),
            iat: now,
            exp: now + i64::try_from(self.lifetime.as_secs()).unwrap_or(i64::MAX / 2),
            auth_time,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError(e.to_string()))
    }

    /// Checks `token` and returns its claims.
    ///
    /// # Errors
    /// [`TokenError`] for anything but a valid, unexpired HS256 token of ours.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| TokenError(e.to_string()))
    }

    /// The token in an `Authorization: Bearer …` header value.
    #[must_use]
    pub fn bearer(header: &str) -> Option<&str> {
        let (scheme, token) = header.trim().split_once(' ')?;
        scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(token.trim())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            b"a test secret that is long enough!!",
            Duration::from_secs(60),
        )
    }

    #[test]
    fn a_token_round_trips() {
        let id = Uuid::now_v7();
        let token = keys()
            .issue(id, "ada", "Ada", &["author".into()])
            .expect("issue");
        let claims = keys().verify(&token).expect("valid");
        assert_eq!(claims.sub, id);
        assert_eq!(claims.roles, ["author"]);
    }

    #[test]
    fn forged_tokens_are_refused() {
        let id = Uuid::now_v7();
        let token = keys().issue(id, "ada", "Ada", &[]).expect("issue");
        let other = TokenKeys::new(
            b"another secret, also long enough!!",
            Duration::from_secs(60),
        );
        assert!(other.verify(&token).is_err(), "another key");
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(engine.decode(&parts[1]).expect("b64")).expect("utf8");
        parts[1] = engine.encode(payload.replace("\"ada\"", "\"eve\""));
        assert!(keys().verify(&parts.join(".")).is_err(), "tampered");
        let none = format!(
            "{}.{}.",
            engine.encode(r#"{"alg":"none","typ":"JWT"}"#),
            parts[1]
        );
        assert!(keys().verify(&none).is_err(), "alg none");
        let expired = TokenKeys::new(b"a test secret that is long enough!!", Duration::ZERO);
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &Claims {
                sub: id,
                username: "ada".into(),
                name: "Ada".into(),
                roles: vec![],
                iss: ISSUER.into(),
                iat: 0,
                exp: 1000,
                auth_time: 0,
            },
            &EncodingKey::from_secret(b"a test secret that is long enough!!"),
        )
        .expect("encode");
        assert!(expired.verify(&old).is_err(), "expired");
        assert_eq!(TokenKeys::bearer("Bearer abc"), Some("abc"));
        assert_eq!(TokenKeys::bearer("Basic abc"), None);
    }
}
