//! Reply notifications: `notifications` (the signed-in user's, newest first),
//! `markNotificationsRead`, and what `notificationEvents` pushes. A user is told of a reply to
//! their comment and of a comment on their post, never of their own; a hidden or deleted
//! comment withdraws its notification.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use command_api::{AccountCommand, MarkNotificationsRead};
use futures::StreamExt;
use futures::stream::BoxStream;
use read_model::{CommentRow, NotificationRow, ReadModel};
use tokio::sync::watch;
use uuid::Uuid;

use super::comments::Comment;
use super::posts::Post;
use super::{PageInfo, caller, command_caller, gql, page_size, read_error, shared};
use crate::cursor;
use crate::error::GatewayError;

/// Largest page of notifications.
pub const MAX_NOTIFICATIONS_PAGE: i32 = 100;

/// Why a user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum NotificationKind {
    /// Someone replied to their comment.
    Reply,
    /// Someone commented on their post.
    Comment,
}

/// Something a signed-in user is told of: a comment that concerns them.
#[derive(Clone)]
pub struct Notification {
    row: NotificationRow,
    comment: Option<Arc<CommentRow>>,
}

#[Object]
impl Notification {
    /// The id of the comment it is about (unique among one user's notifications).
    async fn id(&self) -> ID {
        ID(self.row.comment_id.to_string())
    }
    async fn kind(&self) -> NotificationKind {
        if self.row.kind == "reply" {
            NotificationKind::Reply
        } else {
            NotificationKind::Comment
        }
    }
    /// The comment, as readers see it now (its text empty once hidden or deleted).
    async fn comment(&self) -> Option<Comment> {
        self.comment.as_ref().map(|c| Comment(c.clone()))
    }
    /// The post it is on (`null` once the post is deleted or unpublished).
    async fn post(&self, ctx: &Context<'_>) -> Result<Option<Post>> {
        let row = shared(ctx)
            .read
            .post_by_id(self.row.post_id, false)
            .await
            .map_err(read_error)?;
        Ok(row.filter(|p| super::visible(p, caller(ctx))).map(Post))
    }
    /// When the comment was made.
    async fn created_at(&self) -> DateTime<Utc> {
        self.row.created_at
    }
    /// Whether the user has read it (`markNotificationsRead` covers it).
    async fn read(&self) -> bool {
        self.row.read
    }
    /// Its place in the list: pass as `after` for older ones, or as `upTo` to mark it and
    /// every older one read.
    async fn cursor(&self) -> String {
        cursor::notification(self.row.created_at, self.row.comment_id)
    }
}

/// Notifications with their comments, read in one statement.
async fn with_comments(read: &ReadModel, rows: Vec<NotificationRow>) -> Result<Vec<Notification>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.comment_id).collect();
    let mut comments: HashMap<Uuid, Arc<CommentRow>> = read
        .comments_by_ids(&ids)
        .await
        .map_err(read_error)?
        .into_iter()
        .map(|c| (c.id, Arc::new(c)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|row| Notification {
            comment: comments.remove(&row.comment_id),
            row,
        })
        .collect())
}

fn sign_in_required(what: &str) -> async_graphql::Error {
    gql(GatewayError::Domain {
        code: "UNAUTHENTICATED".into(),
        reason: "SIGN_IN_REQUIRED".into(),
        message: format!("sign in to {what}"),
        field: None,
    })
}

/// The signed-in user, or `UNAUTHENTICATED` for doing `what`.
pub(super) fn signed_in(ctx: &Context<'_>, what: &str) -> Result<Uuid> {
    caller(ctx)
        .and_then(crate::caller::Caller::user)
        .ok_or_else(|| sign_in_required(what))
}

/// A notification and its cursor.
#[derive(SimpleObject)]
pub struct NotificationEdge {
    /// Pass as `after` to continue with older notifications.
    pub cursor: String,
    /// The notification.
    pub node: Notification,
}

/// A page of the signed-in user's notifications, newest first.
#[derive(SimpleObject)]
pub struct NotificationConnection {
    /// The notifications.
    pub edges: Vec<NotificationEdge>,
    /// Paging.
    pub page_info: PageInfo,
    /// How many of all their notifications are unread (not only this page's).
    pub unread_count: i32,
}

/// `notifications`.
#[derive(Default)]
pub struct NotificationQueries;

#[Object]
impl NotificationQueries {
    /// The signed-in user's notifications, newest first: replies to their comments and comments
    /// on their posts (withdrawn when the comment is hidden or deleted). `unreadOnly` keeps the
    /// ones after their read mark. Signed out: `UNAUTHENTICATED`.
    async fn notifications(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        unread_only: Option<bool>,
    ) -> Result<NotificationConnection> {
        let user = signed_in(ctx, "read your notifications")?;
        let limit = page_size(first, 20, MAX_NOTIFICATIONS_PAGE).map_err(gql)?;
        let after = after
            .as_deref()
            .map(cursor::parse_notification)
            .transpose()
            .map_err(gql)?;
        let read = &shared(ctx).read;
        let rows = read
            .notifications(user, limit + 1, after, unread_only.unwrap_or(false))
            .await
            .map_err(read_error)?;
        let unread = read.unread_notifications(user).await.map_err(read_error)?;
        let (edges, page_info) = PageInfo::page(
            with_comments(read, rows).await?,
            limit,
            |node| NotificationEdge {
                cursor: cursor::notification(node.row.created_at, node.row.comment_id),
                node,
            },
            |e| &e.cursor,
        );
        Ok(NotificationConnection {
            edges,
            page_info,
            unread_count: super::clamp_i32(unread),
        })
    }
}

/// The answer to `markNotificationsRead`.
#[derive(SimpleObject)]
pub struct MarkNotificationsReadPayload {
    /// How many notifications are unread now (newer ones than the mark may have come since).
    pub unread_count: i32,
}

/// `markNotificationsRead`.
#[derive(Default)]
pub struct NotificationMutations;

#[Object]
impl NotificationMutations {
    /// Marks the signed-in user's notifications read up to `upTo` (a notification's `cursor`)
    /// and every older one; without `upTo`, all they have now. A mark never moves back: an
    /// older `upTo` than the last changes nothing. Answers once queries show the mark.
    async fn mark_notifications_read(
        &self,
        ctx: &Context<'_>,
        up_to: Option<String>,
    ) -> Result<MarkNotificationsReadPayload> {
        let user = signed_in(ctx, "mark your notifications read")?;
        let s = shared(ctx);
        let mark = match up_to.as_deref() {
            Some(token) => Some(cursor::parse_notification(token).map_err(gql)?),
            None => s
                .read
                .notifications(user, 1, None, false)
                .await
                .map_err(read_error)?
                .first()
                .map(|n| (n.created_at, n.comment_id)),
        };
        if let Some((up_to_at, up_to_comment)) = mark {
            s.commands
                .account(
                    &command_caller(ctx),
                    AccountCommand::MarkNotificationsRead(MarkNotificationsRead {
                        up_to_at,
                        up_to_comment,
                    }),
                )
                .await
                .map_err(|e| gql(e.into()))?;
            wait_for_mark(s, user, (up_to_at, up_to_comment)).await?;
        }
        let unread = s
            .read
            .unread_notifications(user)
            .await
            .map_err(read_error)?;
        Ok(MarkNotificationsReadPayload {
            unread_count: super::clamp_i32(unread),
        })
    }
}

/// Waits until the read tables hold `user`'s mark at `mark` or later.
async fn wait_for_mark(s: &super::Shared, user: Uuid, mark: (DateTime<Utc>, Uuid)) -> Result<()> {
    let deadline = tokio::time::Instant::now() + s.wait_timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        let now = s.read.read_mark(user).await.map_err(read_error)?;
        if now.is_some_and(|m| (m.up_to_at, m.up_to_comment) >= mark) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            s.metrics.projection_timeouts.inc();
            return Err(gql(GatewayError::ProjectionTimeout {
                position: cursor::notification(mark.0, mark.1),
            }));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(25));
    }
}

/// What happened to a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum NotificationEventKind {
    /// A new notification.
    Added,
    /// Its comment was hidden or deleted: it no longer counts.
    Withdrawn,
    /// Its comment was restored: it counts again.
    Restored,
    /// The user's read mark moved (from any of their devices).
    Read,
}

/// A change to the signed-in user's notifications, pushed live.
#[derive(SimpleObject)]
pub struct NotificationEvent {
    pub kind: NotificationEventKind,
    /// The notification concerned (`null` for `READ`).
    pub notification: Option<Notification>,
    /// How many are unread now.
    pub unread_count: i32,
    /// Pass as `after` when subscribing again to resume right after this event.
    pub cursor: String,
}

/// Where a subscriber stands: the last notification change and read-mark count it has.
struct Inbox {
    read: ReadModel,
    user: Uuid,
    changes: watch::Receiver<(i64, i64)>,
    seen: (i64, i64),
    queue: VecDeque<NotificationEvent>,
    /// Read before waiting: at the start (catch-up), and after a round cut short.
    look: bool,
    done: bool,
}

/// Notifications changed in one round, most.
const ROUND: i64 = 100;

impl Inbox {
    /// What changed since `seen`, as events, moving `seen` past them.
    async fn round(&mut self) -> Result<()> {
        let rows = self
            .read
            .notifications_changed(self.user, self.seen.0, ROUND)
            .await
            .map_err(read_error)?;
        self.look = rows.len() as i64 == ROUND;
        let mark = self.read.read_mark(self.user).await.map_err(read_error)?;
        let unread = super::clamp_i32(
            self.read
                .unread_notifications(self.user)
                .await
                .map_err(read_error)?,
        );
        for n in with_comments(&self.read, rows).await? {
            self.seen.0 = n.row.changed_seq;
            let kind = match n.row.last_change.as_str() {
                "withdrawn" => NotificationEventKind::Withdrawn,
                "restored" => NotificationEventKind::Restored,
                _ => NotificationEventKind::Added,
            };
            self.queue.push_back(NotificationEvent {
                kind,
                notification: Some(n),
                unread_count: unread,
                cursor: cursor::inbox(self.seen.0, self.seen.1),
            });
        }
        if let Some(mark) = mark.filter(|m| m.seq > self.seen.1) {
            self.seen.1 = mark.seq;
            self.queue.push_back(NotificationEvent {
                kind: NotificationEventKind::Read,
                notification: None,
                unread_count: unread,
                cursor: cursor::inbox(self.seen.0, self.seen.1),
            });
        }
        Ok(())
    }
}

/// `notificationEvents`: the signed-in user's notification changes after `after` (a cursor of
/// an earlier event), or from now, then live.
pub(super) async fn events(
    ctx: &Context<'_>,
    after: Option<String>,
) -> Result<BoxStream<'static, Result<NotificationEvent>>> {
    let user = signed_in(ctx, "follow your notifications")?;
    let after = after
        .as_deref()
        .map(cursor::parse_inbox)
        .transpose()
        .map_err(gql)?;
    let s = shared(ctx);
    // Following first: a change committed after the starting point is then signalled.
    let changes = s.hub.watch_inbox(user);
    let seen = match after {
        Some(seen) => seen,
        None => {
            let heads = s.read.inbox_heads(&[user]).await.map_err(read_error)?;
            heads.get(&user).copied().unwrap_or((0, 0))
        }
    };
    let guard = crate::live::OpenGuard::open(&s.metrics);
    let inbox = Inbox {
        read: s.read.clone(),
        user,
        changes,
        seen,
        queue: VecDeque::new(),
        look: after.is_some(),
        done: false,
    };
    Ok(futures::stream::unfold(inbox, |mut inbox| async move {
        loop {
            if let Some(event) = inbox.queue.pop_front() {
                return Some((Ok(event), inbox));
            }
            if inbox.done {
                return None;
            }
            if !inbox.look && inbox.changes.changed().await.is_err() {
                return None;
            }
            if let Err(e) = inbox.round().await {
                // The client resumes from its last cursor.
                inbox.done = true;
                return Some((Err(e), inbox));
            }
        }
    })
    .map(move |event| {
        let _open = &guard;
        event
    })
    .boxed())
}
