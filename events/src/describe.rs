//! One readable line per event, for operators (`inkwire events tail`). User text is quoted with
//! Rust's escaping, so a comment cannot smuggle terminal control sequences into the output.

use crate::event::Event;
use crate::post::PostEvent;
use crate::user::UserEvent as U;

/// Longest quoted text shown.
const QUOTE_CHARS: usize = 60;

fn quote(text: &str) -> String {
    let mut short: String = text.chars().take(QUOTE_CHARS).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    format!("{short:?}")
}

/// What `event` did, in a few words, e.g. `comment 0190… added (reply to 0190…) "First!"`.
#[must_use]
pub fn summary(event: &Event) -> String {
    use PostEvent as E;
    match event {
        Event::Post(E::PostDrafted(e)) => format!(
            "post drafted {} slug={} tags=[{}]",
            quote(&e.title),
            e.slug,
            e.tags.join(",")
        ),
        Event::Post(E::PostEdited(e)) => {
            let mut changed = Vec::new();
            if let Some(t) = &e.title {
                changed.push(format!("title={}", quote(t)));
            }
            if let Some(s) = &e.slug {
                changed.push(format!("slug={s}"));
            }
            if e.body_markdown.is_some() {
                changed.push("body".to_owned());
            }
            if let Some(t) = &e.tags {
                changed.push(format!("tags=[{}]", t.join(",")));
            }
            if let Some(a) = e.allow_anonymous_comments {
                changed.push(format!("anonymous_comments={a}"));
            }
            format!("post edited {}", changed.join(" "))
        }
        Event::Post(E::PostPublished(_)) => "post published".to_owned(),
        Event::Post(E::PostUnpublished(_)) => "post unpublished".to_owned(),
        Event::Post(E::PostDeleted(_)) => "post deleted".to_owned(),
        Event::Post(E::PostScheduled(e)) => {
            format!("post scheduled for {}", e.publish_at.to_rfc3339())
        }
        Event::Post(E::PostUnscheduled(_)) => "post unscheduled".to_owned(),
        Event::Post(E::CommentAdded(e)) => {
            let under = e
                .parent_id
                .map(|p| format!(" reply to {p}"))
                .unwrap_or_default();
            format!(
                "comment {} added{under} by {} {}",
                e.comment_id,
                quote(&e.author_name),
                quote(&e.body)
            )
        }
        Event::Post(E::CommentEdited(e)) => {
            format!("comment {} edited {}", e.comment_id, quote(&e.body))
        }
        Event::Post(E::CommentDeleted(e)) => format!("comment {} deleted", e.comment_id),
        Event::Post(E::CommentHidden(e)) => format!(
            "comment {} hidden, reason {}",
            e.comment_id,
            quote(&e.reason)
        ),
        Event::Post(E::CommentRestored(e)) => format!("comment {} restored", e.comment_id),
        Event::Post(E::ReactionAdded(e)) => format!(
            "reaction {} added by user {} to {}",
            e.kind,
            e.user_id,
            reacted_to(e)
        ),
        Event::Post(E::ReactionRemoved(e)) => format!(
            "reaction {} removed by user {} from {}",
            e.kind,
            e.user_id,
            reacted_to(e)
        ),
        Event::User(U::Registered(e)) => format!(
            "user registered username={} name={}",
            e.username,
            quote(&e.display_name)
        ),
        Event::User(U::DisplayNameChanged(e)) => {
            format!("user display name changed to {}", quote(&e.display_name))
        }
        Event::User(U::PasswordChanged(_)) => "user password changed".to_owned(),
        Event::User(U::RoleGranted(e)) => format!("user granted role {}", e.role),
        Event::User(U::RoleRevoked(e)) => format!("user revoked role {}", e.role),
        Event::User(U::Disabled(_)) => "user disabled".to_owned(),
        Event::User(U::MediaUploaded(e)) => format!(
            "media uploaded {} {} {}x{} {} bytes",
            e.media_id, e.content_type, e.width, e.height, e.size
        ),
        Event::User(U::NotificationsRead(e)) => format!(
            "notifications read up to comment {} of {}",
            e.up_to_comment,
            e.up_to_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        ),
    }
}

fn reacted_to(e: &crate::Reaction) -> String {
    e.comment_id
        .map_or_else(|| "the post".to_owned(), |c| format!("comment {c}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CommentAdded, CommentId};

    #[test]
    fn user_text_is_quoted_escaped_and_shortened() {
        let line = summary(&Event::Post(PostEvent::CommentAdded(CommentAdded {
            comment_id: CommentId::new(),
            parent_id: None,
            author_id: None,
            author_name: "eve".to_owned(),
            body: format!("\u{1b}[2Jgotcha{}", "x".repeat(100)),
        })));
        assert!(line.contains(r#""\u{1b}[2Jgotcha"#), "{line}");
        assert!(!line.contains('\u{1b}'), "{line}");
        assert!(line.contains("x…\""), "{line}");
        assert!(line.contains(r#"by "eve""#), "{line}");
    }
}
