//! User events: a user's stream (stream id = user id) in the same event store and log as posts.
//! No password material is ever part of an event: the hash lives only in the write model's
//! credential table (ADR 005), so events can be replayed, shared and logged freely.

use serde::{Deserialize, Serialize};

/// A role, stored as its lower-case name.
pub const ROLES: &[&str] = &["reader", "author", "moderator", "admin"];

/// Payload of `user.registered`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRegistered {
    /// Unique, lower-case login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
}

/// Payload of `user.display_name_changed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDisplayNameChanged {
    /// The new shown name.
    pub display_name: String,
}

/// Payload of `user.password_changed`: that it happened, never what to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPasswordChanged {}

/// Payload of `user.role_granted` and `user.role_revoked`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserRoleChanged {
    /// One of [`ROLES`].
    pub role: String,
}

/// Payload of `user.disabled`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDisabled {}

/// Payload of `media.uploaded`: an image the user (the stream's owner) uploaded, as stored
/// (cleaned of metadata). Never the bytes: they are in the media store under `media_id`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaUploaded {
    /// Its id; it is served at `/media/{media_id}`.
    pub media_id: uuid::Uuid,
    /// Bytes stored.
    pub size: u64,
    /// `image/jpeg`, `image/png`, `image/gif` or `image/webp`.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// Payload of `notifications.read`: the user (the stream's owner) has seen their notifications
/// up to this one and every older one, in the order they are listed: by the time of the comment
/// that caused them (`up_to_at`), then by its id (`up_to_comment`). A mark never moves back: an
/// older one than the user's latest changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationsRead {
    /// When the comment behind the newest notification seen was made.
    pub up_to_at: chrono::DateTime<chrono::Utc>,
    /// That comment's id.
    pub up_to_comment: uuid::Uuid,
}

/// Every event that can appear in a user's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserEvent {
    /// A user signed up (or was added by an operator).
    Registered(UserRegistered),
    /// A user changed their shown name.
    DisplayNameChanged(UserDisplayNameChanged),
    /// A user's password changed (the hash is not in the event).
    PasswordChanged(UserPasswordChanged),
    /// An admin granted a role.
    RoleGranted(UserRoleChanged),
    /// An admin revoked a role.
    RoleRevoked(UserRoleChanged),
    /// A user may no longer sign in or act.
    Disabled(UserDisabled),
    /// The user uploaded an image.
    MediaUploaded(MediaUploaded),
    /// The user read their notifications up to a point.
    NotificationsRead(NotificationsRead),
}
