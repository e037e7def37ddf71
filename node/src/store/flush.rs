//! Group commit: one flush serves every submission waiting for it.
//!
//! Two kinds of wait: [`Flusher::wait_logged`] for events, which the log
//! alone makes durable (sled's index of them is derived and replayed from
//! the log after a crash), and [`Flusher::wait`] for everything else
//! (accounts, settings, read positions), which needs sled's own flush.
//! A flush syncs the log; it flushes sled too when a waiter needs it, when
//! a room wrote something the log cannot give back, or once
//! [`INDEX_FLUSH_EVERY`] has passed (so a replay after a crash stays
//! short).
//!
//! A full flush: `fdatasync` of the log segments written since the last one;
//! the erasure intents whose erasures the sync made durable are cleared;
//! the log position covered is recorded; sled's flush makes all of that
//! and every index write before it durable; then the content of deletions
//! now durable is erased (durable with the next flush, and redone on open
//! from the intents if a crash comes first). Sealed search windows are
//! written before sled's flush.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::log::{Loc, Log};
use super::search::{self, SharedSearch};
use crate::metrics::StoreMetrics;

use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    /// Tickets handed out (each a write applied before asking).
    requested: u64,
    /// Every ticket up to this one is in the durable log.
    durable: u64,
    /// The newest ticket that needs sled flushed too.
    full_wanted: u64,
    /// Every ticket up to this one is durable in sled too.
    full_durable: u64,
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
    /// A room wrote to sled what the log cannot give back.
    index_dirty: Arc<AtomicBool>,
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
        let index_dirty = Arc::new(AtomicBool::new(false));
        let parts = Parts {
            index_dirty: index_dirty.clone(),
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
            index_dirty,
            thread,
            metrics,
        }
    }

    /// Blocks until everything applied before the call is durable, sled's
    /// writes included.
    pub fn wait(&self) -> Result<()> {
        self.wait_for(true)
    }

    /// Blocks until every event appended before the call is in the
    /// durable log (enough to acknowledge it).
    pub fn wait_logged(&self) -> Result<()> {
        self.wait_for(false)
    }

    /// Asks the next flush to flush sled too: something was written there
    /// that the log cannot give back.
    pub(crate) fn mark_index_dirty(&self) {
        self.index_dirty.store(true, Ordering::Release);
    }

    fn wait_for(&self, full: bool) -> Result<()> {
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
        if full {
            st.full_wanted = ticket;
        }
        cv.notify_all();
        let done = |st: &State| {
            if full {
                st.full_durable >= ticket
            } else {
                st.durable >= ticket
            }
        };
        while !done(&st) && st.failed.is_none() {
            st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
        }
        self.metrics
            .durable_wait_seconds
            .observe(started.elapsed().as_secs_f64());
        match &st.failed {
            Some(reason) if !done(&st) => Err(Error::Flush {
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

/// The longest sled goes unflushed while events are written.
pub(crate) const INDEX_FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What a flush touches.
struct Parts {
    index_dirty: Arc<AtomicBool>,
    db: sled::Db,
    data: sled::Tree,
    meta: sled::Tree,
    log: Arc<Log>,
    search: SharedSearch,
}

impl Parts {
    /// One flush, of sled too if `full`; `erased` are the erasures done
    /// since sled's last flush.
    fn flush(&self, full: bool, erased: &mut Vec<Loc>) -> std::result::Result<(), String> {
        let applied = self.log.applied();
        self.log.sync().map_err(|e| e.to_string())?;
        if !full {
            // The deletions below `applied` are durable now; their intents
            // are cleared at the next full flush.
            erased.extend(self.log.erase_due(applied).map_err(|e| e.to_string())?);
            return Ok(());
        }
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
    let mut last_full = Instant::now();
    loop {
        let (target, from, wanted) = {
            let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
            while st.requested == st.durable && !st.stopping {
                st = cv.wait(st).unwrap_or_else(|p| p.into_inner());
            }
            if st.requested == st.durable && st.stopping {
                drop(st);
                // A clean close leaves nothing to replay or gather again
                // at the next open.
                search::seal_all(&parts.search, parts.log.applied());
                if let Err(e) = parts.flush(true, &mut erased) {
                    tracing::warn!(error = %e, "the last flush on close failed; the next open replays from the log");
                }
                return;
            }
            (st.requested, st.durable, st.full_wanted > st.full_durable)
        };
        let full = wanted
            || parts.index_dirty.swap(false, Ordering::AcqRel)
            || last_full.elapsed() >= INDEX_FLUSH_EVERY;
        // Every ticket up to `target` was taken after its write was
        // applied, so this flush covers them all.
        let started = Instant::now();
        let result = parts.flush(full, &mut erased);
        if full {
            last_full = Instant::now();
        }
        metrics
            .flush_seconds
            .observe(started.elapsed().as_secs_f64());
        metrics.flush_batch.observe((target - from) as f64);
        let mut st = lock.lock().unwrap_or_else(|p| p.into_inner());
        match result {
            Ok(_) => {
                st.durable = target;
                if full {
                    st.full_durable = target;
                }
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
