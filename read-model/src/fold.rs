//! What an event does to the read tables, as pure functions over [`crate::rows`]: no I/O.
//!
//! The projector writes these effects as SQL (a statement per event, multi-row where it
//! batches); the gateway folds a command's recorded events into the last projected row to answer
//! a mutation before the projector has caught up. Both follow this module, and
//! `cli/tests/backends_agree.rs` checks the projector's rows against [`posts_and_comments`] on
//! both backends. The decisions were made on the write side: a fold only copies facts.

use std::borrow::Cow;
use std::collections::HashMap;

use events::{Envelope, Event, PostEvent as E, UserEvent as U};
use uuid::Uuid;

use crate::rows::{
    CommentChange, CommentRow, CommentStatus, PostRow, PostStatus, RevisionRow, UserRow,
};

/// Width of one thread-path segment: a zero-padded stream version, so paths sort as text.
pub const PATH_SEGMENT_WIDTH: usize = 12;

/// The path segment of a comment accepted at stream `version`.
#[must_use]
pub fn path_segment(version: i64) -> String {
    format!("{version:0width$}", width = PATH_SEGMENT_WIDTH)
}

/// A comment's depth and sortable path in its thread, from its parent's (`None`: top level, or
/// a parent not projected, which per-post order rules out).
#[must_use]
pub fn thread_place(parent: Option<(i64, &str)>, version: i64) -> (i64, String) {
    let own = path_segment(version);
    match parent {
        None => (0, own),
        Some((depth, path)) => (depth + 1, format!("{path}/{own}")),
    }
}

/// The sanitised HTML of the body `event` carries (a post's or a comment's), or `None` when it
/// carries none.
#[must_use]
pub fn rendered_body(event: &Event) -> Option<String> {
    match event {
        Event::Post(E::PostDrafted(e)) => Some(render::post_html(&e.body_markdown)),
        Event::Post(E::PostEdited(e)) => e.body_markdown.as_deref().map(render::post_html),
        Event::Post(E::CommentAdded(e)) => Some(render::comment_html(&e.body)),
        Event::Post(E::CommentEdited(e)) => Some(render::comment_html(&e.body)),
        _ => None,
    }
}

/// `html` when the caller rendered it ahead, else rendered now.
fn html_of<'a>(envelope: &Envelope, html: Option<&'a str>) -> Option<Cow<'a, str>> {
    html.map(Cow::Borrowed)
        .or_else(|| rendered_body(&envelope.event).map(Cow::Owned))
}

/// The change of a post's visible-comment count when a comment goes from `before` to `after`
/// (`None`: no row).
#[must_use]
pub fn visible_delta(before: Option<CommentStatus>, after: Option<CommentStatus>) -> i64 {
    let visible = |s: Option<CommentStatus>| i64::from(s == Some(CommentStatus::Visible));
    visible(after) - visible(before)
}

/// The comment an event concerns, if it is a comment event.
#[must_use]
pub fn comment_of(event: &Event) -> Option<Uuid> {
    match event {
        Event::Post(E::CommentAdded(e)) => Some(e.comment_id.0),
        Event::Post(E::CommentEdited(e)) => Some(e.comment_id.0),
        Event::Post(E::CommentDeleted(e)) => Some(e.comment_id.0),
        Event::Post(E::CommentHidden(e)) => Some(e.comment_id.0),
        Event::Post(E::CommentRestored(e)) => Some(e.comment_id.0),
        Event::Post(E::ReactionAdded(e) | E::ReactionRemoved(e)) => e.comment_id.map(|c| c.0),
        _ => None,
    }
}

/// Folds an event of a post's stream into the post's row: post events change its fields, and
/// every event moves its version and last change. `comment_delta` is the change of its
/// visible-comment count the event made (see [`comment`]). `html`: the body rendered ahead, if
/// the caller has it.
#[must_use]
pub fn post(
    row: Option<PostRow>,
    envelope: &Envelope,
    html: Option<&str>,
    comment_delta: i64,
) -> Option<PostRow> {
    let at = envelope.meta.occurred_at;
    let mut row = match (&envelope.event, row) {
        (Event::Post(E::PostDrafted(e)), None) => PostRow {
            id: envelope.meta.stream_id.0,
            author_id: e.author_id.0,
            title: e.title.clone(),
            slug: e.slug.clone(),
            body_markdown: e.body_markdown.clone(),
            body_html: html_of(envelope, html).map(Cow::into_owned),
            tags: sqlx::types::Json(e.tags.clone()),
            status: PostStatus::Draft,
            allow_anonymous_comments: e.allow_anonymous_comments,
            comment_count: 0,
            version: 0,
            created_at: at,
            updated_at: at,
            published_at: None,
            edited_at: None,
            scheduled_at: None,
        },
        (_, None) => return None,
        (event, Some(mut row)) => {
            match event {
                Event::Post(E::PostEdited(e)) => {
                    if let Some(v) = &e.title {
                        v.clone_into(&mut row.title);
                    }
                    if let Some(v) = &e.slug {
                        v.clone_into(&mut row.slug);
                    }
                    if let Some(v) = &e.body_markdown {
                        v.clone_into(&mut row.body_markdown);
                        row.body_html = html_of(envelope, html).map(Cow::into_owned);
                    }
                    if let Some(v) = &e.tags {
                        row.tags = sqlx::types::Json(v.clone());
                    }
                    if let Some(v) = e.allow_anonymous_comments {
                        row.allow_anonymous_comments = v;
                    }
                    // Only what a reader reads counts as an edit.
                    if e.title.is_some() || e.body_markdown.is_some() {
                        row.edited_at = Some(at);
                    }
                }
                Event::Post(E::PostPublished(_)) => {
                    row.status = PostStatus::Published;
                    row.published_at = row.published_at.or(Some(at));
                    row.scheduled_at = None;
                }
                Event::Post(E::PostUnpublished(_)) => row.status = PostStatus::Draft,
                Event::Post(E::PostDeleted(_)) => {
                    row.status = PostStatus::Deleted;
                    row.scheduled_at = None;
                }
                Event::Post(E::PostScheduled(e)) => row.scheduled_at = Some(e.publish_at),
                Event::Post(E::PostUnscheduled(_)) => row.scheduled_at = None,
                _ => {}
            }
            row
        }
    };
    row.version = envelope.meta.stream_version;
    row.updated_at = at;
    row.comment_count += comment_delta;
    Some(row)
}

/// What a comment event did to its comment: the row after, and the change it made to the post's
/// visible-comment count and to the parent's reply count.
#[derive(Debug, Clone)]
pub struct CommentFolded {
    /// The row after the event (`None`: no row, e.g. an event about a comment not projected).
    pub row: Option<CommentRow>,
    /// Change of the post's visible-comment count.
    pub visible_delta: i64,
    /// Change of the parent's reply count.
    pub reply_delta: i64,
}

/// Folds a comment event into the comment's row. `parent`: the parent's row, needed only when a
/// reply is added (its depth and path place the reply in the thread). Events about other
/// things leave the row as it is.
#[must_use]
pub fn comment(
    row: Option<CommentRow>,
    parent: Option<&CommentRow>,
    envelope: &Envelope,
    html: Option<&str>,
) -> CommentFolded {
    let at = envelope.meta.occurred_at;
    let version = envelope.meta.stream_version;
    let before = row.as_ref().map(|r| r.status);
    let unchanged = |row| CommentFolded {
        row,
        visible_delta: 0,
        reply_delta: 0,
    };
    let changed = |mut row: CommentRow, change: CommentChange| {
        row.updated_at = at;
        row.changed_version = version;
        row.last_change = change;
        row
    };
    let (after, reply_delta) = match (&envelope.event, row) {
        (Event::Post(E::CommentAdded(e)), None) => {
            let (depth, path) = thread_place(parent.map(|p| (p.depth, p.path.as_str())), version);
            let row = CommentRow {
                id: e.comment_id.0,
                post_id: envelope.meta.stream_id.0,
                parent_id: e.parent_id.map(|p| p.0),
                depth,
                path,
                author_id: e.author_id.map(|a| a.0),
                author_name: e.author_name.clone(),
                body: e.body.clone(),
                body_html: html_of(envelope, html).map(Cow::into_owned),
                status: CommentStatus::Visible,
                hidden_reason: None,
                reply_count: 0,
                post_version: version,
                changed_version: version,
                last_change: CommentChange::Added,
                created_at: at,
                updated_at: at,
            };
            (row, i64::from(e.parent_id.is_some()))
        }
        (Event::Post(E::CommentEdited(e)), Some(mut row)) => {
            e.body.clone_into(&mut row.body);
            row.body_html = html_of(envelope, html).map(Cow::into_owned);
            (changed(row, CommentChange::Edited), 0)
        }
        (Event::Post(E::CommentDeleted(_)), Some(mut row))
            if row.status != CommentStatus::Deleted =>
        {
            // The row stays so that replies keep their place in the thread.
            row.status = CommentStatus::Deleted;
            row.body.clear();
            row.body_html = Some(String::new());
            let replies = -i64::from(row.parent_id.is_some());
            (changed(row, CommentChange::Deleted), replies)
        }
        (Event::Post(E::CommentHidden(e)), Some(mut row))
            if row.status == CommentStatus::Visible =>
        {
            row.status = CommentStatus::Hidden;
            row.hidden_reason = Some(e.reason.clone());
            (changed(row, CommentChange::Hidden), 0)
        }
        (Event::Post(E::CommentRestored(_)), Some(mut row))
            if row.status == CommentStatus::Hidden =>
        {
            row.status = CommentStatus::Visible;
            row.hidden_reason = None;
            (changed(row, CommentChange::Restored), 0)
        }
        (Event::Post(E::ReactionAdded(_) | E::ReactionRemoved(_)), Some(mut row))
            if row.status == CommentStatus::Visible =>
        {
            // Its counts changed, which live readers are told; its text did not (no
            // `updated_at`).
            row.changed_version = version;
            row.last_change = CommentChange::Reacted;
            (row, 0)
        }
        (_, row) => return unchanged(row),
    };
    CommentFolded {
        visible_delta: visible_delta(before, Some(after.status)),
        row: Some(after),
        reply_delta,
    }
}

/// Folds a user event into the user's row.
#[must_use]
pub fn user(row: Option<UserRow>, envelope: &Envelope) -> Option<UserRow> {
    let mut row = match (&envelope.event, row) {
        (Event::User(U::Registered(e)), None) => UserRow {
            id: envelope.meta.stream_id.0,
            username: e.username.clone(),
            display_name: e.display_name.clone(),
            roles: sqlx::types::Json(vec![events::ROLES[0].to_owned()]),
            version: 0,
        },
        (_, None) => return None,
        (event, Some(mut row)) => {
            match event {
                Event::User(U::DisplayNameChanged(e)) => {
                    e.display_name.clone_into(&mut row.display_name)
                }
                Event::User(U::RoleGranted(e)) => {
                    row.roles.0.retain(|r| *r != e.role);
                    row.roles.0.push(e.role.clone());
                }
                Event::User(U::RoleRevoked(e)) => row.roles.0.retain(|r| *r != e.role),
                _ => {}
            }
            row
        }
    };
    row.version = envelope.meta.stream_version;
    Some(row)
}

/// The posts and comments that `events` (in log order) make, folded from nothing: what the
/// projector's tables must hold after projecting them. For tests and checks.
#[must_use]
pub fn posts_and_comments(
    events: &[Envelope],
) -> (HashMap<Uuid, PostRow>, HashMap<Uuid, CommentRow>) {
    let mut posts: HashMap<Uuid, PostRow> = HashMap::new();
    let mut comments: HashMap<Uuid, CommentRow> = HashMap::new();
    for envelope in events.iter().filter(|e| !e.event.is_user_event()) {
        let stream = envelope.meta.stream_id.0;
        let before = posts.get(&stream).map_or(0, |p| p.version);
        if envelope.meta.stream_version != before + 1 {
            continue; // a duplicate or a gap: the projector skips it too
        }
        let mut delta = 0;
        if let Some(id) = comment_of(&envelope.event) {
            let parent = match &envelope.event {
                Event::Post(E::CommentAdded(e)) => {
                    e.parent_id.and_then(|p| comments.get(&p.0)).cloned()
                }
                _ => None,
            };
            let folded = comment(comments.remove(&id), parent.as_ref(), envelope, None);
            delta = folded.visible_delta;
            if let Some(row) = folded.row {
                if let Some(parent) = row.parent_id.and_then(|p| comments.get_mut(&p)) {
                    parent.reply_count += folded.reply_delta;
                }
                comments.insert(id, row);
            }
        }
        if let Some(row) = post(posts.remove(&stream), envelope, None, delta) {
            posts.insert(stream, row);
        }
    }
    (posts, comments)
}

/// Whether `event` saves a revision of its post's content: the draft, and every edit of its
/// title, slug, body or tags (an edit of the comment policy alone does not).
#[must_use]
pub fn saves_revision(event: &Event) -> bool {
    match event {
        Event::Post(E::PostDrafted(_)) => true,
        Event::Post(E::PostEdited(e)) => {
            e.title.is_some() || e.slug.is_some() || e.body_markdown.is_some() || e.tags.is_some()
        }
        _ => false,
    }
}

/// The revision numbered `revision` that `envelope` saved, from the post's row after it
/// (`None` when the event saves none).
#[must_use]
pub fn revision(post: &PostRow, envelope: &Envelope, revision: i64) -> Option<RevisionRow> {
    saves_revision(&envelope.event).then(|| RevisionRow {
        post_id: post.id,
        revision,
        stream_version: envelope.meta.stream_version,
        title: post.title.clone(),
        slug: post.slug.clone(),
        body_markdown: post.body_markdown.clone(),
        tags: post.tags.clone(),
        editor_id: envelope.meta.actor.user_id.map(|u| u.0),
        edited_at: envelope.meta.occurred_at,
    })
}

/// Every revision that `events` (in log order) save, per post in revision order: what
/// `rm_post_revisions` must hold after projecting them. For tests and checks.
#[must_use]
pub fn revisions(events: &[Envelope]) -> HashMap<Uuid, Vec<RevisionRow>> {
    let mut posts: HashMap<Uuid, PostRow> = HashMap::new();
    let mut out: HashMap<Uuid, Vec<RevisionRow>> = HashMap::new();
    for envelope in events.iter().filter(|e| !e.event.is_user_event()) {
        let stream = envelope.meta.stream_id.0;
        let before = posts.get(&stream).map_or(0, |p| p.version);
        if envelope.meta.stream_version != before + 1 {
            continue; // a duplicate or a gap: the projector skips it too
        }
        let Some(row) = post(posts.remove(&stream), envelope, None, 0) else {
            continue;
        };
        let saved = out.entry(stream).or_default();
        let number = i64::try_from(saved.len()).unwrap_or(i64::MAX) + 1;
        if let Some(revision) = revision(&row, envelope, number) {
            saved.push(revision);
        }
        posts.insert(stream, row);
    }
    out.retain(|_, saved| !saved.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use events::{Actor, CommentId, PostId, StoredMeta, StreamId, UserId};

    fn at(version: i64, event: E) -> Envelope {
        Envelope {
            meta: StoredMeta {
                event_id: Uuid::now_v7(),
                stream_id: StreamId(Uuid::from_u128(7)),
                stream_version: version,
                occurred_at: Utc.timestamp_opt(1_700_000_000 + version, 0).unwrap(),
                actor: Actor::default(),
                correlation_id: Uuid::nil(),
                causation_id: None,
                traceparent: None,
            },
            event: Event::Post(event),
        }
    }

    fn added(id: u128, parent: Option<u128>) -> E {
        E::CommentAdded(events::CommentAdded {
            comment_id: CommentId(Uuid::from_u128(id)),
            parent_id: parent.map(|p| CommentId(Uuid::from_u128(p))),
            author_id: None,
            author_name: "ann".into(),
            body: "*hi*".into(),
        })
    }

    #[test]
    fn path_segments_sort_as_their_versions() {
        let mut versions = [10, 9, 100, 1, 1_000_000];
        let mut segments: Vec<String> = versions.iter().map(|v| path_segment(*v)).collect();
        segments.sort();
        versions.sort_unstable();
        let sorted: Vec<String> = versions.iter().map(|v| path_segment(*v)).collect();
        assert_eq!(segments, sorted);
    }

    #[test]
    fn a_thread_folds_into_counts_places_and_states() {
        let events = vec![
            at(
                1,
                E::PostDrafted(events::PostDrafted {
                    author_id: UserId(Uuid::from_u128(1)),
                    title: "T".into(),
                    slug: "t".into(),
                    body_markdown: "# T".into(),
                    tags: vec!["rust".into()],
                    allow_anonymous_comments: true,
                }),
            ),
            at(2, E::PostPublished(events::PostPublished {})),
            at(3, added(10, None)),
            at(4, added(11, Some(10))),
            at(
                5,
                E::CommentHidden(events::CommentHidden {
                    comment_id: CommentId(Uuid::from_u128(11)),
                    reason: "spam".into(),
                }),
            ),
            // Deleting a hidden reply does not count it out twice.
            at(
                6,
                E::CommentDeleted(events::CommentDeleted {
                    comment_id: CommentId(Uuid::from_u128(11)),
                }),
            ),
            // A duplicate is skipped, as the projector skips it.
            at(6, added(12, None)),
            at(
                7,
                E::PostEdited(events::PostEdited {
                    title: Some("U".into()),
                    ..Default::default()
                }),
            ),
        ];
        let (posts, comments) = posts_and_comments(&events);
        let post = &posts[&Uuid::from_u128(7)];
        assert_eq!(
            (
                post.status,
                post.version,
                post.comment_count,
                post.title.as_str()
            ),
            (PostStatus::Published, 7, 1, "U")
        );
        assert_eq!(post.published_at, Some(events[1].meta.occurred_at));
        assert_eq!(post.edited_at, Some(events[7].meta.occurred_at));
        let top = &comments[&Uuid::from_u128(10)];
        let reply = &comments[&Uuid::from_u128(11)];
        assert_eq!((top.reply_count, top.depth), (0, 0));
        assert_eq!(top.body_html.as_deref(), Some("<p><em>hi</em></p>\n"));
        assert_eq!(
            reply.path,
            format!("{}/{}", path_segment(3), path_segment(4))
        );
        assert_eq!(
            (
                reply.status,
                reply.last_change,
                reply.body.as_str(),
                reply.changed_version
            ),
            (CommentStatus::Deleted, CommentChange::Deleted, "", 6)
        );
        assert!(!comments.contains_key(&Uuid::from_u128(12)));
        let _ = PostId::new();
    }

    #[test]
    fn a_restore_of_a_visible_comment_changes_nothing() {
        let row = comment(None, None, &at(3, added(10, None)), None).row;
        let folded = comment(
            row.clone(),
            None,
            &at(
                4,
                E::CommentRestored(events::CommentRestored {
                    comment_id: CommentId(Uuid::from_u128(10)),
                }),
            ),
            None,
        );
        assert_eq!(folded.visible_delta, 0);
        assert_eq!(
            folded.row.map(|r| (r.changed_version, r.last_change)),
            Some((3, CommentChange::Added))
        );
    }
}
