//! Commands on a post's stream, and the validation of their fields.

use chrono::{DateTime, Utc};
use events::{Actor, CommentId, UserId};

use super::error::PostError;

/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest slug, in characters.
pub const MAX_SLUG_CHARS: usize = events::MAX_SLUG_CHARS;
/// Largest post body, in bytes.
pub const MAX_BODY_BYTES: usize = 200_000;
/// Most tags on a post.
pub const MAX_TAGS: usize = 10;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = events::MAX_TAG_CHARS;
/// Longest comment, in characters.
pub const MAX_COMMENT_CHARS: usize = 10_000;
/// Longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// Furthest ahead a post may be scheduled, in days.
pub const MAX_SCHEDULE_DAYS: i64 = 5 * 366;
/// Longest moderation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// A command addressed to one post's stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostCommand {
    /// Create the post as a draft.
    DraftPost(DraftPost),
    /// Change some of its fields.
    EditPost(EditPost),
    /// Make it visible to readers.
    PublishPost,
    /// Take it back to draft.
    UnpublishPost,
    /// Delete it.
    DeletePost,
    /// Publish a draft at `publish_at` (replacing an earlier schedule).
    SchedulePost {
        /// When (whole seconds).
        publish_at: DateTime<Utc>,
        /// The service's clock when the command arrived: `publish_at` must be after it.
        now: DateTime<Utc>,
    },
    /// Cancel a draft's schedule.
    UnschedulePost,
    /// Publish the draft now if it is still scheduled for exactly `publish_at`; nothing
    /// otherwise. Sent only by the command service's own scheduler, never from the API.
    PublishScheduled {
        /// The schedule being carried out.
        publish_at: DateTime<Utc>,
    },
    /// Add a comment or reply.
    AddComment(AddComment),
    /// Change a comment's text.
    EditComment {
        /// The comment.
        comment_id: CommentId,
        /// The new text.
        body: String,
    },
    /// Delete a comment.
    DeleteComment {
        /// The comment.
        comment_id: CommentId,
    },
    /// Hide a comment (moderation).
    HideComment {
        /// The comment.
        comment_id: CommentId,
        /// Why.
        reason: String,
    },
    /// Restore a hidden comment.
    RestoreComment {
        /// The comment.
        comment_id: CommentId,
    },
    /// Give a reaction to the post or one of its comments, or take it back. Saying what the
    /// caller already has changes nothing (no event): clicks repeat, counts do not.
    React {
        /// The comment; `None` for the post itself.
        comment_id: Option<CommentId>,
        /// One of `events::REACTION_KINDS`.
        kind: String,
        /// `true` to react, `false` to take the reaction back.
        on: bool,
    },
}

/// Fields of a new post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DraftPost {
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Body (CommonMark).
    pub body_markdown: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Whether anonymous readers may comment.
    pub allow_anonymous_comments: bool,
}

/// Fields to change on a post; `None` leaves a field as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EditPost {
    /// New title.
    pub title: Option<String>,
    /// New slug.
    pub slug: Option<String>,
    /// New body.
    pub body_markdown: Option<String>,
    /// New tags.
    pub tags: Option<Vec<String>>,
    /// New anonymous-comment policy.
    pub allow_anonymous_comments: Option<bool>,
}

/// A new comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddComment {
    /// Its id (chosen by the client so a retry is recognised, or generated).
    pub comment_id: CommentId,
    /// The comment replied to.
    pub parent_id: Option<CommentId>,
    /// The text.
    pub body: String,
    /// For anonymous comments, the name to show.
    pub author_name: Option<String>,
}

/// Who sends a command: the identity the gateway authenticated, and the roles this service
/// read for it from `user_credentials` (never from the request).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Caller {
    /// The signed-in user.
    pub user_id: Option<UserId>,
    /// Their display name.
    pub name: Option<String>,
    /// Their current roles (`reader`, `author`, `moderator`, `admin`).
    pub roles: Vec<String>,
}

impl Caller {
    /// The command service's own scheduler, carrying out a schedule an author set.
    #[must_use]
    pub fn scheduler() -> Self {
        Self {
            user_id: None,
            name: Some("scheduler".to_owned()),
            roles: Vec::new(),
        }
    }

    /// Whether the caller is signed in and has `role` (admins have every role).
    #[must_use]
    pub fn has(&self, role: &str) -> bool {
        self.user_id.is_some() && self.roles.iter().any(|r| r == role || r == "admin")
    }

    /// The actor recorded in events.
    #[must_use]
    pub fn actor(&self) -> Actor {
        Actor {
            user_id: self.user_id,
            name: self.name.clone(),
        }
    }
}

/// Zero-width and invisible formatting characters, which can disguise a name or a title.
#[must_use]
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}')
        || is_bidi_control(c)
}

/// Bidirectional embedding, override and isolate controls: they reorder what a reader sees
/// ("Trojan Source"), so no text here may carry them.
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// NFC-normalised `text`, trimmed.
fn normalise(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.trim().nfc().collect()
}

/// Multi-line text: no control characters but line breaks and tabs, no bidi controls.
fn check_text(field: &'static str, text: &str) -> Result<(), PostError> {
    if text
        .chars()
        .any(|c| (c.is_control() && !matches!(c, '\n' | '\r' | '\t')) || is_bidi_control(c))
    {
        return Err(PostError::invalid(
            field,
            "must not contain control or bidirectional-override characters",
        ));
    }
    Ok(())
}

pub(crate) fn validate_title(title: &str) -> Result<String, PostError> {
    let title = normalise(title);
    let title = title.as_str();
    if title.chars().any(is_invisible) {
        return Err(PostError::invalid(
            "title",
            "must not contain invisible characters",
        ));
    }
    if title.is_empty() {
        return Err(PostError::invalid("title", "must not be empty"));
    }
    if title.chars().count() > MAX_TITLE_CHARS {
        return Err(PostError::invalid(
            "title",
            format!("must be at most {MAX_TITLE_CHARS} characters"),
        ));
    }
    if title.chars().any(char::is_control) {
        return Err(PostError::invalid(
            "title",
            "must not contain control characters",
        ));
    }
    Ok(title.to_owned())
}

pub(crate) fn validate_slug(slug: &str) -> Result<String, PostError> {
    if events::is_slug(slug) {
        Ok(slug.to_owned())
    } else {
        Err(PostError::invalid(
            "slug",
            format!("must be 1 to {MAX_SLUG_CHARS} lower-case letters, digits and inner hyphens"),
        ))
    }
}

pub(crate) fn validate_body(body: &str) -> Result<String, PostError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(PostError::invalid(
            "body_markdown",
            format!("must be at most {MAX_BODY_BYTES} bytes"),
        ));
    }
    check_text("body_markdown", body)?;
    use unicode_normalization::UnicodeNormalization;
    Ok(body.nfc().collect())
}

pub(crate) fn validate_tags(tags: &[String]) -> Result<Vec<String>, PostError> {
    if tags.len() > MAX_TAGS {
        return Err(PostError::invalid(
            "tags",
            format!("at most {MAX_TAGS} tags"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let Some(tag) = events::normal_tag(tag) else {
            return Err(PostError::invalid(
                "tags",
                format!("each tag is 1 to {MAX_TAG_CHARS} letters, digits or hyphens"),
            ));
        };
        if !out.contains(&tag) {
            out.push(tag);
        }
    }
    Ok(out)
}

pub(crate) fn validate_comment_body(body: &str) -> Result<String, PostError> {
    let body = normalise(body);
    let body = body.as_str();
    check_text("body", body)?;
    if body.is_empty() {
        return Err(PostError::invalid("body", "must not be empty"));
    }
    if body.chars().count() > MAX_COMMENT_CHARS {
        return Err(PostError::invalid(
            "body",
            format!("must be at most {MAX_COMMENT_CHARS} characters"),
        ));
    }
    Ok(body.to_owned())
}

pub(crate) fn validate_name(name: &str) -> Result<String, PostError> {
    let name = normalise(name);
    let name = name.as_str();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(|c| c.is_control() || is_invisible(c))
    {
        return Err(PostError::invalid(
            "author_name",
            format!("must be 1 to {MAX_NAME_CHARS} printable characters"),
        ));
    }
    Ok(name.to_owned())
}

pub(crate) fn validate_reason(reason: &str) -> Result<String, PostError> {
    let reason = normalise(reason);
    let reason = reason.as_str();
    check_text("reason", reason)?;
    if reason.is_empty() || reason.chars().count() > MAX_REASON_CHARS {
        return Err(PostError::invalid(
            "reason",
            format!("must be 1 to {MAX_REASON_CHARS} characters"),
        ));
    }
    Ok(reason.to_owned())
}
