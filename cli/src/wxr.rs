//! WordPress exports (WXR: RSS with the `wp:` namespace) as Inkwire events: authors become
//! accounts without passwords, posts keep their slugs, tags, categories (as tags), text and
//! dates, published ones are published, and approved comments keep their threading. Pingbacks,
//! pages, attachments and unapproved comments are left out.
//!
//! Ids are derived from the site and WordPress's own ids, and event ids from the dates, so the
//! same file always gives the same events: importing it again adds nothing
//! ([`crate::transfer::import`] skips what is there).

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDateTime, Utc};
use events::{
    Actor, CommentAdded, CommentId, Envelope, Event, PostDrafted, PostEvent, PostPublished,
    StoredMeta, StreamId, UserEvent, UserId, UserRegistered, UserRoleChanged,
};
use quick_xml::events::{BytesStart, Event as Xml};
use uuid::Uuid;

/// Whether `bytes` look like XML rather than an `inkwire export`.
#[must_use]
pub fn is_xml(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'<')
}

#[derive(Default)]
struct Author {
    login: String,
    display_name: String,
    wp_id: String,
}

#[derive(Default, Clone)]
struct Comment {
    line: usize,
    id: String,
    author: String,
    date: String,
    content: String,
    approved: String,
    kind: String,
    parent: String,
    user_id: String,
}

#[derive(Default)]
struct Item {
    line: usize,
    /// Where its date is.
    date_line: usize,
    title: String,
    creator: String,
    content: String,
    post_id: String,
    date: String,
    pub_date: String,
    name: String,
    status: String,
    post_type: String,
    tags: Vec<String>,
    comments: Vec<Comment>,
}

/// What a WXR file holds, parsed.
#[derive(Default)]
struct Site {
    link: String,
    authors: Vec<Author>,
    items: Vec<Item>,
}

/// 1-based lines of byte offsets in a text, for offsets that only grow (as a reader's do):
/// each call counts only the newlines since the last.
struct Lines<'a> {
    text: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    fn at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        if offset > self.offset {
            self.line += self.text[self.offset..offset]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            self.offset = offset;
        }
        self.line
    }
}

fn parse(text: &str) -> Result<Site, String> {
    let mut site = Site::default();
    let mut item: Option<Item> = None;
    let mut comment: Option<Comment> = None;
    let mut author: Option<Author> = None;
    let mut domain = String::new();
    walk(text, |step| {
        match step {
            // WordPress writes no empty elements that matter here.
            Step::Open { empty: true, .. } => {}
            Step::Open {
                name,
                element,
                line,
                ..
            } => match name {
                "item" => {
                    item = Some(Item {
                        line,
                        ..Item::default()
                    });
                }
                "wp:comment" => {
                    comment = Some(Comment {
                        line,
                        ..Comment::default()
                    });
                }
                "wp:author" => author = Some(Author::default()),
                "category" => domain = attribute(element, "domain"),
                _ => {}
            },
            Step::Close {
                name,
                parent,
                value,
                line,
                ..
            } => {
                if let Some(c) = comment.as_mut() {
                    match name {
                        "wp:comment_id" => c.id = value,
                        "wp:comment_author" => c.author = value,
                        "wp:comment_date_gmt" => {
                            c.date = value;
                            c.line = line;
                        }
                        "wp:comment_content" => c.content = value,
                        "wp:comment_approved" => c.approved = value,
                        "wp:comment_type" => c.kind = value,
                        "wp:comment_parent" => c.parent = value,
                        "wp:comment_user_id" => c.user_id = value,
                        "wp:comment" => {
                            if let (Some(done), Some(i)) = (comment.take(), item.as_mut()) {
                                i.comments.push(done);
                            }
                        }
                        _ => {}
                    }
                } else if let Some(i) = item.as_mut() {
                    match name {
                        "title" => i.title = value,
                        "dc:creator" => i.creator = value,
                        "content:encoded" => i.content = value,
                        "wp:post_id" => i.post_id = value,
                        "wp:post_date_gmt" => {
                            i.date = value;
                            i.date_line = line;
                        }
                        "pubDate" => i.pub_date = value,
                        "wp:post_name" => i.name = value,
                        "wp:status" => i.status = value,
                        "wp:post_type" => i.post_type = value,
                        "category" if domain == "post_tag" || domain == "category" => {
                            i.tags.push(value);
                        }
                        "item" => {
                            if let Some(done) = item.take() {
                                site.items.push(done);
                            }
                        }
                        _ => {}
                    }
                } else if let Some(a) = author.as_mut() {
                    match name {
                        "wp:author_login" => a.login = value,
                        "wp:author_display_name" => a.display_name = value,
                        "wp:author_id" => a.wp_id = value,
                        "wp:author" => {
                            if let Some(done) = author.take() {
                                site.authors.push(done);
                            }
                        }
                        _ => {}
                    }
                } else if name == "link" && parent == Some("channel") {
                    site.link = value;
                }
            }
        }
    })?;
    Ok(site)
}

/// One step through an XML document, as [`walk`] gives it.
pub(crate) enum Step<'a> {
    /// An element opens: `<name …>`, or `<name …/>` when `empty` (no `Close` follows), with
    /// `depth` elements around it, the innermost `parent`.
    Open {
        name: &'a str,
        element: &'a BytesStart<'a>,
        depth: usize,
        line: usize,
        empty: bool,
    },
    /// An element closes: `</name>`, with the text it held (CDATA and references included,
    /// trimmed), and `depth` elements around it, the innermost `parent`.
    Close {
        name: &'a str,
        parent: Option<&'a str>,
        value: String,
        depth: usize,
        line: usize,
    },
}

/// Walks `text` element by element, calling `on` at each opening and closing, with the line
/// each is on. Errors (not well-formed XML, a file that ends inside an element) name the line.
///
/// # Errors
/// The first error, as `line N: …`.
pub(crate) fn walk(text: &str, mut on: impl FnMut(Step<'_>)) -> Result<(), String> {
    let mut reader = quick_xml::Reader::from_str(text);
    let mut lines = Lines::new(text);
    let mut path: Vec<String> = Vec::new();
    let mut buf = String::new();
    loop {
        let at = usize::try_from(reader.buffer_position()).unwrap_or(usize::MAX);
        let event = reader
            .read_event()
            .map_err(|e| format!("line {}: not well-formed XML: {e}", lines.at(at)))?;
        match event {
            Xml::Start(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                buf.clear();
                on(Step::Open {
                    name: &name,
                    element: &e,
                    depth: path.len(),
                    line: lines.at(at),
                    empty: false,
                });
                path.push(name);
            }
            Xml::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                on(Step::Open {
                    name: &name,
                    element: &e,
                    depth: path.len(),
                    line: lines.at(at),
                    empty: true,
                });
            }
            Xml::Text(t) => {
                buf.push_str(
                    &t.decode()
                        .map_err(|e| format!("line {}: {e}", lines.at(at)))?,
                );
            }
            Xml::CData(t) => buf.push_str(&String::from_utf8_lossy(&t.into_inner())),
            Xml::GeneralRef(r) => push_reference(&mut buf, &r),
            Xml::End(_) => {
                let name = path.pop().unwrap_or_default();
                let value = std::mem::take(&mut buf).trim().to_owned();
                on(Step::Close {
                    name: &name,
                    parent: path.last().map(String::as_str),
                    value,
                    depth: path.len(),
                    line: lines.at(at),
                });
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    if path.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "line {}: the file ends inside <{}>",
            lines.at(text.len()),
            path.join("><")
        ))
    }
}

/// The value of `element`'s attribute `name` (empty when it has none).
pub(crate) fn attribute(element: &BytesStart<'_>, name: &str) -> String {
    element
        .try_get_attribute(name)
        .ok()
        .flatten()
        .map(|a| String::from_utf8_lossy(&a.value).into_owned())
        .unwrap_or_default()
}

/// Appends what the reference `r` (`&amp;`, `&#233;`, …) stands for; XML's five entities
/// and character references (an unknown entity stands for nothing).
fn push_reference(buf: &mut String, r: &quick_xml::events::BytesRef<'_>) {
    if let Ok(Some(c)) = r.resolve_char_ref() {
        buf.push(c);
        return;
    }
    buf.push_str(match r.as_ref() {
        b"amp" => "&",
        b"lt" => "<",
        b"gt" => ">",
        b"quot" => "\"",
        b"apos" => "'",
        _ => "",
    });
}

/// 128 stable bits of `text` (two FNV-1a passes), as an id of UUID version 8 (custom).
pub(crate) fn stable_id(text: &str) -> Uuid {
    let mut out = [0u8; 16];
    for (half, basis) in [0xcbf2_9ce4_8422_2325_u64, 0x6c62_272e_07bb_0142]
        .iter()
        .enumerate()
    {
        let mut h = *basis;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        out[half * 8..half * 8 + 8].copy_from_slice(&h.to_be_bytes());
    }
    uuid::Builder::from_custom_bytes(out).into_uuid()
}

/// A time-ordered id (the layout of UUIDv7) for the event at `ms` of `stream` at `version`.
fn event_id(ms: i64, stream: Uuid, version: i64) -> Uuid {
    let rand = stable_id(&format!("{stream}/{version}"));
    let mut bytes = *rand.as_bytes();
    let ms = u64::try_from(ms).unwrap_or(0).to_be_bytes();
    bytes[..6].copy_from_slice(&ms[2..]);
    uuid::Builder::from_bytes(bytes)
        .with_version(uuid::Version::SortRand)
        .with_variant(uuid::Variant::RFC4122)
        .into_uuid()
}

pub(crate) fn date(value: &str, line: usize, what: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S") {
        return Ok(t.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(value) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    Err(format!("line {line}: {what} {value:?} is not a date"))
}

/// `text` as an Inkwire username or slug: lower-case letters, digits and dashes.
fn simple(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    let mut out: String = out.trim_matches('-').chars().take(max).collect();
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// Events for one stream, with versions and ever-later ids from the dates given.
pub(crate) struct Stream {
    id: Uuid,
    version: i64,
    last_ms: i64,
    pub(crate) out: Vec<Envelope>,
}

impl Stream {
    pub(crate) fn new(id: Uuid) -> Self {
        Self::after(id, 0, 0)
    }

    /// A stream that already holds `version` events, the last at `last_ms`.
    pub(crate) fn after(id: Uuid, version: i64, last_ms: i64) -> Self {
        Self {
            id,
            version,
            last_ms,
            out: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, at: DateTime<Utc>, actor: Actor, event: Event) {
        self.version += 1;
        let ms = at.timestamp_millis().max(self.last_ms + 1);
        self.last_ms = ms;
        let id = event_id(ms, self.id, self.version);
        self.out.push(Envelope {
            meta: StoredMeta {
                event_id: id,
                stream_id: StreamId(self.id),
                stream_version: self.version,
                // The event's own time, even when its id had to be made later than the
                // stream's last (ids order a stream; times are what readers see).
                occurred_at: at,
                actor,
                correlation_id: id,
                causation_id: None,
                traceparent: None,
            },
            event,
        });
    }
}

/// Appends comment `c` to `stream`, signed by its WordPress account when it has one here.
fn add_comment(
    stream: &mut Stream,
    link: &str,
    users: &HashMap<String, (Uuid, String)>,
    by_wp_id: &HashMap<&str, &str>,
    at: DateTime<Utc>,
    c: &Comment,
    parent: Option<CommentId>,
) -> CommentId {
    let id = CommentId(stable_id(&format!("wxr-comment:{link}:{}", c.id)));
    let author = by_wp_id
        .get(c.user_id.as_str())
        .filter(|_| c.user_id != "0")
        .and_then(|login| users.get(*login));
    let name: String = if c.author.trim().is_empty() {
        "Anonymous".to_owned()
    } else {
        c.author.trim().chars().take(80).collect()
    };
    let author_name = author.map_or(name.clone(), |(_, shown)| shown.clone());
    stream.push(
        at,
        Actor {
            user_id: author.map(|(id, _)| UserId(*id)),
            name: Some(author_name.clone()),
        },
        Event::Post(PostEvent::CommentAdded(CommentAdded {
            comment_id: id,
            parent_id: parent,
            author_id: author.map(|(id, _)| UserId(*id)),
            author_name,
            body: comment_markdown(&c.content),
        })),
    );
    id
}

/// What a WXR file becomes: every event, per stream in version order, streams in the file's
/// order (authors first); or the file's errors, each with its line.
///
/// # Errors
/// Line-numbered reasons the file cannot be imported.
pub fn events(text: &str) -> Result<Vec<Envelope>, Vec<String>> {
    let site = parse(text).map_err(|e| vec![e])?;
    let mut errors = Vec::new();
    let items: Vec<&Item> = site
        .items
        .iter()
        .filter(|i| i.post_type.is_empty() || i.post_type == "post")
        .collect();
    // Authors: the file's, and any post's creator it does not list.
    let mut logins: Vec<(String, String)> = site
        .authors
        .iter()
        .map(|a| (a.login.clone(), a.display_name.clone()))
        .collect();
    for i in &items {
        if !i.creator.is_empty() && !logins.iter().any(|(l, _)| *l == i.creator) {
            logins.push((i.creator.clone(), i.creator.clone()));
        }
    }
    let first = items
        .iter()
        .filter_map(|i| date(&i.date, i.date_line, "wp:post_date_gmt").ok())
        .min()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut out = Vec::new();
    let mut users: HashMap<String, (Uuid, String)> = HashMap::new();
    let mut names = HashSet::new();
    for (login, shown) in &logins {
        let mut username = simple(login, 32);
        while username.len() < 3 {
            username.push('x');
        }
        let base = username.clone();
        let mut n = 1;
        while !names.insert(username.clone()) {
            n += 1;
            username = format!("{}-{n}", base.chars().take(28).collect::<String>());
        }
        let id = stable_id(&format!("wxr-user:{}:{login}", site.link));
        let shown = if shown.trim().is_empty() {
            login.clone()
        } else {
            shown.trim().to_owned()
        };
        let mut stream = Stream::new(id);
        let actor = Actor {
            user_id: Some(UserId(id)),
            name: Some(shown.clone()),
        };
        stream.push(
            first,
            actor.clone(),
            Event::User(UserEvent::Registered(UserRegistered {
                username,
                display_name: shown.clone(),
            })),
        );
        stream.push(
            first,
            actor,
            Event::User(UserEvent::RoleGranted(UserRoleChanged {
                role: "author".into(),
            })),
        );
        out.extend(stream.out);
        users.insert(login.clone(), (id, shown));
    }
    // WordPress user ids of the authors, for comments written signed in.
    let by_wp_id: HashMap<&str, &str> = site
        .authors
        .iter()
        .map(|a| (a.wp_id.as_str(), a.login.as_str()))
        .collect();
    let mut slugs = HashSet::new();
    for item in items {
        if item.post_id.is_empty() {
            errors.push(format!(
                "line {}: an <item> without <wp:post_id>",
                item.line
            ));
            continue;
        }
        let at = if item.date.is_empty() || item.date.starts_with("0000") {
            date(&item.pub_date, item.line, "pubDate")
        } else {
            date(&item.date, item.date_line, "wp:post_date_gmt")
        };
        let at = match at {
            Ok(at) => at,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let Some((author, author_name)) = users
            .get(&item.creator)
            .or_else(|| logins.first().and_then(|(l, _)| users.get(l)))
            .cloned()
        else {
            errors.push(format!(
                "line {}: a post without an author, in a file that names none",
                item.line
            ));
            continue;
        };
        let mut slug = simple(&item.name, 120);
        if slug.is_empty() {
            slug = simple(&item.title, 120);
        }
        if slug.is_empty() || !slugs.insert(slug.clone()) {
            slug = format!(
                "{}-{}",
                if slug.is_empty() { "post" } else { &slug },
                simple(&item.post_id, 20)
            );
            slugs.insert(slug.clone());
        }
        let mut tags: Vec<String> = Vec::new();
        for t in item.tags.iter().filter_map(|t| events::normal_tag(t)) {
            if !tags.contains(&t) {
                tags.push(t);
            }
        }
        let post = stable_id(&format!("wxr-post:{}:{}", site.link, item.post_id));
        let mut stream = Stream::new(post);
        let actor = Actor {
            user_id: Some(UserId(author)),
            name: Some(author_name),
        };
        let title = if item.title.trim().is_empty() {
            "(untitled)".to_owned()
        } else {
            item.title.trim().to_owned()
        };
        stream.push(
            at,
            actor.clone(),
            Event::Post(PostEvent::PostDrafted(PostDrafted {
                author_id: UserId(author),
                title,
                slug,
                body_markdown: item.content.clone(),
                tags,
                allow_anonymous_comments: true,
            })),
        );
        if item.status == "publish" {
            stream.push(
                at,
                actor,
                Event::Post(PostEvent::PostPublished(PostPublished {})),
            );
        }
        // Approved comments, oldest first, each after its parent.
        let mut comments: Vec<&Comment> = item
            .comments
            .iter()
            .filter(|c| c.approved == "1" && (c.kind.is_empty() || c.kind == "comment"))
            .collect();
        let mut dated = Vec::with_capacity(comments.len());
        for c in comments.drain(..) {
            match date(&c.date, c.line, "wp:comment_date_gmt") {
                Ok(at) => dated.push((at, c)),
                Err(e) => errors.push(e),
            }
        }
        dated.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
        let mut seen: HashMap<&str, CommentId> = HashMap::new();
        let mut waiting: Vec<(DateTime<Utc>, &Comment)> = dated;
        // A reply dated before its parent waits for it; one whose parent is not imported (or
        // never comes) becomes a comment of its own.
        while !waiting.is_empty() {
            let before = waiting.len();
            let mut later = Vec::new();
            for (at, c) in waiting {
                let parent = match c.parent.as_str() {
                    "" | "0" => None,
                    p => match seen.get(p) {
                        Some(id) => Some(*id),
                        None if item.comments.iter().any(|o| o.id == p && o.approved == "1") => {
                            later.push((at, c));
                            continue;
                        }
                        None => None,
                    },
                };
                let id = add_comment(&mut stream, &site.link, &users, &by_wp_id, at, c, parent);
                seen.insert(c.id.as_str(), id);
            }
            if later.len() == before {
                for (at, c) in later {
                    add_comment(&mut stream, &site.link, &users, &by_wp_id, at, c, None);
                }
                break;
            }
            waiting = later;
        }
        out.extend(stream.out);
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        errors.truncate(20);
        Err(errors)
    }
}

/// A comment's HTML (as WordPress and Disqus keep comments) as the markdown Inkwire comments
/// are written in: paragraphs and line breaks, links, emphasis and code kept, other tags
/// dropped, entities decoded. Inkwire shows raw HTML in comments as text, so it must not stay.
#[must_use]
pub fn comment_markdown(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut href: Vec<Option<String>> = Vec::new();
    let mut rest = html;
    while let Some(at) = rest.find('<') {
        out.push_str(&rest[..at]);
        let Some(end) = rest[at..].find('>') else {
            out.push_str(&rest[at..]);
            rest = "";
            break;
        };
        let tag = &rest[at + 1..at + end];
        rest = &rest[at + end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        match (name.as_str(), closing) {
            ("p" | "div" | "blockquote", _) => out.push_str("\n\n"),
            ("br", _) => out.push_str("  \n"),
            ("em" | "i", _) => out.push('*'),
            ("strong" | "b", _) => out.push_str("**"),
            ("code", _) => out.push('`'),
            ("a", false) => {
                let link = tag
                    .split("href=")
                    .nth(1)
                    .and_then(|v| {
                        let q = v.chars().next()?;
                        if q == '"' || q == '\'' {
                            v[1..].split(q).next().map(str::to_owned)
                        } else {
                            v.split_whitespace().next().map(str::to_owned)
                        }
                    })
                    .filter(|l| l.starts_with("http://") || l.starts_with("https://"));
                if link.is_some() {
                    out.push('[');
                }
                href.push(link);
            }
            ("a", true) => {
                if let Some(Some(link)) = href.pop() {
                    out.push_str(&format!("]({link})"));
                }
            }
            _ => {}
        }
    }
    out.push_str(rest);
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#039;", "'")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    let mut text = String::new();
    for para in out.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(para);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::comment_markdown;

    #[test]
    fn comment_html_becomes_markdown() {
        assert_eq!(
            comment_markdown(
                "<p>First &amp; <em>best</em></p><p>See <a href=\"https://x.example/a\">this</a><br/>ok</p>"
            ),
            "First & *best*\n\nSee [this](https://x.example/a)  \nok"
        );
        assert_eq!(comment_markdown("plain text"), "plain text");
        assert_eq!(
            comment_markdown("<a href=\"javascript:alert(1)\">x</a> &lt;script&gt;"),
            "x <script>"
        );
        assert_eq!(comment_markdown("<b>unclosed <i"), "**unclosed <i");
    }
}
