//! Disqus comment exports (XML: `thread`s with their page's URL, `post`s that are the comments)
//! as comments on the Inkwire posts those pages were: a thread is matched by the last segment
//! of its URL's path, which is the post's slug. Deleted and spam comments are left out; replies
//! keep their parent. Commenters become anonymous comments under their Disqus name.
//!
//! Comment ids are derived from Disqus's, and comments a post already has are skipped, so the
//! same file imported again adds nothing.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use command_service::store::EventStore;
use events::{Actor, CommentAdded, CommentId, Envelope, Event, PostEvent, PostId};
use infra::db::Db;
use infra::with_db;
use uuid::Uuid;

use crate::wxr::{Step, Stream, attribute, date, stable_id, walk};

/// Whether `text` is a Disqus export: its root element is `<disqus>`.
#[must_use]
pub fn is_disqus(text: &str) -> bool {
    let mut rest = text;
    // Past the declaration, comments and doctype, to the first element.
    while let Some(at) = rest.find('<') {
        rest = &rest[at + 1..];
        if !rest.starts_with(['?', '!']) {
            return rest.starts_with("disqus")
                && rest[6..].starts_with(|c: char| c.is_whitespace() || c == '>');
        }
    }
    false
}

#[derive(Default, Clone)]
struct Comment {
    line: usize,
    id: String,
    message: String,
    created: String,
    deleted: bool,
    spam: bool,
    name: String,
    thread: String,
    parent: String,
}

/// Threads (id → URL) and comments of a Disqus export.
fn parse(text: &str) -> Result<(HashMap<String, String>, Vec<Comment>), String> {
    let mut threads = HashMap::new();
    let mut comments = Vec::new();
    let mut thread: Option<(String, String)> = None;
    let mut comment: Option<Comment> = None;
    walk(text, |step| match step {
        Step::Open {
            name,
            element,
            depth,
            line,
            empty,
        } => {
            if empty {
                if let Some(c) = comment.as_mut() {
                    match name {
                        "thread" => c.thread = attribute(element, "dsq:id"),
                        "parent" => c.parent = attribute(element, "dsq:id"),
                        _ => {}
                    }
                }
            } else if depth == 1 && name == "thread" {
                thread = Some((attribute(element, "dsq:id"), String::new()));
            } else if depth == 1 && name == "post" {
                comment = Some(Comment {
                    line,
                    id: attribute(element, "dsq:id"),
                    ..Comment::default()
                });
            }
        }
        Step::Close {
            name,
            value,
            depth,
            line,
            ..
        } => {
            if let Some(c) = comment.as_mut() {
                match (depth, name) {
                    (2, "message") => c.message = value,
                    (2, "createdAt") => {
                        c.created = value;
                        c.line = line;
                    }
                    (2, "isDeleted") => c.deleted = value == "true",
                    (2, "isSpam") => c.spam = value == "true",
                    (3, "name") => c.name = value,
                    (1, "post") => {
                        if let Some(done) = comment.take() {
                            comments.push(done);
                        }
                    }
                    _ => {}
                }
            } else if let Some((_, link)) = thread.as_mut() {
                match (depth, name) {
                    (2, "link") => *link = value,
                    (1, "thread") => {
                        if let Some((id, link)) = thread.take() {
                            threads.insert(id, link);
                        }
                    }
                    _ => {}
                }
            }
        }
    })?;
    Ok((threads, comments))
}

/// The slug a page's URL names: the last segment of its path.
fn slug_of(link: &str) -> String {
    let path = link.split(['?', '#']).next().unwrap_or("");
    let path = path.split_once("://").map_or(path, |(_, rest)| rest);
    let path = path.split_once('/').map_or("", |(_, p)| p);
    path.split('/')
        .rev()
        .find(|s| !s.is_empty())
        .unwrap_or("")
        .trim_end_matches(".html")
        .to_lowercase()
}

/// What a Disqus export becomes in `db`: the comments to add, and the URLs of threads that
/// match no post (their comments are left out).
///
/// # Errors
/// Line-numbered reasons the file cannot be imported, or the database's error.
pub async fn events(db: &Db, text: &str) -> anyhow::Result<(Vec<Envelope>, Vec<String>)> {
    let (threads, comments) =
        parse(text).map_err(|e| anyhow::anyhow!("nothing was imported:\n  {e}"))?;
    let slugs: Vec<(String, Uuid)> = with_db!(db, |pool| {
        sqlx::query_as("SELECT slug, post_id FROM post_slugs")
            .fetch_all(pool)
            .await
    })?;
    let slugs: HashMap<String, Uuid> = slugs.into_iter().collect();
    let mut unmatched: Vec<String> = Vec::new();
    let mut by_post: HashMap<Uuid, Vec<(DateTime<Utc>, Comment)>> = HashMap::new();
    let mut errors = Vec::new();
    let mut matched_threads: HashMap<&str, Option<Uuid>> = HashMap::new();
    for c in comments.iter().filter(|c| !c.deleted && !c.spam) {
        let post = *matched_threads.entry(c.thread.as_str()).or_insert_with(|| {
            let link = threads.get(&c.thread).cloned().unwrap_or_default();
            let post = slugs.get(&slug_of(&link)).copied();
            if post.is_none() {
                unmatched.push(if link.is_empty() {
                    format!("thread {}", c.thread)
                } else {
                    link
                });
            }
            post
        });
        let Some(post) = post else { continue };
        match date(&c.created, c.line, "createdAt") {
            Ok(at) => by_post.entry(post).or_default().push((at, c.clone())),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        errors.truncate(20);
        anyhow::bail!("nothing was imported:\n  {}", errors.join("\n  "));
    }
    let store = EventStore::new(db.clone());
    let mut out = Vec::new();
    let mut posts: Vec<_> = by_post.into_iter().collect();
    posts.sort_by_key(|(post, _)| *post);
    for (post, mut list) in posts {
        let history = store.load(PostId(post)).await?;
        let there: HashSet<Uuid> = history
            .iter()
            .filter_map(|e| match &e.event {
                Event::Post(PostEvent::CommentAdded(c)) => Some(c.comment_id.0),
                _ => None,
            })
            .collect();
        let last = history.last();
        let mut stream = Stream::after(
            post,
            last.map_or(0, |e| e.meta.stream_version),
            last.map_or(0, |e| e.meta.occurred_at.timestamp_millis()),
        );
        list.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let id_of = |dsq: &str| stable_id(&format!("disqus-comment:{dsq}"));
        let mut known: HashSet<Uuid> = there.clone();
        for (at, c) in list {
            let id = id_of(&c.id);
            if there.contains(&id) {
                continue;
            }
            let parent = (!c.parent.is_empty())
                .then(|| id_of(&c.parent))
                .filter(|p| known.contains(p))
                .map(CommentId);
            let name: String = if c.name.is_empty() {
                "Anonymous".to_owned()
            } else {
                c.name.chars().take(80).collect()
            };
            stream.push(
                at,
                Actor {
                    user_id: None,
                    name: Some(name.clone()),
                },
                Event::Post(PostEvent::CommentAdded(CommentAdded {
                    comment_id: CommentId(id),
                    parent_id: parent,
                    author_id: None,
                    author_name: name,
                    body: crate::wxr::comment_markdown(&c.message),
                })),
            );
            known.insert(id);
        }
        out.extend(stream.out);
    }
    Ok((out, unmatched))
}
