//! The GraphQL schema: queries from the read tables, mutations through the typed command API,
//! and live comment subscriptions. The names here are a public contract (the web UI and outside
//! checks use them); `schema/schema.graphql` is its committed SDL, checked by a test.
//!
//! One module per resource, each with its types, its queries and its mutations, merged into the
//! roots here. The merge order is the order of the fields in the committed SDL, which is public:
//! a field moves only with a reason.

pub mod comments;
pub mod email;
pub mod int_range;
pub mod limits;
pub mod loaders;
pub mod moderation;
pub mod notifications;
pub mod posts;
pub mod reactions;
pub mod revisions;
pub mod search;
pub mod subscription;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, ID, MergedObject, SimpleObject};
use command_api::CommandApi;
use read_model::{PostRow, ReadModel};
use uuid::Uuid;

use crate::caller::Caller;
use crate::error::GatewayError;
use crate::live::Hub;
use crate::live::cache::{PageCache, Scope};
use crate::metrics::Metrics;

pub use subscription::SubscriptionRoot;

/// The executable schema.
pub type InkwireSchema = async_graphql::Schema<Query, Mutation, SubscriptionRoot>;

// Reads, from the read tables only. (A doc comment here would become the type's description
// in the SDL, which has none.)
#[derive(MergedObject, Default)]
pub struct Query(
    posts::PostQueries,
    search::SearchQueries,
    comments::CommentQueries,
    users::UserQueries,
    posts::AuthoringQueries,
    comments::CommentByIdQuery,
    moderation::ModerationQueries,
    notifications::NotificationQueries,
    email::EmailQueries,
);

// Writes, through the command API. Each answers with the changed object and its position;
// `waitForProjection: true` answers only once queries show the change.
#[derive(MergedObject, Default)]
pub struct Mutation(
    users::UserMutations,
    posts::PostMutations,
    comments::CommentMutations,
    revisions::RevisionMutations,
    reactions::ReactionMutations,
    notifications::NotificationMutations,
    email::EmailMutations,
);

/// What every resolver shares.
pub struct Shared {
    /// The read tables.
    pub read: ReadModel,
    /// The command service.
    pub commands: Arc<dyn CommandApi>,
    /// Live fan-out.
    pub hub: Hub,
    /// Metrics.
    pub metrics: Metrics,
    /// Longest `waitForProjection`.
    pub wait_timeout: Duration,
    /// Answers to anonymous post reads.
    pub cache: PageCache,
    /// The projector's commit bell, when it runs in this process.
    pub bell: Option<read_model::bell::CommitBell>,
}

fn shared<'a>(ctx: &Context<'a>) -> &'a Shared {
    ctx.data_unchecked::<Arc<Shared>>()
}

fn caller<'a>(ctx: &Context<'a>) -> Option<&'a Caller> {
    ctx.data_opt::<Caller>()
}

/// The caller as the command API takes them (anonymous when signed out).
fn command_caller(ctx: &Context<'_>) -> command_api::Caller {
    caller(ctx).map(Caller::for_commands).unwrap_or_default()
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

/// A read's error as a GraphQL error.
fn read_error(e: sqlx::Error) -> async_graphql::Error {
    gql(e.into())
}

fn parse_id(id: &ID, what: &'static str) -> Result<Uuid, GatewayError> {
    id.parse::<Uuid>()
        .map_err(|_| GatewayError::bad_input("INVALID_ID", format!("{what} is not a valid id")))
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
            .and_then(Caller::user)
            .is_some_and(|u| u == post.author_id)
}

/// Relay page information.
#[derive(SimpleObject)]
pub struct PageInfo {
    /// Whether another page follows.
    pub has_next_page: bool,
    /// The cursor of the last edge, to pass as `after`.
    pub end_cursor: Option<String>,
}

impl PageInfo {
    /// The first `limit` of `rows` (read with one more, to learn whether another page follows)
    /// as edges, and the page's information, its end cursor the last edge's.
    fn page<R, E>(
        mut rows: Vec<R>,
        limit: i64,
        edge: impl FnMut(R) -> E,
        cursor: impl Fn(&E) -> &String,
    ) -> (Vec<E>, Self) {
        let has_next_page = rows.len() as i64 > limit;
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        let edges: Vec<E> = rows.into_iter().map(edge).collect();
        let end_cursor = edges.last().map(|e| cursor(e).clone());
        (
            edges,
            Self {
                has_next_page,
                end_cursor,
            },
        )
    }
}

impl Shared {
    /// Waits until the read tables have `post` at `version` or later.
    async fn wait_for(&self, post: Uuid, version: i64) -> Result<(), GatewayError> {
        let deadline = tokio::time::Instant::now() + self.wait_timeout;
        // With the projector's bell (one process), every commit wakes this wait: the timer is
        // only a safety net, so it need not look at the tables every millisecond meanwhile.
        let (first, longest) = match self.bell {
            Some(_) => (
                read_model::bell::SAFETY_NET,
                2 * read_model::bell::SAFETY_NET,
            ),
            None => (Duration::from_millis(1), Duration::from_millis(25)),
        };
        let mut pause = first;
        // Listening before the first look: a commit between the look and the wait is heard.
        let mut commits = read_model::bell::Ear::of(self.bell.as_ref());
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
                    position: crate::cursor::position(post, version),
                });
            }
            tokio::select! {
                () = tokio::time::sleep_until((now + pause).min(deadline)) => {}
                () = commits.rung() => {}
            }
            pause = (pause * 2).min(longest);
        }
    }
}
