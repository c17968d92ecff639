//! `searchPosts`: published posts that contain every word of a search.

use async_graphql::{Context, Object, Result};

use super::gql;
use super::posts::{PostConnection, published_page};
use crate::error::GatewayError;

/// Longest search, in characters.
const MAX_SEARCH_CHARS: usize = 200;
/// Most words in a search.
const MAX_SEARCH_WORDS: usize = 10;

/// The lower-case words of a search, or why it cannot be one.
fn search_words(query: &str) -> Result<Vec<String>, GatewayError> {
    if query.chars().count() > MAX_SEARCH_CHARS {
        return Err(GatewayError::bad_input(
            "SEARCH_TOO_LONG",
            format!("a search is at most {MAX_SEARCH_CHARS} characters"),
        ));
    }
    let mut words: Vec<String> = Vec::new();
    for word in query.split_whitespace().map(str::to_lowercase) {
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if words.is_empty() {
        return Err(GatewayError::bad_input(
            "EMPTY_SEARCH",
            "give at least one word to search for",
        ));
    }
    if words.len() > MAX_SEARCH_WORDS {
        return Err(GatewayError::bad_input(
            "SEARCH_TOO_LONG",
            format!("a search is at most {MAX_SEARCH_WORDS} words"),
        ));
    }
    Ok(words)
}

/// `searchPosts`.
#[derive(Default)]
pub struct SearchQueries;

#[Object]
impl SearchQueries {
    /// Published posts whose title, text or tags contain every word of `query`
    /// (case-insensitive; `%` and `_` are plain characters), newest first. 1 to 200
    /// characters, at most 10 words.
    async fn search_posts(
        &self,
        ctx: &Context<'_>,
        query: String,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<PostConnection> {
        let words = search_words(&query).map_err(gql)?;
        published_page(ctx, first, after, None, &words).await
    }
}

#[cfg(test)]
mod tests {
    use super::search_words;

    #[test]
    fn words_are_lowered_once_each_and_bounded() {
        assert_eq!(
            search_words("Rust  rust CQRS").expect("words"),
            vec!["rust".to_owned(), "cqrs".to_owned()]
        );
        assert!(search_words("   ").is_err());
        let eleven: Vec<String> = (0..11).map(|i| format!("w{i}")).collect();
        assert!(search_words(&eleven.join(" ")).is_err());
        assert!(search_words(&"x".repeat(201)).is_err());
    }
}
