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

/// The signing and checking keys: of users' access tokens, and of the caller proofs a gateway
/// sends the command service ([`CallerKeys`]).
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
    callers: CallerKeys,
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
            callers: CallerKeys::new(&[secret]),
        }
    }

    /// These keys with caller proofs signed and checked under `secrets` instead of the access
    /// tokens' secret: the first signs, every one is accepted (rotation: add the new secret
    /// second on the command services, then first on the gateways, then drop the old).
    #[must_use]
    pub fn with_caller_secrets(mut self, secrets: &[&[u8]]) -> Self {
        if !secrets.is_empty() {
            self.callers = CallerKeys::new(secrets);
        }
        self
    }

    /// The keys of the gateway's caller proofs.
    #[must_use]
    pub fn callers(&self) -> &CallerKeys {
        &self.callers
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

    /// Checks `token` and returns its claims, telling an expired token from a bad one.
    ///
    /// # Errors
    /// [`Refused::Expired`] for a good token past its expiry, [`Refused::Invalid`] for anything
    /// else but a valid, unexpired HS256 token of ours.
    pub fn verify(&self, token: &str) -> Result<Claims, Refused> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refused::Expired,
                _ => Refused::Invalid,
            })
    }
}

impl TokenKeys {
    /// A signed link for `purpose`, for `user` at the address `email`, valid for `lifetime`.
    /// Links have their own issuer and audiences: none passes for an access token or a caller
    /// proof, and a confirmation link does not unsubscribe.
    ///
    /// # Errors
    /// When signing fails (it does not with an HMAC key).
    pub fn sign_link(
        &self,
        purpose: LinkPurpose,
        user: Uuid,
        email: &str,
        lifetime: Duration,
    ) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let claims = LinkClaims {
            sub: user,
            email: email.to_owned(),
            iss: LINK_ISSUER.to_owned(),
            aud: purpose.audience().to_owned(),
            iat: now,
            exp: now + i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX / 2),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| TokenError(e.to_string()))
    }

    /// Checks a link made by [`TokenKeys::sign_link`] for `purpose`.
    ///
    /// # Errors
    /// [`Refused::Expired`] past its expiry, [`Refused::Invalid`] for anything else but a valid
    /// link of ours for this purpose.
    pub fn verify_link(&self, purpose: LinkPurpose, token: &str) -> Result<LinkClaims, Refused> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[LINK_ISSUER]);
        validation.set_audience(&[purpose.audience()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<LinkClaims>(token, &self.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => Refused::Expired,
                _ => Refused::Invalid,
            })
    }
}

/// The issuer of links sent by email (never of access tokens or caller proofs).
pub const LINK_ISSUER: &str = "inkwire-mail";

/// What a link sent by email does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// Confirms that the address belongs to the account.
    ConfirmEmail,
    /// Stops notification email to the address.
    Unsubscribe,
}

impl LinkPurpose {
    const fn audience(self) -> &'static str {
        match self {
            Self::ConfirmEmail => "inkwire-confirm-email",
            Self::Unsubscribe => "inkwire-unsubscribe",
        }
    }
}

/// The claims of a link sent by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// The account.
    pub sub: Uuid,
    /// The address the link was sent to: it acts only while the account still has it.
    pub email: String,
    /// Always [`LINK_ISSUER`].
    pub iss: String,
    /// The purpose.
    pub aud: String,
    /// Issued at.
    pub iat: i64,
    /// Expiry.
    pub exp: i64,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Signed by us, but past its expiry: refresh it or sign in again.
    Expired,
    /// Not a token of ours (bad signature, algorithm, issuer, or not a JWT at all).
    Invalid,
}

/// What an `Authorization` header value says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    /// Nothing, or `Bearer` with an empty token: an anonymous caller (some clients always
    /// send the header, empty before sign-in).
    Anonymous,
    /// `Bearer <token>`.
    Bearer(&'a str),
    /// Another scheme, or a token with spaces in it.
    Malformed,
}

impl<'a> Authorization<'a> {
    /// Reads a header value.
    #[must_use]
    pub fn parse(header: &'a str) -> Self {
        let header = header.trim();
        if header.is_empty() {
            return Self::Anonymous;
        }
        let (scheme, token) = header.split_once(' ').unwrap_or((header, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Self::Malformed;
        }
        let token = token.trim();
        if token.is_empty() {
            Self::Anonymous
        } else if token.contains(char::is_whitespace) {
            Self::Malformed
        } else {
            Self::Bearer(token)
        }
    }
}

/// The header in which a gateway proves to the command service who is calling.
pub const CALLER_PROOF_HEADER: &str = "x-inkwire-caller";
/// The issuer of caller proofs (never of access tokens, so neither passes for the other).
pub const CALLER_ISSUER: &str = "inkwire-gateway";
/// The audience of caller proofs.
pub const CALLER_AUDIENCE: &str = "inkwire-command";
/// How long a caller proof is good for: one request's way from a gateway to a command service.
pub const CALLER_PROOF_LIFETIME: Duration = Duration::from_secs(60);

/// What a gateway vouches for when it forwards a command: who the caller is (after checking
/// their access token) and where they connect from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerClaims {
    /// The signed-in user; absent for an anonymous caller (sign-up, sign-in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<Uuid>,
    /// The client's address as the gateway saw it (sign-in throttling).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// [`CALLER_ISSUER`].
    pub iss: String,
    /// [`CALLER_AUDIENCE`].
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// Signs and checks caller proofs: HS256 JWTs with their own issuer and audience, short-lived,
/// under secrets the gateways and command services share. The first secret signs; all check.
#[derive(Clone)]
pub struct CallerKeys {
    signing: EncodingKey,
    checking: Vec<DecodingKey>,
    validation: Validation,
}

impl std::fmt::Debug for CallerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallerKeys")
            .field("secrets", &self.checking.len())
            .finish_non_exhaustive()
    }
}

impl CallerKeys {
    /// Keys over `secrets` (at least one; the first signs).
    ///
    /// # Panics
    /// When `secrets` is empty: a startup invariant.
    #[must_use]
    pub fn new(secrets: &[&[u8]]) -> Self {
        let first = secrets.first().expect("at least one caller secret");
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[CALLER_ISSUER]);
        validation.set_audience(&[CALLER_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 5;
        Self {
            signing: EncodingKey::from_secret(first),
            checking: secrets
                .iter()
                .map(|s| DecodingKey::from_secret(s))
                .collect(),
            validation,
        }
    }

    /// A proof that the gateway authenticated `user` (or an anonymous caller) at `client`.
    ///
    /// # Errors
    /// When signing fails (it does not with an HMAC key).
    pub fn sign(&self, user: Option<Uuid>, client: Option<&str>) -> Result<String, TokenError> {
        let now = chrono::Utc::now().timestamp();
        let lifetime = i64::try_from(CALLER_PROOF_LIFETIME.as_secs()).unwrap_or(60);
        let claims = CallerClaims {
            sub: user,
            client: client.map(str::to_owned),
            iss: CALLER_ISSUER.to_owned(),
            aud: CALLER_AUDIENCE.to_owned(),
            iat: now,
            exp: now + lifetime,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.signing)
            .map_err(|e| TokenError(e.to_string()))
    }

    /// Checks a proof under each secret in turn.
    ///
    /// # Errors
    /// [`TokenError`] unless one of the secrets signed it and it is unexpired.
    pub fn verify(&self, proof: &str) -> Result<CallerClaims, TokenError> {
        let mut last = TokenError("no caller secret".to_owned());
        for key in &self.checking {
            match jsonwebtoken::decode::<CallerClaims>(proof, key, &self.validation) {
                Ok(data) => return Ok(data.claims),
                Err(e) => last = TokenError(e.to_string()),
            }
        }
        Err(last)
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
        assert_eq!(expired.verify(&old), Err(Refused::Expired), "expired");
        assert_eq!(keys().verify("not.a.token"), Err(Refused::Invalid));
    }

    #[test]
    fn an_empty_bearer_is_anonymous_and_other_schemes_are_malformed() {
        assert_eq!(Authorization::parse(""), Authorization::Anonymous);
        assert_eq!(Authorization::parse("Bearer "), Authorization::Anonymous);
        assert_eq!(Authorization::parse("bearer"), Authorization::Anonymous);
        assert_eq!(
            Authorization::parse("Bearer x.y.z"),
            Authorization::Bearer("x.y.z")
        );
        assert_eq!(
            Authorization::parse("Basic YWRhOng="),
            Authorization::Malformed
        );
        assert_eq!(Authorization::parse("Bearer a b"), Authorization::Malformed);
        assert_eq!(Authorization::parse("x.y.z"), Authorization::Malformed);
    }

    #[test]
    fn caller_proofs_are_neither_access_tokens_nor_forgeable() {
        let secret: &[u8] = b"a test secret that is long enough!!";
        let keys = keys();
        let user = Uuid::now_v7();
        let proof = keys
            .callers()
            .sign(Some(user), Some("10.0.0.1"))
            .expect("sign");
        let claims = keys.callers().verify(&proof).expect("valid");
        assert_eq!(claims.sub, Some(user));
        assert_eq!(claims.client.as_deref(), Some("10.0.0.1"));
        // A proof is no access token, and an access token is no proof.
        assert!(keys.verify(&proof).is_err());
        let token = keys.issue(user, "ada", "Ada", &[]).expect("issue");
        assert!(keys.callers().verify(&token).is_err());
        // Another secret's proof is refused; after rotation both old and new are accepted.
        let other: &[u8] = b"another secret, also long enough!!";
        let rotated =
            TokenKeys::new(secret, Duration::from_secs(60)).with_caller_secrets(&[other, secret]);
        assert!(
            keys.callers()
                .verify(&rotated.callers().sign(None, None).expect("sign"))
                .is_err()
        );
        assert!(
            rotated.callers().verify(&proof).is_ok(),
            "old secret still accepted"
        );
        // Expired proofs are refused.
        let old = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &CallerClaims {
                sub: Some(user),
                client: None,
                iss: CALLER_ISSUER.into(),
                aud: CALLER_AUDIENCE.into(),
                iat: 0,
                exp: 1000,
            },
            &EncodingKey::from_secret(secret),
        )
        .expect("encode");
        assert!(keys.callers().verify(&old).is_err(), "expired");
    }

    #[test]
    fn an_email_link_does_one_thing_only() {
        let keys = keys();
        let user = Uuid::now_v7();
        let week = Duration::from_secs(7 * 24 * 3600);
        let confirm = keys
            .sign_link(LinkPurpose::ConfirmEmail, user, "ada@example.org", week)
            .expect("sign");
        let claims = keys
            .verify_link(LinkPurpose::ConfirmEmail, &confirm)
            .expect("a confirmation link confirms");
        assert_eq!(
            (claims.sub, claims.email.as_str()),
            (user, "ada@example.org")
        );
        // Not an unsubscribe link, not a sign-in, not a caller proof.
        assert_eq!(
            keys.verify_link(LinkPurpose::Unsubscribe, &confirm),
            Err(Refused::Invalid)
        );
        assert_eq!(keys.verify(&confirm).err(), Some(Refused::Invalid));
        assert!(keys.callers().verify(&confirm).is_err());
        // Nor does a sign-in token pass for a link.
        let token = keys.issue(user, "ada", "Ada", &[]).expect("issue");
        assert_eq!(
            keys.verify_link(LinkPurpose::Unsubscribe, &token),
            Err(Refused::Invalid)
        );
        // Another secret's link, and an expired one, are refused.
        let other = TokenKeys::new(b"another secret, also long enough!!", week);
        let forged = other
            .sign_link(LinkPurpose::Unsubscribe, user, "ada@example.org", week)
            .expect("sign");
        assert!(keys.verify_link(LinkPurpose::Unsubscribe, &forged).is_err());
        let expired = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &LinkClaims {
                sub: user,
                email: "ada@example.org".into(),
                iss: LINK_ISSUER.into(),
                aud: "inkwire-unsubscribe".into(),
                iat: 0,
                exp: 1000,
            },
            &EncodingKey::from_secret(b"a test secret that is long enough!!"),
        )
        .expect("encode");
        assert_eq!(
            keys.verify_link(LinkPurpose::Unsubscribe, &expired),
            Err(Refused::Expired)
        );
    }
}
