//! The connection's protocol driven by hand-written server frames: what it answers, what
//! events it makes, and how it refuses malformed input.

use super::super::frame::{self, code, flag, kind, setting, Head, HEAD_LEN};
use super::super::hpack::{Decoder, Indexing};
use super::*;

/// The frames in `bytes` (after the preface, if it starts with one).
fn frames(mut bytes: &[u8]) -> Vec<(Head, Vec<u8>)> {
    if let Some(rest) = bytes.strip_prefix(frame::PREFACE) {
        bytes = rest;
    }
    let mut out = Vec::new();
    while bytes.len() >= HEAD_LEN {
        let head = Head::parse(bytes);
        out.push((head, bytes[HEAD_LEN..HEAD_LEN + head.len].to_vec()));
        bytes = &bytes[HEAD_LEN + head.len..];
    }
    assert!(bytes.is_empty(), "a partial frame was written");
    out
}

/// Takes what the client wrote.
fn written(p: &mut Protocol) -> Vec<(Head, Vec<u8>)> {
    let f = frames(&p.out);
    p.out.clear();
    f
}

/// Hands the server's `bytes` to the client and reads them.
fn feed(p: &mut Protocol, bytes: &[u8]) -> Result<Vec<Event>, ConnectionError> {
    p.spare(bytes.len())[..bytes.len()].copy_from_slice(bytes);
    p.filled(bytes.len());
    p.receive()?;
    Ok(p.events.clone())
}

fn server_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    frame::write_head(&mut out, payload.len(), kind, flags, stream);
    out.extend_from_slice(payload);
    out
}

/// A connection past its handshake (the server's SETTINGS `params`, the PING answered).
fn settled(params: &[(u16, u32)]) -> Protocol {
    let mut p = Protocol::new();
    p.out.clear();
    let mut bytes = Vec::new();
    frame::write_settings(&mut bytes, params);
    frame::write_ping(&mut bytes, true, PING_PAYLOAD);
    assert_eq!(feed(&mut p, &bytes), Ok(vec![Event::Settled]));
    p.out.clear();
    p
}

/// Opens a GET of `path` for `slot`; its stream id.
fn get(p: &mut Protocol, slot: usize, path: &[u8]) -> u32 {
    p.open(slot, b"", |e, out| {
        e.field(b":method", b"GET", Indexing::Index, out);
        e.field(b":path", path, Indexing::NoIndex, out);
    })
}

/// `:status: 200` (static index 8), as one HPACK byte.
const STATUS_200: u8 = 0x88;

#[test]
fn the_handshake_offers_its_windows_without_push_and_is_settled_by_the_pings_answer() {
    let mut p = Protocol::new();
    assert!(p.out.starts_with(frame::PREFACE));
    let sent = written(&mut p);
    let kinds: Vec<u8> = sent.iter().map(|(h, _)| h.kind).collect();
    assert_eq!(kinds, [kind::SETTINGS, kind::WINDOW_UPDATE, kind::PING]);
    assert_eq!(
        sent[0].1,
        [0, 2, 0, 0, 0, 0, 0, 4, 0, 0x40, 0, 0, 0, 6, 0, 0xa0, 0, 0]
    );
    assert_eq!(
        u32::from_be_bytes(sent[1].1[..4].try_into().unwrap()),
        CONNECTION_WINDOW - 65_535
    );
    // The server's SETTINGS are acknowledged; its own PING is answered; ours settles.
    let mut bytes = Vec::new();
    frame::write_settings(&mut bytes, &[(setting::MAX_CONCURRENT_STREAMS, 1)]);
    frame::write_ping(&mut bytes, false, *b"server!!");
    assert_eq!(feed(&mut p, &bytes), Ok(vec![]));
    let answers = written(&mut p);
    assert_eq!(answers[0].0.kind, kind::SETTINGS);
    assert!(answers[0].0.has(flag::ACK));
    assert_eq!(answers[1].0.kind, kind::PING);
    assert!(answers[1].0.has(flag::ACK));
    assert_eq!(answers[1].1, b"server!!");
    let mut ack = Vec::new();
    frame::write_ping(&mut ack, true, PING_PAYLOAD);
    assert_eq!(feed(&mut p, &ack), Ok(vec![Event::Settled]));
    // The server's limit of one stream holds.
    assert!(p.has_room());
    assert_eq!(get(&mut p, 0, b"/a"), 1);
    assert!(!p.has_room());
}

#[test]
fn a_request_is_one_headers_frame_with_end_stream_and_its_response_is_a_head_and_data() {
    let mut p = settled(&[]);
    let id = get(&mut p, 7, b"/api/v1/pods");
    let sent = written(&mut p);
    assert_eq!(sent.len(), 1);
    let (head, block) = &sent[0];
    assert_eq!((head.kind, head.stream), (kind::HEADERS, id));
    assert!(head.has(flag::END_STREAM) && head.has(flag::END_HEADERS));
    let mut fields = Vec::new();
    Decoder::new(4096)
        .decode(block, |n, v| fields.push((n.to_vec(), v.to_vec())))
        .unwrap();
    assert_eq!(
        fields,
        [
            (b":method".to_vec(), b"GET".to_vec()),
            (b":path".to_vec(), b"/api/v1/pods".to_vec())
        ]
    );
    let mut bytes = server_frame(kind::HEADERS, flag::END_HEADERS, id, &[STATUS_200]);
    bytes.extend(server_frame(kind::DATA, flag::END_STREAM, id, b"hello"));
    let events = feed(&mut p, &bytes).unwrap();
    assert_eq!(
        events[0],
        Event::Head {
            slot: 7,
            status: 200,
            retry_after: None,
            end: false
        }
    );
    let Event::Data {
        slot: 7,
        start,
        len,
        end: true,
    } = events[1]
    else {
        panic!("{events:?}");
    };
    assert_eq!(p.received_bytes(start, len), b"hello");
    assert_eq!(p.streams.len(), 0, "the stream is over");
}

#[test]
fn a_padded_head_split_over_continuation_is_read_and_trailers_end_the_response() {
    let mut p = settled(&[]);
    let id = get(&mut p, 3, b"/x");
    p.out.clear();
    // :status 429 (literal, indexed name 8) and retry-after: 2 (literal, indexed name 53).
    let block = [&[0x08, 3][..], b"429", &[0x0f, 0x26, 1], b"2"].concat();
    let (first, rest) = block.split_at(3);
    // PADDED and PRIORITY: pad length 2, five priority bytes, the block, two pad bytes.
    let payload = [&[2u8][..], &[0, 0, 0, 0, 16], first, &[0, 0]].concat();
    let mut bytes = server_frame(kind::HEADERS, flag::PADDED | flag::PRIORITY, id, &payload);
    bytes.extend(server_frame(
        kind::CONTINUATION,
        flag::END_HEADERS,
        id,
        rest,
    ));
    bytes.extend(server_frame(kind::DATA, flag::PADDED, id, &[1, b'b', 0]));
    bytes.extend(server_frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        id,
        &[0x0f, 0x2b, 1, b'x'],
    ));
    let events = feed(&mut p, &bytes).unwrap();
    assert_eq!(
        events[0],
        Event::Head {
            slot: 3,
            status: 429,
            retry_after: Some(2),
            end: false
        }
    );
    assert!(matches!(
        events[1],
        Event::Data {
            slot: 3,
            len: 1,
            end: false,
            ..
        }
    ));
    assert_eq!(events[2], Event::End { slot: 3 });
}

#[test]
fn a_goaway_refuses_the_streams_above_its_last_and_no_stream_opens_after_it() {
    let mut p = settled(&[]);
    let first = get(&mut p, 0, b"/a");
    get(&mut p, 1, b"/b");
    get(&mut p, 2, b"/c");
    let payload = [
        &first.to_be_bytes()[..],
        &code::NO_ERROR.to_be_bytes(),
        b"bye",
    ]
    .concat();
    let events = feed(&mut p, &server_frame(kind::GOAWAY, 0, 0, &payload)).unwrap();
    assert_eq!(
        events[0],
        Event::GoAway {
            code: 0,
            debug: "bye".into()
        }
    );
    let mut refused: Vec<_> = events[1..].to_vec();
    refused.sort_by_key(|e| format!("{e:?}"));
    assert_eq!(
        refused,
        [Event::Refused { slot: 1 }, Event::Refused { slot: 2 }]
    );
    assert!(!p.has_room());
    // The stream below the last one is still answered.
    let head = server_frame(
        kind::HEADERS,
        flag::END_HEADERS | flag::END_STREAM,
        first,
        &[STATUS_200],
    );
    assert!(matches!(
        feed(&mut p, &head).unwrap()[..],
        [Event::Head {
            slot: 0,
            status: 200,
            end: true,
            ..
        }]
    ));
}

#[test]
fn a_reset_ends_its_stream_and_frames_for_a_cancelled_stream_are_dropped() {
    let mut p = settled(&[]);
    let a = get(&mut p, 0, b"/a");
    let b = get(&mut p, 1, b"/b");
    p.out.clear();
    let reset = server_frame(kind::RST_STREAM, 0, a, &0xbu32.to_be_bytes());
    assert_eq!(
        feed(&mut p, &reset),
        Ok(vec![Event::Reset { slot: 0, code: 0xb }])
    );
    p.cancel(1);
    let sent = written(&mut p);
    assert_eq!((sent[0].0.kind, sent[0].0.stream), (kind::RST_STREAM, b));
    assert_eq!(sent[0].1, code::CANCEL.to_be_bytes());
    let mut late = server_frame(kind::HEADERS, flag::END_HEADERS, b, &[STATUS_200]);
    late.extend(server_frame(kind::DATA, flag::END_STREAM, b, b"late"));
    assert_eq!(feed(&mut p, &late), Ok(vec![]));
}

#[test]
fn a_body_beyond_the_servers_window_waits_for_its_window_updates() {
    let mut p = settled(&[(setting::INITIAL_WINDOW_SIZE, 10)]);
    let id = p.open(0, b"0123456789abcdefghij12345", |e, out| {
        e.field(b":method", b"POST", Indexing::Index, out)
    });
    let sent = written(&mut p);
    assert_eq!(sent[0].0.kind, kind::HEADERS);
    assert!(!sent[0].0.has(flag::END_STREAM));
    assert_eq!(
        (sent[1].0.kind, &sent[1].1[..]),
        (kind::DATA, &b"0123456789"[..])
    );
    assert_eq!(sent.len(), 2);
    let update = |n: u32| server_frame(kind::WINDOW_UPDATE, 0, id, &n.to_be_bytes());
    feed(&mut p, &update(10)).unwrap();
    let sent = written(&mut p);
    assert_eq!(sent[0].1, b"abcdefghij");
    assert!(!sent[0].0.has(flag::END_STREAM));
    feed(&mut p, &update(100)).unwrap();
    let sent = written(&mut p);
    assert_eq!(sent[0].1, b"12345");
    assert!(sent[0].0.has(flag::END_STREAM));
}

#[test]
fn a_long_response_body_is_given_back_its_window_and_a_big_head_uses_continuation() {
    let mut p = settled(&[]);
    let id = get(&mut p, 0, b"/list");
    p.out.clear();
    feed(
        &mut p,
        &server_frame(kind::HEADERS, flag::END_HEADERS, id, &[STATUS_200]),
    )
    .unwrap();
    let chunk = vec![b'x'; frame::DEFAULT_MAX_FRAME];
    for _ in 0..(STREAM_WINDOW as usize / 2).div_ceil(chunk.len()) {
        feed(&mut p, &server_frame(kind::DATA, 0, id, &chunk)).unwrap();
    }
    let updates: Vec<_> = written(&mut p)
        .into_iter()
        .filter(|(h, _)| h.kind == kind::WINDOW_UPDATE)
        .map(|(h, payload)| {
            (
                h.stream,
                u32::from_be_bytes(payload[..4].try_into().unwrap()),
            )
        })
        .collect();
    assert_eq!(updates, [(id, STREAM_WINDOW / 2)]);
    // A head longer than a frame: HEADERS, then CONTINUATION, END_HEADERS on the last.
    let long = vec![b'p'; frame::DEFAULT_MAX_FRAME + 100];
    get(&mut p, 1, &long);
    let sent = written(&mut p);
    let kinds: Vec<_> = sent
        .iter()
        .map(|(h, _)| (h.kind, h.has(flag::END_HEADERS)))
        .collect();
    assert_eq!(kinds, [(kind::HEADERS, false), (kind::CONTINUATION, true)]);
    let block = [&sent[0].1[..], &sent[1].1[..]].concat();
    let mut path = Vec::new();
    Decoder::new(4096)
        .decode(&block, |n, v| {
            if n == b":path" {
                path = v.to_vec()
            }
        })
        .unwrap();
    assert_eq!(path, long);
}

#[test]
fn malformed_frames_end_the_connection_with_a_goaway_naming_the_error() {
    let cases: Vec<(&str, Vec<u8>, u32)> = vec![
        (
            "DATA on stream 0",
            server_frame(kind::DATA, 0, 0, b"x"),
            code::PROTOCOL_ERROR,
        ),
        (
            "a frame above the size the client allows",
            server_frame(kind::DATA, 0, 1, &vec![0; frame::DEFAULT_MAX_FRAME + 1]),
            code::FRAME_SIZE_ERROR,
        ),
        (
            "a pushed stream",
            server_frame(kind::PUSH_PROMISE, flag::END_HEADERS, 1, &[0, 0, 0, 2]),
            code::PROTOCOL_ERROR,
        ),
        (
            "a stream the client never opened",
            server_frame(kind::HEADERS, flag::END_HEADERS, 5, &[STATUS_200]),
            code::PROTOCOL_ERROR,
        ),
        (
            "an HPACK index past the tables",
            server_frame(kind::HEADERS, flag::END_HEADERS, 1, &[0xff, 0x7f]),
            code::COMPRESSION_ERROR,
        ),
        (
            "DATA before the head",
            server_frame(kind::DATA, 0, 1, b"x"),
            code::PROTOCOL_ERROR,
        ),
        (
            "a PING of 7 bytes",
            server_frame(kind::PING, 0, 0, &[0; 7]),
            code::FRAME_SIZE_ERROR,
        ),
        (
            "padding longer than the frame",
            server_frame(
                kind::HEADERS,
                flag::END_HEADERS | flag::PADDED,
                1,
                &[9, STATUS_200],
            ),
            code::PROTOCOL_ERROR,
        ),
        (
            "a CONTINUATION out of place",
            server_frame(kind::CONTINUATION, flag::END_HEADERS, 1, &[STATUS_200]),
            code::PROTOCOL_ERROR,
        ),
        (
            "a zero window increment",
            server_frame(kind::WINDOW_UPDATE, 0, 0, &[0; 4]),
            code::PROTOCOL_ERROR,
        ),
    ];
    for (what, bytes, expected) in cases {
        let mut p = settled(&[]);
        get(&mut p, 0, b"/a");
        p.out.clear();
        assert_eq!(
            feed(&mut p, &bytes),
            Err(ConnectionError(expected)),
            "{what}"
        );
        let sent = written(&mut p);
        let goaway = sent
            .iter()
            .find(|(h, _)| h.kind == kind::GOAWAY)
            .expect(what);
        assert_eq!(&goaway.1[4..8], expected.to_be_bytes(), "{what}");
    }
}

#[test]
fn frames_split_across_reads_are_read_whole() {
    let mut p = settled(&[]);
    let id = get(&mut p, 4, b"/a");
    let mut bytes = server_frame(kind::HEADERS, flag::END_HEADERS, id, &[STATUS_200]);
    bytes.extend(server_frame(
        kind::DATA,
        flag::END_STREAM,
        id,
        b"split body",
    ));
    let mut events = Vec::new();
    for piece in bytes.chunks(4) {
        events.extend(feed(&mut p, piece).unwrap());
    }
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(matches!(
        events[1],
        Event::Data {
            slot: 4,
            len: 10,
            end: true,
            ..
        }
    ));
}

#[test]
fn a_body_within_the_windows_leaves_with_its_head_and_nothing_waits() {
    let mut p = settled(&[]);
    let id = p.open(0, b"{\"kind\":\"Pod\"}", |e, out| {
        e.field(b":method", b"POST", Indexing::Index, out)
    });
    let sent = written(&mut p);
    let kinds: Vec<_> = sent
        .iter()
        .map(|(h, _)| (h.kind, h.stream, h.has(flag::END_STREAM)))
        .collect();
    assert_eq!(kinds, [(kind::HEADERS, id, false), (kind::DATA, id, true)]);
    assert_eq!(sent[1].1, b"{\"kind\":\"Pod\"}");
    assert!(p.streams[0].pending.is_empty() && !p.streams[0].open_local);
}

#[test]
fn a_header_list_past_the_announced_limit_ends_the_connection() {
    // A CONTINUATION flood: frames that never end the block.
    let mut p = settled(&[]);
    let id = get(&mut p, 0, b"/a");
    let mut first = server_frame(kind::HEADERS, 0, id, &[STATUS_200]);
    let filler = vec![0u8; frame::DEFAULT_MAX_FRAME];
    let frames_needed = MAX_HEADER_LIST as usize / filler.len() + 1;
    let mut result = feed(&mut p, &first).map(|_| ());
    for _ in 0..frames_needed {
        if result.is_err() {
            break;
        }
        result = feed(&mut p, &server_frame(kind::CONTINUATION, 0, id, &filler)).map(|_| ());
    }
    assert_eq!(result, Err(ConnectionError(code::ENHANCE_YOUR_CALM)));
    // A small block that names a 4 KB table entry again and again (an HPACK bomb).
    let mut p = settled(&[]);
    let id = get(&mut p, 0, b"/a");
    let value = vec![b'v'; 4000];
    // Literal with incremental indexing, new name `x` (4,034 bytes in the table), then
    // index 62 (that entry) until the list passes the limit.
    first = vec![STATUS_200, 0x40, 1, b'x', 0x7f, 0xa1, 0x1e];
    first.extend_from_slice(&value);
    let repeats = MAX_HEADER_LIST as usize / (value.len() + 33) + 1;
    first.extend(std::iter::repeat_n(0xbe, repeats));
    let mut bytes = Vec::new();
    for (k, chunk) in first.chunks(frame::DEFAULT_MAX_FRAME).enumerate() {
        let last = (k + 1) * frame::DEFAULT_MAX_FRAME >= first.len();
        let kind = if k == 0 {
            kind::HEADERS
        } else {
            kind::CONTINUATION
        };
        let flags = if last { flag::END_HEADERS } else { 0 };
        bytes.extend(server_frame(kind, flags, id, chunk));
    }
    assert_eq!(
        feed(&mut p, &bytes),
        Err(ConnectionError(code::ENHANCE_YOUR_CALM))
    );
}
