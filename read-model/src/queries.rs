//! Every query of the read tables: each statement goes through [`ReadModel`] and is counted (the
//! gateway's `inkwire_gateway_sql_statements_total`), which is how a test proves that a page of
//! posts with their comments costs a fixed number of statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use infra::db::Db;
use infra::with_db;
use prometheus::IntCounter;
use uuid::Uuid;

use crate::rows::{CommentRow, PostRow, UserRow};

const POST_COLUMNS: &str = "id, author_id, title, slug, body_markdown, body_html, tags, status, \
    allow_anonymous_comments, comment_count, version, created_at, updated_at, published_at, \
    edited_at, scheduled_at";
const COMMENT_COLUMNS: &str = "id, post_id, parent_id, depth, path, author_id, author_name, body, \
    body_html, status, hidden_reason, reply_count, post_version, changed_version, last_change, \
    created_at, updated_at";

/// `text` matched literally by `LIKE … ESCAPE '\'`.
fn like_literal(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// The read tables, through a statement counter.
#[derive(Clone)]
pub struct ReadModel {
    db: Db,
    statements: IntCounter,
}

/// Where a page of posts starts: after this (published_at, id).
pub type PostCursor = (DateTime<Utc>, Uuid);

impl ReadModel {
    /// Reads from `db`, counting statements in `statements`.
    #[must_use]
    pub fn new(db: Db, statements: IntCounter) -> Self {
        Self { db, statements }
    }

    /// Reads from `db` without counting (a service that does not report statements).
    ///
    /// # Panics
    /// Never: the counter's options are constant and valid.
    #[must_use]
    pub fn uncounted(db: Db) -> Self {
        #[allow(clippy::unwrap_used)] // a constant, valid name
        let statements = IntCounter::new("read_model_statements", "statements").unwrap();
        Self::new(db, statements)
    }

    /// The database (for readiness checks).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Sends one statement, counted, and again while it fails with a serialization conflict:
    /// at SERIALIZABLE (always, on CockroachDB) a read overlapping a writer can be the one
    /// aborted with 40001, which a reader should never see as an error.
    pub(crate) async fn run<T, F, Fut>(&self, mut statement: F) -> Result<T, sqlx::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        infra::db::retry_read(|| {
            self.statements.inc();
            statement()
        })
        .await
    }

    /// A post by id; deleted ones only with `include_deleted`.
    ///
    /// # Errors
    /// The database error.
    pub async fn post_by_id(
        &self,
        id: Uuid,
        include_deleted: bool,
    ) -> Result<Option<PostRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {POST_COLUMNS} FROM rm_posts WHERE id = "
                ));
                q.push_bind(id);
                if !include_deleted {
                    q.push(" AND status <> 'deleted'");
                }
                q.build_query_as::<PostRow>().fetch_optional(pool).await
            })
        })
        .await
    }

    /// The last offset `group` has applied to these tables, per partition of `topic`.
    ///
    /// # Errors
    /// The database error.
    pub async fn applied_offsets(
        &self,
        group: &str,
        topic: &str,
    ) -> Result<HashMap<i32, i64>, sqlx::Error> {
        let applied = self
            .run(|| crate::offsets::of_group(&self.db, group, topic))
            .await?;
        Ok(applied.into_iter().map(|(p, (o, _))| (p, o)).collect())
    }

    /// Every comment of `post`, deleted and hidden ones included, in thread order.
    ///
    /// # Errors
    /// The database error.
    pub async fn thread(&self, post: Uuid) -> Result<Vec<CommentRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {COMMENT_COLUMNS} FROM rm_comments WHERE post_id = "
                ));
                q.push_bind(post).push(" ORDER BY path");
                q.build_query_as::<CommentRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// A post that is not deleted, by slug.
    ///
    /// # Errors
    /// The database error.
    pub async fn post_by_slug(&self, slug: &str) -> Result<Option<PostRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {POST_COLUMNS} FROM rm_posts WHERE slug = "
                ));
                q.push_bind(slug).push(" AND status <> 'deleted' LIMIT 1");
                q.build_query_as::<PostRow>().fetch_optional(pool).await
            })
        })
        .await
    }

    /// Up to `limit` drafts of `author`, last changed first.
    ///
    /// # Errors
    /// The database error.
    pub async fn drafts_of(&self, author: Uuid, limit: i64) -> Result<Vec<PostRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {POST_COLUMNS} FROM rm_posts WHERE status = 'draft' AND author_id = "
                ));
                q.push_bind(author)
                    .push(" ORDER BY updated_at DESC, id DESC LIMIT ")
                    .push_bind(limit);
                q.build_query_as::<PostRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// Up to `limit` published posts, newest first, after `after`, optionally with `tag`, and
    /// only those whose title, text or tags hold every one of `words` (lower-case; matched
    /// case-insensitively, `%` and `_` as themselves).
    ///
    /// # Errors
    /// The database error.
    pub async fn published_posts(
        &self,
        limit: i64,
        after: Option<PostCursor>,
        tag: Option<&str>,
        words: &[String],
    ) -> Result<Vec<PostRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {POST_COLUMNS} FROM rm_posts WHERE status = 'published'"
                ));
                if let Some(tag) = tag {
                    q.push(" AND id IN (SELECT post_id FROM rm_post_tags WHERE tag = ")
                        .push_bind(tag.to_owned())
                        .push(")");
                }
                for word in words {
                    let pattern = format!("%{}%", like_literal(word));
                    q.push(" AND (LOWER(title) LIKE ")
                        .push_bind(pattern.clone())
                        .push(" ESCAPE '\\' OR LOWER(body_markdown) LIKE ")
                        .push_bind(pattern)
                        .push(
                            " ESCAPE '\\' OR id IN (SELECT post_id FROM rm_post_tags WHERE tag = ",
                        )
                        .push_bind(word.clone())
                        .push("))");
                }
                if let Some((at, id)) = after {
                    // (published_at, id) < (at, id), spelled out for SQLite.
                    q.push(" AND (published_at < ")
                        .push_bind(at)
                        .push(" OR (published_at = ")
                        .push_bind(at)
                        .push(" AND id < ")
                        .push_bind(id)
                        .push("))");
                }
                q.push(" ORDER BY published_at DESC, id DESC LIMIT ")
                    .push_bind(limit);
                q.build_query_as::<PostRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// The slug and last change of up to `limit` published posts, newest first: the sitemap.
    ///
    /// # Errors
    /// The database error.
    pub async fn published_pages(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, DateTime<Utc>)>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT slug, updated_at FROM rm_posts WHERE status = 'published' \
                     ORDER BY published_at DESC, id DESC LIMIT ",
                );
                q.push_bind(limit);
                q.build_query_as().fetch_all(pool).await
            })
        })
        .await
    }

    /// Up to `limit` tags of published posts, in order.
    ///
    /// # Errors
    /// The database error.
    pub async fn published_tags(&self, limit: i64) -> Result<Vec<String>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT DISTINCT t.tag FROM rm_post_tags t JOIN rm_posts p ON p.id = t.post_id \
                     WHERE p.status = 'published' ORDER BY t.tag LIMIT ",
                );
                q.push_bind(limit);
                q.build_query_scalar().fetch_all(pool).await
            })
        })
        .await
    }

    /// Up to `limit` comments of `post` in display order after `after` (a path), optionally
    /// only those under the comment whose path is `under`.
    ///
    /// # Errors
    /// The database error.
    pub async fn comments_page(
        &self,
        post: Uuid,
        limit: i64,
        after: Option<&str>,
        under: Option<&str>,
    ) -> Result<Vec<CommentRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {COMMENT_COLUMNS} FROM rm_comments WHERE post_id = "
                ));
                q.push_bind(post);
                // Hidden and deleted comments leave the thread, unless replies hang under them:
                // then a placeholder keeps the replies in place.
                q.push(" AND (status = 'visible' OR reply_count > 0)");
                if let Some(after) = after {
                    q.push(" AND path > ").push_bind(after.to_owned());
                }
                if let Some(under) = under {
                    // Descendants: paths that start with "<under>/". '0' follows '/' in ASCII, so the
                    // range ["<under>/", "<under>0") holds exactly them, and uses the (post_id, path) index.
                    q.push(" AND path > ")
                        .push_bind(format!("{under}/"))
                        .push(" AND path < ")
                        .push_bind(format!("{under}0"));
                }
                q.push(" ORDER BY path LIMIT ").push_bind(limit);
                q.build_query_as::<CommentRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// The first `limit` comments (display order) of each of `posts`, in one statement.
    ///
    /// # Errors
    /// The database error.
    pub async fn first_comments_of(
        &self,
        posts: &[Uuid],
        limit: i64,
    ) -> Result<HashMap<Uuid, Vec<CommentRow>>, sqlx::Error> {
        let mut out: HashMap<Uuid, Vec<CommentRow>> = HashMap::new();
        if posts.is_empty() {
            return Ok(out);
        }
        let rows = self
            .run(move || async move {
                with_db!(&self.db, |pool| {
                    let mut q = sqlx::QueryBuilder::new(format!(
                        "SELECT {COMMENT_COLUMNS} FROM (SELECT {COMMENT_COLUMNS}, \
                         row_number() OVER (PARTITION BY post_id ORDER BY path) AS rn FROM rm_comments \
                         WHERE (status = 'visible' OR reply_count > 0) AND post_id IN ("
                    ));
                    let mut list = q.separated(", ");
                    for id in posts {
                        list.push_bind(*id);
                    }
                    q.push(")) ranked WHERE rn <= ")
                        .push_bind(limit)
                        .push(" ORDER BY post_id, path");
                    q.build_query_as::<CommentRow>().fetch_all(pool).await
                })
            })
            .await?;
        for row in rows {
            out.entry(row.post_id).or_default().push(row);
        }
        Ok(out)
    }

    /// Comments by id, in one statement.
    ///
    /// # Errors
    /// The database error.
    pub async fn comments_by_ids(&self, ids: &[Uuid]) -> Result<Vec<CommentRow>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {COMMENT_COLUMNS} FROM rm_comments WHERE id IN ("
                ));
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as::<CommentRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// Users by id, in one statement.
    ///
    /// # Errors
    /// The database error.
    pub async fn users_by_ids(&self, ids: &[Uuid]) -> Result<Vec<UserRow>, sqlx::Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(
                    "SELECT id, username, display_name, roles, version FROM rm_users WHERE id IN (",
                );
                let mut list = q.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                q.push(")");
                q.build_query_as::<UserRow>().fetch_all(pool).await
            })
        })
        .await
    }

    /// One comment by id.
    ///
    /// # Errors
    /// The database error.
    pub async fn comment(&self, id: Uuid) -> Result<Option<CommentRow>, sqlx::Error> {
        Ok(self.comments_by_ids(&[id]).await?.into_iter().next())
    }

    /// The projected version of each of `posts` that exists (deleted ones included).
    ///
    /// # Errors
    /// The database error.
    pub async fn versions(&self, posts: &[Uuid]) -> Result<HashMap<Uuid, i64>, sqlx::Error> {
        if posts.is_empty() {
            return Ok(HashMap::new());
        }
        let rows: Vec<(Uuid, i64)> = self
            .run(move || async move {
                with_db!(&self.db, |pool| {
                    let mut q =
                        sqlx::QueryBuilder::new("SELECT id, version FROM rm_posts WHERE id IN (");
                    let mut list = q.separated(", ");
                    for id in posts {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    q.build_query_as::<(Uuid, i64)>().fetch_all(pool).await
                })
            })
            .await?;
        Ok(rows.into_iter().collect())
    }

    /// Up to `limit` comments of `post` whose last change is in (`after`, `upto`], in change order.
    ///
    /// # Errors
    /// The database error.
    pub async fn comments_changed(
        &self,
        post: Uuid,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<Vec<CommentRow>, sqlx::Error> {
        self.run(move || async move {
            with_db!(&self.db, |pool| {
                let mut q = sqlx::QueryBuilder::new(format!(
                    "SELECT {COMMENT_COLUMNS} FROM rm_comments WHERE post_id = "
                ));
                q.push_bind(post)
                    .push(" AND changed_version > ")
                    .push_bind(after)
                    .push(" AND changed_version <= ")
                    .push_bind(upto)
                    .push(" ORDER BY changed_version LIMIT ")
                    .push_bind(limit);
                q.build_query_as::<CommentRow>().fetch_all(pool).await
            })
        })
        .await
    }
}
