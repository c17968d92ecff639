//! A post's saved revisions (`rm_post_revisions`), newest first.

use infra::with_db;
use uuid::Uuid;

use crate::queries::ReadModel;
use crate::rows::RevisionRow;

const REVISION_COLUMNS: &str = "post_id, revision, stream_version, title, slug, body_markdown, \
    tags, editor_id, edited_at";

impl ReadModel {
    /// Up to `limit` revisions of `post`, newest first, older than revision `before` when given.
    ///
    /// # Errors
    /// The database error.
    pub async fn revisions(
        &self,
        post: Uuid,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<RevisionRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(self.db(), |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {REVISION_COLUMNS} FROM rm_post_revisions WHERE post_id = "
                ));
                q.push_bind(post);
                if let Some(before) = before {
                    q.push(" AND revision < ").push_bind(before);
                }
                q.push(" ORDER BY revision DESC LIMIT ").push_bind(limit);
                q.build_query_as::<RevisionRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// Revision `revision` of `post`.
    ///
    /// # Errors
    /// The database error.
    pub async fn revision(
        &self,
        post: Uuid,
        revision: i64,
    ) -> Result<Option<RevisionRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(self.db(), |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {REVISION_COLUMNS} FROM rm_post_revisions WHERE post_id = "
                ));
                q.push_bind(post);
                q.push(" AND revision = ").push_bind(revision);
                q.build_query_as::<RevisionRow>().fetch_optional(pool).await
            })
        })
        .await
    }
}
