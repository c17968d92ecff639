//! Why a post command was refused.

/// A refused post or comment command. Each variant has a stable machine-readable code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PostError {
    /// The post does not exist (or was never created).
    #[error("post not found")]
    PostNotFound,
    /// The post was deleted.
    #[error("post was deleted")]
    PostDeleted,
    /// A post with this id already exists.
    #[error("post already exists")]
    PostAlreadyExists,
    /// Comments are only accepted on published posts.
    #[error("post is not published")]
    PostNotPublished,
    /// The post is already published.
    #[error("post is already published")]
    AlreadyPublished,
    /// The post has no schedule to cancel.
    #[error("post is not scheduled")]
    NotScheduled,
    /// The comment does not exist in this post.
    #[error("comment not found")]
    CommentNotFound,
    /// A comment with this id already exists.
    #[error("comment already exists")]
    CommentAlreadyExists,
    /// The parent comment belongs to another post, or does not exist.
    #[error("parent comment is not a comment of this post")]
    ParentNotInPost,
    /// The comment was deleted.
    #[error("comment was deleted")]
    CommentDeleted,
    /// The comment is already hidden.
    #[error("comment is already hidden")]
    CommentAlreadyHidden,
    /// The comment is not hidden.
    #[error("comment is not hidden")]
    CommentNotHidden,
    /// The comment is hidden by a moderator (it takes no reactions).
    #[error("comment is hidden")]
    CommentHidden,
    /// Who is asking may not do this.
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    /// The command needs a signed-in user.
    #[error("sign in required")]
    Unauthenticated,
    /// The post is anonymous-comment free and the commenter is not signed in.
    #[error("anonymous comments are not allowed on this post")]
    AnonymousNotAllowed,
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field, as named in the API.
        field: &'static str,
        /// What is wrong, in plain words.
        message: String,
    },
}

impl PostError {
    /// The stable, machine-readable reason.
    #[must_use]
    pub fn reason(&self) -> &'static str {
        match self {
            Self::PostNotFound => "POST_NOT_FOUND",
            Self::PostDeleted => "POST_DELETED",
            Self::PostAlreadyExists => "POST_ALREADY_EXISTS",
            Self::PostNotPublished => "POST_NOT_PUBLISHED",
            Self::AlreadyPublished => "ALREADY_PUBLISHED",
            Self::NotScheduled => "NOT_SCHEDULED",
            Self::CommentNotFound => "COMMENT_NOT_FOUND",
            Self::CommentAlreadyExists => "COMMENT_ALREADY_EXISTS",
            Self::ParentNotInPost => "PARENT_NOT_IN_POST",
            Self::CommentDeleted => "COMMENT_DELETED",
            Self::CommentAlreadyHidden => "COMMENT_ALREADY_HIDDEN",
            Self::CommentNotHidden => "COMMENT_NOT_HIDDEN",
            Self::CommentHidden => "COMMENT_HIDDEN",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::AnonymousNotAllowed => "ANONYMOUS_NOT_ALLOWED",
            Self::Invalid { .. } => "INVALID_FIELD",
        }
    }

    pub(crate) fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            message: message.into(),
        }
    }
}
