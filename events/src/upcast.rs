//! Upcasters: every stored shape of every event type becomes the current shape here, at the
//! deserialization boundary, so domain code and projections only ever see the latest version.
//!
//! To make a breaking change to an event type: bump its entry in [`CURRENT_VERSIONS`], add a
//! step `(type, old_version) => transform` to [`upcast_step`], and add a fixture of the old
//! version under `events/tests/fixtures/`. Stored events are never rewritten.

use serde_json::Value;

use crate::envelope::DecodeError;

/// The current schema version of every event type. Pinned by a test.
pub const CURRENT_VERSIONS: &[(&str, u16)] = &[
    ("post.drafted", 1),
    ("post.edited", 1),
    ("post.published", 1),
    ("post.unpublished", 1),
    ("post.deleted", 1),
    ("post.scheduled", 1),
    ("post.unscheduled", 1),
    ("comment.added", 1),
    ("comment.edited", 1),
    ("comment.deleted", 1),
    ("comment.hidden", 1),
    ("comment.restored", 1),
    ("reaction.added", 1),
    ("reaction.removed", 1),
    ("user.registered", 1),
    ("user.display_name_changed", 1),
    ("user.password_changed", 1),
    ("user.role_granted", 1),
    ("user.role_revoked", 1),
    ("user.disabled", 1),
    ("media.uploaded", 1),
    ("notifications.read", 1),
];

/// The current schema version of `event_type`, or `None` for a type this code does not know.
#[must_use]
pub fn current_version(event_type: &str) -> Option<u16> {
    CURRENT_VERSIONS
        .iter()
        .find(|(t, _)| *t == event_type)
        .map(|(_, v)| *v)
}

/// Brings `data` from `version` up to the current version of `event_type`.
pub(crate) fn upcast(event_type: &str, version: u16, data: Value) -> Result<Value, DecodeError> {
    let current = current_version(event_type)
        .ok_or_else(|| DecodeError::UnknownType(event_type.to_owned()))?;
    if version == 0 || version > current {
        // A version from the future was written by newer code; refusing is safer than guessing.
        return Err(DecodeError::UnknownVersion {
            event_type: event_type.to_owned(),
            version,
        });
    }
    let mut data = data;
    for from in version..current {
        data = upcast_step(event_type, from, data)?;
    }
    Ok(data)
}

/// One step from `from` to `from + 1`. Every type is still at version 1, so there is no step yet;
/// the first breaking change adds its arm here.
fn upcast_step(event_type: &str, from: u16, _data: Value) -> Result<Value, DecodeError> {
    Err(DecodeError::UnknownVersion {
        event_type: event_type.to_owned(),
        version: from,
    })
}
