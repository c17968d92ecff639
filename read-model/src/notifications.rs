//! Reply notifications (`rm_notifications`, `rm_notification_reads`): a user's list, newest
//! first; what is unread; and the changes after a point, for the live subscription.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use infra::with_db;
use uuid::Uuid;

use crate::queries::ReadModel;

/// One notification of one user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotificationRow {
    /// Who is told.
    pub user_id: Uuid,
    /// The comment that tells them.
    pub comment_id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// `reply` (to their comment) or `comment` (on their post).
    pub kind: String,
    /// When the comment was made.
    pub created_at: DateTime<Utc>,
    /// `active`, or `withdrawn` (the comment was hidden or deleted).
    pub status: String,
    /// Its place in the user's changes.
    pub changed_seq: i64,
    /// `added`, `withdrawn` or `restored`.
    pub last_change: String,
    /// Whether the user's read mark covers it.
    pub read: bool,
}

/// Where a user has read up to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMark {
    /// The newest notification read: its comment's time...
    pub up_to_at: DateTime<Utc>,
    /// ...and id.
    pub up_to_comment: Uuid,
    /// How many marks moved it.
    pub seq: i64,
}

/// The columns of a notification, with whether it is read (`r`: the user's mark).
const COLUMNS: &str = "SELECT n.user_id, n.comment_id, n.post_id, n.kind, n.created_at, n.status, \
    n.changed_seq, n.last_change, CASE WHEN r.user_id IS NOT NULL AND (n.created_at < r.up_to_at \
    OR (n.created_at = r.up_to_at AND n.comment_id <= r.up_to_comment)) THEN 1 ELSE 0 END \
    FROM rm_notifications n LEFT JOIN rm_notification_reads r ON r.user_id = n.user_id ";

/// Shown in lists and counts: still standing, on a post that is not deleted.
const SHOWN: &str = " AND n.status = 'active' AND EXISTS (SELECT 1 FROM rm_posts p WHERE p.id = n.post_id \
    AND p.status <> 'deleted')";

/// Not covered by the read mark.
const UNREAD: &str = " AND (r.user_id IS NULL OR n.created_at > r.up_to_at \
    OR (n.created_at = r.up_to_at AND n.comment_id > r.up_to_comment))";

/// A user and one of their counters.
type UserSeq = (Uuid, i64);

type Row = (
    Uuid,
    Uuid,
    Uuid,
    String,
    DateTime<Utc>,
    String,
    i64,
    String,
    i32,
);

fn row(r: Row) -> NotificationRow {
    NotificationRow {
        user_id: r.0,
        comment_id: r.1,
        post_id: r.2,
        kind: r.3,
        created_at: r.4,
        status: r.5,
        changed_seq: r.6,
        last_change: r.7,
        read: r.8 != 0,
    }
}

impl ReadModel {
    /// Up to `first` of `user`'s standing notifications, newest first, after `after` (a
    /// notification's time and comment id) when given; only unread ones with `unread_only`.
    ///
    /// # Errors
    /// The database error.
    pub async fn notifications(
        &self,
        user: Uuid,
        first: i64,
        after: Option<(DateTime<Utc>, Uuid)>,
        unread_only: bool,
    ) -> Result<Vec<NotificationRow>, sqlx::Error> {
        let rows: Vec<Row> = self
            .run(move || async move {
                with_db!(self.db(), |pool| {
                    let mut q = sqlx::QueryBuilder::new(COLUMNS);
                    q.push("WHERE n.user_id = ").push_bind(user).push(SHOWN);
                    if let Some((at, comment)) = after {
                        q.push(" AND (n.created_at < ")
                            .push_bind(at)
                            .push(" OR (n.created_at = ")
                            .push_bind(at)
                            .push(" AND n.comment_id < ")
                            .push_bind(comment)
                            .push("))");
                    }
                    if unread_only {
                        q.push(UNREAD);
                    }
                    q.push(" ORDER BY n.created_at DESC, n.comment_id DESC LIMIT ")
                        .push_bind(first);
                    q.build_query_as::<Row>().fetch_all(pool).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// How many of `user`'s standing notifications are unread.
    ///
    /// # Errors
    /// The database error.
    pub async fn unread_notifications(&self, user: Uuid) -> Result<i64, sqlx::Error> {
        self.run(move || async move {
            with_db!(self.db(), |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT COUNT(*) FROM rm_notifications n \
                     LEFT JOIN rm_notification_reads r ON r.user_id = n.user_id WHERE n.user_id = ",
                );
                q.push_bind(user).push(SHOWN).push(UNREAD);
                q.build_query_scalar::<i64>().fetch_one(pool).await
            })
        })
        .await
    }

    /// Up to `limit` of `user`'s notifications changed after `after` (a `changed_seq`), in
    /// change order, withdrawn ones included.
    ///
    /// # Errors
    /// The database error.
    pub async fn notifications_changed(
        &self,
        user: Uuid,
        after: i64,
        limit: i64,
    ) -> Result<Vec<NotificationRow>, sqlx::Error> {
        let rows: Vec<Row> = self
            .run(move || async move {
                with_db!(self.db(), |pool| {
                    let mut q = sqlx::QueryBuilder::new(COLUMNS);
                    q.push("WHERE n.user_id = ")
                        .push_bind(user)
                        .push(" AND n.changed_seq > ")
                        .push_bind(after)
                        .push(" ORDER BY n.changed_seq LIMIT ")
                        .push_bind(limit);
                    q.build_query_as::<Row>().fetch_all(pool).await
                })
            })
            .await?;
        Ok(rows.into_iter().map(row).collect())
    }

    /// `user`'s read mark, if they ever read.
    ///
    /// # Errors
    /// The database error.
    pub async fn read_mark(&self, user: Uuid) -> Result<Option<ReadMark>, sqlx::Error> {
        let row: Option<(DateTime<Utc>, Uuid, i64)> = self
            .run(move || async move {
                with_db!(self.db(), |pool| {
                    sqlx::QueryBuilder::new(
                        "SELECT up_to_at, up_to_comment, seq FROM rm_notification_reads WHERE user_id = ",
                    )
                    .push_bind(user)
                    .build_query_as()
                    .fetch_optional(pool)
                    .await
                })
            })
            .await?;
        Ok(row.map(|(up_to_at, up_to_comment, seq)| ReadMark {
            up_to_at,
            up_to_comment,
            seq,
        }))
    }

    /// For each of `wanted` (a user, the time email was turned on, the last change emailed)
    /// that has any: their standing, unread notifications of comments made since that time and
    /// changed after that change, in change order. What the mailer sends next.
    ///
    /// # Errors
    /// The database error.
    pub async fn notifications_to_mail(
        &self,
        wanted: &[(Uuid, DateTime<Utc>, i64)],
    ) -> Result<HashMap<Uuid, Vec<NotificationRow>>, sqlx::Error> {
        let mut out: HashMap<Uuid, Vec<NotificationRow>> = HashMap::new();
        for chunk in wanted.chunks(100) {
            let rows: Vec<Row> = self
                .run(move || async move {
                    with_db!(self.db(), |pool| {
                        let mut q = sqlx::QueryBuilder::new(COLUMNS);
                        q.push("WHERE (");
                        for (i, (user, since, after)) in chunk.iter().enumerate() {
                            if i > 0 {
                                q.push(" OR ");
                            }
                            q.push("(n.user_id = ")
                                .push_bind(*user)
                                .push(" AND n.created_at >= ")
                                .push_bind(*since)
                                .push(" AND n.changed_seq > ")
                                .push_bind(*after)
                                .push(")");
                        }
                        q.push(")").push(SHOWN).push(UNREAD);
                        q.push(" ORDER BY n.user_id, n.changed_seq");
                        q.build_query_as::<Row>().fetch_all(pool).await
                    })
                })
                .await?;
            for r in rows {
                let r = row(r);
                out.entry(r.user_id).or_default().push(r);
            }
        }
        Ok(out)
    }

    /// For each of `users` that has any: (its latest notification change, its read marks'
    /// count). A user whose pair moved has something new for the live subscription.
    ///
    /// # Errors
    /// The database error.
    pub async fn inbox_heads(
        &self,
        users: &[Uuid],
    ) -> Result<HashMap<Uuid, (i64, i64)>, sqlx::Error> {
        let mut out: HashMap<Uuid, (i64, i64)> = HashMap::new();
        for chunk in users.chunks(500) {
            let (changes, marks): (Vec<UserSeq>, Vec<UserSeq>) = self
                .run(move || async move {
                    with_db!(self.db(), |pool| {
                        let mut q = sqlx::QueryBuilder::new(
                            "SELECT user_id, MAX(changed_seq) FROM rm_notifications WHERE user_id IN (",
                        );
                        let mut list = q.separated(", ");
                        for u in chunk {
                            list.push_bind(*u);
                        }
                        q.push(") GROUP BY user_id");
                        let changes = q.build_query_as().fetch_all(pool).await?;
                        let mut q = sqlx::QueryBuilder::new(
                            "SELECT user_id, seq FROM rm_notification_reads WHERE user_id IN (",
                        );
                        let mut list = q.separated(", ");
                        for u in chunk {
                            list.push_bind(*u);
                        }
                        q.push(")");
                        let marks = q.build_query_as().fetch_all(pool).await?;
                        Ok::<_, sqlx::Error>((changes, marks))
                    })
                })
                .await?;
            for (user, seq) in changes {
                out.entry(user).or_default().0 = seq;
            }
            for (user, seq) in marks {
                out.entry(user).or_default().1 = seq;
            }
        }
        Ok(out)
    }
}
