//! A core's context: the state every part of one core's replay shares (the schedule's
//! queue, the pools, the metrics, the credentials), on one thread, in `Cell`s and `RefCell`s.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use glommio::task::JoinHandle;
use preprocess::profile::Verb;

use super::conn::{self, Conn};
use super::notify::Notify;
use super::queue::ReadyQueue;
use super::{request_url, ring, worker, Shared};
use crate::metrics::{CoreMetrics, SecondCounts};

/// Per-worker state the core can see (to wake it, time it out or cancel it).
#[derive(Debug, Default)]
pub(crate) struct WorkerControl {
    /// Wakes the worker when work is queued.
    pub(super) wake: Notify,
    /// Aborts the request in flight.
    pub(super) cancel: Notify,
    /// Why `cancel` fired.
    pub(super) cancel_reason: Cell<CancelReason>,
    /// When the request in flight started (None: idle).
    pub(super) busy_since: Cell<Option<Instant>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum CancelReason {
    #[default]
    Timeout,
    Interrupted,
}

/// The core's shared state.
pub(crate) struct CoreCtx {
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
    pub(super) start: Instant,
    pub(super) queue: RefCell<ReadyQueue>,
    pub(super) idle: RefCell<Vec<Rc<WorkerControl>>>,
    pub(super) controls: RefCell<Vec<Rc<WorkerControl>>>,
    pub(super) workers: RefCell<Vec<JoinHandle<()>>>,
    pub(super) watches: RefCell<Vec<JoinHandle<()>>>,
    pub(super) watch_stops: RefCell<Vec<Rc<Notify>>>,
    pub(super) metrics: RefCell<CoreMetrics>,
    pub(super) input_done: Cell<bool>,
    pub(super) space: Notify,
    /// Most requests in flight (workers, or ring slots).
    pub(super) max_in_flight: usize,
    /// Most HTTP/2 connections of the pool (more only when every stream is taken).
    pub(super) max_conns: usize,
    pub(super) conns_opened: Cell<u64>,
    pub(super) h2_pool: Rc<conn::H2Pool>,
    /// One HTTP/2 connect at a time, so workers and WATCHes that find no free stream share
    /// the connection the first of them opens.
    pub(super) h2_connect: glommio::sync::Semaphore,
    /// The server answered a WATCH connection with HTTP/1.1: WATCHes use dedicated connections.
    pub(super) watch_http1: Cell<bool>,
    /// The `User-Agent` of this core's HTTP/2 requests: a copy with bytes of its own, so that
    /// cloning it per request counts references on this core only (the template's value is
    /// shared by every core).
    pub(super) user_agent: http::HeaderValue,
    /// The requests' credentials as read last (`reread_credentials`).
    pub(super) auth: RefCell<Option<super::h2_request::Authorization>>,
    pub(super) finished: Cell<bool>,
    pub(super) last_end: Cell<Instant>,
    /// The connections the core's loop drives over its own io_uring ring; `None`: workers.
    pub(super) ring: RefCell<Option<ring::LoopPool>>,
    /// Wakes the ring pool's loop (work queued, cancellations, end of input).
    pub(super) ring_wake: Notify,
    /// Due requests were released and none of them has been written yet: the next send
    /// measures the wake error.
    pub(super) awaiting_first_send: Cell<bool>,
    /// Due requests dropped unsent because of a stop (set by whoever reads the schedule).
    pub(super) unsent_on_stop: Cell<u64>,
    /// Time spent spinning for due instants.
    pub(super) spun: Cell<Duration>,
}

/// What differs between the context of a core and that of the WATCH lane.
pub(crate) struct CtxShape {
    /// The core's index (`usize::MAX`: the WATCH lane).
    pub index: usize,
    /// The replay's start.
    pub start: Instant,
    /// Room reserved in the ready queue.
    pub queue_cap: usize,
    pub max_in_flight: usize,
    pub max_conns: usize,
    /// Connections opened before the start (prewarmed, the preflight's).
    pub conns_opened: u64,
    pub h2_pool: Rc<conn::H2Pool>,
}

impl CoreCtx {
    /// The context of a replay that starts at `shape.start`: metrics reserved for the whole
    /// timeline (so recording a send does not allocate), the credentials read once.
    pub(crate) fn new(shared: Arc<Shared>, shape: CtxShape) -> Rc<CoreCtx> {
        let mut metrics =
            CoreMetrics::new(shared.source.info().label_count, shared.settings.raw_data);
        let span = shared
            .settings
            .scale
            .offset(shared.source.info().duration_us);
        metrics.sent_per_second = SecondCounts::with_seconds(span.as_secs() as usize + 2);
        metrics.per_second = crate::metrics::per_second::PerSecondSeries::new(span, shape.start);
        let auth = shared
            .target
            .auth
            .as_ref()
            .and_then(|a| a.authorization().ok().flatten())
            .map(super::h2_request::Authorization::new);
        Rc::new(CoreCtx {
            index: shape.index,
            start: shape.start,
            queue: RefCell::new(ReadyQueue::new(shape.queue_cap, shape.max_in_flight)),
            idle: RefCell::new(Vec::with_capacity(shape.max_in_flight)),
            controls: RefCell::new(Vec::with_capacity(shape.max_in_flight)),
            workers: RefCell::new(Vec::with_capacity(shape.max_in_flight)),
            watches: RefCell::new(Vec::new()),
            watch_stops: RefCell::new(Vec::new()),
            metrics: RefCell::new(metrics),
            input_done: Cell::new(false),
            space: Notify::default(),
            max_in_flight: shape.max_in_flight,
            max_conns: shape.max_conns,
            conns_opened: Cell::new(shape.conns_opened),
            h2_pool: shape.h2_pool,
            h2_connect: glommio::sync::Semaphore::new(1),
            watch_http1: Cell::new(false),
            user_agent: shared.template.user_agent_copy(),
            auth: RefCell::new(auth),
            finished: Cell::new(false),
            last_end: Cell::new(shape.start),
            ring: RefCell::new(None),
            ring_wake: Notify::default(),
            awaiting_first_send: Cell::new(false),
            unsent_on_stop: Cell::new(0),
            spun: Cell::new(Duration::ZERO),
            shared,
        })
    }
    pub(super) fn stop_requested(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    /// Hands a due request to the pool: wakes an idle worker, or opens a connection.
    pub(super) fn wake_or_grow(self: &Rc<Self>, pushed: usize) {
        if self.ring.borrow().is_some() {
            // The ring pool takes the queue's requests and grows itself.
            self.ring_wake.notify();
            return;
        }
        let mut woken = 0;
        while woken < pushed {
            let Some(control) = self.idle.borrow_mut().pop() else {
                break;
            };
            control.wake.notify();
            woken += 1;
        }
        let waiting = self.queue.borrow().len();
        let mut open = self.controls.borrow().len();
        let mut extra = waiting.saturating_sub(woken);
        while extra > 0 && open < self.max_in_flight {
            self.spawn_worker(None);
            open += 1;
            extra -= 1;
        }
    }

    pub(super) fn spawn_worker(self: &Rc<Self>, conn: Option<Conn>) {
        let control = Rc::new(WorkerControl::default());
        self.controls.borrow_mut().push(control.clone());
        let task = glommio::spawn_local(worker::run(self.clone(), control, conn)).detach();
        self.workers.borrow_mut().push(task);
    }

    /// Wakes every idle worker (they re-check whether the run is over).
    pub(super) fn wake_all_idle(&self) {
        self.ring_wake.notify();
        let idle: Vec<Rc<WorkerControl>> = self.idle.borrow_mut().drain(..).collect();
        for control in idle {
            control.wake.notify();
        }
    }

    /// Cancels every request in flight with `reason`.
    pub(super) fn cancel_busy(&self, reason: CancelReason) {
        if let Some(pool) = self.ring.borrow_mut().as_mut() {
            pool.cancel(reason, None);
            self.ring_wake.notify();
        }
        for control in self.controls.borrow().iter() {
            if control.busy_since.get().is_some() {
                control.cancel_reason.set(reason);
                control.cancel.notify();
            }
        }
    }

    /// The runner (partition) of global run `run`.
    pub(super) fn runner_of(&self, run: u32) -> u32 {
        self.shared
            .source
            .runs()
            .get(run as usize)
            .map_or(0, |r| r.runner)
    }

    /// Records that a request due at `due` had its first byte written at `sent_at`.
    pub(super) fn record_send(&self, sent_at: Instant, due: Instant) {
        // Releasing and readying go ahead of an instant; the send itself never does.
        debug_assert!(sent_at >= due, "a request was sent before its due instant");
        let lag = sent_at.saturating_duration_since(due);
        let mut m = self.metrics.borrow_mut();
        if self.awaiting_first_send.replace(false) {
            m.record_wake_error(lag);
        }
        m.record_send(lag, sent_at.saturating_duration_since(self.start));
    }

    /// Encodes `parts` as an HTTP/1.1 request into `buf`, with the current credentials.
    pub(super) fn encode_request(&self, buf: &mut Vec<u8>, parts: &crate::source::RequestView<'_>) {
        let auth = self.auth.borrow();
        self.shared.template.encode(
            buf,
            parts.method,
            parts.target,
            parts.body_kind,
            parts.body,
            auth.as_ref().map(|a| a.text()),
        );
    }

    /// Reads the credentials again (a token file or exec plugin may have renewed them); a
    /// read that fails keeps the last ones.
    pub(super) fn reread_credentials(&self) {
        if let Some(a) = self.shared.target.auth.as_ref() {
            if let Ok(v) = a.authorization() {
                *self.auth.borrow_mut() = v.map(super::h2_request::Authorization::new);
            }
        }
    }

    /// Hints the caches about what the next requests will read (`ReadyQueue::prefetch_upcoming`).
    pub(super) fn prefetch_upcoming(&self) {
        self.queue.borrow().prefetch_upcoming(&*self.shared.source);
    }

    /// The request URL for error records: base URL + target, as kperf shows it.
    pub(super) fn request_url(&self, target: &[u8], verb: Verb) -> String {
        let mut url = self.shared.target.base_url.clone();
        request_url::push_request_target(&mut url, &String::from_utf8_lossy(target), verb);
        url
    }
}
