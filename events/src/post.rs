//! The events of a post's stream: the post itself and every comment on it. Comments live in
//! their post's stream so that a post's events (its comments included) share one order, one
//! Kafka partition, and one optimistic-concurrency check.

use serde::{Deserialize, Serialize};

use crate::ids::{CommentId, UserId};

/// Every event that can appear in a post's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostEvent {
    /// A post was created as a draft.
    PostDrafted(PostDrafted),
    /// A post's title, slug, body or tags changed.
    PostEdited(PostEdited),
    /// A post became visible to readers.
    PostPublished(PostPublished),
    /// A published post was taken back to draft.
    PostUnpublished(PostUnpublished),
    /// A post was deleted; its stream accepts nothing more.
    PostDeleted(PostDeleted),
    /// A comment (or a reply, when it has a parent) was added.
    CommentAdded(CommentAdded),
    /// A comment's author changed its text.
    CommentEdited(CommentEdited),
    /// A comment was deleted by its author.
    CommentDeleted(CommentDeleted),
    /// A moderator hid a comment.
    CommentHidden(CommentHidden),
    /// A moderator restored a hidden comment.
    CommentRestored(CommentRestored),
    /// A user signed up (or was added by an operator); user streams only.
    UserRegistered(crate::user::UserRegistered),
    /// A user changed their shown name.
    UserDisplayNameChanged(crate::user::UserDisplayNameChanged),
    /// A user's password changed (the hash is not in the event).
    UserPasswordChanged(crate::user::UserPasswordChanged),
    /// An admin granted a role.
    UserRoleGranted(crate::user::UserRoleChanged),
    /// An admin revoked a role.
    UserRoleRevoked(crate::user::UserRoleChanged),
    /// A user may no longer sign in or act.
    UserDisabled(crate::user::UserDisabled),
}

/// Payload of `post.drafted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostDrafted {
    /// The post's author.
    pub author_id: UserId,
    /// Title, 1 to 200 characters.
    pub title: String,
    /// URL slug, unique across posts.
    pub slug: String,
    /// Body in CommonMark.
    pub body_markdown: String,
    /// Tags, lower case.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether readers who are not signed in may comment.
    #[serde(default)]
    pub allow_anonymous_comments: bool,
}

/// Payload of `post.edited`; absent fields are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostEdited {
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// New body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_markdown: Option<String>,
    /// New tags (the whole list).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New anonymous-comment policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_anonymous_comments: Option<bool>,
}

/// Payload of `post.published`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostPublished {}

/// Payload of `post.unpublished`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostUnpublished {}

/// Payload of `post.deleted`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostDeleted {}

/// Payload of `comment.added`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentAdded {
    /// The new comment's id.
    pub comment_id: CommentId,
    /// The comment replied to, in the same post; `None` for a top-level comment.
    #[serde(default)]
    pub parent_id: Option<CommentId>,
    /// The signed-in author; `None` for an anonymous comment.
    #[serde(default)]
    pub author_id: Option<UserId>,
    /// The name shown next to the comment.
    pub author_name: String,
    /// The comment's text (plain text / CommonMark).
    pub body: String,
}

/// Payload of `comment.edited`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentEdited {
    /// The comment.
    pub comment_id: CommentId,
    /// Its new text.
    pub body: String,
}

/// Payload of `comment.deleted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentDeleted {
    /// The comment.
    pub comment_id: CommentId,
}

/// Payload of `comment.hidden`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentHidden {
    /// The comment.
    pub comment_id: CommentId,
    /// Why the moderator hid it; kept for the audit trail.
    pub reason: String,
}

/// Payload of `comment.restored`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommentRestored {
    /// The comment.
    pub comment_id: CommentId,
}

impl PostEvent {
    /// The stable type name stored with the event and sent as a Kafka header. Pinned by a test:
    /// renaming one makes every stored event of that type unreadable.
    #[must_use]
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::PostDrafted(_) => "post.drafted",
            Self::PostEdited(_) => "post.edited",
            Self::PostPublished(_) => "post.published",
            Self::PostUnpublished(_) => "post.unpublished",
            Self::PostDeleted(_) => "post.deleted",
            Self::CommentAdded(_) => "comment.added",
            Self::CommentEdited(_) => "comment.edited",
            Self::CommentDeleted(_) => "comment.deleted",
            Self::CommentHidden(_) => "comment.hidden",
            Self::CommentRestored(_) => "comment.restored",
            Self::UserRegistered(_) => "user.registered",
            Self::UserDisplayNameChanged(_) => "user.display_name_changed",
            Self::UserPasswordChanged(_) => "user.password_changed",
            Self::UserRoleGranted(_) => "user.role_granted",
            Self::UserRoleRevoked(_) => "user.role_revoked",
            Self::UserDisabled(_) => "user.disabled",
        }
    }

    /// Whether this event belongs to a user's stream (rather than a post's).
    #[must_use]
    pub fn is_user_event(&self) -> bool {
        matches!(
            self,
            Self::UserRegistered(_)
                | Self::UserDisplayNameChanged(_)
                | Self::UserPasswordChanged(_)
                | Self::UserRoleGranted(_)
                | Self::UserRoleRevoked(_)
                | Self::UserDisabled(_)
        )
    }

    /// The payload as JSON, in the current schema version of its type.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Value {
        // Serializing these plain structs cannot fail: no maps with non-string keys, no
        // custom serializers.
        let value = match self {
            Self::PostDrafted(e) => serde_json::to_value(e),
            Self::PostEdited(e) => serde_json::to_value(e),
            Self::PostPublished(e) => serde_json::to_value(e),
            Self::PostUnpublished(e) => serde_json::to_value(e),
            Self::PostDeleted(e) => serde_json::to_value(e),
            Self::CommentAdded(e) => serde_json::to_value(e),
            Self::CommentEdited(e) => serde_json::to_value(e),
            Self::CommentDeleted(e) => serde_json::to_value(e),
            Self::CommentHidden(e) => serde_json::to_value(e),
            Self::CommentRestored(e) => serde_json::to_value(e),
            Self::UserRegistered(e) => serde_json::to_value(e),
            Self::UserDisplayNameChanged(e) => serde_json::to_value(e),
            Self::UserPasswordChanged(e) => serde_json::to_value(e),
            Self::UserRoleGranted(e) | Self::UserRoleRevoked(e) => serde_json::to_value(e),
            Self::UserDisabled(e) => serde_json::to_value(e),
        };
        value.expect("event payloads are plain structs and always serialize")
    }

    /// Decodes a JSON payload text that is already in the current schema version of `event_type`.
    pub(crate) fn from_current_str(
        event_type: &str,
        data: &str,
    ) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        Ok(match event_type {
            "post.drafted" => Self::PostDrafted(serde_json::from_str(data)?),
            "post.edited" => Self::PostEdited(serde_json::from_str(data)?),
            "post.published" => Self::PostPublished(serde_json::from_str(data)?),
            "post.unpublished" => Self::PostUnpublished(serde_json::from_str(data)?),
            "post.deleted" => Self::PostDeleted(serde_json::from_str(data)?),
            "comment.added" => Self::CommentAdded(serde_json::from_str(data)?),
            "comment.edited" => Self::CommentEdited(serde_json::from_str(data)?),
            "comment.deleted" => Self::CommentDeleted(serde_json::from_str(data)?),
            "comment.hidden" => Self::CommentHidden(serde_json::from_str(data)?),
            "comment.restored" => Self::CommentRestored(serde_json::from_str(data)?),
            "user.registered" => Self::UserRegistered(serde_json::from_str(data)?),
            "user.display_name_changed" => {
                Self::UserDisplayNameChanged(serde_json::from_str(data)?)
            }
            "user.password_changed" => Self::UserPasswordChanged(serde_json::from_str(data)?),
            "user.role_granted" => Self::UserRoleGranted(serde_json::from_str(data)?),
            "user.role_revoked" => Self::UserRoleRevoked(serde_json::from_str(data)?),
            "user.disabled" => Self::UserDisabled(serde_json::from_str(data)?),
            other => return Err(serde_json::Error::custom(format!("unknown type {other}"))),
        })
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
