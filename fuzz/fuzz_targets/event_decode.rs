//! Any bytes as an event from the log: no panic, and whatever decodes re-encodes to the same event.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = events::Routing::peek(data);
    if let Ok(envelope) = events::Envelope::decode(data) {
        let again = events::Envelope::decode(&envelope.encode()).expect("an encoded event decodes");
        assert_eq!(again, envelope);
    }
});
