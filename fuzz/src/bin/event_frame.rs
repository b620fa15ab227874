//! Fuzz target: the events topic's record decoder — the Confluent frame (magic byte, schema
//! id) and the Avro body, through every decoding path: the positional hand reader (current
//! writers), the by-name direct reader (a candidate codec's own writers), and apache-avro's
//! generic reader with schema resolution and upcasting (older, newer, reordered writers,
//! `ReservationHeld` v0), plus the protocol records (claims, rejections).
//!
//! The input's first byte picks the writer schema (see `holdfast_fuzz::frame`). Invariants
//! beyond "never panics":
//! - the two codecs, which read the same bytes along different paths, agree: both refuse the
//!   frame, or both decode the same record;
//! - a decoded record encodes again, with either codec, and decodes to itself.

use std::panic::AssertUnwindSafe;

use holdfast_fuzz::{Codecs, frame, writers};
use holdfast_platform::codec::{CodecError, EventCodec, LogRecord};

fn main() {
    // A panic aborts the process (that is how AFL++ sees a crash), so no state outlives one.
    let codecs = AssertUnwindSafe(Codecs::new().expect("the embedded schemas parse"));
    let writers = writers();
    afl::fuzz!(|input: &[u8]| {
        check(&codecs, &frame(&writers, input));
    });
}

fn check(codecs: &Codecs, frame: &[u8]) {
    let current = codecs.current.decode_record_cached(frame);
    let evolved = codecs.evolved.decode_record_cached(frame);
    let (current, evolved) = match (current, evolved) {
        // An id neither codec knows: a registry would be asked; nothing to compare.
        (None, None) => return,
        (Some(current), Some(evolved)) => (current, evolved),
        (current, evolved) => panic!("only one codec knows the writer: {current:?} / {evolved:?}"),
    };
    match (current, evolved) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the positional/direct and generic paths decode the frame differently");
            round_trip(codecs, &a);
        }
        (Err(_), Err(_)) => {}
        (a, b) => panic!("one path accepts what the other refuses: {a:?} / {b:?}"),
    }
}

/// `record`, written by either codec, reads back as itself through both.
fn round_trip(codecs: &Codecs, record: &LogRecord) {
    let both = [&codecs.current, &codecs.evolved];
    for writer in both {
        let bytes = encode(writer, record)
            .unwrap_or_else(|e| panic!("a decoded record does not encode: {e}: {record:?}"));
        for reader in both {
            let again = reader.decode_record_cached(&bytes).expect("both codecs know every writer");
            assert_eq!(
                again.as_ref().ok(),
                Some(record),
                "a re-encoded record decodes differently: {again:?}"
            );
        }
    }
}

fn encode(codec: &EventCodec, record: &LogRecord) -> Result<Vec<u8>, CodecError> {
    match record {
        LogRecord::Event(event) => codec.encode(event),
        LogRecord::Claim(claim) => codec.encode_claim(claim),
        LogRecord::Rejected(rejected) => codec.encode_rejected(rejected),
    }
}
