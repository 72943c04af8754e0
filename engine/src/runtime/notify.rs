//! Single-core wake-ups without allocation: a one-waiter `Notify` (a flag and a waker slot).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Wakes one waiting task; a notification before the wait is kept (not lost).
#[derive(Debug, Default)]
pub struct Notify {
    set: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    /// Sets the flag and wakes the waiter, if any.
    pub fn notify(&self) {
        self.set.set(true);
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }

    /// Clears a pending notification.
    pub fn clear(&self) {
        self.set.set(false);
    }

    /// Whether a notification is pending.
    pub fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once notified (consuming the notification).
    pub fn notified(&self) -> Notified<'_> {
        Notified(self)
    }

    /// Resolves once notified, leaving the notification set (for one-way signals).
    pub fn signalled(&self) -> Signalled<'_> {
        Signalled(self)
    }
}

/// Future of `Notify::notified`.
#[derive(Debug)]
pub struct Notified<'a>(&'a Notify);

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.replace(false) {
            return Poll::Ready(());
        }
        register(&self.0.waker, cx);
        Poll::Pending
    }
}

/// Future of `Notify::signalled`.
#[derive(Debug)]
pub struct Signalled<'a>(&'a Notify);

impl Future for Signalled<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0.set.get() {
            return Poll::Ready(());
        }
        register(&self.0.waker, cx);
        Poll::Pending
    }
}

fn register(slot: &RefCell<Option<Waker>>, cx: &mut Context<'_>) {
    let mut slot = slot.borrow_mut();
    match slot.as_ref() {
        Some(w) if w.will_wake(cx.waker()) => {}
        _ => *slot = Some(cx.waker().clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::future;

    #[test]
    fn notification_before_wait_is_kept_and_consumed() {
        let n = Notify::default();
        n.notify();
        future::block_on(n.notified());
        assert!(!n.is_set());
        assert!(future::block_on(future::poll_once(n.notified())).is_none());
        n.notify();
        future::block_on(n.signalled());
        assert!(n.is_set());
    }
}
