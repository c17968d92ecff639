//! What an accepted command answers.

use events::{CommentId, Envelope, PostId, RawEvent};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// The answer to an accepted post or comment command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accepted {
    /// The post.
    pub post_id: PostId,
    /// The comment, for comment commands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment_id: Option<CommentId>,
    /// The post's stream version after the command.
    pub version: i64,
    /// Opaque token naming the last event's place in the log (`<post>@<version>`): a reader
    /// that has seen this position has seen the command's effect.
    pub position: String,
    /// The events the command recorded, in order: what the read model will fold in
    /// (`read_model::fold`), so a gateway can answer before the projector has.
    #[serde(default, with = "as_raw")]
    pub events: Vec<Envelope>,
}

impl Accepted {
    /// The answer for `events` recorded on `post`, now at `version`.
    #[must_use]
    pub fn new(
        post_id: PostId,
        comment_id: Option<CommentId>,
        version: i64,
        events: Vec<Envelope>,
    ) -> Self {
        Self {
            post_id,
            comment_id,
            version,
            position: format!("{post_id}@{version}"),
            events,
        }
    }
}

/// Events cross the HTTP boundary in their stored shape, and are decoded (upcast) on arrival.
mod as_raw {
    use super::{Deserialize, Deserializer, Envelope, RawEvent, Serialize, Serializer};

    pub fn serialize<S: Serializer>(events: &[Envelope], s: S) -> Result<S::Ok, S::Error> {
        let raw: Vec<RawEvent> = events.iter().map(Envelope::to_raw).collect();
        raw.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Envelope>, D::Error> {
        Vec::<RawEvent>::deserialize(d)?
            .into_iter()
            .map(|raw| raw.decode().map_err(serde::de::Error::custom))
            .collect()
    }
}

/// An account as commands answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    /// Id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Current roles.
    pub roles: Vec<String>,
}

/// Where and whether a user's notifications are emailed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmailSettings {
    /// The address, if any.
    pub email: Option<String>,
    /// Whether the address was confirmed by the link sent to it.
    pub verified: bool,
    /// Whether notifications are emailed (once the address is confirmed).
    pub enabled: bool,
    /// Whether this site sends email at all (an SMTP server is configured).
    pub available: bool,
}

/// A signed-in session: an access token and who it is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// `Authorization: Bearer <token>`.
    pub token: String,
    /// The user.
    pub user: UserView,
}

/// The answer to an account command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Done {
    /// A role change: the user as it is now.
    User(UserView),
    /// Notification email settings, as they are now.
    Email(EmailSettings),
    /// Any other change: `{"ok": true}`.
    Ok {
        /// Always true.
        ok: bool,
    },
}

impl Done {
    /// `{"ok": true}`.
    pub const OK: Self = Self::Ok { ok: true };
}
