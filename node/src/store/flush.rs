//! Group commit: one flush serves every submission waiting for it.
//!
//! A flush: `fdatasync` of the log segments written since the last one;
//! the erasure intents whose erasures the sync made durable are cleared;
//! the log position covered is recorded; sled's flush makes all of that
//! and every index write before it durable; then the content of deletions
//! now durable is erased (durable with the next flush, and redone on open
//! from the intents if a crash comes first). Sealed search windows are
//! written before sled's flush.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use super::log::{Loc, Log};
use super::search::{self, SharedSearch};
use crate::metrics::StoreMetrics;

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out (each a write applied before asking).
    requested: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A failed flush: the store must not acknowledge anything after it.
    failed: Option<String>,
    /// Flushes done and tickets they covered (for the flush batch metric).
    flushes: u64,
    stopping: bool,
}

/// The flushing thread and the waiters' shared state.
#[derive(Debug)]
pub struct Flusher {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
    metrics: StoreMetrics,
}

impl Flusher {
    pub(crate) fn start(
        db: sled::Db,
        data: sled::Tree,
        meta: sled::Tree,
        log: Arc<Log>,
        search: SharedSearch,
    ) -> Flusher {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let s = shared.clone();
        let metrics = StoreMetrics::default();
        let m = metrics.clone();
        let parts = Parts {
            db,
            data,
            meta,
            log,
            search,
        };
        let thread = std::thread::Builder::new()
            .name("confab-flush".into())
            .spawn(move || run(parts, s, m))
            .ok();
        Flusher {
            shared,
            thread,
            metrics,
        }
    }

    /// Blocks until everything applied before the call is durable.
    pub fn wait(&self) -> Result<()> {
        let started = Instant::now();
        let (lock, cv) = &*self.shared;
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.thread.is_none() {
            return Err(Error::Flush {
                reason: "the flush thread could not start".into(),
            });
        }
        st.requested += 1;
        let ticket = st.requested;
        cv.notify_all();
        while st.durable < ticket && st.failed.is_none() {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        self.metrics
            .durable_wait_seconds
            .observe(started.elapsed().as_secs_f64());
        match &st.failed {
            Some(reason) if st.durable < ticket => Err(Error::Flush {
                reason: reason.clone(),
            }),
            _ => Ok(()),
        }
    }

    /// The storage metrics (shared by clones).
    pub fn metrics(&self) -> &StoreMetrics {
        &self.metrics
    }

    /// (flushes done, tickets served): their ratio is the mean group size.
    pub fn stats(&self) -> (u64, u64) {
        let st = self.shared.0.lock().unwrap_or_else(|p| p.into_inner());
        (st.flushes, st.durable)
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        {
            let (lock, cv) = &*self.shared;
            let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
            st.stopping = true;
            cv.notify_all();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a flush touches.
struct Parts {
    db: sled::Db,
    data: sled::Tree,
    meta: sled::Tree,
    log: Arc<Log>,
    search: SharedSearch,
}

impl Parts {
    /// One flush; `erased` are the erasures done after the last one.
    fn flush(&self, erased: &mut Vec<Loc>) -> std::result::Result<(), String> {
        let applied = self.log.applied();
        self.log.sync().map_err(|e| e.to_string())?;
        for loc in erased.drain(..) {
            self.data
                .remove(super::erase_key(&loc))
                .map_err(|e| e.to_string())?;
        }
        self.meta
            .insert(super::LOG_CHECKED, &applied.to_be_bytes())
            .map_err(|e| e.to_string())?;
        let windows = search::sealed(&self.search);
        search::write(&windows, &self.data, &self.meta).map_err(|e| e.to_string())?;
        self.db.flush().map_err(|e| e.to_string())?;
        search::forget(&self.search, &windows);
        *erased = self.log.erase_due(applied).map_err(|e| e.to_string())?;
        Ok(())
    }
}

fn run(parts: Parts, shared: Arc<(Mutex<State>, Condvar)>, metrics: StoreMetrics) {
    let (lock, cv) = &*shared;
    let mut erased = Vec::new();
    loop {
        let (target, from) = {
            let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
            while st.requested == st.durable && !st.stopping {
                st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.requested == st.durable && st.stopping {
                return;
            }
            (st.requested, st.durable)
        };
        // Every ticket up to `target` was taken after its write was
        // applied, so this flush covers them all.
        let started = Instant::now();
        let result = parts.flush(&mut erased);
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.flush_batch.observe((target - from) as f64);
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                st.durable = target;
                st.flushes += 1;
            }
            Err(e) => {
                st.failed = Some(e);
                cv.notify_all();
                return;
            }
        }
        cv.notify_all();
    }
}
