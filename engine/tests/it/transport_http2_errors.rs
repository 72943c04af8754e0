//! How HTTP/2 failures reach the caller: a minimal HTTP/2 server on 127.0.0.1 (cleartext, prior
//! knowledge) answers requests with GOAWAY, RST_STREAM or a closed socket, and the client must
//! report them with Go's error-code names (kperf's `http2-protocol` error class).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::util::tls::run_glommio;
use engine::transport::{connect, Http2Connection, TransportError};
use http::{HeaderMap, Method};

const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const GOAWAY: u8 = 0x7;

/// What the server does with the n-th request (HEADERS frame) it receives.
#[derive(Clone, Copy)]
enum Answer {
    /// 200 with an empty body (HPACK static index 8 = `:status: 200`).
    Ok,
    /// RST_STREAM with this code.
    Reset(u32),
    /// GOAWAY (last stream 0) with this code and debug data `bye`, then close.
    GoAway(u32),
    /// Close the socket.
    Close,
}

fn write_frame(socket: &mut TcpStream, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    socket.write_all(&frame).expect("write frame");
}

/// Serves one connection, answering requests in order with `answers`.
fn serve(answers: Vec<Answer>) -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = std::thread::spawn(move || {
        let (mut socket, _) = listener.accept().expect("accept");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        let mut preface = [0u8; 24];
        socket.read_exact(&mut preface).expect("preface");
        assert_eq!(&preface, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
        write_frame(&mut socket, SETTINGS, 0, 0, &[]);
        let mut answers = answers.into_iter();
        loop {
            let mut head = [0u8; 9];
            if socket.read_exact(&mut head).is_err() {
                return;
            }
            let len =
                (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
            let (kind, flags) = (head[3], head[4]);
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            let mut payload = vec![0u8; len];
            if socket.read_exact(&mut payload).is_err() {
                return;
            }
            match kind {
                SETTINGS if flags & 1 == 0 => write_frame(&mut socket, SETTINGS, 1, 0, &[]),
                PING if flags & 1 == 0 => write_frame(&mut socket, PING, 1, 0, &payload),
                HEADERS => match answers.next().unwrap_or(Answer::Close) {
                    Answer::Ok => write_frame(&mut socket, HEADERS, 0x5, stream, &[0x88]),
                    Answer::Reset(code) => {
                        write_frame(&mut socket, RST_STREAM, 0, stream, &code.to_be_bytes())
                    }
                    Answer::GoAway(code) => {
                        let mut body = 0u32.to_be_bytes().to_vec();
                        body.extend_from_slice(&code.to_be_bytes());
                        body.extend_from_slice(b"bye");
                        write_frame(&mut socket, GOAWAY, 0, 0, &body);
                        return;
                    }
                    Answer::Close => return,
                },
                _ => {}
            }
        }
    });
    (addr, handle)
}

/// Sends `count` GET requests one after the other on one connection; returns each outcome as
/// `Ok(status)` or the error, plus whether the connection reports itself closed at the end.
fn exchange(addr: SocketAddr, count: usize) -> (Vec<Result<u16, TransportError>>, bool) {
    run_glommio(move || async move {
        let stream = connect(addr, None).await.expect("connect");
        let connection = Http2Connection::handshake(stream, &addr.to_string())
            .await
            .expect("handshake");
        let mut outcomes = Vec::new();
        for _ in 0..count {
            let outcome = match connection
                .send(Method::GET, "/x", &HeaderMap::new(), b"")
                .await
            {
                Ok(mut response) => response
                    .body
                    .drain()
                    .await
                    .map(|_| response.status.as_u16()),
                Err(e) => Err(e),
            };
            outcomes.push(outcome);
        }
        (outcomes, connection.is_closed())
    })
}

#[test]
fn goaway_is_reported_with_code_name_and_debug_data() {
    let (addr, server) = serve(vec![Answer::Ok, Answer::GoAway(0x1)]);
    let (outcomes, _) = exchange(addr, 3);
    server.join().expect("server");
    assert_eq!(outcomes[0].as_ref().ok(), Some(&200));
    let expected =
        "http2: server sent GOAWAY and closed the connection; ErrCode=PROTOCOL_ERROR, debug=bye";
    for outcome in &outcomes[1..] {
        let error = outcome
            .as_ref()
            .expect_err("after GOAWAY every request fails");
        assert_eq!(
            error.http2_protocol_message().as_deref(),
            Some(expected),
            "{error}"
        );
        assert!(
            !error.is_refused(),
            "an error GOAWAY is a failure, not a refusal"
        );
    }
}

#[test]
fn graceful_goaway_and_refused_stream_mean_not_processed() {
    let (addr, server) = serve(vec![Answer::Reset(0x7), Answer::GoAway(0x0)]);
    let (outcomes, closed) = exchange(addr, 3);
    server.join().expect("server");
    let refused: Vec<bool> = outcomes
        .iter()
        .map(|o| o.as_ref().err().is_some_and(TransportError::is_refused))
        .collect();
    assert_eq!(refused, vec![true, true, true], "{outcomes:?}");
    assert_eq!(
        outcomes[1]
            .as_ref()
            .err()
            .and_then(TransportError::http2_protocol_message)
            .as_deref(),
        Some("http2: server sent GOAWAY and closed the connection; ErrCode=NO_ERROR, debug=bye")
    );
    assert!(closed, "no new requests after a GOAWAY");
}

#[test]
fn stream_reset_is_reported_by_code_name_and_the_connection_stays_usable() {
    let (addr, server) = serve(vec![
        Answer::Reset(0xb),
        Answer::Ok,
        Answer::Reset(0x1f),
        Answer::Ok,
    ]);
    let (outcomes, closed) = exchange(addr, 4);
    let messages: Vec<Option<String>> = outcomes
        .iter()
        .map(|o| {
            o.as_ref()
                .err()
                .and_then(TransportError::http2_protocol_message)
        })
        .collect();
    assert_eq!(messages[0].as_deref(), Some("ENHANCE_YOUR_CALM"));
    assert_eq!(outcomes[1].as_ref().ok(), Some(&200));
    assert_eq!(messages[2].as_deref(), Some("unknown error code 0x1f"));
    assert_eq!(outcomes[3].as_ref().ok(), Some(&200));
    assert!(!closed);
    drop(server);
}

#[test]
fn closed_socket_is_a_connection_error_and_closes_the_connection() {
    let (addr, server) = serve(vec![Answer::Close]);
    let (outcomes, closed) = exchange(addr, 2);
    assert!(closed, "the connection reports itself closed");
    server.join().expect("server");
    for outcome in &outcomes {
        let error = outcome.as_ref().expect_err("no answer");
        let class_ok = error.io_error().is_some()
            || error.http2_protocol_message().as_deref() == Some("http2: client connection lost");
        assert!(
            class_ok,
            "a lost connection is a connection error: {error:?}"
        );
    }
}
