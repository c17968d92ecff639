//! Comments: the `Comment` type, reading them (`comments`, `comment`) and writing them
//! (`addComment`, `editComment`, `deleteComment`, `hideComment`, `restoreComment`).

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use command_api::{Accepted, AddComment, EditComment, HideComment, PostCommand};
use events::{CommentId, PostId};
use read_model::{CommentRow, fold};
use uuid::Uuid;

use super::loaders::{CommentsById, load_user, loader_error};
use super::users::User;
use super::{
    PageInfo, Shared, caller, clamp_i32, command_caller, depend, gql, page_size, parse_id,
    read_error, shared, visible,
};
use crate::cursor;
use crate::error::GatewayError;

/// Largest page of comments.
pub const MAX_COMMENTS_PAGE: i32 = 200;

/// Whether a comment's text is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "read_model::CommentStatus")]
pub enum CommentStatus {
    /// Shown.
    Visible,
    /// Hidden by a moderator: a placeholder keeps its place in the thread.
    Hidden,
    /// Deleted by its author: a placeholder keeps its place in the thread.
    Deleted,
}

/// A comment or a reply.
pub struct Comment(pub Arc<CommentRow>);

#[Object]
impl Comment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn post_id(&self) -> ID {
        ID(self.0.post_id.to_string())
    }
    async fn parent_id(&self) -> Option<ID> {
        self.0.parent_id.map(|p| ID(p.to_string()))
    }
    /// The comment this one replies to.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Comment>> {
        let Some(parent) = self.0.parent_id else {
            return Ok(None);
        };
        let loader = ctx.data_unchecked::<DataLoader<CommentsById>>();
        Ok(loader
            .load_one(parent)
            .await
            .map_err(|e| loader_error(&e))?
            .map(Comment))
    }
    /// The markdown source; empty once hidden or deleted.
    async fn body(&self) -> &str {
        if self.0.status == read_model::CommentStatus::Visible {
            &self.0.body
        } else {
            ""
        }
    }
    /// The body rendered to sanitised HTML (raw HTML in comments is shown as text); empty once
    /// hidden or deleted.
    async fn html(&self) -> String {
        if self.0.status != read_model::CommentStatus::Visible {
            return String::new();
        }
        self.0
            .body_html
            .clone()
            .unwrap_or_else(|| render::comment_html(&self.0.body))
    }
    async fn author_name(&self) -> &str {
        &self.0.author_name
    }
    async fn author_id(&self) -> Option<ID> {
        self.0.author_id.map(|a| ID(a.to_string()))
    }
    /// The signed-in author; null for an anonymous comment.
    async fn author(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.author_id else {
            return Ok(None);
        };
        Ok(Some(match load_user(ctx, id).await? {
            Some(row) => User::from(row.as_ref()),
            None => User {
                id: ID(id.to_string()),
                username: String::new(),
                display_name: self.0.author_name.clone(),
                roles: Vec::new(),
            },
        }))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// 0 for a top-level comment.
    async fn depth(&self) -> i32 {
        clamp_i32(self.0.depth)
    }
    /// Direct replies that are not deleted.
    async fn reply_count(&self) -> i32 {
        clamp_i32(self.0.reply_count)
    }
    async fn status(&self) -> CommentStatus {
        self.0.status.into()
    }
    /// Readers' reactions: every kind, with its count and whether the viewer gave it.
    async fn reactions(&self, ctx: &Context<'_>) -> Result<Vec<super::reactions::ReactionCount>> {
        super::reactions::reactions_of(ctx, self.0.id).await
    }
    /// The post's stream version of this comment's last change.
    async fn version(&self) -> i32 {
        clamp_i32(self.0.changed_version)
    }
}

/// A comment and its cursor.
#[derive(SimpleObject)]
pub struct CommentEdge {
    /// Pass as `after` to continue after this comment.
    pub cursor: String,
    /// The comment.
    pub node: Comment,
}

/// A page of comments in display order (threads depth first).
#[derive(SimpleObject)]
pub struct CommentConnection {
    /// The comments.
    pub edges: Vec<CommentEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

impl CommentConnection {
    pub(super) fn from_rows(rows: Vec<Arc<CommentRow>>, limit: i64) -> Self {
        let (edges, page_info) = PageInfo::page(
            rows,
            limit,
            |row| CommentEdge {
                cursor: cursor::comment(&row.path),
                node: Comment(row),
            },
            |e| &e.cursor,
        );
        Self { edges, page_info }
    }
}

/// A changed comment and the position of the change.
#[derive(SimpleObject)]
pub struct CommentPayload {
    /// The comment after the change.
    pub comment: Comment,
    /// Opaque position of the change in the log.
    pub position: String,
}

/// A new comment, or a reply when `parentId` is set.
#[derive(InputObject)]
pub struct AddCommentInput {
    /// The post.
    pub post_id: ID,
    /// The comment replied to.
    pub parent_id: Option<ID>,
    /// Markdown text.
    pub body: String,
    /// Shown name of an anonymous commenter.
    pub author_name: Option<String>,
}

/// `comments`: a post's comments, a page at a time.
#[derive(Default)]
pub struct CommentQueries;

#[Object]
impl CommentQueries {
    /// A post's comments in display order (threads depth first, replies after their parent).
    /// With `under`, only the replies below that comment (its whole sub-thread), in the same
    /// order: how a client pages through one long thread.
    async fn comments(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
        first: Option<i32>,
        after: Option<String>,
        under: Option<ID>,
    ) -> Result<CommentConnection> {
        let read = &shared(ctx).read;
        let post = parse_id(&post_id, "postId").map_err(gql)?;
        let limit = page_size(first, 50, MAX_COMMENTS_PAGE).map_err(gql)?;
        let after = after
            .as_deref()
            .map(cursor::parse_comment)
            .transpose()
            .map_err(gql)?;
        let row = read.post_by_id(post, false).await.map_err(read_error)?;
        // Read before the comments, so they are at least as new as this version.
        depend(ctx, row.as_ref().map(|p| (p.id, p.version)));
        let exists = row.is_some_and(|p| visible(&p, caller(ctx)));
        if !exists {
            return Err(gql(GatewayError::not_found(
                "POST_NOT_FOUND",
                "no such post",
            )));
        }
        let under_path = match under {
            Some(id) => {
                let id = parse_id(&id, "under").map_err(gql)?;
                match read.comment(id).await.map_err(read_error)? {
                    Some(c) if c.post_id == post => Some(c.path),
                    _ => {
                        return Err(gql(GatewayError::not_found(
                            "COMMENT_NOT_FOUND",
                            "no such comment in this post",
                        )));
                    }
                }
            }
            None => None,
        };
        let rows = read
            .comments_page(post, limit + 1, after.as_deref(), under_path.as_deref())
            .await
            .map_err(read_error)?;
        Ok(CommentConnection::from_rows(
            rows.into_iter().map(Arc::new).collect(),
            limit,
        ))
    }
}

/// `comment`: one comment by id.
#[derive(Default)]
pub struct CommentByIdQuery;

#[Object]
impl CommentByIdQuery {
    /// One comment by id.
    async fn comment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Comment>> {
        let id = parse_id(&id, "id").map_err(gql)?;
        Ok(shared(ctx)
            .read
            .comment(id)
            .await
            .map_err(read_error)?
            .map(|c| Comment(Arc::new(c))))
    }
}

impl Shared {
    /// The comment after an accepted command: from the read tables once projected (waiting when
    /// asked to), or the last projected row with the command's events folded in. `parent`: the
    /// parent's row, for a reply not projected yet.
    async fn comment_after(
        &self,
        accepted: &Accepted,
        comment: Uuid,
        wait: bool,
        parent: Option<CommentRow>,
    ) -> Result<CommentPayload, GatewayError> {
        let post = accepted.post_id.0;
        let position = cursor::position(post, accepted.version);
        if wait {
            self.wait_for(post, accepted.version).await?;
        }
        let projected = self
            .read
            .versions(&[post])
            .await?
            .get(&post)
            .is_some_and(|v| *v >= accepted.version);
        let row = self.read.comment(comment).await?;
        let row = if projected {
            row
        } else {
            let seen = row.as_ref().map_or(0, |r| r.changed_version);
            accepted
                .events
                .iter()
                .filter(|e| e.meta.stream_version > seen)
                .filter(|e| fold::comment_of(&e.event) == Some(comment))
                .fold(row, |row, event| {
                    fold::comment(row, parent.as_ref(), event, None).row
                })
        };
        let row = match row {
            Some(row) => row,
            None => {
                self.wait_for(post, accepted.version).await?;
                self.read
                    .comment(comment)
                    .await?
                    .ok_or(GatewayError::Internal)?
            }
        };
        Ok(CommentPayload {
            comment: Comment(Arc::new(row)),
            position,
        })
    }

    /// The post a comment belongs to: `post_id` when the client gave it, else the read tables.
    pub(super) async fn post_of_comment(
        &self,
        comment: Uuid,
        post_id: Option<&ID>,
    ) -> Result<Uuid, GatewayError> {
        if let Some(post) = post_id {
            return parse_id(post, "postId");
        }
        self.read
            .comment(comment)
            .await?
            .map(|c| c.post_id)
            .ok_or_else(|| GatewayError::not_found("COMMENT_NOT_FOUND", "no such comment"))
    }
}

/// Sends a command on an existing comment and answers with the comment after it.
async fn comment_command(
    ctx: &Context<'_>,
    id: &ID,
    post_id: Option<&ID>,
    command: impl FnOnce(PostId, CommentId) -> PostCommand,
    wait: Option<bool>,
) -> Result<CommentPayload> {
    let s = shared(ctx);
    let comment = parse_id(id, "id").map_err(gql)?;
    let post = s.post_of_comment(comment, post_id).await.map_err(gql)?;
    let command = command(PostId(post), CommentId(comment));
    let accepted = s
        .commands
        .post(&command_caller(ctx), command, None)
        .await
        .map_err(|e| gql(e.into()))?;
    s.comment_after(&accepted, comment, wait.unwrap_or(false), None)
        .await
        .map_err(gql)
}

/// Comment mutations.
#[derive(Default)]
pub struct CommentMutations;

#[Object]
impl CommentMutations {
    /// Comments on a published post, or replies to a comment.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        input: AddCommentInput,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let s = shared(ctx);
        let post = parse_id(&input.post_id, "postId").map_err(gql)?;
        let parent = input
            .parent_id
            .as_ref()
            .map(|p| parse_id(p, "parentId"))
            .transpose()
            .map_err(gql)?;
        let command = PostCommand::AddComment(
            PostId(post),
            AddComment {
                parent_id: parent,
                body: input.body,
                author_name: input.author_name,
            },
        );
        let accepted = s
            .commands
            .post(&command_caller(ctx), command, None)
            .await
            .map_err(|e| gql(e.into()))?;
        let comment = accepted
            .comment_id
            .ok_or_else(|| gql(GatewayError::Internal))?;
        let wait = wait_for_projection.unwrap_or(false);
        // A reply answered before the projector caught up takes its place under its parent.
        let parent_row = match (wait, parent) {
            (false, Some(p)) => s.read.comment(p).await.map_err(read_error)?,
            _ => None,
        };
        s.comment_after(&accepted, comment.0, wait, parent_row)
            .await
            .map_err(gql)
    }

    /// Changes a comment's text (its author).
    async fn edit_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        body: String,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let command = |p, c| PostCommand::EditComment(p, c, EditComment { body });
        comment_command(ctx, &id, post_id.as_ref(), command, wait_for_projection).await
    }

    /// Deletes a comment (its author); replies keep their place under a placeholder.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let command = PostCommand::DeleteComment;
        comment_command(ctx, &id, post_id.as_ref(), command, wait_for_projection).await
    }

    /// Hides a comment, with the reason (moderators).
    async fn hide_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        reason: String,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let command = |p, c| PostCommand::HideComment(p, c, HideComment { reason });
        comment_command(ctx, &id, post_id.as_ref(), command, wait_for_projection).await
    }

    /// Shows a hidden comment again (moderators).
    async fn restore_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let command = PostCommand::RestoreComment;
        comment_command(ctx, &id, post_id.as_ref(), command, wait_for_projection).await
    }
}
