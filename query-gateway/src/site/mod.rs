//! What a reader's browser, a feed reader or a crawler fetches besides the API: Atom feeds
//! ([`feed`]), `/sitemap.xml` and `/robots.txt` ([`sitemap`]), a post's page with its link
//! preview ([`pages`]), and the web UI's static build ([`web`]).

pub mod feed;
pub(crate) mod pages;
pub(crate) mod sitemap;
pub mod web;
