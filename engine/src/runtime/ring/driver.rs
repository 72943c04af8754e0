//! The pool's loop: one glommio task per core that starts due requests on free
//! connections, submits the ring and handles its completions.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_lite::future;

use super::super::CoreCtx;

/// Longest block in the pool's ring: a bound in case the executor has no timer at all.
const MAX_BLOCK: Duration = Duration::from_millis(10);

/// Shortest block worth making: nearer the executor's next timer, the wait goes through
/// glommio, which fires it.
const MIN_BLOCK: Duration = Duration::from_micros(20);

/// How long the driver may block the thread in its own ring while requests are in flight,
/// given the executor's next timer; `None` when it must wait through glommio instead.
///
/// Waiting through glommio costs several system calls per wait on top of ours (it re-arms
/// its preemption timers and polls the ring's fd with an operation on its own ring).
/// Blocking in the ring is sound only while nothing else on this core can need the thread:
/// other tasks become runnable only through the driver (which yields to them after
/// progress), a timer (the block ends before the next one is due: the dispatcher's next
/// due instant, the tick, stop polls), or glommio I/O (none while this core has no WATCH
/// and no worker).
fn block_limit(glommio_io: bool, next_timer: Option<Instant>, now: Instant) -> Option<Duration> {
    if glommio_io {
        return None;
    }
    let limit = next_timer.map_or(MAX_BLOCK, |t| t.saturating_duration_since(now));
    (limit >= MIN_BLOCK).then(|| limit.min(MAX_BLOCK))
}

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
            // glommio fires timers only when every task waits (or at its preemption, up to
            // 100 ms later): once one is due, the driver waits through glommio even after
            // progress.
            let next_timer = glommio::timer::next_deadline();
            let now = Instant::now();
            let timer_due = next_timer.is_some_and(|t| t <= now);
            let mut progressed = reaped + started > 0 || pool.ring.has_completions();
            if !progressed && !timer_due && pool.busy() > 0 {
                let glommio_io = !ctx.watches.borrow().is_empty() || !ctx.slots.borrow().is_empty();
                if let Some(limit) = block_limit(glommio_io, next_timer, now) {
                    progressed = pool.ring.wait(limit);
                }
            }
            (progressed && !timer_due, pool.busy() > 0, pool.ring.fd())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_until_just_before_the_next_timer() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        assert_eq!(block_limit(false, Some(now + ms(3)), now), Some(ms(3)));
        assert_eq!(
            block_limit(false, Some(now + ms(500)), now),
            Some(MAX_BLOCK)
        );
        assert_eq!(block_limit(false, None, now), Some(MAX_BLOCK));
        // A timer due (or nearly): glommio must run it.
        assert_eq!(block_limit(false, Some(now + MIN_BLOCK / 2), now), None);
        assert_eq!(block_limit(false, now.checked_sub(ms(1)), now), None);
        // glommio drives sockets of this core: never block.
        assert_eq!(block_limit(true, Some(now + ms(3)), now), None);
    }

    #[test]
    fn the_next_timer_is_the_executors_earliest() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                assert_eq!(glommio::timer::next_deadline(), None);
                let before = Instant::now();
                let late = glommio::spawn_local(glommio::timer::sleep(Duration::from_secs(5)));
                let soon = glommio::spawn_local(glommio::timer::sleep(Duration::from_millis(40)));
                future::yield_now().await;
                let next = glommio::timer::next_deadline().expect("two timers pending");
                assert!(next >= before + Duration::from_millis(40), "{next:?}");
                assert!(next < before + Duration::from_secs(5), "{next:?}");
                soon.await;
                drop(late);
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
