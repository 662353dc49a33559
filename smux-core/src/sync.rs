//! The lock and reference count the driver, the session and the stream handles share: std's,
//! or loom's under `cfg(loom)`, so that the model check in `tests/loom.rs` explores this very
//! code. `cfg(loom)` is set only by hand, for that check:
//! `RUSTFLAGS="--cfg loom" cargo test -p smux-core --test loom --release --target-dir target/loom`.

#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Mutex, MutexGuard};

/// A lock that is sometimes only tried: std's `Mutex`, or under `cfg(loom)` a flag in front
/// of loom's, because loom reports a contended `try_lock` as a deadlock
/// (tokio-rs/loom#376). Lock and try-lock recover a poisoned lock: the holder's panic
/// already ended the session through the session's own lock.
#[derive(Debug)]
pub(crate) struct TryMutex<T> {
    #[cfg(loom)]
    busy: loom::sync::atomic::AtomicBool,
    inner: Mutex<T>,
}

impl<T> TryMutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Self {
            #[cfg(loom)]
            busy: loom::sync::atomic::AtomicBool::new(false),
            inner: Mutex::new(value),
        }
    }
}

#[cfg(not(loom))]
impl<T> TryMutex<T> {
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.inner.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }
}

#[cfg(loom)]
impl<T> TryMutex<T> {
    pub(crate) fn lock(&self) -> TryGuard<'_, T> {
        while !self.try_flag() {
            loom::thread::yield_now();
        }
        self.guard()
    }

    pub(crate) fn try_lock(&self) -> Option<TryGuard<'_, T>> {
        self.try_flag().then(|| self.guard())
    }

    fn try_flag(&self) -> bool {
        use loom::sync::atomic::Ordering;
        self.busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    fn guard(&self) -> TryGuard<'_, T> {
        TryGuard {
            guard: Some(self.inner.lock().unwrap_or_else(|p| p.into_inner())),
            busy: &self.busy,
        }
    }
}

/// Under `cfg(loom)`: the guard of a [`TryMutex`], which clears its flag after unlocking.
#[cfg(loom)]
pub(crate) struct TryGuard<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    busy: &'a loom::sync::atomic::AtomicBool,
}

#[cfg(loom)]
impl<T> std::ops::Deref for TryGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held until drop")
    }
}

#[cfg(loom)]
impl<T> std::ops::DerefMut for TryGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held until drop")
    }
}

#[cfg(loom)]
impl<T> Drop for TryGuard<'_, T> {
    fn drop(&mut self) {
        drop(self.guard.take());
        self.busy
            .store(false, loom::sync::atomic::Ordering::Release);
    }
}
