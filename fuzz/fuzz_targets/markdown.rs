//! Any text through the markdown renderer: no panic, and never an executable element out.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for html in [render::comment_html(text), render::post_html(text)] {
        let lower = html.to_lowercase();
        assert!(!lower.contains("<script"), "script element out of {text:?}");
        assert!(!lower.contains("<iframe"), "iframe out of {text:?}");
        assert!(!lower.contains("href=\"javascript:"), "script URL out of {text:?}");
    }
});
