//! Any text through the markdown renderer: no panic, and never active content out (see
//! `render::find_active_content`: script-capable elements, event handlers, script URLs).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for html in [render::comment_html(text), render::post_html(text)] {
        if let Some(what) = render::find_active_content(&html) {
            panic!("{what} rendered from {text:?}: {html}");
        }
    }
});
