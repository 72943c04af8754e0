//! The pool's loop: one glommio task per core that starts due requests on free
//! connections, submits the ring and handles its completions.

use std::rc::Rc;
use std::time::Duration;

use futures_lite::future;

use super::super::CoreCtx;

/// Runs the core's HTTP/1.1 pool until its input is done and nothing is in flight.
pub(in crate::runtime) async fn drive(ctx: Rc<CoreCtx>) {
    loop {
        let (progressed, in_flight, fd) = {
            let mut guard = ctx.ring.borrow_mut();
            let Some(pool) = guard.as_mut() else { return };
            let reaped = pool.reap(&ctx);
            let started = pool.start_jobs(&ctx);
            match pool.ring.submit() {
                Ok(()) => {}
                // The kernel's completion backlog is full: reaping makes room.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EBUSY | libc::EAGAIN | libc::EINTR)
                    ) => {}
                Err(e) => {
                    // The ring itself failed (not one request): nothing more can be sent or
                    // received on this core; what is in flight and what comes is recorded
                    // as failed, so the run still ends with a complete report.
                    tracing::error!("io_uring submit failed: {e}");
                    pool.abandon(&ctx, e);
                }
            }
            if pool.is_done(&ctx) {
                return;
            }
            let progressed = reaped + started > 0 || pool.ring.has_completions();
            (progressed, pool.busy() > 0, pool.ring.fd())
        };
        if progressed {
            // Let the dispatcher, the tick and the WATCHes run between batches.
            future::yield_now().await;
        } else if in_flight {
            let readable = async {
                if let Err(e) = glommio::io::readable(fd).await {
                    // Never seen; polling every 100 µs instead keeps the run going.
                    tracing::debug!("waiting on the io_uring fd: {e}");
                    glommio::timer::sleep(Duration::from_micros(100)).await;
                }
            };
            future::or(readable, ctx.ring_wake.notified()).await;
        } else {
            ctx.ring_wake.notified().await;
        }
    }
}
