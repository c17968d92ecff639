//! A post's history: `Post.revisions` (every saved version, newest first, for its author and
//! admins) and `restorePostRevision`, which saves an old version's content as a new edit
//! (history is never rewritten).

use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use command_api::{EditPost, PostCommand};
use events::PostId;
use read_model::{PostRow, RevisionRow};

use super::loaders::{caller_has_role, load_user};
use super::posts::{PostPayload, post_command};
use super::users::User;
use super::{PageInfo, caller, clamp_i32, gql, page_size, parse_id, read_error, shared};
use crate::caller::Caller;
use crate::error::GatewayError;

/// Largest page of revisions.
pub const MAX_REVISIONS_PAGE: i32 = 100;

/// A saved version of a post's content.
pub struct PostRevision(pub RevisionRow);

/// A saved version of a post's content.
#[Object]
impl PostRevision {
    /// 1 for the draft as first saved, then +1 for each edit of its title, slug, body or tags.
    async fn version(&self) -> i32 {
        clamp_i32(self.0.revision)
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    /// The markdown source.
    async fn body(&self) -> &str {
        &self.0.body_markdown
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags.0
    }
    /// When it was saved.
    async fn edited_at(&self) -> DateTime<Utc> {
        self.0.edited_at
    }
    /// Who saved it (`null` when not recorded).
    async fn editor(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(id) = self.0.editor_id else {
            return Ok(None);
        };
        Ok(load_user(ctx, id)
            .await?
            .map(|row| User::from(row.as_ref())))
    }
}

/// A revision and its cursor.
#[derive(SimpleObject)]
pub struct PostRevisionEdge {
    /// Pass as `after` to continue with older revisions.
    pub cursor: String,
    /// The revision.
    pub node: PostRevision,
}

/// A page of a post's revisions, newest first.
#[derive(SimpleObject)]
pub struct PostRevisionConnection {
    /// The revisions.
    pub edges: Vec<PostRevisionEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

/// Whether `caller` may read and restore `post`'s history: its author, or an admin.
async fn may_see_history(ctx: &Context<'_>, post: &PostRow) -> Result<bool> {
    if caller(ctx).and_then(Caller::user) == Some(post.author_id) {
        return Ok(true);
    }
    caller_has_role(ctx, &["admin"]).await
}

/// `Post.revisions`.
pub(super) async fn revisions_of(
    ctx: &Context<'_>,
    post: &PostRow,
    first: Option<i32>,
    after: Option<String>,
) -> Result<PostRevisionConnection> {
    if !may_see_history(ctx, post).await? {
        return Err(gql(GatewayError::forbidden(
            "NOT_AUTHOR",
            "only the post's author and admins see its revisions",
        )));
    }
    let limit = page_size(first, 20, MAX_REVISIONS_PAGE).map_err(gql)?;
    let before = after
        .as_deref()
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| gql(GatewayError::bad_input("INVALID_CURSOR", "bad cursor")))
        })
        .transpose()?;
    let rows = shared(ctx)
        .read
        .revisions(post.id, before, limit + 1)
        .await
        .map_err(read_error)?;
    let (edges, page_info) = PageInfo::page(
        rows,
        limit,
        |row| PostRevisionEdge {
            cursor: row.revision.to_string(),
            node: PostRevision(row),
        },
        |e| &e.cursor,
    );
    Ok(PostRevisionConnection { edges, page_info })
}

/// `restorePostRevision`.
#[derive(Default)]
pub struct RevisionMutations;

#[Object]
impl RevisionMutations {
    /// Saves an earlier version's title, body and tags as a new edit (its author or an admin);
    /// the slug stays, so links keep working, and the history keeps every version.
    async fn restore_post_revision(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
        version: i32,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = parse_id(&post_id, "postId").map_err(gql)?;
        let read = &shared(ctx).read;
        let missing = || {
            gql(GatewayError::not_found(
                "REVISION_NOT_FOUND",
                format!("post {post} has no version {version}"),
            ))
        };
        let row = read
            .post_by_id(post, false)
            .await
            .map_err(read_error)?
            .ok_or_else(missing)?;
        if !may_see_history(ctx, &row).await? {
            return Err(missing());
        }
        let revision = read
            .revision(post, i64::from(version))
            .await
            .map_err(read_error)?
            .ok_or_else(missing)?;
        let command = PostCommand::Edit(
            PostId(post),
            EditPost {
                expected_version: None,
                title: Some(revision.title),
                slug: None,
                body_markdown: Some(revision.body_markdown),
                tags: Some(revision.tags.0),
                allow_anonymous_comments: None,
            },
        );
        post_command(ctx, command, wait_for_projection).await
    }
}
