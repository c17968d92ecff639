//! Opaque tokens: page cursors, comment-event cursors and command positions. They are base64
//! (URL-safe) of a small tagged text, so clients treat them as opaque and the gateway can tell a
//! cursor of one kind from another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::error::GatewayError;

fn encode(text: &str) -> String {
    URL_SAFE_NO_PAD.encode(text)
}

fn decode(token: &str, tag: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.strip_prefix(tag).map(str::to_owned)
}

fn invalid(what: &str) -> GatewayError {
    GatewayError::bad_input("INVALID_CURSOR", format!("not a valid {what}"))
}

/// Cursor of a post in the newest-first list.
#[must_use]
pub fn post(published_at: Option<DateTime<Utc>>, id: Uuid) -> String {
    let micros = published_at.map_or(0, |t| t.timestamp_micros());
    encode(&format!("p:{micros}:{id}"))
}

/// Reads a post cursor.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_post(token: &str) -> Result<(DateTime<Utc>, Uuid), GatewayError> {
    let text = decode(token, "p:").ok_or_else(|| invalid("post cursor"))?;
    let (micros, id) = text.split_once(':').ok_or_else(|| invalid("post cursor"))?;
    let micros: i64 = micros.parse().map_err(|_| invalid("post cursor"))?;
    let at =
        DateTime::<Utc>::from_timestamp_micros(micros).ok_or_else(|| invalid("post cursor"))?;
    Ok((at, id.parse().map_err(|_| invalid("post cursor"))?))
}

/// Cursor of a comment in display order (its thread path).
#[must_use]
pub fn comment(path: &str) -> String {
    encode(&format!("c:{path}"))
}

/// Reads a comment cursor.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_comment(token: &str) -> Result<String, GatewayError> {
    let path = decode(token, "c:").ok_or_else(|| invalid("comment cursor"))?;
    if path.is_empty() || !path.bytes().all(|b| b.is_ascii_digit() || b == b'/') {
        return Err(invalid("comment cursor"));
    }
    Ok(path)
}

/// Cursor of a comment event: the post's stream version it brought the subscriber to.
#[must_use]
pub fn event(version: i64) -> String {
    encode(&format!("e:{version}"))
}

/// Reads a comment-event cursor.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_event(token: &str) -> Result<i64, GatewayError> {
    decode(token, "e:")
        .and_then(|v| v.parse().ok())
        .filter(|v: &i64| *v >= 0)
        .ok_or_else(|| invalid("comment event cursor"))
}

/// A command's position: its post and the stream version it produced.
#[must_use]
pub fn position(post: Uuid, version: i64) -> String {
    encode(&format!("w:{post}@{version}"))
}

/// Reads a position.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_position(token: &str) -> Result<(Uuid, i64), GatewayError> {
    let text = decode(token, "w:").ok_or_else(|| invalid("position"))?;
    let (post, version) = text.split_once('@').ok_or_else(|| invalid("position"))?;
    Ok((
        post.parse().map_err(|_| invalid("position"))?,
        version.parse().map_err(|_| invalid("position"))?,
    ))
}

/// Cursor of a notification in a user's list: its comment's time (to the nanosecond, as
/// stored) and id. Also what `markNotificationsRead(upTo)` takes.
#[must_use]
pub fn notification(at: DateTime<Utc>, comment: Uuid) -> String {
    encode(&format!(
        "n:{}|{comment}",
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    ))
}

/// Reads a notification cursor.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_notification(token: &str) -> Result<(DateTime<Utc>, Uuid), GatewayError> {
    let text = decode(token, "n:").ok_or_else(|| invalid("notification cursor"))?;
    let (at, id) = text
        .split_once('|')
        .ok_or_else(|| invalid("notification cursor"))?;
    let at = DateTime::parse_from_rfc3339(at)
        .map_err(|_| invalid("notification cursor"))?
        .with_timezone(&Utc);
    Ok((at, id.parse().map_err(|_| invalid("notification cursor"))?))
}

/// Cursor of a notification event: the user's last notification change and read-mark count
/// the subscriber has seen.
#[must_use]
pub fn inbox(changes: i64, marks: i64) -> String {
    encode(&format!("i:{changes}:{marks}"))
}

/// Reads a notification-event cursor.
///
/// # Errors
/// `BAD_USER_INPUT` / `INVALID_CURSOR`.
pub fn parse_inbox(token: &str) -> Result<(i64, i64), GatewayError> {
    decode(token, "i:")
        .and_then(|t| {
            let (c, m) = t.split_once(':')?;
            Some((c.parse().ok()?, m.parse().ok()?))
        })
        .filter(|(c, m): &(i64, i64)| *c >= 0 && *m >= 0)
        .ok_or_else(|| invalid("notification event cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_do_not_mix() {
        let id = Uuid::now_v7();
        let at = DateTime::<Utc>::from_timestamp_micros(1_700_000_000_123_456).expect("valid");
        assert_eq!(
            parse_post(&post(Some(at), id)).expect("post cursor"),
            (at, id)
        );
        assert_eq!(
            parse_comment(&comment("000000000003/000000000007")).expect("c"),
            "000000000003/000000000007"
        );
        assert_eq!(parse_event(&event(42)).expect("event"), 42);
        assert_eq!(parse_position(&position(id, 9)).expect("position"), (id, 9));
        assert!(parse_event(&comment("000000000001")).is_err());
        assert!(parse_comment(&event(1)).is_err());
        assert!(parse_event("!!!").is_err());
        assert!(parse_comment(&encode("c:1' OR 1=1")).is_err());
        let nanos = DateTime::<Utc>::from_timestamp(1_700_000_000, 123_456_789).expect("valid");
        assert_eq!(
            parse_notification(&notification(nanos, id)).expect("n"),
            (nanos, id)
        );
        assert_eq!(parse_inbox(&inbox(7, 2)).expect("inbox"), (7, 2));
        assert!(parse_inbox(&event(7)).is_err());
        assert!(parse_notification(&post(Some(at), id)).is_err());
    }
}
