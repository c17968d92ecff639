//! The write model's aggregates. Today there is one: a post, whose stream also holds its
//! comments (see `events` for why).

pub mod post;
