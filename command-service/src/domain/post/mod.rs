//! The post aggregate: a post and its comments, one event stream. `handle` holds every business
//! rule and decides which events happen; `apply` only folds events into state.

pub mod commands;
pub mod error;

use std::collections::{HashMap, HashSet};

use events::{
    CommentAdded, CommentDeleted, CommentEdited, CommentHidden, CommentId, CommentRestored,
    PostDeleted, PostDrafted, PostEdited, PostEvent, PostId, PostPublished, PostScheduled,
    PostUnpublished, PostUnscheduled, REACTION_KINDS, Reaction, UserId,
};
use eventually_core::aggregate::Aggregate;
use futures::future::BoxFuture;

use chrono::{DateTime, Utc};
use commands::{
    Caller, MAX_SCHEDULE_DAYS, PostCommand, validate_body, validate_comment_body, validate_name,
    validate_reason, validate_slug, validate_tags, validate_title,
};
pub use error::PostError;

/// The post aggregate (stateless: state lives in [`PostState`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct PostAggregate;

/// Where a post is in its life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PostStatus {
    /// No event yet: the post does not exist.
    #[default]
    Absent,
    /// Written, not visible to readers.
    Draft,
    /// Visible to readers; accepts comments.
    Published,
    /// Deleted; accepts nothing.
    Deleted,
}

/// What the rules need to know about a post.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostState {
    /// Life-cycle status.
    pub status: PostStatus,
    /// The author.
    pub author_id: Option<UserId>,
    /// The current slug.
    pub slug: String,
    /// Whether anonymous readers may comment.
    pub allow_anonymous_comments: bool,
    /// When the draft is to be published, if scheduled.
    pub scheduled_at: Option<DateTime<Utc>>,
    /// Every comment ever added, by id.
    pub comments: HashMap<CommentId, CommentState>,
    /// The reactions that stand: (comment, or `None` for the post; who; which).
    pub reactions: HashSet<(Option<CommentId>, UserId, String)>,
}

/// What the rules need to know about a comment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CommentState {
    /// Its signed-in author, if any.
    pub author_id: Option<UserId>,
    /// Deleted by its author.
    pub deleted: bool,
    /// Hidden by a moderator.
    pub hidden: bool,
}

/// A command together with who sent it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authored {
    /// Who sends it.
    pub caller: Caller,
    /// What they ask for.
    pub command: PostCommand,
}

impl Aggregate for PostAggregate {
    type Id = PostId;
    type State = PostState;
    type Event = PostEvent;
    type Command = Authored;
    type Error = PostError;

    fn apply(mut state: PostState, event: PostEvent) -> Result<PostState, PostError> {
        match event {
            PostEvent::PostDrafted(e) => {
                state.status = PostStatus::Draft;
                state.author_id = Some(e.author_id);
                state.slug = e.slug;
                state.allow_anonymous_comments = e.allow_anonymous_comments;
            }
            PostEvent::PostEdited(e) => {
                if let Some(slug) = e.slug {
                    state.slug = slug;
                }
                if let Some(allow) = e.allow_anonymous_comments {
                    state.allow_anonymous_comments = allow;
                }
            }
            PostEvent::PostPublished(_) => {
                state.status = PostStatus::Published;
                state.scheduled_at = None;
            }
            PostEvent::PostUnpublished(_) => state.status = PostStatus::Draft,
            PostEvent::PostDeleted(_) => {
                state.status = PostStatus::Deleted;
                state.scheduled_at = None;
            }
            PostEvent::PostScheduled(e) => state.scheduled_at = Some(e.publish_at),
            PostEvent::PostUnscheduled(_) => state.scheduled_at = None,
            PostEvent::CommentAdded(e) => {
                state.comments.insert(
                    e.comment_id,
                    CommentState {
                        author_id: e.author_id,
                        deleted: false,
                        hidden: false,
                    },
                );
            }
            PostEvent::CommentEdited(_) => {}
            PostEvent::CommentDeleted(e) => {
                if let Some(c) = state.comments.get_mut(&e.comment_id) {
                    c.deleted = true;
                }
            }
            PostEvent::CommentHidden(e) => {
                if let Some(c) = state.comments.get_mut(&e.comment_id) {
                    c.hidden = true;
                }
            }
            PostEvent::CommentRestored(e) => {
                if let Some(c) = state.comments.get_mut(&e.comment_id) {
                    c.hidden = false;
                }
            }
            PostEvent::ReactionAdded(e) => {
                state.reactions.insert((e.comment_id, e.user_id, e.kind));
            }
            PostEvent::ReactionRemoved(e) => {
                state.reactions.remove(&(e.comment_id, e.user_id, e.kind));
            }
        }
        Ok(state)
    }

    fn handle<'a, 's: 'a>(
        &'a self,
        _id: &'s PostId,
        state: &'s PostState,
        command: Authored,
    ) -> BoxFuture<'a, Result<Option<Vec<PostEvent>>, PostError>> {
        Box::pin(async move { decide(state, command).map(Some) })
    }
}

/// The rules, as a plain function: which events `command` causes on a post in `state`.
///
/// # Errors
/// The [`PostError`] explaining the refusal; no event happens then.
pub fn decide(
    state: &PostState,
    Authored { caller, command }: Authored,
) -> Result<Vec<PostEvent>, PostError> {
    let event = match command {
        PostCommand::DraftPost(c) => {
            if state.status != PostStatus::Absent {
                return Err(PostError::PostAlreadyExists);
            }
            let author_id = caller.user_id.ok_or(PostError::Unauthenticated)?;
            if !caller.has("author") {
                return Err(PostError::Forbidden("only authors may write posts"));
            }
            PostEvent::PostDrafted(PostDrafted {
                author_id,
                title: validate_title(&c.title)?,
                slug: validate_slug(&c.slug)?,
                body_markdown: validate_body(&c.body_markdown)?,
                tags: validate_tags(&c.tags)?,
                allow_anonymous_comments: c.allow_anonymous_comments,
            })
        }
        PostCommand::EditPost(c) => {
            require_author(state, &caller)?;
            let edit = PostEdited {
                title: c.title.as_deref().map(validate_title).transpose()?,
                slug: c.slug.as_deref().map(validate_slug).transpose()?,
                body_markdown: c.body_markdown.as_deref().map(validate_body).transpose()?,
                tags: c.tags.as_deref().map(validate_tags).transpose()?,
                allow_anonymous_comments: c.allow_anonymous_comments,
            };
            if edit == PostEdited::default() {
                return Err(PostError::invalid("post", "nothing to change"));
            }
            PostEvent::PostEdited(edit)
        }
        PostCommand::PublishPost => {
            require_author(state, &caller)?;
            if state.status == PostStatus::Published {
                return Err(PostError::AlreadyPublished);
            }
            PostEvent::PostPublished(PostPublished {})
        }
        PostCommand::UnpublishPost => {
            require_author(state, &caller)?;
            if state.status != PostStatus::Published {
                return Err(PostError::PostNotPublished);
            }
            PostEvent::PostUnpublished(PostUnpublished {})
        }
        PostCommand::DeletePost => {
            require_author(state, &caller)?;
            PostEvent::PostDeleted(PostDeleted {})
        }
        PostCommand::SchedulePost { publish_at, now } => {
            require_author(state, &caller)?;
            if state.status == PostStatus::Published {
                return Err(PostError::AlreadyPublished);
            }
            if publish_at <= now {
                return Err(PostError::invalid("publish_at", "must be in the future"));
            }
            if publish_at > now + chrono::Duration::days(MAX_SCHEDULE_DAYS) {
                return Err(PostError::invalid(
                    "publish_at",
                    "must be within five years",
                ));
            }
            PostEvent::PostScheduled(PostScheduled { publish_at })
        }
        PostCommand::UnschedulePost => {
            require_author(state, &caller)?;
            if state.scheduled_at.is_none() {
                return Err(PostError::NotScheduled);
            }
            PostEvent::PostUnscheduled(PostUnscheduled {})
        }
        PostCommand::PublishScheduled { publish_at } => {
            // Carried out once: a schedule replaced, cancelled or already carried out (by
            // another instance, or before a restart) leaves nothing to do.
            if state.status != PostStatus::Draft || state.scheduled_at != Some(publish_at) {
                return Ok(Vec::new());
            }
            PostEvent::PostPublished(PostPublished {})
        }
        PostCommand::AddComment(c) => {
            require_published(state)?;
            let body = validate_comment_body(&c.body)?;
            if state.comments.contains_key(&c.comment_id) {
                return Err(PostError::CommentAlreadyExists);
            }
            if let Some(parent) = c.parent_id {
                match state.comments.get(&parent) {
                    None => return Err(PostError::ParentNotInPost),
                    Some(p) if p.deleted => return Err(PostError::CommentDeleted),
                    Some(_) => {}
                }
            }
            let author_name = match (caller.user_id, c.author_name, caller.name) {
                (Some(_), Some(name), _) | (Some(_), None, Some(name)) => validate_name(&name)?,
                (Some(_), None, None) => "reader".to_owned(),
                (None, name, _) => {
                    if !state.allow_anonymous_comments {
                        return Err(PostError::AnonymousNotAllowed);
                    }
                    let name = name.ok_or_else(|| {
                        PostError::invalid("author_name", "anonymous comments need a name")
                    })?;
                    validate_name(&name)?
                }
            };
            PostEvent::CommentAdded(CommentAdded {
                comment_id: c.comment_id,
                parent_id: c.parent_id,
                author_id: caller.user_id,
                author_name,
                body,
            })
        }
        PostCommand::EditComment { comment_id, body } => {
            require_not_deleted(state)?;
            let comment = live_comment(state, comment_id)?;
            require_comment_author(comment, &caller)?;
            PostEvent::CommentEdited(CommentEdited {
                comment_id,
                body: validate_comment_body(&body)?,
            })
        }
        PostCommand::DeleteComment { comment_id } => {
            require_not_deleted(state)?;
            let comment = live_comment(state, comment_id)?;
            require_comment_author(comment, &caller)?;
            PostEvent::CommentDeleted(CommentDeleted { comment_id })
        }
        PostCommand::HideComment { comment_id, reason } => {
            require_moderator(state, &caller)?;
            let comment = live_comment(state, comment_id)?;
            if comment.hidden {
                return Err(PostError::CommentAlreadyHidden);
            }
            PostEvent::CommentHidden(CommentHidden {
                comment_id,
                reason: validate_reason(&reason)?,
            })
        }
        PostCommand::RestoreComment { comment_id } => {
            require_moderator(state, &caller)?;
            let comment = live_comment(state, comment_id)?;
            if !comment.hidden {
                return Err(PostError::CommentNotHidden);
            }
            PostEvent::CommentRestored(CommentRestored { comment_id })
        }
        PostCommand::React {
            comment_id,
            kind,
            on,
        } => {
            let user_id = caller.user_id.ok_or(PostError::Unauthenticated)?;
            if !REACTION_KINDS.iter().any(|(k, _)| *k == kind) {
                return Err(PostError::invalid(
                    "kind",
                    "must be one of like, heart, laugh, tada, wow",
                ));
            }
            if on {
                require_published(state)?;
                if let Some(id) = comment_id
                    && live_comment(state, id)?.hidden
                {
                    return Err(PostError::CommentHidden);
                }
            } else {
                require_not_deleted(state)?;
                if let Some(id) = comment_id {
                    state.comments.get(&id).ok_or(PostError::CommentNotFound)?;
                }
            }
            let key = (comment_id, user_id, kind);
            if state.reactions.contains(&key) == on {
                return Ok(Vec::new());
            }
            let (comment_id, user_id, kind) = key;
            let reaction = Reaction {
                comment_id,
                user_id,
                kind,
            };
            if on {
                PostEvent::ReactionAdded(reaction)
            } else {
                PostEvent::ReactionRemoved(reaction)
            }
        }
    };
    Ok(vec![event])
}

fn require_not_deleted(state: &PostState) -> Result<(), PostError> {
    match state.status {
        PostStatus::Absent => Err(PostError::PostNotFound),
        PostStatus::Deleted => Err(PostError::PostDeleted),
        PostStatus::Draft | PostStatus::Published => Ok(()),
    }
}

fn require_published(state: &PostState) -> Result<(), PostError> {
    require_not_deleted(state)?;
    if state.status == PostStatus::Published {
        Ok(())
    } else {
        Err(PostError::PostNotPublished)
    }
}

fn require_author(state: &PostState, caller: &Caller) -> Result<(), PostError> {
    require_not_deleted(state)?;
    let user = caller.user_id.ok_or(PostError::Unauthenticated)?;
    if state.author_id == Some(user) || caller.has("admin") {
        Ok(())
    } else {
        Err(PostError::Forbidden(
            "only the post's author or an admin may change it",
        ))
    }
}

fn require_moderator(state: &PostState, caller: &Caller) -> Result<(), PostError> {
    require_not_deleted(state)?;
    caller.user_id.ok_or(PostError::Unauthenticated)?;
    if caller.has("moderator") {
        Ok(())
    } else {
        Err(PostError::Forbidden(
            "only a moderator may hide or restore comments",
        ))
    }
}

fn live_comment(state: &PostState, id: CommentId) -> Result<&CommentState, PostError> {
    let comment = state.comments.get(&id).ok_or(PostError::CommentNotFound)?;
    if comment.deleted {
        return Err(PostError::CommentDeleted);
    }
    Ok(comment)
}

fn require_comment_author(comment: &CommentState, caller: &Caller) -> Result<(), PostError> {
    let user = caller.user_id.ok_or(PostError::Unauthenticated)?;
    if comment.author_id == Some(user) {
        Ok(())
    } else {
        Err(PostError::Forbidden(
            "only the comment's author may change it",
        ))
    }
}

#[cfg(test)]
mod tests;
