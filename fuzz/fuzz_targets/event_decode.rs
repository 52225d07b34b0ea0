//! A record off any topic as the consumer loop receives it: CloudEvents headers read into
//! an `EventMeta` (rdkafka `OwnedHeaders`, as librdkafka hands them over), the W3C trace
//! context extracted from them, and the payload decoded as each of the five event types
//! with `Record::decode`, as every handler does. Whatever arrives must decode or be a
//! permanent error (dead letter), never a panic that stops the consumer.
//!
//! Input: header lines `name: value` (value bytes up to the newline; a line without `: `
//! is a header without value), an empty line, then the payload (absent if the input has
//! no empty line). A key is the first header line named `key`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rdkafka::message::{Header, OwnedHeaders};
use zhida_bus::{Event, EventMeta, HandleError, Record};
use zhida_proto::events::v1::{
    AuditRecorded, DeliveryRequested, DeliveryStatusChanged, PolicyPublished, ProfileUpserted,
};

fn check<E: Event>(record: &Record) {
    match record.decode::<E>() {
        Ok(event) => {
            assert_eq!(record.meta.ty, E::TYPE, "decoded under another ce_type");
            // What decoded encodes again, and decodes to the same bytes (bytes, not
            // `==`: a NaN double is not equal to itself).
            let bytes = event.encode_to_vec();
            let again = E::decode(bytes.as_slice()).expect("re-encoded event");
            assert_eq!(
                again.encode_to_vec(),
                bytes,
                "{} does not survive a round trip",
                E::TYPE
            );
        }
        Err(HandleError::Permanent(_)) => {}
        Err(HandleError::Transient(reason)) => {
            panic!("a malformed record must be permanent, got transient: {reason}")
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let (head, payload) = match data.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&data[..at], Some(&data[at + 2..])),
        None => (data, None),
    };
    let mut headers = OwnedHeaders::new();
    let mut key = None;
    for line in head.split(|b| *b == b'\n') {
        let (name, value) = match line.windows(2).position(|w| w == b": ") {
            Some(at) => (&line[..at], Some(&line[at + 2..])),
            None => (line, None),
        };
        // librdkafka header names are C strings; rdkafka takes `&str`.
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        if name.contains('\0') {
            continue;
        }
        if name == "key" && key.is_none() {
            key = value.map(<[u8]>::to_vec);
            continue;
        }
        headers = headers.insert(Header { key: name, value });
    }
    let meta = EventMeta::from_headers(Some(&headers));
    let _ = meta.trace_context();
    let record = Record {
        topic: "fuzz".into(),
        partition: 0,
        offset: 0,
        key,
        payload: payload.map(<[u8]>::to_vec),
        meta,
    };
    let _ = record.key_str();
    check::<PolicyPublished>(&record);
    check::<ProfileUpserted>(&record);
    check::<DeliveryRequested>(&record);
    check::<DeliveryStatusChanged>(&record);
    check::<AuditRecorded>(&record);
});
