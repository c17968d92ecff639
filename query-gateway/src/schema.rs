//! The GraphQL schema: queries from the read tables, mutations forwarded to the command service,
//! and live comment subscriptions. The names here are a public contract (the web UI and outside
//! checks use them); `schema/schema.graphql` is its committed SDL, checked by a test.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};
use async_graphql::{
    Context, Enum, ErrorExtensions, ID, InputObject, Object, Result, SimpleObject, Subscription,
};
use axum::http::Method;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::cache::{PageCache, Scope};
use crate::commands::{Accepted, Caller, CommandClient};
use crate::cursor;
use crate::error::GatewayError;
use crate::fanout;
use crate::live::{CommentEventKind, Hub, LiveError, LiveEvent};
use crate::metrics::Metrics;
use read_model::{CommentRow, PostRow, ReadModel, UserRow};

/// The executable schema.
pub type InkwireSchema = async_graphql::Schema<Query, Mutation, SubscriptionRoot>;

/// Largest page of posts.
pub const MAX_POSTS_PAGE: i32 = 50;
/// Longest markdown `renderMarkdown` takes: a post body's bound.
pub const MAX_MARKDOWN_BYTES: usize = 200_000;
/// Largest page of comments.
pub const MAX_COMMENTS_PAGE: i32 = 200;

/// What every resolver shares.
pub struct Shared {
    /// The read tables.
    pub read: ReadModel,
    /// The command service.
    pub commands: CommandClient,
    /// Live fan-out.
    pub hub: Hub,
    /// Metrics.
    pub metrics: Metrics,
    /// Longest `waitForProjection`.
    pub wait_timeout: Duration,
    /// Answers to anonymous post reads.
    pub cache: PageCache,
    /// The projector's commit bell, when it runs in this process.
    pub bell: Option<infra::bell::CommitBell>,
}

fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<Arc<Shared>>()
}

fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Caller> {
    ctx.data_opt::<Caller>()
}

/// The page-cache scope of this request, when its answer may be stored.
fn cache_scope<'a>(ctx: &Context<'a>) -> Option<&'a Scope> {
    ctx.data_opt::<Arc<Scope>>().map(AsRef::as_ref)
}

/// Records that the answer shows stream `id` at `version` (or, with no row, that it shows
/// something no version describes).
fn depend(ctx: &Context<'_>, row: Option<(Uuid, i64)>) {
    if let Some(scope) = cache_scope(ctx) {
        match row {
            Some((id, version)) => scope.depend(id, version),
            None => scope.refuse(),
        }
    }
}

fn gql(e: GatewayError) -> async_graphql::Error {
    e.extend()
}

fn parse_id(id: &ID, what: &'static str) -> Result<Uuid, GatewayError> {
    id.parse::<Uuid>()
        .map_err(|_| GatewayError::bad_input("INVALID_ID", format!("{what} is not a valid id")))
}

/// A page of published posts (newest first) with `tag` and every one of `words`.
async fn published_page(
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
    let mut rows = shared(ctx)
        .read
        .published_posts(limit + 1, after, tag, words)
        .await
        .map_err(|e| gql(e.into()))?;
    let has_next_page = rows.len() as i64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    let edges: Vec<PostEdge> = rows
        .into_iter()
        .map(|row| PostEdge {
            cursor: cursor::post(row.published_at, row.id),
            node: Post(row),
        })
        .collect();
    Ok(PostConnection {
        page_info: PageInfo {
            has_next_page,
            end_cursor: edges.last().map(|e| e.cursor.clone()),
        },
        edges,
    })
}

/// Longest search, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// Most words in a search.
const MAX_SEARCH_WORDS: usize = 10;

/// The lower-case words of a search, or why it cannot be one.
fn search_words(query: &str) -> Result<Vec<String>, GatewayError> {
    if query.chars().count() > MAX_SEARCH_CHARS {
        return Err(GatewayError::bad_input(
            "SEARCH_TOO_LONG",
            format!("a search is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let mut words: Vec<String> = Vec::new();
    for word in query.split_whitespace().map(str::to_lowercase) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.is_empty() {
        return Err(GatewayError::bad_input(
            "EMPTY_SEARCH",
            "give at least one word to search for",
        ));
    }
    if words.len() > MAX_SEARCH_WORDS {
        return Err(GatewayError::bad_input(
            "SEARCH_TOO_LONG",
            format!("a search is at most {MAX_SEARCH_WORDS} words"),
        ));
    }
    Ok(words)
}

fn page_size(first: Option<i32>, default: i32, max: i32) -> Result<i64, GatewayError> {
    let first = first.unwrap_or(default);
    if !(0..=max).contains(&first) {
        return Err(GatewayError::bad_input(
            "PAGE_SIZE",
            format!("first must be between 0 and {max}"),
        ));
    }
    Ok(i64::from(first))
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

/// Whether the caller may see `post`: published posts are public, drafts only to their author.
fn visible(post: &PostRow, caller: Option<&Caller>) -> bool {
    post.status == read_model::PostStatus::Published
        || caller
            .and_then(|c| c.user_id.as_deref())
            .and_then(|u| u.parse::<Uuid>().ok())
            .is_some_and(|u| u == post.author_id)
}

// ---------------------------------------------------------------------------------------------
// Loaders

/// Comments by id (for `Comment.parent`).
pub struct CommentsById(pub ReadModel);

impl Loader<Uuid> for CommentsById {
    type Value = Arc<CommentRow>;
    type Error = Arc<GatewayError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self
            .0
            .comments_by_ids(keys)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|r| (r.id, Arc::new(r))).collect())
    }
}

/// The first N comments of posts (for `Post.comments`), one statement per distinct N.
pub struct FirstComments(pub ReadModel);

impl Loader<(Uuid, i64)> for FirstComments {
    type Value = Vec<Arc<CommentRow>>;
    type Error = Arc<GatewayError>;

    async fn load(
        &self,
        keys: &[(Uuid, i64)],
    ) -> Result<HashMap<(Uuid, i64), Self::Value>, Self::Error> {
        let mut by_limit: HashMap<i64, Vec<Uuid>> = HashMap::new();
        for (post, limit) in keys {
            by_limit.entry(*limit).or_default().push(*post);
        }
        let mut out = HashMap::new();
        for (limit, posts) in by_limit {
            let mut rows = self
                .0
                .first_comments_of(&posts, limit)
                .await
                .map_err(|e| Arc::new(e.into()))?;
            for post in posts {
                let list = rows.remove(&post).unwrap_or_default();
                out.insert((post, limit), list.into_iter().map(Arc::new).collect());
            }
        }
        Ok(out)
    }
}

/// Users by id (for `Post.author`, `Comment.author`).
pub struct UsersById(pub ReadModel);

impl Loader<Uuid> for UsersById {
    type Value = Arc<UserRow>;
    type Error = Arc<GatewayError>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = self
            .0
            .users_by_ids(keys)
            .await
            .map_err(|e| Arc::new(e.into()))?;
        Ok(rows.into_iter().map(|r| (r.id, Arc::new(r))).collect())
    }
}

/// Adds the per-request loaders to `request`.
pub fn with_loaders(request: async_graphql::Request, read: &ReadModel) -> async_graphql::Request {
    request
        .data(DataLoader::new(CommentsById(read.clone()), tokio::spawn))
        .data(DataLoader::new(FirstComments(read.clone()), tokio::spawn))
        .data(DataLoader::new(UsersById(read.clone()), tokio::spawn))
}

/// Adds loaders to the schema's own data, for what runs without per-request ones: WebSocket
/// operations (thousands of connections, mostly idle, need not carry a set each) and live
/// events. They do not cache, so sharing them across connections and events never serves a stale
/// row; they only batch loads that happen at the same time.
pub fn with_shared_loaders<Q, M, S>(
    builder: async_graphql::SchemaBuilder<Q, M, S>,
    read: &ReadModel,
) -> async_graphql::SchemaBuilder<Q, M, S> {
    builder
        .data(DataLoader::new(CommentsById(read.clone()), tokio::spawn))
        .data(DataLoader::new(FirstComments(read.clone()), tokio::spawn))
        .data(DataLoader::new(UsersById(read.clone()), tokio::spawn))
}

async fn load_user(ctx: &Context<'_>, id: Uuid) -> Result<Option<Arc<UserRow>>> {
    match ctx.data_opt::<DataLoader<UsersById>>() {
        Some(loader) => {
            let row = loader.load_one(id).await.map_err(|e| loader_error(&e))?;
            depend(ctx, row.as_ref().map(|u| (u.id, u.version)));
            Ok(row)
        }
        // A schema built without the shared state (no loaders anywhere): read directly.
        None => Ok(shared(ctx)
            .read
            .users_by_ids(&[id])
            .await
            .map_err(|e| gql(e.into()))?
            .into_iter()
            .next()
            .map(Arc::new)),
    }
}

fn loader_error(e: &GatewayError) -> async_graphql::Error {
    match e {
        GatewayError::Unavailable => gql(GatewayError::Unavailable),
        _ => gql(GatewayError::Internal),
    }
}

// ---------------------------------------------------------------------------------------------
// Types

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

/// A person with an account.
#[derive(SimpleObject, Clone)]
pub struct User {
    /// Id.
    pub id: ID,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// `reader`, `author`, `moderator`, `admin`.
    pub roles: Vec<String>,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        Self {
            id: ID(row.id.to_string()),
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            roles: row.roles.0.clone(),
        }
    }
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>` (HTTP) or `{"authorization": "Bearer <token>"}`
    /// in `connection_init` (WebSocket). Expires; sign in again to renew.
    pub token: String,
    /// Who it is for.
    pub user: User,
}

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 lower-case letters, digits, `_` or `-`.
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
    /// Shown name; the username when absent.
    pub display_name: Option<String>,
}

#[derive(serde::Deserialize)]
struct SessionAnswer {
    token: String,
    user: UserAnswer,
}

#[derive(serde::Deserialize)]
struct UserAnswer {
    id: Uuid,
    username: String,
    display_name: String,
    roles: Vec<String>,
}

impl From<UserAnswer> for User {
    fn from(u: UserAnswer) -> Self {
        Self {
            id: ID(u.id.to_string()),
            username: u.username,
            display_name: u.display_name,
            roles: u.roles,
        }
    }
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
    /// The post's stream version of this comment's last change.
    async fn version(&self) -> i32 {
        clamp_i32(self.0.changed_version)
    }
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether another page follows.
    pub has_next_page: bool,
    /// The cursor of the last edge, to pass as `after`.
    pub end_cursor: Option<String>,
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
    fn from_rows(mut rows: Vec<Arc<CommentRow>>, limit: i64) -> Self {
        let has_next_page = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<CommentEdge> = rows
            .into_iter()
            .map(|row| CommentEdge {
                cursor: cursor::comment(&row.path),
                node: Comment(row),
            })
            .collect();
        Self {
            page_info: PageInfo {
                has_next_page,
                end_cursor: edges.last().map(|e| e.cursor.clone()),
            },
            edges,
        }
    }
}

/// A change to a comment, pushed live.
pub struct CommentEvent {
    event: Arc<LiveEvent>,
}

#[Object]
impl CommentEvent {
    async fn kind(&self) -> CommentEventKind {
        self.event.kind
    }
    /// The comment as queries show it now.
    async fn comment(&self) -> Comment {
        Comment(self.event.comment.clone())
    }
    /// Pass as `after` when subscribing again to resume right after this event.
    async fn cursor(&self) -> String {
        cursor::event(self.event.comment.changed_version)
    }
}

/// A changed post and the position of the change.
#[derive(SimpleObject)]
pub struct PostPayload {
    /// The post after the change.
    pub post: Post,
    /// Opaque position of the change in the log.
    pub position: String,
}

/// A changed comment and the position of the change.
#[derive(SimpleObject)]
pub struct CommentPayload {
    /// The comment after the change.
    pub comment: Comment,
    /// Opaque position of the change in the log.
    pub position: String,
}

// ---------------------------------------------------------------------------------------------
// Queries

/// Reads, from the read tables only.
pub struct Query;

#[Object]
impl Query {
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
                .map_err(|e| gql(e.into()))?,
            (None, Some(slug)) => read.post_by_slug(&slug).await.map_err(|e| gql(e.into()))?,
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

    /// Published posts whose title, text or tags contain every word of `query`
    /// (case-insensitive; `%` and `_` are plain characters), newest first. 1 to 200
    /// characters, at most 10 words.
    async fn search_posts(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<PostConnection> {
        let words = search_words(&query).map_err(gql)?;
        published_page(ctx, first, after, None, &words).await
    }

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
        let row = read
            .post_by_id(post, false)
            .await
            .map_err(|e| gql(e.into()))?;
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
                match read.comment(id).await.map_err(|e| gql(e.into()))? {
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
            .map_err(|e| gql(e.into()))?;
        Ok(CommentConnection::from_rows(
            rows.into_iter().map(Arc::new).collect(),
            limit,
        ))
    }

    /// The signed-in user, or null.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(caller) = caller(ctx) else {
            return Ok(None);
        };
        let Some(id) = caller
            .user_id
            .as_deref()
            .and_then(|u| u.parse::<Uuid>().ok())
        else {
            return Ok(None);
        };
        Ok(Some(match load_user(ctx, id).await? {
            Some(row) => User::from(row.as_ref()),
            // Just signed up, not projected yet: what the token says.
            None => User {
                id: ID(id.to_string()),
                username: caller.username.clone().unwrap_or_default(),
                display_name: caller.name.clone().unwrap_or_default(),
                roles: caller.roles.clone(),
            },
        }))
    }

    /// The signed-in user's drafts, last changed first (empty when signed out).
    async fn drafts(&self, ctx: &Context<'_>, first: Option<i32>) -> Result<Vec<Post>> {
        let limit = page_size(first, 20, MAX_POSTS_PAGE).map_err(gql)?;
        let Some(author) = caller(ctx)
            .and_then(|c| c.user_id.as_deref())
            .and_then(|u| u.parse::<Uuid>().ok())
        else {
            return Ok(Vec::new());
        };
        let rows = shared(ctx)
            .read
            .drafts_of(author, limit)
            .await
            .map_err(|e| gql(e.into()))?;
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

    /// One comment by id.
    async fn comment(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Comment>> {
        let id = parse_id(&id, "id").map_err(gql)?;
        Ok(shared(ctx)
            .read
            .comment(id)
            .await
            .map_err(|e| gql(e.into()))?
            .map(|c| Comment(Arc::new(c))))
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

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

impl Shared {
    /// Waits until the read tables have `post` at `version` or later.
    async fn wait_for(&self, post: Uuid, version: i64) -> Result<(), GatewayError> {
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        // With the projector's bell (one process), every commit wakes this wait: the timer is
        // only a safety net, so it need not look at the tables every millisecond meanwhile.
        let (first, longest) = match self.bell {
            Some(_) => (infra::bell::SAFETY_NET, 2 * infra::bell::SAFETY_NET),
            None => (Duration::from_millis(1), Duration::from_millis(25)),
        };
        let mut pause = first;
        // Listening before the first look: a commit between the look and the wait is heard.
        let mut commits = infra::bell::Ear::of(self.bell.as_ref());
        loop {
            let projected = self.read.versions(&[post]).await?;
            if let Some(v) = projected.get(&post).copied().filter(|v| *v >= version) {
                // Read-your-writes through the page cache too: no older page is served now.
                self.cache.saw(post, v);
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                self.metrics.projection_timeouts.inc();
                return Err(GatewayError::ProjectionTimeout {
                    position: cursor::position(post, version),
                });
            }
            tokio::select! {
                () = tokio::time::sleep_until((now + pause).min(deadline)) => {}
                () = commits.rung() => {}
            }
            pause = (pause * 2).min(longest);
        }
    }

    /// The post after an accepted command: from the read tables once projected (waiting when
    /// asked to), or the last projected row with the command's effect applied by `overlay`.
    async fn post_after(
        &self,
        accepted: &Accepted,
        wait: bool,
        overlay: impl FnOnce(Option<PostRow>) -> Option<PostRow>,
    ) -> Result<PostPayload, GatewayError> {
        let position = cursor::position(accepted.post_id, accepted.version);
        if wait {
            self.wait_for(accepted.post_id, accepted.version).await?;
        }
        let row = self.read.post_by_id(accepted.post_id, true).await?;
        let row = match row {
            Some(row) if row.version >= accepted.version => Some(row),
            other => overlay(other),
        };
        let row = match row {
            Some(row) => row,
            // Nothing to show yet: wait after all (bounded) rather than invent a post.
            None => {
                self.wait_for(accepted.post_id, accepted.version).await?;
                self.read
                    .post_by_id(accepted.post_id, true)
                    .await?
                    .ok_or(GatewayError::Internal)?
            }
        };
        Ok(PostPayload {
            post: Post(row),
            position,
        })
    }

    /// The comment after an accepted command (see [`Shared::post_after`]).
    async fn comment_after(
        &self,
        accepted: &Accepted,
        comment: Uuid,
        wait: bool,
        overlay: impl FnOnce(Option<CommentRow>) -> Option<CommentRow>,
    ) -> Result<CommentPayload, GatewayError> {
        let position = cursor::position(accepted.post_id, accepted.version);
        if wait {
            self.wait_for(accepted.post_id, accepted.version).await?;
        }
        let projected = self
            .read
            .versions(&[accepted.post_id])
            .await?
            .get(&accepted.post_id)
            .is_some_and(|v| *v >= accepted.version);
        let row = self.read.comment(comment).await?;
        let row = if projected { row } else { overlay(row) };
        let row = match row {
            Some(row) => row,
            None => {
                self.wait_for(accepted.post_id, accepted.version).await?;
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
    async fn post_of_comment(
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

fn object(pairs: Vec<(&str, Option<Value>)>) -> Value {
    let mut map = Map::new();
    for (k, v) in pairs {
        if let Some(v) = v {
            map.insert(k.to_owned(), v);
        }
    }
    Value::Object(map)
}

/// Writes, forwarded to the command service. Each answers with the changed object and its
/// position; `waitForProjection: true` answers only once queries show the change.
pub struct Mutation;

#[Object]
impl Mutation {
    /// Creates an account (role `reader`) and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let body = object(vec![
            ("username", Some(Value::from(input.username))),
            ("password", Some(Value::from(input.password))),
            ("display_name", input.display_name.map(Value::from)),
        ]);
        let answer: SessionAnswer = s
            .commands
            .call(Method::POST, "/v1/users", Some(body), &who)
            .await
            .map_err(gql)?;
        Ok(AuthPayload {
            token: answer.token,
            user: answer.user.into(),
        })
    }

    /// Signs in. A wrong username and a wrong password get the same error
    /// (`UNAUTHENTICATED`); repeated failures are throttled (`RATE_LIMITED`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let body = json!({ "username": username, "password": password });
        let answer: SessionAnswer = s
            .commands
            .call(Method::POST, "/v1/sessions", Some(body), &who)
            .await
            .map_err(gql)?;
        Ok(AuthPayload {
            token: answer.token,
            user: answer.user.into(),
        })
    }

    /// A new token for the signed-in user, with their current roles, while the session (from the
    /// password sign-in) is younger than 30 days and the account is enabled. Call it before the
    /// token expires.
    async fn refresh_token(&self, ctx: &Context<'_>) -> Result<AuthPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        if who.user_id.is_none() {
            return Err(gql(GatewayError::Domain {
                code: "UNAUTHENTICATED".into(),
                reason: "SIGN_IN_REQUIRED".into(),
                message: "sign in first".into(),
                field: None,
            }));
        }
        let body = json!({ "auth_time": who.auth_time.unwrap_or(0) });
        let answer: SessionAnswer = s
            .commands
            .call(Method::POST, "/v1/sessions/refresh", Some(body), &who)
            .await
            .map_err(gql)?;
        Ok(AuthPayload {
            token: answer.token,
            user: answer.user.into(),
        })
    }

    /// Changes the signed-in user's shown name.
    async fn change_display_name(&self, ctx: &Context<'_>, display_name: String) -> Result<bool> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let _: Value = s
            .commands
            .call(
                Method::POST,
                "/v1/users/me/display-name",
                Some(json!({ "display_name": display_name })),
                &who,
            )
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Changes the signed-in user's password; needs the current one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let body = json!({ "current_password": current_password, "new_password": new_password });
        let _: Value = s
            .commands
            .call(Method::POST, "/v1/users/me/password", Some(body), &who)
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Disables an account (admins): it can no longer sign in, and its tokens stop working for
    /// every change at once.
    async fn disable_user(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let user = parse_id(&user_id, "userId").map_err(gql)?;
        let _: Value = s
            .commands
            .call(
                Method::POST,
                &format!("/v1/users/{user}/disable"),
                None,
                &who,
            )
            .await
            .map_err(gql)?;
        Ok(true)
    }

    /// Grants a role (admins).
    async fn grant_role(&self, ctx: &Context<'_>, user_id: ID, role: String) -> Result<User> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let user = parse_id(&user_id, "userId").map_err(gql)?;
        let answer: UserAnswer = s
            .commands
            .call(
                Method::POST,
                &format!("/v1/users/{user}/roles"),
                Some(json!({ "role": role })),
                &who,
            )
            .await
            .map_err(gql)?;
        Ok(answer.into())
    }

    /// Revokes a role (admins).
    async fn revoke_role(&self, ctx: &Context<'_>, user_id: ID, role: String) -> Result<User> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let user = parse_id(&user_id, "userId").map_err(gql)?;
        if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(gql(GatewayError::bad_input("INVALID_ROLE", "no such role")));
        }
        let answer: UserAnswer = s
            .commands
            .call(
                Method::DELETE,
                &format!("/v1/users/{user}/roles/{role}"),
                None,
                &who,
            )
            .await
            .map_err(gql)?;
        Ok(answer.into())
    }

    /// Drafts a post (authors only).
    async fn create_post(
        &self,
        ctx: &Context<'_>,
        input: CreatePostInput,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let slug = input.slug.clone().unwrap_or_else(|| slugify(&input.title));
        let tags = input.tags.clone().unwrap_or_default();
        let allow = input.allow_anonymous_comments.unwrap_or(false);
        let body = json!({
            "title": input.title, "slug": slug, "body_markdown": input.body,
            "tags": tags, "allow_anonymous_comments": allow,
        });
        let accepted = s
            .commands
            .send(Method::POST, "/v1/posts", Some(body), &who)
            .await
            .map_err(gql)?;
        let author = who
            .user_id
            .as_deref()
            .and_then(|u| u.parse().ok())
            .unwrap_or_default();
        let now = Utc::now();
        s.post_after(&accepted, wait_for_projection.unwrap_or(false), |_| {
            Some(PostRow {
                id: accepted.post_id,
                author_id: author,
                title: input.title,
                slug,
                body_html: Some(render::post_html(&input.body)),
                body_markdown: input.body,
                tags: sqlx::types::Json(tags),
                status: read_model::PostStatus::Draft,
                allow_anonymous_comments: allow,
                comment_count: 0,
                version: accepted.version,
                created_at: now,
                updated_at: now,
                published_at: None,
                edited_at: None,
            })
        })
        .await
        .map_err(gql)
    }

    /// Changes a post's title, body, tags, slug or comment policy (its author or an admin).
    async fn edit_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: EditPostInput,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let post = parse_id(&id, "id").map_err(gql)?;
        let body = object(vec![
            ("title", input.title.clone().map(Value::from)),
            ("body_markdown", input.body.clone().map(Value::from)),
            ("tags", input.tags.clone().map(Value::from)),
            ("slug", input.slug.clone().map(Value::from)),
            (
                "allow_anonymous_comments",
                input.allow_anonymous_comments.map(Value::from),
            ),
            ("expected_version", input.expected_version.map(Value::from)),
        ]);
        let accepted = s
            .commands
            .send(
                Method::PATCH,
                &format!("/v1/posts/{post}"),
                Some(body),
                &who,
            )
            .await
            .map_err(gql)?;
        s.post_after(&accepted, wait_for_projection.unwrap_or(false), |row| {
            row.map(|mut row| {
                if let Some(v) = input.title {
                    row.title = v;
                }
                if let Some(v) = input.body {
                    row.body_html = Some(render::post_html(&v));
                    row.body_markdown = v;
                }
                if let Some(v) = input.tags {
                    row.tags = sqlx::types::Json(v);
                }
                if let Some(v) = input.slug {
                    row.slug = v;
                }
                if let Some(v) = input.allow_anonymous_comments {
                    row.allow_anonymous_comments = v;
                }
                row.version = accepted.version;
                row
            })
        })
        .await
        .map_err(gql)
    }

    /// Publishes a post.
    async fn publish_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        post_transition(ctx, &id, "publish", wait_for_projection).await
    }

    /// Takes a post back to draft.
    async fn unpublish_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        post_transition(ctx, &id, "unpublish", wait_for_projection).await
    }

    /// Deletes a post.
    async fn delete_post(
        &self,
        ctx: &Context<'_>,
        id: ID,
        wait_for_projection: Option<bool>,
    ) -> Result<PostPayload> {
        post_transition(ctx, &id, "delete", wait_for_projection).await
    }

    /// Comments on a published post, or replies to a comment.
    async fn add_comment(
        &self,
        ctx: &Context<'_>,
        input: AddCommentInput,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        let s = shared(ctx);
        let who = caller(ctx).cloned().unwrap_or_default();
        let post = parse_id(&input.post_id, "postId").map_err(gql)?;
        let parent = input
            .parent_id
            .as_ref()
            .map(|p| parse_id(p, "parentId"))
            .transpose()
            .map_err(gql)?;
        let body = object(vec![
            ("parent_id", parent.map(|p| Value::from(p.to_string()))),
            ("body", Some(Value::from(input.body.clone()))),
            ("author_name", input.author_name.clone().map(Value::from)),
        ]);
        let accepted = s
            .commands
            .send(
                Method::POST,
                &format!("/v1/posts/{post}/comments"),
                Some(body),
                &who,
            )
            .await
            .map_err(gql)?;
        let comment = accepted
            .comment_id
            .ok_or_else(|| gql(GatewayError::Internal))?;
        let wait = wait_for_projection.unwrap_or(false);
        let parent_row = match (wait, parent) {
            (false, Some(p)) => s.read.comment(p).await.map_err(|e| gql(e.into()))?,
            _ => None,
        };
        let now = Utc::now();
        s.comment_after(&accepted, comment, wait, |_| {
            Some(CommentRow {
                id: comment,
                post_id: post,
                parent_id: parent,
                depth: parent_row.as_ref().map_or(0, |p| p.depth + 1),
                path: String::new(),
                author_id: who.user_id.as_deref().and_then(|u| u.parse().ok()),
                author_name: input
                    .author_name
                    .or_else(|| who.name.clone())
                    .unwrap_or_default(),
                body_html: Some(render::comment_html(&input.body)),
                body: input.body,
                status: read_model::CommentStatus::Visible,
                hidden_reason: None,
                reply_count: 0,
                post_version: accepted.version,
                changed_version: accepted.version,
                last_change: read_model::CommentChange::Added,
                created_at: now,
                updated_at: now,
            })
        })
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
        let html = render::comment_html(&body);
        comment_command(
            ctx,
            &id,
            post_id.as_ref(),
            (Method::PATCH, ""),
            Some(json!({ "body": body.clone() })),
            wait_for_projection,
            move |row, version| {
                row.body = body;
                row.body_html = Some(html);
                row.changed_version = version;
                row.last_change = read_model::CommentChange::Edited;
            },
        )
        .await
    }

    /// Deletes a comment (its author); replies keep their place under a placeholder.
    async fn delete_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        comment_command(
            ctx,
            &id,
            post_id.as_ref(),
            (Method::DELETE, ""),
            None,
            wait_for_projection,
            |row, version| {
                row.status = read_model::CommentStatus::Deleted;
                row.changed_version = version;
                row.last_change = read_model::CommentChange::Deleted;
            },
        )
        .await
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
        comment_command(
            ctx,
            &id,
            post_id.as_ref(),
            (Method::POST, "/hide"),
            Some(json!({ "reason": reason.clone() })),
            wait_for_projection,
            move |row, version| {
                row.status = read_model::CommentStatus::Hidden;
                row.hidden_reason = Some(reason);
                row.changed_version = version;
                row.last_change = read_model::CommentChange::Hidden;
            },
        )
        .await
    }

    /// Shows a hidden comment again (moderators).
    async fn restore_comment(
        &self,
        ctx: &Context<'_>,
        id: ID,
        post_id: Option<ID>,
        wait_for_projection: Option<bool>,
    ) -> Result<CommentPayload> {
        comment_command(
            ctx,
            &id,
            post_id.as_ref(),
            (Method::POST, "/restore"),
            None,
            wait_for_projection,
            |row, version| {
                row.status = read_model::CommentStatus::Visible;
                row.hidden_reason = None;
                row.changed_version = version;
                row.last_change = read_model::CommentChange::Restored;
            },
        )
        .await
    }
}

async fn post_transition(
    ctx: &Context<'_>,
    id: &ID,
    action: &str,
    wait: Option<bool>,
) -> Result<PostPayload> {
    let s = shared(ctx);
    let who = caller(ctx).cloned().unwrap_or_default();
    let post = parse_id(id, "id").map_err(gql)?;
    let (method, path, status) = match action {
        "publish" => (
            Method::POST,
            format!("/v1/posts/{post}/publish"),
            read_model::PostStatus::Published,
        ),
        "unpublish" => (
            Method::POST,
            format!("/v1/posts/{post}/unpublish"),
            read_model::PostStatus::Draft,
        ),
        _ => (
            Method::DELETE,
            format!("/v1/posts/{post}"),
            read_model::PostStatus::Deleted,
        ),
    };
    let accepted = s
        .commands
        .send(method, &path, None, &who)
        .await
        .map_err(gql)?;
    s.post_after(&accepted, wait.unwrap_or(false), |row| {
        row.map(|mut row| {
            row.status = status;
            if status == read_model::PostStatus::Published && row.published_at.is_none() {
                row.published_at = Some(Utc::now());
            }
            row.version = accepted.version;
            row
        })
    })
    .await
    .map_err(gql)
}

async fn comment_command(
    ctx: &Context<'_>,
    id: &ID,
    post_id: Option<&ID>,
    (method, suffix): (Method, &str),
    body: Option<Value>,
    wait: Option<bool>,
    apply: impl FnOnce(&mut CommentRow, i64),
) -> Result<CommentPayload> {
    let s = shared(ctx);
    let who = caller(ctx).cloned().unwrap_or_default();
    let comment = parse_id(id, "id").map_err(gql)?;
    let post = s.post_of_comment(comment, post_id).await.map_err(gql)?;
    let accepted = s
        .commands
        .send(
            method,
            &format!("/v1/posts/{post}/comments/{comment}{suffix}"),
            body,
            &who,
        )
        .await
        .map_err(gql)?;
    let version = accepted.version;
    s.comment_after(&accepted, comment, wait.unwrap_or(false), move |row| {
        row.map(|mut row| {
            apply(&mut row, version);
            row
        })
    })
    .await
    .map_err(gql)
}

// ---------------------------------------------------------------------------------------------
// Subscriptions

/// Live updates.
pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every change to the comments of a post, live, in order. With `after` (the `cursor` of the
    /// last event received), first what was missed since, then live, with no gap and no
    /// duplicate. A client too slow to keep up gets an error with code `SLOW_CONSUMER` and its
    /// last cursor in `extensions.cursor`, and the subscription ends; it resumes with `after`.
    async fn comment_events(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<CommentEvent>>> {
        let s = shared(ctx);
        let post = parse_id(&post_id, "postId").map_err(gql)?;
        let after = after
            .as_deref()
            .map(cursor::parse_event)
            .transpose()
            .map_err(gql)?;
        let exists = s
            .read
            .post_by_id(post, false)
            .await
            .map_err(|e| gql(e.into()))?
            .is_some_and(|p| visible(&p, caller(ctx)));
        if !exists {
            return Err(gql(GatewayError::not_found(
                "POST_NOT_FOUND",
                "no such post",
            )));
        }
        // A shared execution's catch-up part: what this subscriber missed, then the end (its
        // live part comes from the shared execution; see `fanout`).
        if let Some(tap) = ctx.data_opt::<Arc<fanout::CatchUpTap>>() {
            let (missed, start) = s
                .hub
                .catch_up(post, after)
                .await
                .map_err(|e| gql(e.into()))?;
            tap.started(start);
            return Ok(futures::stream::iter(
                missed.into_iter().map(|event| Ok(CommentEvent { event })),
            )
            .boxed());
        }
        // A shared execution's live part: from now on, for every subscriber of the group.
        let group = ctx.data_opt::<Arc<fanout::GroupTap>>().cloned();
        let after = if group.is_some() { None } else { after };
        let stream = s
            .hub
            .subscribe(post, after, group.is_none())
            .await
            .map_err(|e| gql(e.into()))?;
        if let Some(group) = &group {
            group.armed();
        }
        Ok(stream
            .map(move |item| {
                let version = match &item {
                    Ok(event) => event.comment.changed_version,
                    Err(LiveError::SlowConsumer { last_version }) => *last_version,
                };
                if let Some(group) = &group {
                    group.yielded(version);
                }
                match item {
                    Ok(event) => Ok(CommentEvent { event }),
                    Err(LiveError::SlowConsumer { last_version }) => {
                        Err(slow_consumer(last_version))
                    }
                }
            })
            .boxed())
    }
}

/// The error that ends a subscription whose client fell behind, with its resume cursor.
pub fn slow_consumer(last_version: i64) -> async_graphql::Error {
    gql(GatewayError::Domain {
        code: "SLOW_CONSUMER".into(),
        reason: "SLOW_CONSUMER".into(),
        message: format!(
            "this client fell behind; resubscribe with after: \"{}\"",
            cursor::event(last_version)
        ),
        field: None,
    })
    .extend_with(|_, e| e.set("cursor", cursor::event(last_version)))
}
