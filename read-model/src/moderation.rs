//! The moderation log: the comment acts (`rm_comment_moderation`, posts view) and the account
//! acts (`rm_account_moderation`, users view) read as one list, newest first.

use chrono::{DateTime, Utc};
use infra::with_db;
use uuid::Uuid;

use crate::queries::ReadModel;
use crate::rows::ModerationRow;

/// Which entries to list.
#[derive(Debug, Clone, Copy, Default)]
pub struct ModerationFilter {
    /// Only this moderator's acts.
    pub moderator: Option<Uuid>,
    /// Only acts on this post's comments (account acts have no post).
    pub post: Option<Uuid>,
}

impl ReadModel {
    /// Up to `limit` entries matching `filter`, newest first, older than `before` (its time and
    /// event id) when given.
    ///
    /// # Errors
    /// The database error.
    pub async fn moderation_log(
        &self,
        filter: ModerationFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ModerationRow>, sqlx::Error> {
        // Two statements (one per view's table), merged here: the newest `limit` of the union
        // are among the newest `limit` of each.
        let mut rows = self
            .moderation_part(
                "SELECT event_id, at, moderator_id, action, post_id, comment_id, \
                 NULL AS user_id, reason, NULL AS role FROM rm_comment_moderation WHERE 1 = 1",
                filter,
                before,
                limit,
            )
            .await?;
        if filter.post.is_none() {
            rows.extend(
                self.moderation_part(
                    "SELECT event_id, at, moderator_id, action, NULL AS post_id, \
                     NULL AS comment_id, user_id, NULL AS reason, role \
                     FROM rm_account_moderation WHERE 1 = 1",
                    filter,
                    before,
                    limit,
                )
                .await?,
            );
        }
        rows.sort_by_key(|r| std::cmp::Reverse((r.at, r.event_id)));
        rows.truncate(usize::try_from(limit).unwrap_or(0));
        Ok(rows)
    }

    async fn moderation_part(
        &self,
        select: &'static str,
        filter: ModerationFilter,
        before: Option<(DateTime<Utc>, Uuid)>,
        limit: i64,
    ) -> Result<Vec<ModerationRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(self.db(), |pool| {
                let mut q = sqlx::QueryBuilder::new(select);
                if let Some(moderator) = filter.moderator {
                    q.push(" AND moderator_id = ").push_bind(moderator);
                }
                if let Some(post) = filter.post {
                    q.push(" AND post_id = ").push_bind(post);
                }
                if let Some((at, id)) = before {
                    q.push(" AND (at < ")
                        .push_bind(at)
                        .push(" OR (at = ")
                        .push_bind(at)
                        .push(" AND event_id < ")
                        .push_bind(id)
                        .push("))");
                }
                q.push(" ORDER BY at DESC, event_id DESC LIMIT ")
                    .push_bind(limit);
                q.build_query_as::<ModerationRow>().fetch_all(pool).await
            })
        })
        .await
    }
}
