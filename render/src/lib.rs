//! Markdown to safe HTML, rendered once by the projector and stored beside the source.
//!
//! Posts may use inline HTML (authors are trusted to format, not to script): it goes through
//! ammonia's allow-list, which drops scripts, event handlers and `javascript:` URLs. Comments
//! are anyone's: their raw HTML is shown as text, and links are sanitised the same way.

use pulldown_cmark::{Event, Options, Parser, html};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

/// The allow-list, built once: building it (a dozen hash sets) cost more than cleaning a typical
/// comment.
static SANITIZER: std::sync::LazyLock<ammonia::Builder<'static>> = std::sync::LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder.link_rel(Some("noopener noreferrer nofollow ugc"));
    builder
});

fn sanitize(unsafe_html: &str) -> String {
    SANITIZER.clean(unsafe_html).to_string()
}

/// The HTML of a post body. Uploaded images (`/media/{id}`) get a `srcset` of their sized
/// variants ([`IMAGE_WIDTHS`]) and load lazily.
#[must_use]
pub fn post_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options()));
    with_srcset(sanitize(&out))
}

/// The widths, in pixels, an uploaded image is also served at (`/media/{id}?w=N`); never wider
/// than the image itself.
pub const IMAGE_WIDTHS: [u32; 5] = [320, 640, 960, 1280, 1920];

/// Where uploaded images are served: `/media/{id}`.
pub const MEDIA_PATH: &str = "/media/";

/// `html` (already sanitised) with every `<img src="/media/{uuid}"` given a `srcset` of its
/// sized variants, `sizes` for the post column, and lazy loading. Only the attributes written
/// here are added, around an id checked to be a UUID: nothing of the author's goes into them.
fn with_srcset(html: String) -> String {
    const OPEN: &str = "<img src=\"/media/";
    if !html.contains(OPEN) {
        return html;
    }
    let mut out = String::with_capacity(html.len() + 256);
    let mut rest = html.as_str();
    while let Some(at) = rest.find(OPEN) {
        let start = at + OPEN.len();
        out.push_str(&rest[..start]);
        rest = &rest[start..];
        let id = rest.get(..36).filter(|id| {
            id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') && rest[36..].starts_with('"')
        });
        if let Some(id) = id {
            use std::fmt::Write as _;
            out.push_str(id);
            out.push('"');
            out.push_str(" srcset=\"");
            for (i, w) in IMAGE_WIDTHS.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(out, "{sep}{MEDIA_PATH}{id}?w={w} {w}w");
            }
            out.push_str(
                "\" sizes=\"(max-width: 760px) 100vw, 720px\" loading=\"lazy\" decoding=\"async\"",
            );
            rest = &rest[37..];
        }
    }
    out.push_str(rest);
    out
}

/// A plain-text summary of a markdown body, at most `max` characters (cut at a word, with `…`):
/// the words a reader sees, without markup, images, raw HTML or code blocks. For a page's
/// description and link previews.
#[must_use]
pub fn summary(markdown: &str, max: usize) -> String {
    use pulldown_cmark::{Tag, TagEnd};
    let mut text = String::new();
    let mut skip = 0usize;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::CodeBlock(_) | Tag::Image { .. }) => skip += 1,
            Event::End(TagEnd::CodeBlock | TagEnd::Image) => skip = skip.saturating_sub(1),
            // Raw HTML is not shown as written, and a script's or style's text never is.
            Event::InlineHtml(h) | Event::Html(h) => {
                let h = h.trim_start().to_ascii_lowercase();
                if h.starts_with("<script") || h.starts_with("<style") {
                    skip += 1;
                }
                if h.contains("</script") || h.contains("</style") {
                    skip = skip.saturating_sub(1);
                }
            }
            Event::Text(t) | Event::Code(t) if skip == 0 => text.push_str(&t),
            // Words of two blocks, or of two lines, are two words; the end of an emphasis or a
            // link is not a space ("**live**." stays "live.").
            Event::SoftBreak
            | Event::HardBreak
            | Event::End(
                TagEnd::Paragraph
                | TagEnd::Heading(_)
                | TagEnd::Item
                | TagEnd::BlockQuote(_)
                | TagEnd::List(_)
                | TagEnd::TableCell
                | TagEnd::TableRow
                | TagEnd::TableHead,
            ) => text.push(' '),
            _ => {}
        }
    }
    cut_at_word(&text, max)
}

/// The first paragraph of a markdown body as plain text, at most `max` characters (cut at a
/// word, with `…`): a post's excerpt on the home page. Never a heading, a list, a quote or code;
/// a body with no paragraph of its own gets its [`summary`].
#[must_use]
pub fn excerpt(markdown: &str, max: usize) -> String {
    use pulldown_cmark::{Tag, TagEnd};
    let mut text = String::new();
    // Containers the paragraph would sit in (lists, quotes, footnotes): only a top-level one
    // is the post's opening words.
    let mut nested = 0usize;
    let mut inside = false;
    let mut skip = 0usize;
    for event in Parser::new_ext(markdown, options()) {
        match event {
            Event::Start(Tag::List(_) | Tag::BlockQuote(_) | Tag::FootnoteDefinition(_)) => {
                nested += 1;
            }
            Event::End(TagEnd::List(_) | TagEnd::BlockQuote(_) | TagEnd::FootnoteDefinition) => {
                nested = nested.saturating_sub(1);
            }
            Event::Start(Tag::Paragraph) if nested == 0 => inside = true,
            Event::End(TagEnd::Paragraph) if inside => {
                let cut = cut_at_word(&text, max);
                if !cut.is_empty() {
                    return cut;
                }
                // A paragraph of only an image: the next one.
                inside = false;
                text.clear();
            }
            Event::Start(Tag::Image { .. }) => skip += 1,
            Event::End(TagEnd::Image) => skip = skip.saturating_sub(1),
            Event::Text(t) | Event::Code(t) if inside && skip == 0 => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if inside => text.push(' '),
            _ => {}
        }
    }
    summary(markdown, max)
}

/// `text`'s words, at most `max` characters, cut at a word with `…` when it is longer.
fn cut_at_word(text: &str, max: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = String::new();
    for word in words {
        let extra = usize::from(!out.is_empty()) + word.chars().count();
        if out.chars().count() + extra > max {
            if out.is_empty() {
                out.extend(word.chars().take(max.saturating_sub(1)));
            }
            out.push('…');
            return out;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// The HTML of a comment body: markdown without raw HTML (shown as text), sanitised.
#[must_use]
pub fn comment_html(markdown: &str) -> String {
    if let Some(html) = plain_comment_html(markdown) {
        return html;
    }
    full_comment_html(markdown)
}

/// The HTML of a comment that is one line of plain words (most comments are), without the
/// parser and the sanitiser: no character in it means anything to markdown or HTML, so both
/// would give back one paragraph of the same text. `None` for anything else. A test checks it
/// against [`full_comment_html`] on generated lines.
fn plain_comment_html(text: &str) -> Option<String> {
    let plain =
        |c: char| c.is_alphanumeric() || matches!(c, ' ' | '.' | ',' | ';' | ':' | '?' | '\'');
    let first = text.chars().next()?;
    // A line starting with a digit may be an ordered list ("1. "); leading or trailing spaces
    // are trimmed by the parser, and a run of them can be a code block.
    if first.is_numeric() || first == ' ' || text.ends_with(' ') || !text.chars().all(plain) {
        return None;
    }
    let mut out = String::with_capacity(text.len() + 8);
    out.push_str("<p>");
    out.push_str(text);
    out.push_str("</p>\n");
    Some(out)
}

/// [`comment_html`] through the parser and the sanitiser, for any input.
fn full_comment_html(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, options()).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, parser);
    sanitize(&out)
}

/// The attributes of the start tag whose text (between `<` and `>`) is `tag`, as (name, value).
fn attributes(tag: &str) -> Vec<(String, String)> {
    let chars: Vec<char> = tag.chars().collect();
    let mut i = chars
        .iter()
        .take_while(|c| !c.is_whitespace() && **c != '/')
        .count();
    let mut out = Vec::new();
    while i < chars.len() {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == '/') {
            i += 1;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '=' && chars[i] != '/' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < chars.len() && chars[i] == '=' {
            i += 1;
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            if i < chars.len() && (chars[i] == '"' || chars[i] == '\'') {
                let quote = chars[i];
                i += 1;
                while i < chars.len() && chars[i] != quote {
                    value.push(chars[i]);
                    i += 1;
                }
                i += 1;
            } else {
                while i < chars.len() && !chars[i].is_whitespace() {
                    value.push(chars[i]);
                    i += 1;
                }
            }
        }
        if !name.is_empty() {
            out.push((name, value));
        }
    }
    out
}

/// What in `html` a browser would run or load as active content, if anything: a script-capable
/// element, an event-handler attribute, or an attribute whose value is a script URL. Text
/// between tags is inert (any `<` in it is escaped), so only tags are inspected. This is the
/// invariant the hostile-content test and the fuzz target hold the renderer to.
#[must_use]
pub fn find_active_content(html: &str) -> Option<String> {
    const ELEMENTS: &[&str] = &[
        "script", "iframe", "object", "embed", "style", "svg", "math", "base", "form", "frame",
    ];
    const SCHEMES: &[&str] = &["javascript:", "vbscript:", "data:text/html"];
    let lower = html.to_lowercase();
    for (i, _) in lower.match_indices('<') {
        let end = lower[i..].find('>').map_or(lower.len(), |e| i + e);
        let tag = &lower[i + 1..end];
        let name: String = tag
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if ELEMENTS.contains(&name.as_str()) {
            return Some(format!("<{name}> element"));
        }
        for (attr, value) in attributes(tag) {
            if attr.starts_with("on") {
                return Some(format!("{attr} handler on <{name}>"));
            }
            // Browsers skip leading spaces and control characters in URLs.
            let value = value.trim_start_matches(|c: char| c <= ' ');
            if SCHEMES.iter().any(|scheme| value.starts_with(scheme)) {
                return Some(format!("script URL in {attr} of <{name}>"));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{comment_html, excerpt, full_comment_html, plain_comment_html, post_html, summary};

    #[test]
    fn uploaded_images_get_a_srcset_and_other_images_do_not() {
        let id = "0193a1b2-1111-7000-8000-000000000001";
        let html = post_html(&format!(
            "![a cat](/media/{id}) ![far](https://x.example/a.png) ![odd](/media/{id}x)"
        ));
        assert!(
            html.contains(&format!(
                "<img src=\"/media/{id}\" srcset=\"/media/{id}?w=320 320w, /media/{id}?w=640 640w, \
                 /media/{id}?w=960 960w, /media/{id}?w=1280 1280w, /media/{id}?w=1920 1920w\" \
                 sizes=\"(max-width: 760px) 100vw, 720px\" loading=\"lazy\" decoding=\"async\" alt=\"a cat\""
            )),
            "{html}"
        );
        assert_eq!(html.matches("srcset").count(), 1, "{html}");
        assert!(
            html.contains("<img src=\"https://x.example/a.png\" alt=\"far\">"),
            "{html}"
        );
        // An author's own srcset on raw HTML is not kept (ammonia's allow-list).
        let raw = post_html("<img src=\"/a.png\" srcset=\"https://evil.example/x 1w\">");
        assert!(!raw.contains("evil"), "{raw}");
    }

    #[test]
    fn an_excerpt_is_the_first_paragraph_never_a_heading_or_a_list() {
        let body = "# Why comments appear live\n\n- one\n- two\n\n> quoted\n\n![a cat](x.png)\n\nEvery comment is an *event*. It travels\nthe log.\n\nSecond paragraph.";
        assert_eq!(
            excerpt(body, 200),
            "Every comment is an event. It travels the log."
        );
        assert_eq!(excerpt(body, 20), "Every comment is an…");
        // No paragraph of its own: the summary of what there is.
        assert_eq!(excerpt("# Only\n\n- a list", 50), "Only a list");
        assert_eq!(excerpt("", 50), "");
    }

    #[test]
    fn a_summary_is_the_words_a_reader_sees_cut_at_a_word() {
        let md = "# Hello *world*\n\nSee [the docs](https://x.example) and `code`.\n\n\
                  ```\nfn hidden() {}\n```\n\n![alt text](/i.png) <script>alert(1)</script>\n\n\
                  - one\n- two";
        assert_eq!(
            summary(md, 200),
            "Hello world See the docs and code. one two"
        );
        assert_eq!(summary(md, 20), "Hello world See the…");
        assert!(summary(md, 20).chars().count() <= 20);
        assert_eq!(summary(&"x".repeat(50), 10), format!("{}…", "x".repeat(9)));
        assert_eq!(summary("", 10), "");
        assert_eq!(
            summary("It is **event-sourced**: it updates *live*.", 99),
            "It is event-sourced: it updates live."
        );
    }

    #[test]
    fn comment_html_shows_tags_as_text_and_drops_script_urls() {
        let html = comment_html("hi <img src=x onerror=alert(1)> [x](javascript:alert(1)) **b**");
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt;"),
            "{html}"
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("javascript:"), "{html}");
        assert!(html.contains("<strong>b</strong>"), "{html}");
    }

    #[test]
    fn post_html_keeps_formatting_but_not_handlers() {
        let html = post_html(
            "# Title\n\n<img src=\"a.png\" onerror=\"alert(1)\">\n\n<script>x()</script>",
        );
        assert!(html.contains("<h1>Title</h1>"), "{html}");
        assert!(html.contains("<img src=\"a.png\">"), "{html}");
        assert!(
            !html.contains("onerror") && !html.contains("<script"),
            "{html}"
        );
    }

    #[test]
    fn the_active_content_finder_finds_it_and_only_it() {
        use super::find_active_content as find;
        assert!(find("<p>&lt;img src=x onerror=alert(1)&gt;</p>").is_none());
        assert!(find("<img src=x onerror=alert(1)>").is_some());
        assert!(find("<img src=\"a.png\" alt=\"x onerror=y\">").is_none());
        assert!(find("<a href=\"JavaScript:x\">").is_some());
        assert!(find("<a href=\" javascript:x\">").is_some());
        assert!(find("<a href=\"jara/scjavascript:b\">a</a>").is_none());
        assert!(find("<p><a rel=\"nofollow\">javascript:alert(1)</a></p>").is_none());
        assert!(find("<svg><circle/></svg>").is_some());
    }

    #[test]
    fn the_plain_comment_shortcut_renders_what_the_parser_and_sanitiser_render() {
        // Lines of words, digits, spaces and the punctuation the shortcut takes, in every
        // position, plus characters it must refuse; a small deterministic generator.
        let plain: Vec<char> = "ab Zé9 .,;:?'日".chars().collect();
        let all: Vec<char> = "ab Zé9 .,;:?'\"*_#<>&[]()!-+~|`\\1日\n".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            usize::try_from(seed % 1_000_003).unwrap_or(0)
        };
        let mut taken = 0;
        for _ in 0..20_000 {
            let alphabet = if next() % 4 == 0 { &all } else { &plain };
            let len = next() % 24;
            let text: String = (0..len)
                .map(|_| alphabet[next() % alphabet.len()])
                .collect();
            if let Some(fast) = plain_comment_html(&text) {
                taken += 1;
                assert_eq!(fast, full_comment_html(&text), "for {text:?}");
            }
        }
        assert!(taken > 1_000, "the shortcut was taken only {taken} times");
        assert_eq!(
            comment_html("Nice post, thanks!"),
            full_comment_html("Nice post, thanks!")
        );
        assert_eq!(plain_comment_html("1. a list"), None);
        assert_eq!(plain_comment_html("see <b>"), None);
    }

    #[test]
    fn links_get_rel_attributes() {
        let html = comment_html("[site](https://example.com)");
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow ugc\""),
            "{html}"
        );
    }
}
