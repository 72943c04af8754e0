//! The I/O floor of an HTTP/1.1 client on one core: the same keep-alive GET loop wrk runs
//! (N connections, one request in flight each, a fixed request, responses framed by
//! Content-Length), with no replay work: no timeline, no scheduling, no histograms.
//!
//! `glommio` runs it as kreplay's TLS pool does its I/O (a task per connection on a glommio
//! executor: a send syscall, a poll armed through io_uring, a recv syscall); `uring` runs it
//! as one loop over a raw io_uring ring (send syscall, receive as a ring operation, no
//! tasks); `glommio-ring` runs that loop as one task on a glommio executor, waiting on the
//! ring's fd, as kreplay's plain-TCP HTTP/1.1 pool does. The lab's `floor` section compares
//! them with wrk on the same nginx: what an engine built on each I/O model could reach at
//! best. Prints the responses completed.
//!
//! `burst` measures the floor of a paced replay's send lag instead: every `--period-us` it
//! wakes at an instant (a 1 ns-slack sleep, then a spin) and writes `--burst` requests on
//! as many idle connections, one `send` each, as one core must when that many requests
//! share a due instant; each request's lag is taken just before its `send`, as the
//! engine's is. It prints the lag percentiles of the first request (the wake error) and of
//! every request, and the mean cost of one `send`, as one JSON line.

use std::cell::Cell;
use std::io::Write;
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

/// The I/O model to measure.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Model {
    /// glommio tasks, one per connection (kreplay's engine).
    Glommio,
    /// One loop over a raw io_uring ring.
    Uring,
    /// Paced bursts of sends at due instants (see the module's comment).
    Burst,
    /// The raw io_uring loop as one task on a glommio executor.
    GlommioRing,
}

#[derive(Parser, Debug)]
#[command(about = "The HTTP/1.1 GET loop of wrk on one core, without replay work")]
struct Args {
    /// I/O model.
    model: Model,
    /// Target, http://127.0.0.1:PORT/path (loopback only).
    url: String,
    /// Requests to complete.
    #[arg(long, default_value_t = 200_000)]
    requests: usize,
    /// Connections.
    #[arg(long, default_value_t = 64)]
    conns: usize,
    /// Stop after this many seconds even if requests remain.
    #[arg(long, default_value_t = 60)]
    max_seconds: u64,
    /// `burst`: requests sharing each due instant (and connections).
    #[arg(long, default_value_t = 10)]
    burst: usize,
    /// `burst`: microseconds between due instants.
    #[arg(long, default_value_t = 1000)]
    period_us: u64,
}

/// Receive buffer per connection; a response must fit (nginx's small JSON does).
const BUF: usize = 16 * 1024;

fn main() -> Result<()> {
    let args = Args::parse();
    let (addr, path) = split_url(&args.url)?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: kreplay-floor\r\nAccept: application/json\r\n\r\n"
    )
    .into_bytes();
    let load = Load {
        addr,
        request,
        requests: args.requests,
        conns: args.conns,
        deadline: Instant::now() + Duration::from_secs(args.max_seconds),
    };
    let done = match args.model {
        Model::Glommio => run_glommio(load)?,
        Model::Uring => run_uring(&load)?,
        Model::GlommioRing => run_glommio_ring(load)?,
        Model::Burst => run_burst(&load, args.burst, Duration::from_micros(args.period_us))?,
    };
    println!("{done}");
    Ok(())
}

/// `http://HOST:PORT/path` → (`HOST:PORT`, `/path`); refuses anything but loopback.
fn split_url(url: &str) -> Result<(String, String)> {
    let rest = url
        .strip_prefix("http://")
        .with_context(|| format!("{url}: expected http://127.0.0.1:PORT/path"))?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if !addr.starts_with("127.0.0.1:") {
        bail!("{url}: the floor probe only talks to 127.0.0.1");
    }
    Ok((
        addr.to_string(),
        if path.is_empty() { "/" } else { path }.to_string(),
    ))
}

/// Length of the complete response at the start of `buf`, if it is all there.
fn complete_response(buf: &[u8]) -> Result<Option<usize>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let head = match response.parse(buf).context("malformed response head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let length = response
        .headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case("content-length"))
        .context("response without Content-Length")?;
    let length: usize = std::str::from_utf8(length.value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .context("bad Content-Length")?;
    if head + length > BUF {
        bail!(
            "response of {} bytes is larger than the probe's buffer",
            head + length
        );
    }
    Ok((buf.len() >= head + length).then_some(head + length))
}

/// Runs `work` on a glommio executor on this thread.
fn on_glommio(work: impl std::future::Future<Output = Result<usize>> + 'static) -> Result<usize> {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .make()
        .map_err(|e| anyhow::anyhow!("glommio executor: {e}"))?
        .run(work)
}

/// What a model runs: `requests` GETs over `conns` connections to `addr`, until `deadline`.
struct Load {
    addr: String,
    request: Vec<u8>,
    requests: usize,
    conns: usize,
    deadline: Instant,
}

fn run_glommio(load: Load) -> Result<usize> {
    let Load {
        addr,
        request,
        requests,
        conns,
        deadline,
    } = load;
    let request = Rc::new(request);
    on_glommio(async move {
        let left = Rc::new(Cell::new(requests));
        let done = Rc::new(Cell::new(0usize));
        let mut tasks = Vec::with_capacity(conns);
        for _ in 0..conns {
            let (left, done, addr, request) =
                (left.clone(), done.clone(), addr.clone(), request.clone());
            tasks.push(glommio::spawn_local(async move {
                let glommio_error = |e: glommio::GlommioError<()>| anyhow::anyhow!("{addr}: {e}");
                let mut s = glommio::net::TcpStream::connect(addr.as_str())
                    .await
                    .map_err(glommio_error)?;
                s.set_nodelay(true).map_err(glommio_error)?;
                let mut buf = vec![0u8; BUF];
                while left.get() > 0 && (left.get() % 1024 != 0 || Instant::now() < deadline) {
                    left.set(left.get() - 1);
                    s.write_all(&request).await?;
                    let mut have = 0;
                    loop {
                        let n = s.read(&mut buf[have..]).await?;
                        if n == 0 {
                            bail!("connection closed by the server");
                        }
                        have += n;
                        if complete_response(&buf[..have])?.is_some() {
                            break;
                        }
                    }
                    done.set(done.get() + 1);
                }
                Ok(())
            }));
        }
        for t in tasks {
            t.await?;
        }
        Ok(done.get())
    })
}

/// wrk's loop over a raw io_uring ring: a send syscall per request, receives as ring
/// operations into per-connection buffers.
struct RingLoop<'a> {
    streams: Vec<TcpStream>,
    bufs: &'static mut [Vec<u8>],
    have: Vec<usize>,
    ring: io_uring::IoUring,
    load: &'a Load,
    sent: usize,
    done: usize,
    in_flight: usize,
    completions: Vec<(usize, i32)>,
}

impl<'a> RingLoop<'a> {
    fn open(load: &'a Load) -> Result<RingLoop<'a>> {
        let (addr, conns) = (load.addr.as_str(), load.conns);
        let streams = (0..conns)
            .map(|_| {
                let s = TcpStream::connect(addr).with_context(|| format!("connect {addr}"))?;
                s.set_nodelay(true)?;
                Ok(s)
            })
            .collect::<Result<Vec<_>>>()?;
        let ring = io_uring::IoUring::builder()
            .setup_coop_taskrun()
            .build(2 * conns.next_power_of_two() as u32)
            .context("io_uring")?;
        let mut me = RingLoop {
            streams,
            // Leaked: the kernel may still own a buffer if the loop ends with receives in flight.
            bufs: Vec::leak(vec![vec![0u8; BUF]; conns]),
            have: vec![0; conns],
            ring,
            load,
            sent: 0,
            done: 0,
            in_flight: 0,
            completions: Vec::with_capacity(conns),
        };
        for i in 0..conns.min(load.requests) {
            me.arm(i, true)?;
            me.sent += 1;
            me.in_flight += 1;
        }
        Ok(me)
    }

    /// Writes the request (when `send`) and queues a receive into the buffer past `have`.
    fn arm(&mut self, i: usize, send: bool) -> Result<()> {
        use io_uring::{opcode, types};
        if send {
            (&self.streams[i]).write_all(&self.load.request)?;
        }
        let free = &mut self.bufs[i][self.have[i]..];
        let recv = opcode::Recv::new(
            types::Fd(self.streams[i].as_raw_fd()),
            free.as_mut_ptr(),
            free.len() as u32,
        )
        .build()
        .user_data(i as u64);
        // SAFETY: the buffer is leaked, so it outlives the operation, and it is only read
        // again after the operation's completion.
        unsafe { self.ring.submission().push(&recv) }.context("submission queue full")?;
        Ok(())
    }

    /// Handles the completions in the ring; returns how many there were.
    fn reap(&mut self) -> Result<usize> {
        self.completions.clear();
        self.completions.extend(
            self.ring
                .completion()
                .map(|c| (c.user_data() as usize, c.result())),
        );
        for k in 0..self.completions.len() {
            let (i, res) = self.completions[k];
            if res <= 0 {
                bail!(
                    "receive on connection {i}: {}",
                    if res == 0 {
                        "closed".to_string()
                    } else {
                        std::io::Error::from_raw_os_error(-res).to_string()
                    }
                );
            }
            self.have[i] += res as usize;
            match complete_response(&self.bufs[i][..self.have[i]])? {
                Some(_) => {
                    self.done += 1;
                    self.have[i] = 0;
                    let more = self.sent < self.load.requests
                        && (!self.sent.is_multiple_of(1024) || Instant::now() < self.load.deadline);
                    if more {
                        self.arm(i, true)?;
                        self.sent += 1;
                    } else {
                        self.in_flight -= 1;
                    }
                }
                None => self.arm(i, false)?,
            }
        }
        Ok(self.completions.len())
    }
}

fn run_uring(load: &Load) -> Result<usize> {
    let mut ring = RingLoop::open(load)?;
    while ring.in_flight > 0 {
        ring.ring.submit_and_wait(1).context("io_uring_enter")?;
        ring.reap()?;
    }
    Ok(ring.done)
}

/// The uring loop as one task on a glommio executor: it submits without waiting and, when
/// no completion is there, waits for the ring's fd to be readable through glommio.
fn run_glommio_ring(load: Load) -> Result<usize> {
    on_glommio(async move {
        let mut ring = RingLoop::open(&load)?;
        while ring.in_flight > 0 {
            ring.ring.submit().context("io_uring_enter")?;
            if ring.reap()? == 0 {
                glommio::io::readable(ring.ring.as_raw_fd()).await?;
            } else {
                futures_lite::future::yield_now().await;
            }
        }
        Ok(ring.done)
    })
}

/// How long before an instant the burst model stops sleeping and spins.
const SPIN: Duration = Duration::from_micros(100);

/// The `burst` model: see the module's comment. Returns the responses completed.
fn run_burst(load: &Load, burst: usize, period: Duration) -> Result<usize> {
    if burst == 0 || period.is_zero() {
        bail!("--burst and --period-us must be above 0");
    }
    // The engine's cores sleep with 1 ns of timer slack too.
    // SAFETY: PR_SET_TIMERSLACK takes a plain integer and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1, 0, 0, 0) };
    let mut conns = (0..burst)
        .map(|_| {
            let s =
                TcpStream::connect(&load.addr).with_context(|| format!("connect {}", load.addr))?;
            s.set_nodelay(true)?;
            Ok((s, vec![0u8; BUF], 0usize))
        })
        .collect::<Result<Vec<_>>>()?;
    let rounds = load.requests.div_ceil(burst);
    let mut wake = Vec::with_capacity(rounds);
    let mut lags = Vec::with_capacity(rounds * burst);
    let mut send_time = Duration::ZERO;
    let start = Instant::now() + Duration::from_millis(10);
    let mut done = 0;
    for round in 0..rounds {
        let due = start + period * round as u32;
        if Instant::now() >= load.deadline {
            break;
        }
        if let Some(early) = due.checked_duration_since(Instant::now() + SPIN) {
            std::thread::sleep(early);
        }
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        for (j, (conn, _, _)) in conns.iter_mut().enumerate() {
            let before = Instant::now();
            let lag = before.saturating_duration_since(due);
            if j == 0 {
                wake.push(lag);
            }
            lags.push(lag);
            conn.write_all(&load.request).context("send")?;
            send_time += before.elapsed();
        }
        for (conn, buf, filled) in &mut conns {
            loop {
                if let Some(len) = complete_response(&buf[..*filled])? {
                    buf.copy_within(len..*filled, 0);
                    *filled -= len;
                    break;
                }
                let n = std::io::Read::read(conn, &mut buf[*filled..]).context("recv")?;
                if n == 0 {
                    bail!("the server closed a connection");
                }
                *filled += n;
            }
            done += 1;
        }
    }
    let sends = lags.len().max(1) as u32;
    wake.sort_unstable();
    lags.sort_unstable();
    // One JSON line for the lab (`get`), before the count every model prints last.
    let line = serde_json::json!({
        "wakeErrorMicros": { "p50": micros(&wake, 0.50), "p99": micros(&wake, 0.99) },
        "sendLagMicros": {
            "p50": micros(&lags, 0.50),
            "p99": micros(&lags, 0.99),
            "p999": micros(&lags, 0.999),
        },
        "sendMicros": (send_time / sends).as_secs_f64() * 1e6,
    });
    println!("{line}");
    Ok(done)
}

/// The `q` quantile of `sorted`, in µs (nearest rank).
fn micros(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1e6
}
