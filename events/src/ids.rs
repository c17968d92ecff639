//! Newtype identifiers, so a post id can never be passed where a comment id is expected.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered (UUIDv7) identifier.
            #[must_use]
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(id: Uuid) -> Self {
                Self(id)
            }
        }
    };
}

id_type!(
    /// A post, and the event stream that holds the post and its comments.
    PostId
);
id_type!(
    /// A comment; unique across all posts.
    CommentId
);
id_type!(
    /// A signed-in user.
    UserId
);
id_type!(
    /// An event stream in the event store. Today every stream is a post's stream.
    StreamId
);

impl From<PostId> for StreamId {
    fn from(id: PostId) -> Self {
        Self(id.0)
    }
}

impl From<StreamId> for PostId {
    fn from(id: StreamId) -> Self {
        Self(id.0)
    }
}
