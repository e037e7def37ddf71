//! Token buckets for the gateway's rate limits: requests per user (or per
//! address before sign-in), login attempts per user name and per address.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Buckets kept before idle (full) ones are forgotten.
const BUCKETS_MAX: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets by key, each holding up to `per_minute` tokens and
/// refilling at that rate.
#[derive(Debug)]
pub struct Limiter {
    per_minute: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    /// Buckets of `per_minute` tokens.
    pub fn new(per_minute: u32) -> Limiter {
        Limiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key`; `Err(ms)` says how long until one is there.
    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() >= BUCKETS_MAX {
            let rate = self.per_minute;
            buckets.retain(|_, b| {
                b.tokens + now.duration_since(b.at).as_secs_f64() / 60.0 * rate < rate
            });
        }
        let b = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64() / 60.0;
        b.tokens = (b.tokens + elapsed * self.per_minute).min(self.per_minute);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err((((1.0 - b.tokens) / self.per_minute) * 60_000.0).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_refill_at_their_rate() {
        let l = Limiter::new(60);
        let t = Instant::now();
        for _ in 0..60 {
            assert!(l.take("a", t).is_ok());
        }
        let wait = l.take("a", t).unwrap_err();
        assert!((900..=1000).contains(&wait), "{wait}");
        assert!(l.take("b", t).is_ok(), "keys are independent");
        assert!(l.take("a", t + Duration::from_millis(1000)).is_ok());
        assert!(l.take("a", t + Duration::from_millis(1000)).is_err());
    }
}
