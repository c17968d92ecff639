//! Reads from the read tables, and nothing else: every statement the gateway sends goes through
//! here and is counted (`inkwire_gateway_sql_statements_total`), which is how a test proves
//! that a page of posts with their comments costs a fixed number of statements.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use infra::db::Db;
use infra::with_db;
use prometheus::IntCounter;
use sqlx::types::Json;
use uuid::Uuid;

/// A row of `rm_posts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostRow {
    /// Post id.
    pub id: Uuid,
    /// Author.
    pub author_id: Uuid,
    /// Title.
    pub title: String,
    /// Unique slug.
    pub slug: String,
    /// Markdown source.
    pub body_markdown: String,
    /// Rendered, sanitised HTML (NULL for rows projected before it was stored).
    pub body_html: Option<String>,
    /// Tags.
    pub tags: Json<Vec<String>>,
    /// `draft`, `published` or `deleted`.
    pub status: String,
    /// Whether signed-out readers may comment.
    pub allow_anonymous_comments: bool,
    /// Visible comments.
    pub comment_count: i64,
    /// Last applied stream version.
    pub version: i64,
    /// First drafted.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First published.
    pub published_at: Option<DateTime<Utc>>,
    /// Title or text last changed (NULL: never since drafted).
    pub edited_at: Option<DateTime<Utc>>,
}

impl PostRow {
    /// When readers last saw it change: its first publication, or a later edit of its title
    /// or text. `None` for a post never published.
    #[must_use]
    pub fn revised_at(&self) -> Option<DateTime<Utc>> {
        let published = self.published_at?;
        Some(self.edited_at.map_or(published, |e| e.max(published)))
    }
}

/// A row of `rm_comments`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    /// Comment id.
    pub id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// The comment it replies to.
    pub parent_id: Option<Uuid>,
    /// 0 for top level.
    pub depth: i64,
    /// Sortable thread path.
    pub path: String,
    /// Signed-in author, if any.
    pub author_id: Option<Uuid>,
    /// Shown name.
    pub author_name: String,
    /// Markdown source ('' once deleted).
    pub body: String,
    /// Rendered HTML.
    pub body_html: Option<String>,
    /// `visible`, `hidden` or `deleted`.
    pub status: String,
    /// Moderator's reason when hidden.
    pub hidden_reason: Option<String>,
    /// Non-deleted direct replies.
    pub reply_count: i64,
    /// Stream version of `comment.added`.
    pub post_version: i64,
    /// Stream version of the last change.
    pub changed_version: i64,
    /// `added`, `edited`, `deleted`, `hidden` or `restored`.
    pub last_change: String,
    /// Accepted at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// A row of `rm_users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// User id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Roles.
    pub roles: Json<Vec<String>>,
    /// Last applied stream version.
    pub version: i64,
}

const POST_COLUMNS: &str = "id, author_id, title, slug, body_markdown, body_html, tags, status, \
    allow_anonymous_comments, comment_count, version, created_at, updated_at, published_at, \
    edited_at";
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

    /// The database (for readiness checks).
    #[must_use]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Sends one statement, counted, and again while it fails with a serialization conflict:
    /// at SERIALIZABLE (always, on CockroachDB) a read overlapping a writer can be the one
    /// aborted with 40001, which a reader should never see as an error.
    async fn run<T, F, Fut>(&self, mut statement: F) -> Result<T, sqlx::Error>
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
        let rows: Vec<(i64, i64)> = self
            .run(move || async move {
                with_db!(&self.db, |pool| {
                    sqlx::query_as(
                        "SELECT partition, applied_offset FROM projection_offsets \
                         WHERE consumer_group = $1 AND topic = $2",
                    )
                    .bind(group)
                    .bind(topic)
                    .fetch_all(pool)
                    .await
                })
            })
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(p, o)| Some((i32::try_from(p).ok()?, o)))
            .collect())
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
