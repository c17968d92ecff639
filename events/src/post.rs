//! The events of a post's stream: the post itself and every comment on it. Comments live in
//! their post's stream so that a post's events (its comments included) share one order, one
//! Kafka partition, and one optimistic-concurrency check.

use chrono::{DateTime, Utc};
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
    /// A draft was scheduled to be published at a given time.
    PostScheduled(PostScheduled),
    /// A post's schedule was cancelled (publishing or deleting it also ends it).
    PostUnscheduled(PostUnscheduled),
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
    /// A signed-in reader reacted to the post or one of its comments.
    ReactionAdded(Reaction),
    /// A reader took a reaction back.
    ReactionRemoved(Reaction),
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

/// Payload of `post.scheduled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostScheduled {
    /// When the post is to be published; a later `post.scheduled` replaces it.
    pub publish_at: DateTime<Utc>,
}

/// Payload of `post.unscheduled`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostUnscheduled {}

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

/// Payload of `reaction.added` and `reaction.removed`: one reader's one reaction to the post
/// or to a comment on it. The aggregate records an addition only when that reader has not
/// already given that reaction there, and a removal only when they have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reaction {
    /// The comment reacted to; `None` for the post itself.
    #[serde(default)]
    pub comment_id: Option<CommentId>,
    /// Who reacted.
    pub user_id: UserId,
    /// Which reaction: one of [`REACTION_KINDS`].
    pub kind: String,
}

/// The reactions readers can give, by their stored names, with the emoji they show as.
pub const REACTION_KINDS: [(&str, &str); 5] = [
    ("like", "\u{1F44D}"),
    ("heart", "\u{2764}\u{FE0F}"),
    ("laugh", "\u{1F602}"),
    ("tada", "\u{1F389}"),
    ("wow", "\u{1F62E}"),
];
