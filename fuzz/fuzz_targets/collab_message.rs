//! Any sequence of frames from y-websocket clients is applied, answered or refused, never a
//! panic, whatever was accepted, in the room or in what the server does with its state.

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
    // What the server does with the state when a WebDAV save arrives: merge it as a peer
    // that forked at the state. Some hostile states do not survive their own encoding
    // (yrs); the merge then fails, and must do so without a panic.
    let current = text::text_of(room.doc());
    let _ = text::fork_update(&room.snapshot(), &current, "Texte enregistré par WebDAV\n");
    if let Some(snapshot) = room.snapshot_v2() {
        assert!(Update::decode_v2(&snapshot).is_ok(), "a v2 snapshot decodes");
    }
});
