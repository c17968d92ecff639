//! [`Event`]: any event of the store and the log, a post's ([`PostEvent`]) or a user's
//! ([`UserEvent`]), with its stable type name. The names are what is stored: pinned by a test and
//! by the fixtures, so renaming one makes every stored event of that type unreadable.

use crate::post::PostEvent;
use crate::user::UserEvent;

/// An event of either kind of stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An event of a post's stream (the post and its comments).
    Post(PostEvent),
    /// An event of a user's stream.
    User(UserEvent),
}

impl From<PostEvent> for Event {
    fn from(event: PostEvent) -> Self {
        Self::Post(event)
    }
}

impl From<UserEvent> for Event {
    fn from(event: UserEvent) -> Self {
        Self::User(event)
    }
}

/// Lists every event: its variant, stored type name and payload type, once.
macro_rules! events {
    ($($kind:ident :: $variant:ident ($payload:ty) = $name:literal,)+) => {
        impl Event {
            /// The stable type name stored with the event and sent as a Kafka header.
            #[must_use]
            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Self::$kind($kind::$variant(_)) => $name,)+
                }
            }

            /// The payload as JSON, in the current schema version of its type.
            #[must_use]
            pub fn to_json(&self) -> serde_json::Value {
                // Serializing these plain structs cannot fail: no maps with non-string keys, no
                // custom serializers.
                let value = match self {
                    $(Self::$kind($kind::$variant(e)) => serde_json::to_value(e),)+
                };
                value.expect("event payloads are plain structs and always serialize")
            }

            /// Decodes a JSON payload text that is already in the current schema version of
            /// `event_type`.
            pub(crate) fn from_current_str(
                event_type: &str,
                data: &str,
            ) -> Result<Self, serde_json::Error> {
                use serde::de::Error as _;
                Ok(match event_type {
                    $($name => Self::$kind($kind::$variant(serde_json::from_str::<$payload>(data)?)),)+
                    other => return Err(serde_json::Error::custom(format!("unknown type {other}"))),
                })
            }
        }
    };
}

use PostEvent as Post;
use UserEvent as User;

events! {
    Post::PostDrafted(crate::PostDrafted) = "post.drafted",
    Post::PostEdited(crate::PostEdited) = "post.edited",
    Post::PostPublished(crate::PostPublished) = "post.published",
    Post::PostUnpublished(crate::PostUnpublished) = "post.unpublished",
    Post::PostDeleted(crate::PostDeleted) = "post.deleted",
    Post::PostScheduled(crate::PostScheduled) = "post.scheduled",
    Post::PostUnscheduled(crate::PostUnscheduled) = "post.unscheduled",
    Post::CommentAdded(crate::CommentAdded) = "comment.added",
    Post::CommentEdited(crate::CommentEdited) = "comment.edited",
    Post::CommentDeleted(crate::CommentDeleted) = "comment.deleted",
    Post::CommentHidden(crate::CommentHidden) = "comment.hidden",
    Post::CommentRestored(crate::CommentRestored) = "comment.restored",
    Post::ReactionAdded(crate::Reaction) = "reaction.added",
    Post::ReactionRemoved(crate::Reaction) = "reaction.removed",
    User::Registered(crate::UserRegistered) = "user.registered",
    User::DisplayNameChanged(crate::UserDisplayNameChanged) = "user.display_name_changed",
    User::PasswordChanged(crate::UserPasswordChanged) = "user.password_changed",
    User::RoleGranted(crate::UserRoleChanged) = "user.role_granted",
    User::RoleRevoked(crate::UserRoleChanged) = "user.role_revoked",
    User::Disabled(crate::UserDisabled) = "user.disabled",
    User::MediaUploaded(crate::MediaUploaded) = "media.uploaded",
    User::NotificationsRead(crate::NotificationsRead) = "notifications.read",
}

impl Event {
    /// Whether this event belongs to a user's stream (rather than a post's).
    #[must_use]
    pub fn is_user_event(&self) -> bool {
        matches!(self, Self::User(_))
    }

    /// The post event, if it is one.
    #[must_use]
    pub fn as_post(&self) -> Option<&PostEvent> {
        match self {
            Self::Post(e) => Some(e),
            Self::User(_) => None,
        }
    }

    /// Decodes a payload that is already in the current schema version of `event_type` (the
    /// upcast path; rare, so it simply goes through the text form).
    pub(crate) fn from_current(
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<Self, serde_json::Error> {
        Self::from_current_str(event_type, &data.to_string())
    }
}
