//! Inkwire's events: the stable, versioned facts that the write side records and the read side
//! projects. This crate does no I/O; it owns the wire shape of every event (JSON), the envelope
//! that carries an event through the event store and the log, and the upcasters that turn an old
//! stored shape into the current one at the deserialization boundary.

pub mod describe;
mod envelope;
mod event;
mod ids;
mod names;
mod post;
mod upcast;
mod user;

pub use envelope::{Actor, DecodeError, Envelope, RawEvent, Routing, StoredMeta};
pub use event::Event;
pub use ids::{CommentId, PostId, StreamId, UserId};
pub use names::{MAX_SLUG_CHARS, MAX_TAG_CHARS, is_slug, normal_tag};
pub use post::{
    CommentAdded, CommentDeleted, CommentEdited, CommentHidden, CommentRestored, PostDeleted,
    PostDrafted, PostEdited, PostEvent, PostPublished, PostScheduled, PostUnpublished,
    PostUnscheduled, REACTION_KINDS, Reaction,
};
pub use upcast::CURRENT_VERSIONS;
pub use user::{
    MediaUploaded, NotificationsRead, ROLES, UserDisabled, UserDisplayNameChanged, UserEvent,
    UserPasswordChanged, UserRegistered, UserRoleChanged,
};

/// Kafka headers carried by every message, so tools can route and filter without decoding.
pub mod headers {
    /// The stable event type name, e.g. `comment.added`.
    pub const EVENT_TYPE: &str = "event_type";
    /// The schema version of the payload, as a decimal string.
    pub const EVENT_VERSION: &str = "event_version";
    /// W3C trace context of the request that caused the event.
    pub const TRACEPARENT: &str = "traceparent";
}
