//! Posts: the `Post` type, reading posts (`post`, `posts`, `drafts`, `renderMarkdown`) and
//! writing them (`createPost`, `editPost`, `publishPost`, `unpublishPost`, `deletePost`,
//! `schedulePost`, `unschedulePost`).

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use command_api::{Accepted, CreatePost, EditPost, PostCommand, SchedulePost};
use events::PostId;
use read_model::{PostRow, fold};

use super::comments::{CommentConnection, MAX_COMMENTS_PAGE};
use super::loaders::{FirstComments, load_user, loader_error};
use super::revisions::{PostRevisionConnection, revisions_of};
use super::users::User;
use super::{
    PageInfo, Shared, caller, clamp_i32, command_caller, depend, gql, page_size, parse_id,
    read_error, shared, visible,
};
use crate::caller::Caller;
use crate::cursor;
use crate::error::GatewayError;

/// Largest page of posts.
pub const MAX_POSTS_PAGE: i32 = 50;
/// Longest markdown `renderMarkdown` takes: a post body's bound.
pub const MAX_MARKDOWN_BYTES: usize = 200_000;

/// Where a post is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[graphql(remote = "read_model::PostStatus")]
pub enum PostStatus {
    /// Only its author sees it.
    Draft,
    /// Everyone sees it.
    Published,
    /// Gone (only shown in the answer to `deletePost`).
    Deleted,
}

/// A blog post.
pub struct Post(pub PostRow);

#[Object]
impl Post {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn slug(&self) -> &str {
        &self.0.slug
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    /// The markdown source.
    async fn body(&self) -> &str {
        &self.0.body_markdown
    }
    /// The body rendered to sanitised HTML.
    async fn html(&self) -> String {
        self.0
            .body_html
            .clone()
            .unwrap_or_else(|| render::post_html(&self.0.body_markdown))
    }
    /// The post's opening words for a list of posts: its first paragraph as plain text (never
    /// a heading or a list), at most `maxLength` characters (1–1000), cut at a word with `…`.
    async fn excerpt(
        &self,
        #[graphql(default = 200, validator(minimum = 1, maximum = 1000))] max_length: i32,
    ) -> String {
        render::excerpt(
            &self.0.body_markdown,
            usize::try_from(max_length).unwrap_or(200),
        )
    }
    async fn tags(&self) -> &[String] {
        &self.0.tags.0
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    /// When its title or text last changed, if ever since it was drafted.
    async fn edited_at(&self) -> Option<DateTime<Utc>> {
        self.0.edited_at
    }
    /// Visible comments (not deleted, not hidden).
    async fn comment_count(&self) -> i32 {
        clamp_i32(self.0.comment_count)
    }
    /// Readers' reactions to the post: every kind, with its count and whether the viewer gave it.
    async fn reactions(&self, ctx: &Context<'_>) -> Result<Vec<super::reactions::ReactionCount>> {
        super::reactions::reactions_of(ctx, self.0.id).await
    }
    /// The post's stream version: every change to the post or its comments increments it.
    async fn version(&self) -> i32 {
        clamp_i32(self.0.version)
    }
    /// Pass as `after` to `commentEvents` to receive every change made after this read: a page
    /// that loads the post and then subscribes misses nothing in between.
    async fn comment_events_cursor(&self) -> String {
        cursor::event(self.0.version)
    }
    async fn status(&self) -> PostStatus {
        self.0.status.into()
    }
    async fn author_id(&self) -> ID {
        ID(self.0.author_id.to_string())
    }
    /// Who wrote it.
    async fn author(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(match load_user(ctx, self.0.author_id).await? {
            Some(row) => User::from(row.as_ref()),
            // Not projected yet (a moment after sign-up): its id, and no name to show.
            None => User {
                id: ID(self.0.author_id.to_string()),
                username: String::new(),
                display_name: String::new(),
                roles: Vec::new(),
            },
        })
    }
    /// Whether signed-out readers may comment (with a display name).
    async fn allow_anonymous_comments(&self) -> bool {
        self.0.allow_anonymous_comments
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// The first comments in display order. Batched across posts: a page of posts with their
    /// comments costs one statement for the posts and one for all their comments.
    async fn comments(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: i32,
    ) -> Result<CommentConnection> {
        let limit = page_size(Some(first), 20, MAX_COMMENTS_PAGE).map_err(gql)?;
        let loader = ctx.data_unchecked::<DataLoader<FirstComments>>();
        let rows = loader
            .load_one((self.0.id, limit + 1))
            .await
            .map_err(|e| loader_error(&e))?
            .unwrap_or_default();
        Ok(CommentConnection::from_rows(rows, limit))
    }
    /// When the draft will be published by itself (`schedulePost`), if it is scheduled.
    async fn scheduled_at(&self) -> Option<DateTime<Utc>> {
        self.0.scheduled_at
    }
    /// Every saved version of its content, newest first (its author and admins; others get
    /// `FORBIDDEN`).
    async fn revisions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<PostRevisionConnection> {
        revisions_of(ctx, &self.0, first, after).await
    }
}

/// A post and its cursor.
#[derive(SimpleObject)]
pub struct PostEdge {
    /// Pass as `after` to continue after this post.
    pub cursor: String,
    /// The post.
    pub node: Post,
}

/// A page of posts, newest first.
#[derive(SimpleObject)]
pub struct PostConnection {
    /// The posts.
    pub edges: Vec<PostEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

/// A changed post and the position of the change.
#[derive(SimpleObject)]
pub struct PostPayload {
    /// The post after the change.
    pub post: Post,
    /// Opaque position of the change in the log.
    pub position: String,
}

/// A new post (a draft until published).
#[derive(InputObject)]
pub struct CreatePostInput {
    /// Title.
    pub title: String,
    /// Markdown body.
    pub body: String,
    /// Tags.
    pub tags: Option<Vec<String>>,
    /// URL slug; derived from the title when absent.
    pub slug: Option<String>,
    /// Whether signed-out readers may comment.
    pub allow_anonymous_comments: Option<bool>,
}

/// Changes to a post; absent fields stay as they are.
#[derive(InputObject)]
pub struct EditPostInput {
    /// Title.
    pub title: Option<String>,
    /// Markdown body.
    pub body: Option<String>,
    /// Tags (replace the current ones).
    pub tags: Option<Vec<String>>,
    /// URL slug.
    pub slug: Option<String>,
    /// Whether signed-out readers may comment.
    pub allow_anonymous_comments: Option<bool>,
    /// Refuse with CONFLICT unless the post is at this version.
    pub expected_version: Option<i32>,
}

/// A slug from a title: lowercase ASCII letters and digits, dashes between words.
#[must_use]
pub fn slugify(title: &str) -> String {
    let mut slug = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
        if slug.len() >= 80 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-').to_owned();
    if slug.is_empty() {
        "post".to_owned()
    } else {
        slug
    }
}

/// A page of published posts (newest first) with `tag` and every one of `words`.
pub(super) async fn published_page(
    ctx: &Context<'_>,
    first: Option<i32>,
    after: Option<String>,
    tag: Option<&str>,
    words: &[String],
) -> Result<PostConnection> {
    let limit = page_size(first, 10, MAX_POSTS_PAGE).map_err(gql)?;
    let after = after
        .as_deref()
        .map(cursor::parse_post)
        .transpose()
        .map_err(gql)?;
    let rows = shared(ctx)
        .read
        .published_posts(limit + 1, after, tag, words)
        .await
        .map_err(read_error)?;
    let (edges, page_info) = PageInfo::page(
        rows,
        limit,
        |row| PostEdge {
            cursor: cursor::post(row.published_at, row.id),
            node: Post(row),
        },
        |e| &e.cursor,
    );
    Ok(PostConnection { edges, page_info })
}

/// `post` and `posts`.
#[derive(Default)]
pub struct PostQueries;

#[Object]
impl PostQueries {
    /// A post by id or by slug (exactly one of them). Drafts only for their author.
    async fn post(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
        slug: Option<String>,
    ) -> Result<Option<Post>> {
        let read = &shared(ctx).read;
        let row = match (id, slug) {
            (Some(id), None) => read
                .post_by_id(parse_id(&id, "id").map_err(gql)?, false)
                .await
                .map_err(read_error)?,
            (None, Some(slug)) => read.post_by_slug(&slug).await.map_err(read_error)?,
            _ => {
                return Err(gql(GatewayError::bad_input(
                    "ID_OR_SLUG",
                    "give exactly one of id and slug",
                )));
            }
        };
        // A draft hidden from this caller depends on its version too: publishing changes it.
        depend(ctx, row.as_ref().map(|p| (p.id, p.version)));
        Ok(row.filter(|p| visible(p, caller(ctx))).map(Post))
    }

    /// Published posts, newest first; `tag` keeps those with that tag.
    async fn posts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        tag: Option<String>,
    ) -> Result<PostConnection> {
        published_page(ctx, first, after, tag.as_deref(), &[]).await
    }
}

/// What an author's editor reads: `drafts` and `renderMarkdown`.
#[derive(Default)]
pub struct AuthoringQueries;

#[Object]
impl AuthoringQueries {
    /// The signed-in user's drafts, last changed first (empty when signed out).
    async fn drafts(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<Vec<Post>> {
        let limit = page_size(first, 20, MAX_POSTS_PAGE).map_err(gql)?;
        let Some(author) = caller(ctx).and_then(Caller::user) else {
            return Ok(Vec::new());
        };
        let rows = shared(ctx)
            .read
            .drafts_of(author, limit)
            .await
            .map_err(read_error)?;
        Ok(rows.into_iter().map(Post).collect())
    }

    /// Markdown rendered exactly as a post body is (sanitised HTML): the editor's preview.
    async fn render_markdown(&self, markdown: String) -> Result<String> {
        if markdown.len() > MAX_MARKDOWN_BYTES {
            return Err(gql(GatewayError::bad_input(
                "TOO_LONG",
                format!("markdown over {MAX_MARKDOWN_BYTES} bytes"),
            )));
        }
        Ok(render::post_html(&markdown))
    }
}

impl Shared {
    /// The post after an accepted command: from the read tables once projected (waiting when
    /// asked to), or the last projected row with the command's events folded in
    /// ([`read_model::fold`], what the projector will write).
    async fn post_after(
        &self,
        accepted: &Accepted,
        wait: bool,
    ) -> Result<PostPayload, GatewayError> {
        let post = accepted.post_id.0;
        let position = cursor::position(post, accepted.version);
        if wait {
            self.wait_for(post, accepted.version).await?;
        }
        let row = match self.read.post_by_id(post, true).await? {
            Some(row) if row.version >= accepted.version => Some(row),
            row => {
                let seen = row.as_ref().map_or(0, |r| r.version);
                accepted
                    .events
                    .iter()
                    .filter(|e| e.meta.stream_version > seen)
                    .fold(row, |row, event| fold::post(row, event, None, 0))
            }
        };
        let row = match row {
            Some(row) => row,
            // Nothing to show yet: wait after all (bounded) rather than invent a post.
            None => {
                self.wait_for(post, accepted.version).await?;
                self.read
                    .post_by_id(post, true)
                    .await?
                    .ok_or(GatewayError::Internal)?
            }
        };
        Ok(PostPayload {
            post: Post(row),
            position,
        })
    }
}

/// Sends a post command and answers with the post after it.
pub(super) async fn post_command(
    ctx: &Context<'_>,
    command: PostCommand,
    wait: Option<bool>,
) -> Result<PostPayload> {
    let s = shared(ctx);
    let accepted = s
        .commands
        .post(&command_caller(ctx), command, None)
        .await
        .map_err(|e| gql(e.into()))?;
    s.post_after(&accepted, wait.unwrap_or(false))
        .await
        .map_err(gql)
}

/// Post mutations.
#[derive(Default)]
pub struct PostMutations;

#[Object]
impl PostMutations {
    /// Drafts a post (authors only).
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let slug = input.slug.unwrap_or_else(|| slugify(&input.title));
        let command = PostCommand::Create(CreatePost {
            id: None,
            title: input.title,
            slug,
            body_markdown: input.body,
            tags: input.tags.unwrap_or_default(),
            allow_anonymous_comments: input.allow_anonymous_comments.unwrap_or(false),
        });
        post_command(ctx, command, wait_for_projection).await
    }

    /// Changes a post's title, body, tags, slug or comment policy (its author or an admin).
    async fn edit_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: EditPostInput,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        let command = PostCommand::Edit(
            post,
            EditPost {
                expected_version: input.expected_version.map(i64::from),
                title: input.title,
                slug: input.slug,
                body_markdown: input.body,
                tags: input.tags,
                allow_anonymous_comments: input.allow_anonymous_comments,
            },
        );
        post_command(ctx, command, wait_for_projection).await
    }

    /// Publishes a post.
    async fn publish_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        post_command(ctx, PostCommand::Publish(post), wait_for_projection).await
    }

    /// Takes a post back to draft.
    async fn unpublish_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        post_command(ctx, PostCommand::Unpublish(post), wait_for_projection).await
    }

    /// Deletes a post.
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        post_command(ctx, PostCommand::Delete(post), wait_for_projection).await
    }

    /// Publishes a draft at `at` (in the future, within five years; kept to the whole second),
    /// whichever instance is running then and across restarts; scheduling again moves it (its
    /// author or an admin).
    async fn schedule_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        at: DateTime<Utc>,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        let command = PostCommand::Schedule(post, SchedulePost { publish_at: at });
        post_command(ctx, command, wait_for_projection).await
    }

    /// Cancels a draft's schedule; it stays a draft.
    async fn unschedule_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let post = PostId(parse_id(&id, "id").map_err(gql)?);
        post_command(ctx, PostCommand::Unschedule(post), wait_for_projection).await
    }
}
