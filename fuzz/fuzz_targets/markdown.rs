//! Any text through the markdown renderer: no panic, and never active content out — no script,
//! iframe, object or embed element, no event-handler attribute, no script URL in any tag. Text
//! between tags is inert (a `<` in it is escaped), so only the tags are inspected.
#![no_main]

use libfuzzer_sys::fuzz_target;

fn active_content(html: &str) -> Option<String> {
    let lower = html.to_lowercase();
    for (i, _) in lower.match_indices('<') {
        let tag = &lower[i + 1..lower[i..].find('>').map_or(lower.len(), |e| i + e)];
        let name: String = tag.chars().take_while(char::is_ascii_alphanumeric).collect();
        if ["script", "iframe", "object", "embed", "style", "svg", "math"].contains(&name.as_str()) {
            return Some(format!("<{name}>"));
        }
        if tag.contains("javascript:") || tag.contains("vbscript:") || tag.contains("data:text/html") {
            return Some(format!("script URL in <{tag}>"));
        }
        let mut words = tag.split(|c: char| c.is_whitespace() || c == '/' || c == '"' || c == '\'');
        if words.any(|w| w.starts_with("on") && w.contains('=')) {
            return Some(format!("event handler in <{tag}>"));
        }
    }
    None
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for html in [render::comment_html(text), render::post_html(text)] {
        if let Some(what) = active_content(&html) {
            panic!("{what} rendered from {text:?}: {html}");
        }
    }
});
