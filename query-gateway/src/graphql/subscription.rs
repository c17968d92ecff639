//! `commentEvents`: every change to a post's comments, live, resumable from a cursor. What
//! it streams comes from [`crate::live`]; how subscribers with the same document share one
//! execution is the fan-out's business (`crate::live::fanout`), not this resolver's.

use std::sync::Arc;

use async_graphql::{Context, ErrorExtensions, ID, Object, Result, Subscription};
use futures::StreamExt;
use futures::stream::BoxStream;

use super::comments::Comment;
use super::notifications::NotificationEvent;
use super::reactions::{PostReactionEvent, counts};
use super::{caller, gql, parse_id, read_error, shared, visible};
use crate::cursor;
use crate::error::GatewayError;
use crate::live::{CommentEventKind, LiveError, LiveEvent, OpenGuard, fanout};

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
        ensure_visible(ctx, post).await?;
        let events = fanout::comment_events(ctx, &s.hub, post, after)
            .await
            .map_err(read_error)?;
        Ok(events
            .map(|item| match item {
                Ok(event) => Ok(CommentEvent { event }),
                Err(LiveError::SlowConsumer { last_version }) => Err(slow_consumer(last_version)),
            })
            .boxed())
    }

    /// The signed-in user's notifications as they change: `ADDED`, `WITHDRAWN` (the comment
    /// was hidden or deleted), `RESTORED`, and `READ` when their read mark moves on any of their
    /// devices; each with the unread count now. With `after` (the `cursor` of the last event
    /// received), first what was missed since, then live; without, from now. Signed out:
    /// `UNAUTHENTICATED`.
    async fn notification_events(
        &self,
        ctx: &Context<'_>,
        after: Option<String>,
    ) -> Result<BoxStream<'static, Result<NotificationEvent>>> {
        super::notifications::events(ctx, after).await
    }

    /// The reactions to a post itself (not its comments: those come with `commentEvents`),
    /// first as they are now and then each time they change, with `viewerReacted` for this
    /// subscriber. Each event is the whole current state, so a client that reconnects simply
    /// subscribes again; changes made close together may arrive as one event.
    async fn post_reaction_events(
        &self,
        ctx: &Context<'_>,
        post_id: ID,
    ) -> Result<BoxStream<'static, Result<PostReactionEvent>>> {
        let s = shared(ctx);
        let post = parse_id(&post_id, "postId").map_err(gql)?;
        ensure_visible(ctx, post).await?;
        let changes = s.hub.watch_reactions(post).await.map_err(read_error)?;
        let guard = OpenGuard::open(&s.metrics);
        let read = s.read.clone();
        let viewer = caller(ctx).and_then(crate::caller::Caller::user);
        Ok(tokio_stream::wrappers::WatchStream::new(changes)
            .then(move |_| {
                let read = read.clone();
                let _open = &guard;
                async move {
                    let mut tallies = read.reactions(&[post], viewer).await.map_err(read_error)?;
                    Ok(PostReactionEvent {
                        post_id: ID(post.to_string()),
                        reactions: counts(&tallies.remove(&post).unwrap_or_default()),
                    })
                }
            })
            .boxed())
    }
}

/// `POST_NOT_FOUND` unless the caller may see `post` (a draft of someone else's is no more
/// there than a post that never was).
async fn ensure_visible(ctx: &Context<'_>, post: uuid::Uuid) -> Result<()> {
    let exists = shared(ctx)
        .read
        .post_by_id(post, false)
        .await
        .map_err(read_error)?
        .is_some_and(|p| visible(&p, caller(ctx)));
    if exists {
        Ok(())
    } else {
        Err(gql(GatewayError::not_found(
            "POST_NOT_FOUND",
            "no such post",
        )))
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
