//! TLS on a ring connection. rustls is sans-IO: it encrypts a request into the slot's
//! outgoing buffer and decrypts what the ring received, so TLS connections live in the
//! core's loop like plain ones (the ring moves ciphertext only) and need no task.

use std::io::{self, Read, Write};
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection};
use rustls_pki_types::ServerName;

use crate::http1::RecvBuffer;
use crate::runtime::failure::Failure;
use crate::transport::TransportError;

/// Ciphertext received per ring operation: one full TLS record and its header.
const INBOUND: usize = 16 * 1024 + 512;

/// A connection's TLS state and the buffer the ring receives its ciphertext into.
pub(super) struct TlsSession {
    conn: ClientConnection,
    /// Received ciphertext; `inbound[..]` is written by the ring's receive, then handed to
    /// rustls whole before the next receive is queued.
    pub(super) inbound: Box<[u8]>,
    /// The server's name as the user gave it (for handshake errors).
    server_name: String,
}

/// Where the plaintext of a connection stands after its bytes were decrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Plaintext {
    /// Bytes were added to the receive buffer.
    Read(usize),
    /// Nothing more for now: receive more ciphertext.
    Drained,
    /// The server ended the TLS session (close_notify): the end of the stream.
    Closed,
}

impl TlsSession {
    /// A session about to shake hands with `name`.
    pub(super) fn connect(
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<TlsSession, TransportError> {
        let server_name = name.to_str().into_owned();
        let conn = ClientConnection::new(config, name).map_err(|e| TransportError::Tls {
            message: crate::transport::tls::explain_tls_error(&e, &server_name),
            server_name: server_name.clone(),
        })?;
        Ok(TlsSession::established(conn, server_name))
    }

    /// A session over a connection whose handshake is done (a prewarmed one).
    pub(super) fn established(conn: ClientConnection, server_name: String) -> TlsSession {
        TlsSession {
            conn,
            inbound: vec![0; INBOUND].into_boxed_slice(),
            server_name,
        }
    }

    /// Whether the handshake is still going on.
    pub(super) fn is_handshaking(&self) -> bool {
        self.conn.is_handshaking()
    }

    /// Whether rustls has records to send (handshake, alerts, key updates).
    pub(super) fn wants_write(&self) -> bool {
        self.conn.wants_write()
    }

    /// Encrypts `plain` into `out`, which is emptied first (its capacity is kept). Sealed
    /// piece by piece: rustls buffers at most 64 KiB of plaintext at a time.
    pub(super) fn seal(&mut self, plain: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        out.clear();
        let mut rest = plain;
        while !rest.is_empty() {
            let n = self.conn.writer().write(rest)?;
            rest = &rest[n..];
            self.records(out)?;
        }
        Ok(())
    }

    /// Appends the records rustls has to send to `out`.
    pub(super) fn records(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        while self.conn.wants_write() {
            self.conn.write_tls(out)?;
        }
        Ok(())
    }

    /// Hands `inbound[*from..n]` to rustls, as much as it takes before its plaintext is read
    /// (`*from` advances). A protocol error is the connection's failure.
    pub(super) fn take_ciphertext(
        &mut self,
        from: &mut usize,
        n: usize,
    ) -> Result<(), TransportError> {
        let mut rest = &self.inbound[*from..n];
        let taken = self.conn.read_tls(&mut rest).map_err(TransportError::Io)?;
        *from += taken;
        self.conn
            .process_new_packets()
            .map_err(|e| TransportError::Tls {
                message: crate::transport::tls::explain_tls_error(&e, &self.server_name),
                server_name: self.server_name.clone(),
            })?;
        Ok(())
    }

    /// Hands the `n` handshake bytes the ring received (0: the server closed the connection)
    /// to rustls.
    pub(super) fn take_handshake(&mut self, n: usize) -> Result<(), Failure> {
        if n == 0 {
            let e = io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection during the TLS handshake (is it a TLS server?)",
            );
            return Err(Failure::Connect(e));
        }
        let mut from = 0;
        while from < n {
            self.take_ciphertext(&mut from, n)
                .map_err(Failure::Transport)?;
        }
        Ok(())
    }

    /// Moves decrypted bytes into `input`, as many as fit.
    pub(super) fn read_plaintext(&mut self, input: &mut RecvBuffer) -> io::Result<Plaintext> {
        let read = self.read_plaintext_into(input.spare()?)?;
        if let Plaintext::Read(k) = read {
            input.filled(k);
        }
        Ok(read)
    }

    /// Moves decrypted bytes into `spare` (at most one record's worth per call).
    pub(super) fn read_plaintext_into(&mut self, spare: &mut [u8]) -> io::Result<Plaintext> {
        match self.conn.reader().read(spare) {
            Ok(0) => Ok(Plaintext::Closed),
            Ok(k) => Ok(Plaintext::Read(k)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Plaintext::Drained),
            Err(e) => Err(e),
        }
    }

    /// Whether the server chose HTTP/2 in the handshake (ALPN `h2`).
    pub(super) fn negotiated_h2(&self) -> bool {
        self.conn.alpn_protocol() == Some(b"h2".as_slice())
    }

    /// Whether decrypted bytes wait that nobody read.
    pub(super) fn has_plaintext(&mut self) -> bool {
        self.conn
            .process_new_packets()
            .is_ok_and(|s| s.plaintext_bytes_to_read() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Client and server configurations trusting a CA made for the test, whose leaf is for
    /// 127.0.0.1.
    fn configs() -> (Arc<ClientConfig>, Arc<rustls::ServerConfig>) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
        let client = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(leaf.der().to_vec())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .unwrap();
        (Arc::new(client), Arc::new(server))
    }

    /// A client and a server session over in-memory buffers.
    fn pair() -> (TlsSession, rustls::ServerConnection) {
        let (client_config, server_config) = configs();
        let client = TlsSession::connect(
            client_config,
            ServerName::try_from("127.0.0.1").unwrap().to_owned(),
        )
        .unwrap();
        let server = rustls::ServerConnection::new(server_config).unwrap();
        (client, server)
    }

    /// Moves `bytes` into `client`'s inbound buffer and through rustls.
    fn deliver(client: &mut TlsSession, bytes: &[u8]) {
        let mut off = 0;
        while off < bytes.len() {
            let n = (bytes.len() - off).min(INBOUND);
            client.inbound[..n].copy_from_slice(&bytes[off..off + n]);
            let mut from = 0;
            while from < n {
                client.take_ciphertext(&mut from, n).unwrap();
            }
            off += n;
        }
    }

    #[test]
    fn a_request_and_its_response_cross_a_session_in_memory() {
        let (mut client, mut server) = pair();
        let mut wire = Vec::new();
        // The handshake, flight by flight.
        while client.is_handshaking() {
            wire.clear();
            client.records(&mut wire).unwrap();
            server.read_tls(&mut &wire[..]).unwrap();
            server.process_new_packets().unwrap();
            let mut back = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
            deliver(&mut client, &back);
        }
        // A request larger than rustls buffers at once is sealed whole.
        let mut sealed = Vec::new();
        client.seal(&vec![b'y'; 200_000], &mut sealed).unwrap();
        let mut sealed_len = 0;
        let mut plain = vec![0u8; 300_000];
        let mut offset = 0;
        while offset < sealed.len() {
            offset += server.read_tls(&mut &sealed[offset..]).unwrap();
            server.process_new_packets().unwrap();
            while let Ok(k) = server.reader().read(&mut plain[sealed_len..]) {
                if k == 0 {
                    break;
                }
                sealed_len += k;
            }
        }
        assert_eq!(sealed_len, 200_000);
        client.seal(b"GET / HTTP/1.1\r\n\r\n", &mut sealed).unwrap();
        assert!(!sealed.windows(3).any(|w| w == b"GET"), "encrypted");
        server.read_tls(&mut &sealed[..]).unwrap();
        server.process_new_packets().unwrap();
        let mut got = String::new();
        server.reader().read_to_string(&mut got).unwrap_err();
        assert_eq!(got, "GET / HTTP/1.1\r\n\r\n");
        // A response larger than rustls keeps decrypted at once arrives whole, in pieces.
        let body = vec![b'x'; 100_000];
        let mut back = Vec::new();
        for piece in body.chunks(10_000) {
            server.writer().write_all(piece).unwrap();
            while server.wants_write() {
                server.write_tls(&mut back).unwrap();
            }
        }
        server.send_close_notify();
        while server.wants_write() {
            server.write_tls(&mut back).unwrap();
        }
        let mut input = RecvBuffer::default();
        let (mut received, mut off, mut closed) = (0, 0, false);
        while !closed {
            // Each round: plaintext out first, then more ciphertext in.
            loop {
                match client.read_plaintext(&mut input).unwrap() {
                    Plaintext::Read(k) => {
                        received += k;
                        input.reset();
                    }
                    Plaintext::Drained => break,
                    Plaintext::Closed => {
                        closed = true;
                        break;
                    }
                }
            }
            if off < back.len() {
                let n = (back.len() - off).min(INBOUND);
                client.inbound[..n].copy_from_slice(&back[off..off + n]);
                let mut from = 0;
                while from < n {
                    client.take_ciphertext(&mut from, n).unwrap();
                    while let Plaintext::Read(k) = client.read_plaintext(&mut input).unwrap() {
                        received += k;
                        input.reset();
                    }
                }
                off += n;
            }
        }
        assert_eq!(received, body.len());
        assert!(!client.has_plaintext());
    }

    #[test]
    fn a_server_that_is_not_tls_fails_the_session_with_a_reason() {
        let (mut client, _) = pair();
        let mut hello = Vec::new();
        client.records(&mut hello).unwrap();
        let reply = b"HTTP/1.1 400 Bad Request\r\n\r\n";
        client.inbound[..reply.len()].copy_from_slice(reply);
        let mut from = 0;
        let err = client.take_ciphertext(&mut from, reply.len()).unwrap_err();
        assert!(
            matches!(err, TransportError::Tls { .. }),
            "expected a TLS error, got {err:?}"
        );
    }
}
