//! Markdown to safe HTML, rendered once by the projector and stored beside the source.
//!
//! Posts may use inline HTML (authors are trusted to format, not to script): it goes through
//! ammonia's allow-list, which drops scripts, event handlers and `javascript:` URLs. Comments
//! are anyone's: their raw HTML is shown as text, and links are sanitised the same way.

use pulldown_cmark::{Event, Options, Parser, html};

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS
}

fn sanitize(unsafe_html: &str) -> String {
    ammonia::Builder::default()
        .link_rel(Some("noopener noreferrer nofollow ugc"))
        .clean(unsafe_html)
        .to_string()
}

/// The HTML of a post body.
#[must_use]
pub fn post_html(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, Parser::new_ext(markdown, options()));
    sanitize(&out)
}

/// The HTML of a comment body: markdown without raw HTML (shown as text), sanitised.
#[must_use]
pub fn comment_html(markdown: &str) -> String {
    let parser = Parser::new_ext(markdown, options()).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        other => other,
    });
    let mut out = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut out, parser);
    sanitize(&out)
}

#[cfg(test)]
mod tests {
    use super::{comment_html, post_html};

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
    fn links_get_rel_attributes() {
        let html = comment_html("[site](https://example.com)");
        assert!(
            html.contains("rel=\"noopener noreferrer nofollow ugc\""),
            "{html}"
        );
    }
}
