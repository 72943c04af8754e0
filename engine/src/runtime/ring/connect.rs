//! Opening a slot's connection: the connect through the ring and, over `https://`, the TLS
//! handshake run in the loop; and prewarmed connections taken over from their streams.

use std::os::fd::AsRawFd;

use super::tls::TlsSession;
use super::uring::{self, Op};
use super::{OpenConnection, RingPool};
use crate::runtime::failure::Failure;
use crate::runtime::CoreCtx;
use crate::transport::Stream;

impl RingPool {
    /// Opens a connection for slot `i`'s request.
    pub(super) fn connect(&mut self, ctx: &CoreCtx, i: usize) {
        let opened = uring::open_socket(&self.target).and_then(|fd| {
            let slot = &mut self.slots[i];
            let tag = slot.tag(i, Op::Connect);
            self.ring.connect(fd.as_raw_fd(), &self.addr, tag)?;
            Ok(fd)
        });
        match opened {
            Ok(fd) => {
                let fixed = self.ring.register_file(i, fd.as_raw_fd());
                let slot = &mut self.slots[i];
                slot.fd = Some(fd);
                slot.fixed = fixed;
                slot.op = Some(Op::Connect);
            }
            Err(e) => self.fail(ctx, i, Failure::Connect(e)),
        }
    }

    /// Moves slot `i`'s TLS handshake on: sends what rustls has to send, receives what it
    /// waits for, and once it is done seals and sends the request waiting in `request`.
    pub(super) fn handshake(&mut self, ctx: &CoreCtx, i: usize) {
        let slot = &mut self.slots[i];
        let Some(tls) = slot.tls.as_mut() else { return };
        if tls.wants_write() {
            slot.cipher.clear();
            slot.written = 0;
            if let Err(e) = tls.records(&mut slot.cipher) {
                return self.fail(ctx, i, Failure::Response(e.into()));
            }
            return match uring::send_now(slot.raw_fd(), &slot.cipher) {
                Ok(n) => {
                    slot.written = n;
                    self.send_rest(ctx, i)
                }
                Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
            };
        }
        if tls.is_handshaking() {
            return self.recv(ctx, i);
        }
        slot.handshaking = false;
        match tls.seal(&slot.request, &mut slot.cipher) {
            Ok(()) => {
                slot.written = 0;
                self.send(ctx, i);
            }
            Err(e) => self.fail(ctx, i, Failure::Response(e.into())),
        }
    }

    /// Handshake records of slot `i` arrived: `n` bytes in its inbound buffer (0: closed).
    pub(super) fn handshake_received(&mut self, ctx: &CoreCtx, i: usize, n: usize) {
        let Some(tls) = self.slots[i].tls.as_mut() else {
            return;
        };
        match tls.take_handshake(n) {
            Ok(()) => self.handshake(ctx, i),
            Err(failure) => self.fail(ctx, i, failure),
        }
    }
}

/// The socket of a prewarmed connection (duplicated: the glommio stream closes its own) and
/// its TLS session; `None` if the socket cannot be duplicated (the pool connects again).
pub(super) fn take_over(stream: Stream, server_name: &str) -> Option<OpenConnection> {
    use std::os::fd::BorrowedFd;
    let (tcp, session) = match stream {
        Stream::Plain(tcp) => (tcp, None),
        Stream::Tls(tls) => {
            let (tcp, conn) = tls.into_inner();
            (
                tcp,
                Some(TlsSession::established(conn, server_name.to_string())),
            )
        }
    };
    // SAFETY: the stream is open for the duration of this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(tcp.as_raw_fd()) };
    let fd = fd.try_clone_to_owned().ok()?;
    Some((fd, session))
}
