//! Inkwire's read model, owned by the read side: the read tables' typed rows ([`rows`]), what an
//! event does to them ([`fold`]), every query that reads them ([`ReadModel`]), and where each
//! projector group stands in the log ([`offsets`]).
//!
//! The projector writes these tables (and nothing else writes them); the gateway, the
//! projector's read API and `inkwire lag` read them through this crate. No server code lives
//! here.

pub mod bell;
pub mod fold;
mod moderation;
mod notifications;
pub mod offsets;
mod queries;
mod reactions;
mod revisions;
pub mod rows;

pub use moderation::ModerationFilter;
pub use notifications::{NotificationRow, ReadMark};
pub use queries::{PostCursor, ReadModel};
pub use reactions::ReactionTally;
pub use rows::{
    CommentChange, CommentRow, CommentStatus, ModerationAction, ModerationRow, PostRow, PostStatus,
    RevisionRow, UnknownState, UserRow,
};
