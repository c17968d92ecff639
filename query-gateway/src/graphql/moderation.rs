//! The moderation log (`moderationLog`, moderators and admins): every hide, restore, role
//! change and disabled account, with who, when, why and what it concerned, newest first. An
//! entry is undone with the mutation it names (`restoreComment`, `grantRole`, `revokeRole`).

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use read_model::{ModerationFilter, ModerationRow};

use super::comments::Comment;
use super::loaders::{CommentsById, caller_has_role, load_user, loader_error};
use super::posts::Post;
use super::users::User;
use super::{PageInfo, caller, gql, page_size, parse_id, read_error, shared};
use crate::caller::Caller;
use crate::cursor;
use crate::error::GatewayError;

/// Largest page of the moderation log.
pub const MAX_MODERATION_PAGE: i32 = 100;

/// What a moderator or an admin did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "read_model::ModerationAction")]
pub enum ModerationAction {
    /// Hid a comment (undo: `restoreComment`).
    HideComment,
    /// Showed a hidden comment again (undo: `hideComment`).
    RestoreComment,
    /// Granted a role (undo: `revokeRole`).
    GrantRole,
    /// Revoked a role (undo: `grantRole`).
    RevokeRole,
    /// Disabled an account.
    DisableUser,
}

/// One act in the moderation log.
pub struct ModerationEntry(pub ModerationRow);

/// One act in the moderation log.
#[Object]
impl ModerationEntry {
    /// The id of the event that recorded it.
    async fn id(&self) -> ID {
        ID(self.0.event_id.to_string())
    }
    async fn action(&self) -> ModerationAction {
        self.0.action.into()
    }
    /// When.
    async fn at(&self) -> DateTime<Utc> {
        self.0.at
    }
    /// Who did it (`null`: an operator's command line).
    async fn moderator(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, self.0.moderator_id).await
    }
    /// Why (hidden comments).
    async fn reason(&self) -> Option<&str> {
        self.0.reason.as_deref()
    }
    /// The role granted or revoked.
    async fn role(&self) -> Option<&str> {
        self.0.role.as_deref()
    }
    /// The post of the comment concerned (drafts and deleted posts too).
    async fn post(&self, ctx: &Context<'_>) -> Result<Option<Post>> {
        let Some(id) = self.0.post_id else {
            return Ok(None);
        };
        let row = shared(ctx)
            .read
            .post_by_id(id, true)
            .await
            .map_err(read_error)?;
        Ok(row.map(Post))
    }
    /// The comment concerned, as readers see it now.
    async fn comment(&self, ctx: &Context<'_>) -> Result<Option<Comment>> {
        Ok(self.comment_row(ctx).await?.map(Comment))
    }
    /// The comment's text as written, hidden or not (empty once its author deleted it): what a
    /// moderator needs to decide on a restore.
    async fn comment_text(&self, ctx: &Context<'_>) -> Result<Option<String>> {
        Ok(self.comment_row(ctx).await?.map(|c| c.body.clone()))
    }
    /// The account concerned: the one whose role changed or that was disabled.
    async fn user(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        user(ctx, self.0.user_id).await
    }
}

impl ModerationEntry {
    async fn comment_row(&self, ctx: &Context<'_>) -> Result<Option<Arc<read_model::CommentRow>>> {
        let Some(id) = self.0.comment_id else {
            return Ok(None);
        };
        ctx.data_unchecked::<DataLoader<CommentsById>>()
            .load_one(id)
            .await
            .map_err(|e| loader_error(&e))
    }
}

async fn user(ctx: &Context<'_>, id: Option<uuid::Uuid>) -> Result<Option<User>> {
    let Some(id) = id else {
        return Ok(None);
    };
    Ok(load_user(ctx, id)
        .await?
        .map(|row| User::from(row.as_ref())))
}

/// An entry and its cursor.
#[derive(SimpleObject)]
pub struct ModerationEntryEdge {
    /// Pass as `after` to continue with older entries.
    pub cursor: String,
    /// The entry.
    pub node: ModerationEntry,
}

/// A page of the moderation log, newest first.
#[derive(SimpleObject)]
pub struct ModerationEntryConnection {
    /// The entries.
    pub edges: Vec<ModerationEntryEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

/// `moderationLog`.
#[derive(Default)]
pub struct ModerationQueries;

#[Object]
impl ModerationQueries {
    /// Every moderation act, newest first (moderators and admins; others get `FORBIDDEN`):
    /// `moderatorId` keeps one moderator's acts, `postId` the acts on one post's comments.
    async fn moderation_log(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        moderator_id: Option<ID>,
        post_id: Option<ID>,
    ) -> Result<ModerationEntryConnection> {
        if caller(ctx).and_then(Caller::user).is_none() {
            return Err(gql(GatewayError::Domain {
                code: "UNAUTHENTICATED".into(),
                reason: "SIGN_IN_REQUIRED".into(),
                message: "sign in as a moderator to read the moderation log".into(),
                field: None,
            }));
        }
        if !caller_has_role(ctx, &["moderator", "admin"]).await? {
            return Err(gql(GatewayError::forbidden(
                "NOT_MODERATOR",
                "only moderators and admins read the moderation log",
            )));
        }
        let limit = page_size(first, 20, MAX_MODERATION_PAGE).map_err(gql)?;
        let filter = ModerationFilter {
            moderator: moderator_id
                .map(|id| parse_id(&id, "moderatorId"))
                .transpose()
                .map_err(gql)?,
            post: post_id
                .map(|id| parse_id(&id, "postId"))
                .transpose()
                .map_err(gql)?,
        };
        let before = after
            .as_deref()
            .map(cursor::parse_post)
            .transpose()
            .map_err(gql)?;
        let rows = shared(ctx)
            .read
            .moderation_log(filter, before, limit + 1)
            .await
            .map_err(read_error)?;
        let (edges, page_info) = PageInfo::page(
            rows,
            limit,
            |row| ModerationEntryEdge {
                cursor: cursor::post(Some(row.at), row.event_id),
                node: ModerationEntry(row),
            },
            |e| &e.cursor,
        );
        Ok(ModerationEntryConnection { edges, page_info })
    }
}
