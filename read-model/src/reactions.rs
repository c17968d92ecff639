//! Readers' reactions (`rm_reactions`): how many of each kind a post or comment has, and which
//! the viewer gave.

use std::collections::HashMap;

use infra::with_db;
use uuid::Uuid;

use crate::queries::ReadModel;

/// One kind of reaction on one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReactionTally {
    /// The kind (`like`, `heart`, …).
    pub kind: String,
    /// How many readers gave it.
    pub count: i64,
    /// Whether the viewer is one of them.
    pub viewer_reacted: bool,
}

impl ReadModel {
    /// The reactions of each of `targets` (comment ids, or post ids for reactions to a post),
    /// with whether `viewer` gave each, in one statement. Targets without reactions are absent.
    ///
    /// # Errors
    /// The database error.
    pub async fn reactions(
        &self,
        targets: &[Uuid],
        viewer: Option<Uuid>,
    ) -> Result<HashMap<Uuid, Vec<ReactionTally>>, sqlx::Error> {
        if targets.is_empty() {
            return Ok(HashMap::new());
        }
        // No one is the nil id: an anonymous viewer has given nothing.
        let viewer = viewer.unwrap_or(Uuid::nil());
        let rows: Vec<(Uuid, String, i64, i64)> = self
            .run(move || async move {
                with_db!(self.db(), |pool| {
                    let mut q = sqlx::QueryBuilder::new(
                        "SELECT target_id, kind, COUNT(*), \
                         SUM(CASE WHEN user_id = ",
                    );
                    q.push_bind(viewer);
                    q.push(" THEN 1 ELSE 0 END) FROM rm_reactions WHERE target_id IN (");
                    let mut list = q.separated(", ");
                    for id in targets {
                        list.push_bind(*id);
                    }
                    q.push(") GROUP BY target_id, kind");
                    q.build_query_as::<(Uuid, String, i64, i64)>()
                        .fetch_all(pool)
                        .await
                })
            })
            .await?;
        let mut out: HashMap<Uuid, Vec<ReactionTally>> = HashMap::new();
        for (target, kind, count, mine) in rows {
            out.entry(target).or_default().push(ReactionTally {
                kind,
                count,
                viewer_reacted: mine > 0,
            });
        }
        Ok(out)
    }

    /// The stream version of the last change to `post`'s own reactions (0: none), or `None`
    /// when the post is not projected.
    ///
    /// # Errors
    /// The database error.
    pub async fn post_reactions_version(&self, post: Uuid) -> Result<Option<i64>, sqlx::Error> {
        self.run(move || async move {
            with_db!(self.db(), |pool| {
                sqlx::query_scalar::<_, i64>("SELECT reactions_version FROM rm_posts WHERE id = $1")
                    .bind(post)
                    .fetch_optional(pool)
                    .await
            })
        })
        .await
    }
}
