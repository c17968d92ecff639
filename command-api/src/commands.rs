//! The commands, and the HTTP route each takes to the command service. The request bodies are
//! the types the command service's router decodes, so the two sides cannot drift apart.

use chrono::{DateTime, Utc};
use events::{CommentId, PostId, UserId};
use reqwest::Method;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `POST /v1/posts`: drafts a post.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreatePost {
    /// Optional client-chosen id, so a retried create is recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// Title.
    pub title: String,
    /// Unique slug.
    pub slug: String,
    /// Markdown body.
    #[serde(default)]
    pub body_markdown: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Whether signed-out readers may comment.
    #[serde(default)]
    pub allow_anonymous_comments: bool,
}

/// `PATCH /v1/posts/{post}`: changes what is given, leaves the rest.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditPost {
    /// Applies only at exactly this version (also accepted as `If-Match`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_version: Option<i64>,
    /// New title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// New slug.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slug: Option<String>,
    /// New markdown body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body_markdown: Option<String>,
    /// New tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// New comment policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_anonymous_comments: Option<bool>,
}

/// `POST /v1/posts/{post}/comments`: comments, or replies to `parent_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddComment {
    /// The comment replied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Uuid>,
    /// Markdown text.
    pub body: String,
    /// The name shown for an anonymous comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_name: Option<String>,
}

/// `PATCH /v1/posts/{post}/comments/{comment}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EditComment {
    /// New markdown text.
    pub body: String,
}

/// `POST /v1/posts/{post}/comments/{comment}/hide`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HideComment {
    /// Why, for the audit trail.
    pub reason: String,
}

/// `PUT /v1/posts/{post}/schedule`: publish a draft at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchedulePost {
    /// When; in the future, within five years. Kept to the whole second.
    pub publish_at: DateTime<Utc>,
}

/// A command on a post's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostCommand {
    /// Draft a post.
    Create(CreatePost),
    /// Edit a post.
    Edit(PostId, EditPost),
    /// Publish a post.
    Publish(PostId),
    /// Take a post back to draft.
    Unpublish(PostId),
    /// Delete a post.
    Delete(PostId),
    /// Publish a draft at a time (replacing an earlier schedule).
    Schedule(PostId, SchedulePost),
    /// Cancel a draft's schedule.
    Unschedule(PostId),
    /// Comment on a post.
    AddComment(PostId, AddComment),
    /// Change a comment's text.
    EditComment(PostId, CommentId, EditComment),
    /// Delete a comment.
    DeleteComment(PostId, CommentId),
    /// Hide a comment (moderators).
    HideComment(PostId, CommentId, HideComment),
    /// Show a hidden comment again (moderators).
    RestoreComment(PostId, CommentId),
    /// React to the post, or to one of its comments (signed-in readers): `PUT …/reactions/{kind}`.
    /// Reacting again changes nothing.
    React(PostId, Option<CommentId>, String),
    /// Take a reaction back: `DELETE …/reactions/{kind}`.
    Unreact(PostId, Option<CommentId>, String),
}

/// `POST /v1/users`: sign up (as a reader) and sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Register {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Shown name; the username when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// `POST /v1/sessions`: sign in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Login {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// `POST /v1/sessions/refresh`: a new token for the caller's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// When the session began (the token's `auth_time`).
    pub auth_time: i64,
}

/// A command that answers with a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionCommand {
    /// Sign up.
    Register(Register),
    /// Sign in.
    Login(Login),
    /// Refresh the caller's session.
    Refresh(Refresh),
}

/// `POST /v1/users/me/display-name`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeDisplayName {
    /// The new name.
    pub display_name: String,
}

/// `POST /v1/users/me/media`: records an image the caller uploaded, already in the media
/// store (authors and admins).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordMedia {
    /// Its id in the media store.
    pub media_id: uuid::Uuid,
    /// Bytes stored.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
}

/// `POST /v1/users/me/notifications/read`: the caller has read their notifications up to the
/// one for comment `up_to_comment` made at `up_to_at`, and every older one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MarkNotificationsRead {
    /// When the newest comment read was made.
    pub up_to_at: chrono::DateTime<chrono::Utc>,
    /// Its id.
    pub up_to_comment: uuid::Uuid,
}

/// `PUT /v1/users/me/email`: where the caller's notifications are emailed, and whether they
/// are. A new address gets a confirmation link first; nothing else is sent to it until the link
/// is followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetEmail {
    /// The address; `None` forgets it.
    pub email: Option<String>,
    /// Whether notifications are emailed.
    pub enabled: bool,
}

/// `POST /v1/mail/confirm` and `POST /v1/mail/unsubscribe`: a link sent by email, as its holder
/// follows it (signed in or not: the link is the proof).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailLink {
    /// The link's token.
    pub token: String,
}

/// `POST /v1/users/me/password`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangePassword {
    /// The password now.
    pub current_password: String,
    /// The one to have.
    pub new_password: String,
}

/// `POST /v1/users/{user}/roles`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRole {
    /// The role.
    pub role: String,
}

/// A change to an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// The caller's shown name.
    ChangeDisplayName(ChangeDisplayName),
    /// The caller's password.
    ChangePassword(ChangePassword),
    /// Give a user a role (admins).
    GrantRole(UserId, GrantRole),
    /// Take a role from a user (admins).
    RevokeRole(UserId, String),
    /// Disable an account (admins).
    Disable(UserId),
    /// Record the caller's upload (authors and admins).
    RecordMedia(RecordMedia),
    /// Move the caller's read mark on their notifications.
    MarkNotificationsRead(MarkNotificationsRead),
    /// The caller's notification email settings (answers [`crate::Done::Email`]).
    ShowEmail,
    /// Set the caller's notification email (answers [`crate::Done::Email`]).
    SetEmail(SetEmail),
    /// Confirm an address with the link sent to it.
    ConfirmEmail(MailLink),
    /// Stop notification email with the link at the bottom of one.
    Unsubscribe(MailLink),
}

/// A command's HTTP request: method, path and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// The method.
    pub method: Method,
    /// The path, ids filled in.
    pub path: String,
    /// The body.
    pub body: Option<serde_json::Value>,
}

fn route(method: Method, path: String, body: Option<serde_json::Value>) -> Route {
    Route { method, path, body }
}

/// The JSON of a request body (these types always serialize).
fn json<T: Serialize>(body: &T) -> Option<serde_json::Value> {
    serde_json::to_value(body).ok()
}

impl PostCommand {
    /// Its request to the command service.
    #[must_use]
    pub fn route(&self) -> Route {
        use PostCommand as C;
        match self {
            C::Create(b) => route(Method::POST, "/v1/posts".into(), json(b)),
            C::Edit(p, b) => route(Method::PATCH, format!("/v1/posts/{p}"), json(b)),
            C::Publish(p) => route(Method::POST, format!("/v1/posts/{p}/publish"), None),
            C::Unpublish(p) => route(Method::POST, format!("/v1/posts/{p}/unpublish"), None),
            C::Delete(p) => route(Method::DELETE, format!("/v1/posts/{p}"), None),
            C::Schedule(p, b) => route(Method::PUT, format!("/v1/posts/{p}/schedule"), json(b)),
            C::Unschedule(p) => route(Method::DELETE, format!("/v1/posts/{p}/schedule"), None),
            C::AddComment(p, b) => route(Method::POST, format!("/v1/posts/{p}/comments"), json(b)),
            C::EditComment(p, c, b) => route(
                Method::PATCH,
                format!("/v1/posts/{p}/comments/{c}"),
                json(b),
            ),
            C::DeleteComment(p, c) => {
                route(Method::DELETE, format!("/v1/posts/{p}/comments/{c}"), None)
            }
            C::HideComment(p, c, b) => route(
                Method::POST,
                format!("/v1/posts/{p}/comments/{c}/hide"),
                json(b),
            ),
            C::RestoreComment(p, c) => route(
                Method::POST,
                format!("/v1/posts/{p}/comments/{c}/restore"),
                None,
            ),
            C::React(p, c, kind) => route(Method::PUT, reactions_path(*p, *c, kind), None),
            C::Unreact(p, c, kind) => route(Method::DELETE, reactions_path(*p, *c, kind), None),
        }
    }

    /// The post it is about (`None`: a create without a chosen id).
    #[must_use]
    pub fn post_id(&self) -> Option<PostId> {
        use PostCommand as C;
        match self {
            C::Create(b) => b.id.map(PostId),
            C::Edit(p, _)
            | C::Publish(p)
            | C::Unpublish(p)
            | C::Delete(p)
            | C::Schedule(p, _)
            | C::Unschedule(p)
            | C::AddComment(p, _)
            | C::EditComment(p, ..)
            | C::DeleteComment(p, _)
            | C::HideComment(p, ..)
            | C::RestoreComment(p, _)
            | C::React(p, ..)
            | C::Unreact(p, ..) => Some(*p),
        }
    }
}

/// `/v1/posts/{post}[/comments/{comment}]/reactions/{kind}` (`kind` as a path segment:
/// anything but the known kinds is refused by the service).
fn reactions_path(post: PostId, comment: Option<CommentId>, kind: &str) -> String {
    let kind: String = kind
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
        .collect();
    match comment {
        Some(c) => format!("/v1/posts/{post}/comments/{c}/reactions/{kind}"),
        None => format!("/v1/posts/{post}/reactions/{kind}"),
    }
}

impl SessionCommand {
    /// Its request to the command service.
    #[must_use]
    pub fn route(&self) -> Route {
        match self {
            Self::Register(b) => route(Method::POST, "/v1/users".into(), json(b)),
            Self::Login(b) => route(Method::POST, "/v1/sessions".into(), json(b)),
            Self::Refresh(b) => route(Method::POST, "/v1/sessions/refresh".into(), json(b)),
        }
    }
}

impl AccountCommand {
    /// Its request to the command service.
    #[must_use]
    pub fn route(&self) -> Route {
        match self {
            Self::ChangeDisplayName(b) => {
                route(Method::POST, "/v1/users/me/display-name".into(), json(b))
            }
            Self::ChangePassword(b) => route(Method::POST, "/v1/users/me/password".into(), json(b)),
            Self::GrantRole(u, b) => route(Method::POST, format!("/v1/users/{u}/roles"), json(b)),
            Self::RevokeRole(u, role) => {
                let role = percent_path(role);
                route(Method::DELETE, format!("/v1/users/{u}/roles/{role}"), None)
            }
            Self::Disable(u) => route(Method::POST, format!("/v1/users/{u}/disable"), None),
            Self::RecordMedia(b) => route(Method::POST, "/v1/users/me/media".into(), json(b)),
            Self::MarkNotificationsRead(b) => route(
                Method::POST,
                "/v1/users/me/notifications/read".into(),
                json(b),
            ),
            Self::ShowEmail => route(Method::GET, "/v1/users/me/email".into(), None),
            Self::SetEmail(b) => route(Method::PUT, "/v1/users/me/email".into(), json(b)),
            Self::ConfirmEmail(b) => route(Method::POST, "/v1/mail/confirm".into(), json(b)),
            Self::Unsubscribe(b) => route(Method::POST, "/v1/mail/unsubscribe".into(), json(b)),
        }
    }
}

/// `segment` safe as one path segment: anything but unreserved characters percent-encoded.
fn percent_path(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_fields_are_left_out_of_an_edit() {
        let edit = PostCommand::Edit(
            PostId(Uuid::nil()),
            EditPost {
                title: Some("T".into()),
                ..EditPost::default()
            },
        );
        let r = edit.route();
        assert_eq!(r.method, Method::PATCH);
        assert_eq!(r.path, format!("/v1/posts/{}", Uuid::nil()));
        assert_eq!(r.body, Some(serde_json::json!({ "title": "T" })));
    }

    #[test]
    fn a_role_is_one_path_segment_whatever_it_holds() {
        let r = AccountCommand::RevokeRole(UserId(Uuid::nil()), "a/b c".into()).route();
        assert!(r.path.ends_with("/roles/a%2Fb%20c"), "{}", r.path);
    }
}
