//! The DataLoaders: comments by id, first comments of posts, users by id. Each batches the
//! loads that happen at the same time into one statement.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::Context;
use async_graphql::Result;
use async_graphql::dataloader::{DataLoader, Loader};
use read_model::{CommentRow, ReadModel, UserRow};
use uuid::Uuid;

use super::{depend, gql, read_error, shared};
use crate::error::GatewayError;

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
        .data(DataLoader::new(
            super::reactions::ReactionsOf(read.clone()),
            tokio::spawn,
        ))
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
        .data(DataLoader::new(
            super::reactions::ReactionsOf(read.clone()),
            tokio::spawn,
        ))
}

/// Whether the signed-in caller has one of `roles` (callers name `admin` where admins may), as
/// the read model has their roles now, not as an older token named them; `false` signed out.
pub(super) async fn caller_has_role(ctx: &Context<'_>, roles: &[&str]) -> Result<bool> {
    let Some(user) = super::caller(ctx).and_then(crate::caller::Caller::user) else {
        return Ok(false);
    };
    Ok(load_user(ctx, user)
        .await?
        .is_some_and(|row| row.roles.0.iter().any(|r| roles.contains(&r.as_str()))))
}

pub(super) async fn load_user(ctx: &Context<'_>, id: Uuid) -> Result<Option<Arc<UserRow>>> {
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
            .map_err(read_error)?
            .into_iter()
            .next()
            .map(Arc::new)),
    }
}

pub(super) fn loader_error(e: &GatewayError) -> async_graphql::Error {
    match e {
        GatewayError::Unavailable => gql(GatewayError::Unavailable),
        _ => gql(GatewayError::Internal),
    }
}
