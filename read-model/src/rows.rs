//! The read tables' rows, typed: what a query returns and what [`crate::fold`] produces. The
//! states a row can be in are enums stored as their lowercase names, so a new state is a
//! compile error in every `match` that must handle it rather than a string nobody compares.

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use uuid::Uuid;

/// Defines an enum stored in a `TEXT` column as one of the names given, on both backends.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($(#[$vmeta])* $variant,)+ }

        impl $name {
            /// Its stored name.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text,)+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownState;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok(Self::$variant),)+
                    other => Err(UnknownState { what: stringify!($name), found: other.to_owned() }),
                }
            }
        }

        impl<DB: sqlx::Database> sqlx::Type<DB> for $name
        where
            String: sqlx::Type<DB>,
        {
            fn type_info() -> DB::TypeInfo {
                <String as sqlx::Type<DB>>::type_info()
            }
            fn compatible(ty: &DB::TypeInfo) -> bool {
                <String as sqlx::Type<DB>>::compatible(ty)
            }
        }

        impl<'r, DB: sqlx::Database> sqlx::Decode<'r, DB> for $name
        where
            &'r str: sqlx::Decode<'r, DB>,
        {
            fn decode(
                value: <DB as sqlx::Database>::ValueRef<'r>,
            ) -> Result<Self, sqlx::error::BoxDynError> {
                Ok(<&str as sqlx::Decode<DB>>::decode(value)?.parse()?)
            }
        }

        impl<'q, DB: sqlx::Database> sqlx::Encode<'q, DB> for $name
        where
            &'static str: sqlx::Encode<'q, DB>,
        {
            fn encode_by_ref(
                &self,
                buf: &mut <DB as sqlx::Database>::ArgumentBuffer,
            ) -> Result<sqlx::encode::IsNull, sqlx::error::BoxDynError> {
                <&'static str as sqlx::Encode<DB>>::encode_by_ref(&self.as_str(), buf)
            }
        }
    };
}

/// A stored state name this build does not know (a newer writer's, or a damaged row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownState {
    /// The enum it was read as.
    pub what: &'static str,
    /// What was stored.
    pub found: String,
}

impl std::fmt::Display for UnknownState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.found)
    }
}

impl std::error::Error for UnknownState {}

text_enum! {
    /// Where a post is in its life.
    pub enum PostStatus {
        /// Visible to its author (and admins) only.
        Draft = "draft",
        /// Visible to everyone.
        Published = "published",
        /// Gone for readers; the row stays so that its slug and comments keep their history.
        Deleted = "deleted",
    }
}

text_enum! {
    /// Whether a comment is shown.
    pub enum CommentStatus {
        /// Shown.
        Visible = "visible",
        /// Hidden by a moderator (with a reason); can be restored.
        Hidden = "hidden",
        /// Deleted by its author or a moderator: its place in the thread stays, its text goes.
        Deleted = "deleted",
    }
}

text_enum! {
    /// A comment's last change, which a live subscriber is told.
    pub enum CommentChange {
        /// It was added.
        Added = "added",
        /// Its text changed.
        Edited = "edited",
        /// It was deleted.
        Deleted = "deleted",
        /// A moderator hid it.
        Hidden = "hidden",
        /// A moderator showed it again.
        Restored = "restored",
        /// A reader reacted to it or took a reaction back (its counts changed).
        Reacted = "reacted",
    }
}

text_enum! {
    /// What a moderator or an admin did.
    pub enum ModerationAction {
        /// Hid a comment (with a reason).
        HideComment = "hide_comment",
        /// Showed a hidden comment again.
        RestoreComment = "restore_comment",
        /// Granted a role.
        GrantRole = "grant_role",
        /// Revoked a role.
        RevokeRole = "revoke_role",
        /// Disabled an account.
        DisableUser = "disable_user",
    }
}

/// A row of `rm_posts`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PostRow {
    /// Post id.
    pub id: Uuid,
    /// Author.
    pub author_id: Uuid,
    /// Title.
    pub title: String,
    /// Unique slug.
    pub slug: String,
    /// Markdown source.
    pub body_markdown: String,
    /// Rendered, sanitised HTML (NULL for rows projected before it was stored).
    pub body_html: Option<String>,
    /// Tags.
    pub tags: Json<Vec<String>>,
    /// Draft, published or deleted.
    pub status: PostStatus,
    /// Whether signed-out readers may comment.
    pub allow_anonymous_comments: bool,
    /// Visible comments.
    pub comment_count: i64,
    /// Last applied stream version.
    pub version: i64,
    /// First drafted.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First published.
    pub published_at: Option<DateTime<Utc>>,
    /// Title or text last changed (NULL: never since drafted).
    pub edited_at: Option<DateTime<Utc>>,
    /// When the draft is to be published (NULL: not scheduled).
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl PostRow {
    /// When readers last saw it change: its first publication, or a later edit of its title
    /// or text. `None` for a post never published.
    #[must_use]
    pub fn revised_at(&self) -> Option<DateTime<Utc>> {
        let published = self.published_at?;
        Some(self.edited_at.map_or(published, |e| e.max(published)))
    }
}

/// A row of `rm_comments`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CommentRow {
    /// Comment id.
    pub id: Uuid,
    /// Its post.
    pub post_id: Uuid,
    /// The comment it replies to.
    pub parent_id: Option<Uuid>,
    /// 0 for top level.
    pub depth: i64,
    /// Sortable thread path.
    pub path: String,
    /// Signed-in author, if any.
    pub author_id: Option<Uuid>,
    /// Shown name.
    pub author_name: String,
    /// Markdown source ('' once deleted).
    pub body: String,
    /// Rendered HTML.
    pub body_html: Option<String>,
    /// Visible, hidden or deleted.
    pub status: CommentStatus,
    /// Moderator's reason when hidden.
    pub hidden_reason: Option<String>,
    /// Non-deleted direct replies.
    pub reply_count: i64,
    /// Stream version of `comment.added`.
    pub post_version: i64,
    /// Stream version of the last change.
    pub changed_version: i64,
    /// What last happened to it.
    pub last_change: CommentChange,
    /// Accepted at.
    pub created_at: DateTime<Utc>,
    /// Last changed at.
    pub updated_at: DateTime<Utc>,
}

/// A row of `rm_users`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// User id.
    pub id: Uuid,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// Roles.
    pub roles: Json<Vec<String>>,
    /// Last applied stream version.
    pub version: i64,
}

/// A row of `rm_post_revisions`: a post's content as one event saved it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RevisionRow {
    /// The post.
    pub post_id: Uuid,
    /// 1 for the draft as first saved, then +1 for each edit of its content.
    pub revision: i64,
    /// The stream version of the event that saved it.
    pub stream_version: i64,
    /// Title.
    pub title: String,
    /// Slug.
    pub slug: String,
    /// Markdown source.
    pub body_markdown: String,
    /// Tags.
    pub tags: Json<Vec<String>>,
    /// Who saved it, when known.
    pub editor_id: Option<Uuid>,
    /// When.
    pub edited_at: DateTime<Utc>,
}

/// An entry of the moderation log (`rm_comment_moderation` or `rm_account_moderation`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ModerationRow {
    /// The event that recorded it.
    pub event_id: Uuid,
    /// When.
    pub at: DateTime<Utc>,
    /// Who (`None`: not recorded, e.g. an operator's command line).
    pub moderator_id: Option<Uuid>,
    /// What.
    pub action: ModerationAction,
    /// The post of the comment concerned.
    pub post_id: Option<Uuid>,
    /// The comment concerned.
    pub comment_id: Option<Uuid>,
    /// The account concerned.
    pub user_id: Option<Uuid>,
    /// Why (hidden comments).
    pub reason: Option<String>,
    /// The role granted or revoked.
    pub role: Option<String>,
}
