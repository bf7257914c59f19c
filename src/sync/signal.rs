//! A single-threaded, set-once signal that any number of tasks can wait on.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

pub struct Signal<T: Clone> {
    inner: Rc<RefCell<(Option<T>, Vec<Waker>)>>,
}

impl<T: Clone> Clone for Signal<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Clone> Default for Signal<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Clone> Signal<T> {
    pub fn new() -> Self {
        Self {
            inner: Rc::new(RefCell::new((None, Vec::new()))),
        }
    }

    /// Sets the value (the first set wins) and wakes every waiter.
    pub fn set(&self, value: T) {
        let wakers = {
            let mut inner = self.inner.borrow_mut();
            if inner.0.is_some() {
                return;
            }
            inner.0 = Some(value);
            std::mem::take(&mut inner.1)
        };
        for w in wakers {
            w.wake();
        }
    }

    pub async fn wait(&self) -> T {
        poll_fn(|cx| {
            let mut inner = self.inner.borrow_mut();
            match &inner.0 {
                Some(v) => Poll::Ready(v.clone()),
                None => {
                    if !inner.1.iter().any(|w| w.will_wake(cx.waker())) {
                        inner.1.push(cx.waker().clone());
                    }
                    Poll::Pending
                }
            }
        })
        .await
    }
}
