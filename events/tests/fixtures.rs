//! Every stored shape of every event must stay readable: each fixture under `tests/fixtures/`
//! is a full envelope as it was once written, named `<event_type>.v<version>.json`.

use std::collections::BTreeSet;
use std::path::Path;

use events::{CURRENT_VERSIONS, Envelope};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    // At run time, not compile time: a test binary reused from another checkout that shares
    // the target directory must still read this checkout's fixtures.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("run by cargo");
    let dir = Path::new(&manifest).join("tests/fixtures");
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures directory exists")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read(&p).expect("readable fixture"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_fixture_decodes_to_its_declared_type() {
    let all = fixtures();
    assert!(!all.is_empty());
    for (name, bytes) in &all {
        let envelope = Envelope::decode(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let declared = name.split(".v").next().expect("name has a type");
        assert_eq!(envelope.event.event_type(), declared, "{name}");
        // Re-encoding gives the current version, which must decode to the same event.
        let again = Envelope::decode(&envelope.encode()).expect("re-encoded event decodes");
        assert_eq!(again, envelope, "{name}");
    }
}

#[test]
fn every_version_of_every_type_has_a_fixture() {
    let have: BTreeSet<String> = fixtures().into_iter().map(|(n, _)| n).collect();
    for (event_type, current) in CURRENT_VERSIONS {
        for v in 1..=*current {
            let name = format!("{event_type}.v{v}.json");
            assert!(have.contains(&name), "missing fixture {name}");
        }
    }
}

#[test]
fn event_type_names_and_versions_are_pinned() {
    // Changing this list breaks every stored event: add a version and an upcaster instead.
    let pinned = [
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
    assert_eq!(CURRENT_VERSIONS, pinned);
}

#[test]
fn unknown_types_and_future_versions_are_refused_not_guessed() {
    let (_, bytes) = fixtures()
        .into_iter()
        .find(|(n, _)| n == "comment.added.v1.json")
        .expect("comment.added fixture");
    let mut raw: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    raw["event_version"] = 2.into();
    let err = Envelope::decode(&serde_json::to_vec(&raw).expect("json")).unwrap_err();
    assert!(matches!(
        err,
        events::DecodeError::UnknownVersion { version: 2, .. }
    ));

    raw["event_version"] = 1.into();
    raw["event_type"] = "comment.liked".into();
    let err = Envelope::decode(&serde_json::to_vec(&raw).expect("json")).unwrap_err();
    assert!(matches!(err, events::DecodeError::UnknownType(_)));

    raw["event_type"] = "comment.added".into();
    raw["data"]["surprise"] = true.into();
    let err = Envelope::decode(&serde_json::to_vec(&raw).expect("json")).unwrap_err();
    assert!(matches!(err, events::DecodeError::InvalidPayload { .. }));
}

#[test]
fn routing_facts_are_read_without_the_payload() {
    for (name, bytes) in fixtures() {
        let envelope = Envelope::decode(&bytes).expect("decodes");
        let routing = events::Routing::peek(&bytes).expect("peeks");
        assert_eq!(routing.event_type, envelope.event.event_type(), "{name}");
        assert_eq!(routing.event_version, 1, "{name}");
        assert_eq!(routing.traceparent, envelope.meta.traceparent, "{name}");
    }
}
