//! The shapes of a post's slug and tags: the write side refuses anything else, and the read side
//! uses the same rules to read a slug or a tag out of a URL.

/// Longest slug, in characters.
pub const MAX_SLUG_CHARS: usize = 100;
/// Longest tag, in characters.
pub const MAX_TAG_CHARS: usize = 32;

/// Whether `slug` is one: 1 to [`MAX_SLUG_CHARS`] lower-case ASCII letters, digits and inner
/// hyphens.
#[must_use]
pub fn is_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.chars().count() <= MAX_SLUG_CHARS
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

/// `tag` as it is stored (trimmed, lower-case), or `None` when it cannot be one: 1 to
/// [`MAX_TAG_CHARS`] letters, digits or hyphens.
#[must_use]
pub fn normal_tag(tag: &str) -> Option<String> {
    let tag = tag.trim().to_lowercase();
    let ok = !tag.is_empty()
        && tag.chars().count() <= MAX_TAG_CHARS
        && tag.chars().all(|c| c.is_alphanumeric() || c == '-');
    ok.then_some(tag)
}

#[cfg(test)]
mod tests {
    use super::{is_slug, normal_tag};

    #[test]
    fn slugs_are_lower_case_words_joined_by_hyphens() {
        assert!(is_slug("hello-world-2"));
        for bad in [
            "",
            "Hello",
            "a/b",
            "<x>",
            "a b",
            "-a",
            "a-",
            &"a".repeat(101),
        ] {
            assert!(!is_slug(bad), "{bad:?}");
        }
    }

    #[test]
    fn tags_are_read_as_stored_and_garbage_is_refused() {
        assert_eq!(normal_tag(" Rust ").as_deref(), Some("rust"));
        assert_eq!(normal_tag("été-2026").as_deref(), Some("été-2026"));
        for bad in ["", "a/b", "<x>", &"x".repeat(33)] {
            assert!(normal_tag(bad).is_none(), "{bad:?} accepted");
        }
    }
}
