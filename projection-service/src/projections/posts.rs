//! The posts read model: `rm_posts` (with tags and the visible-comment count), `rm_post_tags`
//! and `rm_comments` (threaded: parent, depth, a sortable path, reply counts).
//!
//! [`project!`] is a macro rather than a function so that one body of SQL serves both database
//! drivers inside [`infra::with_db!`]: it expands to an async block over the concrete
//! transaction. It only copies facts from events into rows; decisions were made on the write side.

use super::{ProjectionError, Target};

pub use read_model::fold::{PATH_SEGMENT_WIDTH, path_segment};

/// Saves the post's content, as it stands after the event `$envelope` (already applied to
/// `rm_posts`), as its next revision (see [`read_model::fold::revision`]).
macro_rules! save_revision {
    ($tx:expr, $target:expr, $envelope:expr) => {{
        let envelope: &events::Envelope = $envelope;
        sqlx::query($target.sql(
            "INSERT INTO rm_post_revisions (post_id, revision, stream_version, title, slug, \
             body_markdown, tags, editor_id, edited_at) \
             SELECT id, (SELECT COALESCE(MAX(revision), 0) + 1 FROM rm_post_revisions WHERE post_id = $1), \
             $2, title, slug, body_markdown, tags, $3, $4 FROM rm_posts WHERE id = $1",
        ))
        .bind(envelope.meta.stream_id.0)
        .bind(envelope.meta.stream_version)
        .bind(envelope.meta.actor.user_id.map(|u| u.0))
        .bind(envelope.meta.occurred_at)
        .execute(&mut *$tx)
        .await?;
    }};
}

/// Tells the authors concerned of the comments `$ids` (already in `rm_comments`): the parent's
/// author of a reply (`reply`), else the post's author (`comment`); never the comment's own
/// author, never an anonymous one. Each user's new rows take the next numbers of their
/// `changed_seq`, in the comments' order; under SERIALIZABLE two batches numbering one user's
/// rows at once conflict (40001) and one is retried, so the numbers follow the commits.
macro_rules! notify {
    ($tx:expr, $target:expr, $ids:expr) => {{
        let target: &$crate::projections::Target = $target;
        let ids: &[uuid::Uuid] = $ids;
        if !ids.is_empty() {
            let mut q = sqlx::QueryBuilder::new(target.sql(
                "INSERT INTO rm_notifications (user_id, comment_id, post_id, kind, created_at, status, changed_seq, last_change) \
                 SELECT r.user_id, r.comment_id, r.post_id, r.kind, r.created_at, 'active', \
                 COALESCE((SELECT MAX(n.changed_seq) FROM rm_notifications n WHERE n.user_id = r.user_id), 0) \
                 + ROW_NUMBER() OVER (PARTITION BY r.user_id ORDER BY r.created_at, r.comment_id), 'added' FROM ( \
                 SELECT pc.author_id AS user_id, c.id AS comment_id, c.post_id AS post_id, 'reply' AS kind, c.created_at AS created_at \
                 FROM rm_comments c JOIN rm_comments pc ON pc.id = c.parent_id \
                 WHERE pc.author_id IS NOT NULL AND (c.author_id IS NULL OR pc.author_id <> c.author_id) AND c.id IN (",
            ).0);
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            q.push(target.sql(
                ") UNION ALL SELECT p.author_id, c.id, c.post_id, 'comment', c.created_at \
                 FROM rm_comments c JOIN rm_posts p ON p.id = c.post_id \
                 WHERE (c.author_id IS NULL OR p.author_id <> c.author_id) \
                 AND NOT EXISTS (SELECT 1 FROM rm_comments pc WHERE pc.id = c.parent_id AND pc.author_id = p.author_id) \
                 AND c.id IN (",
            ).0);
            let mut list = q.separated(", ");
            for id in ids {
                list.push_bind(*id);
            }
            q.push(")) AS r WHERE true ON CONFLICT (user_id, comment_id) DO NOTHING");
            q.build().execute(&mut *$tx).await?;
        }
    }};
}

/// Withdraws (`$on` false) or brings back (`$on` true) the notifications of comment `$comment`,
/// each as its user's next change.
macro_rules! renotify {
    ($tx:expr, $target:expr, $comment:expr, $on:expr) => {{
        let target: &$crate::projections::Target = $target;
        let sql = if $on {
            "UPDATE rm_notifications SET status = 'active', last_change = 'restored', \
             changed_seq = (SELECT MAX(n.changed_seq) FROM rm_notifications n WHERE n.user_id = rm_notifications.user_id) + 1 \
             WHERE comment_id = $1 AND status = 'withdrawn'"
        } else {
            "UPDATE rm_notifications SET status = 'withdrawn', last_change = 'withdrawn', \
             changed_seq = (SELECT MAX(n.changed_seq) FROM rm_notifications n WHERE n.user_id = rm_notifications.user_id) + 1 \
             WHERE comment_id = $1 AND status = 'active'"
        };
        sqlx::query(target.sql(sql))
            .bind($comment)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Projects one envelope into the posts read model, on the executor `$tx` (a `&mut` connection
/// inside an open transaction), returning through `?` on a database error. Evaluates to the
/// change of the post's visible-comment count; the caller applies it, with the post's new version,
/// once per post and batch (see [`super::apply_batch`]).
macro_rules! project {
    ($tx:expr, $target:expr, $prepared:expr) => {{
        let target: &$crate::projections::Target = $target;
        use events::{Event, PostEvent as E, UserEvent as U};
        use sqlx::types::Json;
        let prepared: &$crate::projections::Prepared = $prepared;
        let envelope: &events::Envelope = &prepared.envelope;
        let post = envelope.meta.stream_id.0;
        let version = envelope.meta.stream_version;
        let at = envelope.meta.occurred_at;
        // Change of the visible-comment count, applied by the caller with the version bump.
        let mut count_delta: i64 = 0;
        match &envelope.event {
            Event::Post(E::PostDrafted(e)) => {
                sqlx::query(target.sql("INSERT INTO rm_posts (id, author_id, title, slug, body_markdown, tags, status, \
                     allow_anonymous_comments, comment_count, version, created_at, updated_at, published_at, body_html) \
                     VALUES ($1, $2, $3, $4, $5, $6, 'draft', $7, 0, $8, $9, $10, NULL, $11) ON CONFLICT (id) DO NOTHING"))
                .bind(post)
                .bind(e.author_id.0)
                .bind(e.title.as_str())
                .bind(e.slug.as_str())
                .bind(e.body_markdown.as_str())
                .bind(Json(&e.tags))
                .bind(e.allow_anonymous_comments)
                .bind(version)
                .bind(at)
                .bind(at)
                .bind(prepared.html())
                .execute(&mut *$tx)
                .await?;
                for tag in &e.tags {
                    sqlx::query(target.sql("INSERT INTO rm_post_tags (tag, post_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"))
                        .bind(tag.as_str())
                        .bind(post)
                        .execute(&mut *$tx)
                        .await?;
                }
                $crate::projections::posts::save_revision!($tx, target, envelope);
            }
            Event::Post(E::PostEdited(e)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET title = COALESCE($1, title), slug = COALESCE($2, slug), \
                     body_markdown = COALESCE($3, body_markdown), tags = COALESCE($4, tags), \
                     allow_anonymous_comments = COALESCE($5, allow_anonymous_comments), \
                     body_html = COALESCE($7, body_html), edited_at = COALESCE($8, edited_at) WHERE id = $6"))
                .bind(e.title.as_deref())
                .bind(e.slug.as_deref())
                .bind(e.body_markdown.as_deref())
                .bind(e.tags.as_ref().map(Json))
                .bind(e.allow_anonymous_comments)
                .bind(post)
                .bind(prepared.html())
                // Only what a reader reads counts as an edit.
                .bind((e.title.is_some() || e.body_markdown.is_some()).then_some(at))
                .execute(&mut *$tx)
                .await?;
                if let Some(tags) = &e.tags {
                    sqlx::query(target.sql("DELETE FROM rm_post_tags WHERE post_id = $1"))
                        .bind(post)
                        .execute(&mut *$tx)
                        .await?;
                    for tag in tags {
                        sqlx::query(target.sql("INSERT INTO rm_post_tags (tag, post_id) VALUES ($1, $2) ON CONFLICT DO NOTHING"))
                            .bind(tag.as_str())
                            .bind(post)
                            .execute(&mut *$tx)
                            .await?;
                    }
                }
                if read_model::fold::saves_revision(&envelope.event) {
                    $crate::projections::posts::save_revision!($tx, target, envelope);
                }
            }
            Event::Post(E::PostPublished(_)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET status = 'published', published_at = COALESCE(published_at, $1), scheduled_at = NULL WHERE id = $2"))
                .bind(at)
                .bind(post)
                .execute(&mut *$tx)
                .await?;
            }
            Event::Post(E::PostScheduled(e)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET scheduled_at = $1 WHERE id = $2"))
                    .bind(e.publish_at)
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::PostUnscheduled(_)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET scheduled_at = NULL WHERE id = $1"))
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::PostUnpublished(_)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET status = 'draft' WHERE id = $1"))
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::PostDeleted(_)) => {
                sqlx::query(target.sql("UPDATE rm_posts SET status = 'deleted', scheduled_at = NULL WHERE id = $1"))
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
                sqlx::query(target.sql("DELETE FROM rm_post_tags WHERE post_id = $1"))
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::CommentAdded(e)) => {
                let parent = match e.parent_id {
                    None => None,
                    Some(parent) => {
                        let row = sqlx::query(target.sql("SELECT depth, path FROM rm_comments WHERE id = $1"))
                            .bind(parent.0)
                            .fetch_optional(&mut *$tx)
                            .await?;
                        match row {
                            Some(row) => Some((
                                sqlx::Row::try_get::<i64, _>(&row, 0)?,
                                sqlx::Row::try_get::<String, _>(&row, 1)?,
                            )),
                            // The write side checked the parent; a missing row means the parent's
                            // event is not projected, which per-post order rules out.
                            None => None,
                        }
                    }
                };
                let (depth, path) = read_model::fold::thread_place(
                    parent.as_ref().map(|(depth, path)| (*depth, path.as_str())),
                    version,
                );
                let inserted = sqlx::query(target.sql("INSERT INTO rm_comments (id, post_id, parent_id, depth, path, author_id, author_name, body, \
                     status, hidden_reason, reply_count, post_version, created_at, updated_at, \
                     changed_version, last_change, body_html) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'visible', NULL, 0, $9, $10, $11, $9, 'added', $12) \
                     ON CONFLICT (id) DO NOTHING"))
                .bind(e.comment_id.0)
                .bind(post)
                .bind(e.parent_id.map(|p| p.0))
                .bind(depth)
                .bind(path.as_str())
                .bind(e.author_id.map(|a| a.0))
                .bind(e.author_name.as_str())
                .bind(e.body.as_str())
                .bind(version)
                .bind(at)
                .bind(at)
                .bind(prepared.html())
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    count_delta = 1;
                    if let Some(parent) = e.parent_id {
                        sqlx::query(target.sql("UPDATE rm_comments SET reply_count = reply_count + 1 WHERE id = $1"))
                            .bind(parent.0)
                            .execute(&mut *$tx)
                            .await?;
                    }
                    $crate::projections::posts::notify!($tx, target, &[e.comment_id.0]);
                }
            }
            Event::Post(E::CommentEdited(e)) => {
                sqlx::query(target.sql("UPDATE rm_comments SET body = $1, updated_at = $2, body_html = $4, \
                     changed_version = $5, last_change = 'edited' WHERE id = $3"))
                    .bind(e.body.as_str())
                    .bind(at)
                    .bind(e.comment_id.0)
                    .bind(prepared.html())
                    .bind(version)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::CommentDeleted(e)) => {
                let row = sqlx::query(target.sql("SELECT status, parent_id FROM rm_comments WHERE id = $1"))
                    .bind(e.comment_id.0)
                    .fetch_optional(&mut *$tx)
                    .await?;
                if let Some(row) = row {
                    let status: String = sqlx::Row::try_get(&row, 0)?;
                    let parent: Option<uuid::Uuid> = sqlx::Row::try_get(&row, 1)?;
                    if status != "deleted" {
                        // The row stays so that replies keep their place in the thread.
                        sqlx::query(target.sql("UPDATE rm_comments SET status = 'deleted', body = '', body_html = '', updated_at = $1, \
                             changed_version = $3, last_change = 'deleted' WHERE id = $2"))
                            .bind(at)
                            .bind(e.comment_id.0)
                            .bind(version)
                            .execute(&mut *$tx)
                            .await?;
                        if status == "visible" {
                            count_delta = -1;
                        }
                        $crate::projections::posts::renotify!($tx, target, e.comment_id.0, false);
                        if let Some(parent) = parent {
                            sqlx::query(target.sql("UPDATE rm_comments SET reply_count = reply_count - 1 WHERE id = $1"))
                                .bind(parent)
                                .execute(&mut *$tx)
                                .await?;
                        }
                    }
                }
            }
            Event::Post(E::CommentHidden(e)) => {
                let changed = sqlx::query(target.sql("UPDATE rm_comments SET status = 'hidden', hidden_reason = $1, updated_at = $2, \
                     changed_version = $4, last_change = 'hidden' WHERE id = $3 AND status = 'visible'"))
                .bind(e.reason.as_str())
                .bind(at)
                .bind(e.comment_id.0)
                .bind(version)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    count_delta = -1;
                    $crate::projections::posts::renotify!($tx, target, e.comment_id.0, false);
                }
                sqlx::query(target.sql("INSERT INTO rm_comment_moderation (event_id, at, moderator_id, action, post_id, comment_id, reason) \
                     VALUES ($1, $2, $3, 'hide_comment', $4, $5, $6) ON CONFLICT (event_id) DO NOTHING"))
                .bind(envelope.meta.event_id)
                .bind(at)
                .bind(envelope.meta.actor.user_id.map(|u| u.0))
                .bind(post)
                .bind(e.comment_id.0)
                .bind(e.reason.as_str())
                .execute(&mut *$tx)
                .await?;
            }
            Event::Post(E::ReactionAdded(e) | E::ReactionRemoved(e)) => {
                let reacted_to = e.comment_id.map_or(post, |c| c.0);
                if matches!(&envelope.event, Event::Post(E::ReactionAdded(_))) {
                    sqlx::query(target.sql("INSERT INTO rm_reactions (target_id, user_id, kind, post_id, at) \
                         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (target_id, user_id, kind) DO NOTHING"))
                    .bind(reacted_to)
                    .bind(e.user_id.0)
                    .bind(e.kind.as_str())
                    .bind(post)
                    .bind(at)
                    .execute(&mut *$tx)
                    .await?;
                } else {
                    sqlx::query(target.sql("DELETE FROM rm_reactions WHERE target_id = $1 AND user_id = $2 AND kind = $3"))
                        .bind(reacted_to)
                        .bind(e.user_id.0)
                        .bind(e.kind.as_str())
                        .execute(&mut *$tx)
                        .await?;
                }
                // The counts changed: live readers are told, of a comment through its change
                // (`read_model::fold::comment`), of the post through `reactions_version`.
                if let Some(comment) = e.comment_id {
                    sqlx::query(target.sql("UPDATE rm_comments SET changed_version = $1, last_change = 'reacted' WHERE id = $2 AND status = 'visible'"))
                        .bind(version)
                        .bind(comment.0)
                        .execute(&mut *$tx)
                        .await?;
                } else {
                    sqlx::query(target.sql("UPDATE rm_posts SET reactions_version = $1 WHERE id = $2"))
                        .bind(version)
                        .bind(post)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
            Event::User(U::Registered(e)) => {
                sqlx::query(target.sql("INSERT INTO rm_users (id, username, display_name, roles, disabled, version, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, false, $5, $6, $7) ON CONFLICT (id) DO NOTHING"))
                .bind(post)
                .bind(e.username.as_str())
                .bind(e.display_name.as_str())
                .bind(Json(vec!["reader".to_owned()]))
                .bind(version)
                .bind(at)
                .bind(at)
                .execute(&mut *$tx)
                .await?;
            }
            Event::User(U::DisplayNameChanged(e)) => {
                sqlx::query(target.sql("UPDATE rm_users SET display_name = $1 WHERE id = $2"))
                    .bind(e.display_name.as_str())
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::User(U::PasswordChanged(_)) => {}
            Event::User(U::RoleGranted(e)) | Event::User(U::RoleRevoked(e)) => {
                let action = if matches!(&envelope.event, Event::User(U::RoleGranted(_))) {
                    "grant_role"
                } else {
                    "revoke_role"
                };
                sqlx::query(target.sql("INSERT INTO rm_account_moderation (event_id, at, moderator_id, action, user_id, role) \
                     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING"))
                .bind(envelope.meta.event_id)
                .bind(at)
                .bind(envelope.meta.actor.user_id.map(|u| u.0))
                .bind(action)
                .bind(post)
                .bind(e.role.as_str())
                .execute(&mut *$tx)
                .await?;
                let row = sqlx::query(target.sql("SELECT roles FROM rm_users WHERE id = $1"))
                    .bind(post)
                    .fetch_optional(&mut *$tx)
                    .await?;
                if let Some(row) = row {
                    let Json(mut roles): Json<Vec<String>> = sqlx::Row::try_get(&row, 0)?;
                    roles.retain(|r| *r != e.role);
                    if matches!(&envelope.event, Event::User(U::RoleGranted(_))) {
                        roles.push(e.role.clone());
                    }
                    sqlx::query(target.sql("UPDATE rm_users SET roles = $1 WHERE id = $2"))
                        .bind(Json(roles))
                        .bind(post)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
            // The image is in the media store; the read tables keep no list of uploads.
            Event::User(U::MediaUploaded(_)) => {}
            Event::User(U::NotificationsRead(e)) => {
                // A mark only moves forward, in the list's order (time, then comment id).
                let mark = sqlx::query(target.sql("SELECT up_to_at, up_to_comment FROM rm_notification_reads WHERE user_id = $1"))
                    .bind(post)
                    .fetch_optional(&mut *$tx)
                    .await?;
                let newer = match mark {
                    None => true,
                    Some(row) => {
                        let at: chrono::DateTime<chrono::Utc> = sqlx::Row::try_get(&row, 0)?;
                        let comment: uuid::Uuid = sqlx::Row::try_get(&row, 1)?;
                        (e.up_to_at, e.up_to_comment) > (at, comment)
                    }
                };
                if newer {
                    sqlx::query(target.sql("INSERT INTO rm_notification_reads (user_id, up_to_at, up_to_comment, seq) VALUES ($1, $2, $3, 1) \
                         ON CONFLICT (user_id) DO UPDATE SET up_to_at = excluded.up_to_at, up_to_comment = excluded.up_to_comment, \
                         seq = rm_notification_reads.seq + 1"))
                        .bind(post)
                        .bind(e.up_to_at)
                        .bind(e.up_to_comment)
                        .execute(&mut *$tx)
                        .await?;
                }
            }
            Event::User(U::Disabled(_)) => {
                sqlx::query(target.sql("INSERT INTO rm_account_moderation (event_id, at, moderator_id, action, user_id, role) \
                     VALUES ($1, $2, $3, 'disable_user', $4, NULL) ON CONFLICT (event_id) DO NOTHING"))
                .bind(envelope.meta.event_id)
                .bind(at)
                .bind(envelope.meta.actor.user_id.map(|u| u.0))
                .bind(post)
                .execute(&mut *$tx)
                .await?;
                sqlx::query(target.sql("UPDATE rm_users SET disabled = true WHERE id = $1"))
                    .bind(post)
                    .execute(&mut *$tx)
                    .await?;
            }
            Event::Post(E::CommentRestored(e)) => {
                let changed = sqlx::query(target.sql("UPDATE rm_comments SET status = 'visible', hidden_reason = NULL, updated_at = $1, \
                     changed_version = $3, last_change = 'restored' WHERE id = $2 AND status = 'hidden'"))
                .bind(at)
                .bind(e.comment_id.0)
                .bind(version)
                .execute(&mut *$tx)
                .await?
                .rows_affected();
                if changed == 1 {
                    count_delta = 1;
                    $crate::projections::posts::renotify!($tx, target, e.comment_id.0, true);
                }
                sqlx::query(target.sql("INSERT INTO rm_comment_moderation (event_id, at, moderator_id, action, post_id, comment_id, reason) \
                     VALUES ($1, $2, $3, 'restore_comment', $4, $5, NULL) ON CONFLICT (event_id) DO NOTHING"))
                .bind(envelope.meta.event_id)
                .bind(at)
                .bind(envelope.meta.actor.user_id.map(|u| u.0))
                .bind(post)
                .bind(e.comment_id.0)
                .execute(&mut *$tx)
                .await?;
            }
        }
        let _ = (post, version);
        count_delta
    }};
}

pub(crate) use notify;
pub(crate) use project;
pub(crate) use renotify;
pub(crate) use save_revision;

/// A top-level comment waiting to be inserted with others in one multi-row statement; it
/// borrows from its prepared event.
pub struct PendingComment<'a> {
    /// Comment id.
    pub id: uuid::Uuid,
    /// Post id.
    pub post: uuid::Uuid,
    /// Signed-in author.
    pub author_id: Option<uuid::Uuid>,
    /// Shown name.
    pub author_name: &'a str,
    /// Text.
    pub body: &'a str,
    /// Rendered text.
    pub html: std::borrow::Cow<'a, str>,
    /// Stream version of `comment.added`.
    pub version: i64,
    /// When it was accepted.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl<'a> PendingComment<'a> {
    /// The pending row for a top-level `comment.added`, or `None` for any other event (which
    /// must then be projected on its own, after the pending rows are flushed).
    #[must_use]
    pub fn from_prepared(prepared: &'a super::Prepared) -> Option<Self> {
        let envelope = &prepared.envelope;
        match &envelope.event {
            events::Event::Post(events::PostEvent::CommentAdded(e)) if e.parent_id.is_none() => {
                Some(Self {
                    html: prepared.html()?,
                    id: e.comment_id.0,
                    post: envelope.meta.stream_id.0,
                    author_id: e.author_id.map(|a| a.0),
                    author_name: &e.author_name,
                    body: &e.body,
                    version: envelope.meta.stream_version,
                    at: envelope.meta.occurred_at,
                })
            }
            _ => None,
        }
    }
}

/// Rows per multi-row INSERT on PostgreSQL (9 parameters each; well under its limit of 65,535).
pub const INSERT_CHUNK: usize = 2000;

/// Inserts the pending top-level comments on `$tx` and empties `$pending`.
macro_rules! flush_comments {
    ($tx:expr, $target:expr, $pending:expr) => {{
        let pending: &mut Vec<$crate::projections::posts::PendingComment<'_>> = $pending;
        if !pending.is_empty() {
            $crate::projections::posts::InsertComments::insert_comments($tx, $target, pending)
                .await?;
            let ids: Vec<uuid::Uuid> = pending.iter().map(|c| c.id).collect();
            $crate::projections::posts::notify!($tx, $target, &ids);
            pending.clear();
        }
    }};
}

pub(crate) use flush_comments;

/// The insert of a batch's top-level comments, the bulk of a projector's writes, done the way
/// each backend does fastest.
pub(crate) trait InsertComments {
    /// Inserts `pending` (a comment already there is left as it is).
    async fn insert_comments(
        &mut self,
        target: &Target,
        pending: &[PendingComment<'_>],
    ) -> Result<(), ProjectionError>;
}

/// The columns every inserted comment sets; `parent_id` and `hidden_reason` default to NULL,
/// `reply_count` to 0.
const COMMENT_COLUMNS: &str = "INSERT INTO rm_comments (id, post_id, depth, path, author_id, \
    author_name, body, status, post_version, created_at, updated_at, changed_version, last_change, \
    body_html) ";

impl InsertComments for sqlx::PgConnection {
    /// Multi-row statements: one round trip per [`INSERT_CHUNK`] comments.
    async fn insert_comments(
        &mut self,
        target: &Target,
        pending: &[PendingComment<'_>],
    ) -> Result<(), ProjectionError> {
        for chunk in pending.chunks(INSERT_CHUNK) {
            // Values repeated in a row (time, version) are bound once and picked out by the
            // SELECT.
            let mut q = sqlx::QueryBuilder::new(target.sql(COMMENT_COLUMNS).0);
            q.push(
                "SELECT column1, column2, 0, column3, column4, column5, column6, 'visible', \
                 column7, column8, column8, column7, 'added', column9 FROM (",
            );
            q.push_values(chunk, |mut row, c| {
                row.push_bind(c.id)
                    .push_bind(c.post)
                    .push_bind(path_segment(c.version))
                    .push_bind(c.author_id)
                    .push_bind(c.author_name)
                    .push_bind(c.body)
                    .push_bind(c.version)
                    .push_bind(c.at)
                    .push_bind(c.html.as_ref());
            });
            q.push(") AS v ON CONFLICT (id) DO NOTHING");
            q.build().execute(&mut *self).await?;
        }
        Ok(())
    }
}

/// Comments stepped through one prepared statement per lock of the connection.
const SQLITE_STEP_CHUNK: usize = 500;

impl InsertComments for sqlx::SqliteConnection {
    /// One prepared single-row statement, stepped in place ([`infra::db::sqlite_in_place`])
    /// for [`SQLITE_STEP_CHUNK`] rows at a time; the task yields in between, so a large
    /// catch-up never holds its thread for long.
    async fn insert_comments(
        &mut self,
        target: &Target,
        pending: &[PendingComment<'_>],
    ) -> Result<(), ProjectionError> {
        let sql = format!(
            "{}VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6, 'visible', ?7, ?8, ?8, ?7, 'added', ?9) \
             ON CONFLICT (id) DO NOTHING",
            target.sql(COMMENT_COLUMNS).0
        );
        for (i, chunk) in pending.chunks(SQLITE_STEP_CHUNK).enumerate() {
            if i > 0 {
                tokio::task::yield_now().await;
            }
            infra::db::sqlite_in_place(self, |db| {
                let mut insert = db.prepare(&sql)?;
                for c in chunk {
                    insert.execute(rusqlite::params![
                        &c.id.as_bytes()[..],
                        &c.post.as_bytes()[..],
                        path_segment(c.version),
                        c.author_id.as_ref().map(|a| &a.as_bytes()[..]),
                        c.author_name,
                        c.body,
                        c.version,
                        // What sqlx's encoding of a `DateTime<Utc>` stores, so reads decode it.
                        c.at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
                        c.html.as_ref(),
                    ])?;
                }
                Ok(())
            })
            .await??;
        }
        Ok(())
    }
}
