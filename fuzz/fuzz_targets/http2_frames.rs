//! The HTTP/2 codec reading a server's bytes: a connection with three streams open (one with
//! a request body waiting for window) is fed any bytes in pieces, as the ring receives them,
//! and opens and cancels streams between pieces as the loop would.
#![no_main]

use engine::http2::{Event, Indexing, Protocol};
use libfuzzer_sys::fuzz_target;

/// Stream slots the target uses.
const SLOTS: usize = 8;

fn open(p: &mut Protocol, slot: usize, body: &[u8]) {
    p.open(slot, body, |encoder, out| {
        encoder.field(b":method", b"GET", Indexing::Index, out);
        encoder.field(b":path", b"/api/v1/pods", Indexing::NoIndex, out);
        encoder.field(b"authorization", b"Bearer t", Indexing::Never, out);
    });
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the receive size, so frames split everywhere.
    let (step, bytes) = match data.split_first() {
        Some((s, rest)) => (usize::from(*s % 64) + 1, rest),
        None => return,
    };
    let mut p = Protocol::new();
    let mut open_slots = [false; SLOTS];
    open(&mut p, 0, b"");
    open(&mut p, 1, &[b'x'; 70_000]);
    open(&mut p, 2, b"");
    open_slots[..3].fill(true);
    for (n, piece) in bytes.chunks(step).enumerate() {
        p.spare(piece.len())[..piece.len()].copy_from_slice(piece);
        p.filled(piece.len());
        let result = p.receive();
        for event in p.events.clone() {
            match event {
                Event::Head {
                    slot, status, end, ..
                } => {
                    assert!(slot < SLOTS && open_slots[slot], "a head for a stream not open");
                    assert!((200..1000).contains(&status));
                    if end {
                        open_slots[slot] = false;
                    }
                }
                Event::Data {
                    slot,
                    start,
                    len,
                    end,
                } => {
                    assert!(slot < SLOTS && open_slots[slot], "data for a stream not open");
                    std::hint::black_box(p.received_bytes(start, len));
                    if end {
                        open_slots[slot] = false;
                    }
                }
                Event::End { slot } | Event::Reset { slot, .. } | Event::Refused { slot } => {
                    assert!(slot < SLOTS && open_slots[slot], "an end for a stream not open");
                    open_slots[slot] = false;
                }
                Event::Settled | Event::GoAway { .. } => {}
            }
        }
        if result.is_err() {
            return;
        }
        // As the loop does: new streams where there is room, a cancel now and then.
        if let Some(free) = open_slots.iter().position(|o| !o) {
            if p.has_room() && n % 3 == 0 {
                open(&mut p, free, if n % 2 == 0 { b"" } else { b"{}" });
                open_slots[free] = true;
            }
        }
        if n % 5 == 4 {
            if let Some(busy) = open_slots.iter().position(|o| *o) {
                p.cancel(busy);
                open_slots[busy] = false;
            }
        }
        // What the client wrote is taken, as the loop seals and sends it.
        p.out.clear();
    }
});
