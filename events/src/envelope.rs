//! The envelope: the metadata every event carries through the event store and the log.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::event::Event;
use crate::ids::{PostId, StreamId, UserId};
use crate::upcast;

/// Who caused an event.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The signed-in user, or `None` for an anonymous reader.
    #[serde(default)]
    pub user_id: Option<UserId>,
    /// The name the actor goes by, when known.
    #[serde(default)]
    pub name: Option<String>,
}

/// Metadata recorded with every event, identical in the event store and on the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMeta {
    /// Unique, time-ordered (UUIDv7) and strictly increasing within a stream.
    pub event_id: Uuid,
    /// The stream (today: the post) the event belongs to.
    pub stream_id: StreamId,
    /// 1 for the first event of a stream, then +1 per event, without gaps.
    pub stream_version: i64,
    /// When the command that caused the event was accepted.
    pub occurred_at: DateTime<Utc>,
    /// Who caused it.
    pub actor: Actor,
    /// The request that caused it; shared by every event of one request.
    pub correlation_id: Uuid,
    /// The message that directly caused it, when it was caused by another event.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    /// W3C `traceparent` of the request, so a trace follows the event.
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// An event as stored and sent: metadata, stable type name, schema version and JSON payload,
/// not yet upcast or decoded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RawEvent {
    /// The metadata.
    #[serde(flatten)]
    pub meta: StoredMeta,
    /// Stable type name, e.g. `comment.added`.
    pub event_type: String,
    /// Schema version of `data`.
    pub event_version: u16,
    /// The payload.
    pub data: serde_json::Value,
}

/// A decoded event in its current shape, with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// The metadata.
    pub meta: StoredMeta,
    /// The event.
    pub event: Event,
}

/// Why a stored or received event could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not a JSON envelope.
    #[error("malformed envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    /// This code does not know the event type.
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// This code does not know the schema version (newer code wrote it).
    #[error("unknown version {version} of event type {event_type:?}")]
    UnknownVersion {
        /// The type.
        event_type: String,
        /// The version found.
        version: u16,
    },
    /// The payload does not match its declared type and version.
    #[error("invalid payload for {event_type} v{version}: {source}")]
    InvalidPayload {
        /// The type.
        event_type: String,
        /// The version.
        version: u16,
        /// What serde said.
        source: serde_json::Error,
    },
}

impl Envelope {
    /// The post this event belongs to; also the Kafka key, so a post's events share a partition.
    #[must_use]
    pub fn post_id(&self) -> PostId {
        self.meta.stream_id.into()
    }

    /// The raw, current-version form of this event, ready to store or send.
    #[must_use]
    pub fn to_raw(&self) -> RawEvent {
        let event_type = self.event.event_type();
        RawEvent {
            meta: self.meta.clone(),
            event_type: event_type.to_owned(),
            event_version: upcast::current_version(event_type)
                .expect("every event type is listed in CURRENT_VERSIONS"),
            data: self.event.to_json(),
        }
    }

    /// Encodes the envelope as the JSON bytes sent on the log.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        self.to_raw().encode()
    }

    /// Decodes JSON bytes from the log, upcasting old versions.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a known event.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // One pass without `serde(flatten)` or an intermediate `Value`: this runs for every
        // record a projector reads, so it sets the ceiling of a catch-up.
        let wire: Wire<'_> = serde_json::from_slice(bytes)?;
        let meta = StoredMeta {
            event_id: wire.event_id,
            stream_id: wire.stream_id,
            stream_version: wire.stream_version,
            occurred_at: wire.occurred_at,
            actor: wire.actor,
            correlation_id: wire.correlation_id,
            causation_id: wire.causation_id,
            traceparent: wire.traceparent,
        };
        let event_type = wire.event_type;
        let version = wire.event_version;
        let event = if upcast::current_version(&event_type) == Some(version) {
            Event::from_current_str(&event_type, wire.data.get())
        } else {
            let data =
                upcast::upcast(&event_type, version, serde_json::from_str(wire.data.get())?)?;
            Event::from_current(&event_type, data)
        }
        .map_err(|source| DecodeError::InvalidPayload {
            event_type: event_type.to_string(),
            version,
            source,
        })?;
        Ok(Self { meta, event })
    }
}

impl RawEvent {
    /// Encodes as JSON bytes.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a RawEvent is plain data and always serializes")
    }

    /// Upcasts and decodes the payload.
    ///
    /// # Errors
    /// [`DecodeError`] when the type or version is unknown or the payload does not fit.
    pub fn decode(self) -> Result<Envelope, DecodeError> {
        let data = upcast::upcast(&self.event_type, self.event_version, self.data)?;
        let event = Event::from_current(&self.event_type, data).map_err(|source| {
            DecodeError::InvalidPayload {
                event_type: self.event_type.clone(),
                version: self.event_version,
                source,
            }
        })?;
        Ok(Envelope {
            meta: self.meta,
            event,
        })
    }
}

/// The routing facts of an encoded event, read without decoding its payload: what the Kafka
/// headers carry.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct Routing {
    /// Stable type name.
    pub event_type: String,
    /// Schema version.
    pub event_version: u16,
    /// W3C trace context.
    #[serde(default)]
    pub traceparent: Option<String>,
}

impl Routing {
    /// Reads the routing facts of an encoded envelope, skipping everything else.
    ///
    /// # Errors
    /// When the bytes are not a JSON envelope.
    pub fn peek(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(serde_json::from_slice(bytes)?)
    }
}

/// The wire shape of [`RawEvent`], read field by field (no flatten) with the payload left raw.
#[derive(Deserialize)]
struct Wire<'a> {
    event_id: Uuid,
    stream_id: StreamId,
    stream_version: i64,
    occurred_at: DateTime<Utc>,
    #[serde(default)]
    actor: Actor,
    correlation_id: Uuid,
    #[serde(default)]
    causation_id: Option<Uuid>,
    #[serde(default)]
    traceparent: Option<String>,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    event_version: u16,
    #[serde(borrow)]
    data: &'a serde_json::value::RawValue,
}
