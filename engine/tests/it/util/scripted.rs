//! A scripted HTTP/1.1 server on 127.0.0.1 for the connection and counting tests: the status
//! follows the request target, and a connection can be closed while idle, closed silently
//! after each response, or sent bytes beyond the response's Content-Length.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::read_more;

/// How the server answers.
#[derive(Clone)]
pub struct Script {
    /// Status of the response to a request target.
    pub status_of: fn(&str) -> u16,
    /// Body of the response to a request target.
    pub body_of: fn(&str) -> String,
    /// Close a connection that has been idle this long (as load balancers do).
    pub idle_close: Option<Duration>,
    /// Close after each response, without `Connection: close`.
    pub close_silently: bool,
    /// Written right after each response's body (beyond its Content-Length).
    pub trailing_garbage: &'static [u8],
}

impl Default for Script {
    fn default() -> Self {
        Script {
            status_of: |_| 200,
            body_of: |_| "{\"kind\":\"Pod\"}".to_string(),
            idle_close: None,
            close_silently: false,
            trailing_garbage: b"",
        }
    }
}

/// The server; stops on drop.
pub struct ScriptedServer {
    pub addr: SocketAddr,
    /// Requests answered.
    pub answered: Arc<AtomicU64>,
    /// Connections accepted.
    pub accepted: Arc<AtomicU64>,
    shutdown: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl ScriptedServer {
    pub fn start(script: Script) -> ScriptedServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let shutdown = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let accepted = Arc::new(AtomicU64::new(0));
        let (s, a, c) = (shutdown.clone(), answered.clone(), accepted.clone());
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                let (s, a, script) = (s.clone(), a.clone(), script.clone());
                std::thread::spawn(move || serve(stream, &script, &s, &a));
            }
        });
        ScriptedServer {
            addr,
            answered,
            accepted,
            shutdown,
            accept: Some(accept),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ScriptedServer {
    fn drop(&mut self) {
        self.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

fn serve(mut stream: TcpStream, script: &Script, shutdown: &AtomicBool, answered: &AtomicU64) {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(20)));
    let _ = stream.set_nodelay(true);
    let mut buf: Vec<u8> = Vec::new();
    let mut idle_since = Instant::now();
    loop {
        if shutdown.load(Ordering::SeqCst) {
            return;
        }
        let mut hs = [httparse::EMPTY_HEADER; 64];
        let mut req = httparse::Request::new(&mut hs);
        if let Ok(httparse::Status::Complete(n)) = req.parse(&buf) {
            let target = req.path.unwrap_or("").to_string();
            let len: usize = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= n + len {
                buf.drain(..n + len);
                let status = (script.status_of)(&target);
                let body = (script.body_of)(&target);
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut out = head.into_bytes();
                out.extend_from_slice(body.as_bytes());
                out.extend_from_slice(script.trailing_garbage);
                if stream.write_all(&out).is_err() {
                    return;
                }
                answered.fetch_add(1, Ordering::SeqCst);
                if script.close_silently {
                    return;
                }
                idle_since = Instant::now();
                continue;
            }
        }
        let before = buf.len();
        if !read_more(&mut stream, &mut buf) {
            return;
        }
        let idle = buf.len() == before;
        if idle && buf.is_empty() && script.idle_close.is_some_and(|d| idle_since.elapsed() >= d) {
            return;
        }
    }
}
