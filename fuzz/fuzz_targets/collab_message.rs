//! Any sequence of frames from y-websocket clients is applied, answered or refused, never a
//! panic; and the room's document stays readable and encodable whatever was accepted.

#![no_main]

use libfuzzer_sys::fuzz_target;
use ruche_collab::protocol::{Access, Room};
use ruche_collab::text;
use yrs::updates::decoder::Decode;
use yrs::{Doc, Transact, Update};

fuzz_target!(|data: &[u8]| {
    let doc = Doc::new();
    let seed = text::seed_update("Bonjour à tous\n");
    if let Ok(update) = Update::decode_v1(&seed) {
        let _ = doc.transact_mut().apply_update(update);
    }
    let mut room = Room::new(doc);
    // Frames are separated by a length byte; the byte before each one picks the connection
    // (three of them, the third reading only) and whether it leaves after the frame.
    let mut rest = data;
    while let [control, length, tail @ ..] = rest {
        let length = usize::from(*length).min(tail.len());
        let (frame, after) = tail.split_at(length);
        let conn = u64::from(control % 3);
        let access = if conn == 2 { Access::ReadOnly } else { Access::ReadWrite };
        room.welcome(conn);
        let _ = room.receive(conn, access, frame);
        if control & 0x80 != 0 {
            room.leave(conn);
        }
        rest = after;
    }
    let _ = text::text_of(room.doc());
    let snapshot = room.snapshot();
    assert!(Update::decode_v1(&snapshot).is_ok(), "the snapshot decodes");
    if let Some(snapshot) = room.snapshot_v2() {
        assert!(Update::decode_v2(&snapshot).is_ok(), "a v2 snapshot decodes");
    }
});
