//! The only thing workers share besides immutable record chunks: one bounded, lock-free inbox
//! per worker. A message carries a whole fetch's worth of records, never a single event, so the
//! cross-thread wake (an eventfd write inside monoio) is paid once per batch.
//!
//! Policy when an inbox is full: the sender waits (yielding) until there is room. Senders are
//! partition owners' fetch loops, so a worker that cannot keep up slows the fetches feeding it
//! instead of growing memory; slow *clients* never get here (their per-stream budget ends them).
//!
//! Generic over the message so that it sits below the fan-out, which names its own
//! (`fanout::message::Mesh`).

use std::future::poll_fn;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use crossbeam_queue::ArrayQueue;

/// Messages an inbox holds before senders wait.
pub const INBOX_CAPACITY: usize = 16 * 1024;

struct Inbox<M> {
    queue: ArrayQueue<M>,
    waker: AtomicWaker,
}

pub struct Mesh<M> {
    inboxes: Vec<Inbox<M>>,
}

impl<M> Mesh<M> {
    pub fn new(workers: usize) -> Arc<Self> {
        Arc::new(Self {
            inboxes: (0..workers)
                .map(|_| Inbox {
                    queue: ArrayQueue::new(INBOX_CAPACITY),
                    waker: AtomicWaker::new(),
                })
                .collect(),
        })
    }

    pub fn workers(&self) -> usize {
        self.inboxes.len()
    }

    /// Tries to enqueue; gives the message back when the inbox is full.
    pub fn try_send(&self, to: usize, msg: M) -> Result<(), M> {
        let inbox = &self.inboxes[to];
        inbox.queue.push(msg)?;
        inbox.waker.wake();
        Ok(())
    }

    /// Enqueues, waiting while the inbox is full.
    pub async fn send(&self, to: usize, mut msg: M) {
        loop {
            match self.try_send(to, msg) {
                Ok(()) => return,
                Err(back) => {
                    msg = back;
                    monoio::time::sleep(Duration::from_micros(200)).await;
                }
            }
        }
    }

    /// Waits until `me`'s inbox has messages, then moves them all into `out`.
    pub async fn recv_all(&self, me: usize, out: &mut Vec<M>) {
        let inbox = &self.inboxes[me];
        poll_fn(|cx| {
            inbox.waker.register(cx.waker());
            let mut got = false;
            while let Some(m) = inbox.queue.pop() {
                out.push(m);
                got = true;
            }
            if got {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await
    }
}
