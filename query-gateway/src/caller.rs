//! [`Caller`]: who is asking, as the gateway established it from the access token and the
//! request, and what of it the command API is told.

/// Who is asking.
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

impl Caller {
    /// The signed-in user's id.
    #[must_use]
    pub fn user(&self) -> Option<uuid::Uuid> {
        self.user_id.as_deref().and_then(|u| u.parse().ok())
    }

    /// What the command service is told: the checked identity and the request's context.
    #[must_use]
    pub fn for_commands(&self) -> command_api::Caller {
        command_api::Caller {
            user_id: self.user().map(events::UserId),
            client: self.client.clone(),
            request_id: self.request_id.clone(),
            traceparent: self.traceparent.clone(),
        }
    }
}
