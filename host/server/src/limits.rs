//! Per-tenant limits on the tenant API: a semaphore for concurrent calls and a token bucket
//! for the request rate, one of each per tenant, so a noisy tenant only ever waits on itself.

use crate::config::TenantLimits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds a client is told to wait after hitting the concurrency cap: calls are short, so
/// a slot is usually free again within a second.
pub const CONCURRENCY_RETRY_AFTER_SECS: u64 = 1;

/// Why a request was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The tenant used up its request rate; retry after this many seconds.
    Rate { retry_after_secs: u64 },
    /// The tenant has its maximum of calls in flight.
    Concurrency,
}

impl Refusal {
    pub fn retry_after_secs(self) -> u64 {
        match self {
            Refusal::Rate { retry_after_secs } => retry_after_secs,
            Refusal::Concurrency => CONCURRENCY_RETRY_AFTER_SECS,
        }
    }
}

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(burst),
            last: now,
            rate,
            burst: f64::from(burst),
        }
    }

    /// Takes one token at `now`, or says how many whole seconds until one is there.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), u64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = self.last.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - self.tokens) / self.rate).ceil();
            Err(if wait.is_finite() && wait >= 1.0 {
                wait as u64
            } else {
                1
            })
        }
    }
}

#[derive(Debug)]
struct Slot {
    calls: Arc<Semaphore>,
    bucket: Mutex<Bucket>,
}

/// The limits of every tenant seen so far.
#[derive(Debug)]
pub struct TenantLimiter {
    limits: TenantLimits,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
}

impl TenantLimiter {
    pub fn new(limits: TenantLimits) -> TenantLimiter {
        TenantLimiter {
            limits,
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, tenant: &str) -> Arc<Slot> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots
            .entry(tenant.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    calls: Arc::new(Semaphore::new(self.limits.max_concurrent_calls as usize)),
                    bucket: Mutex::new(Bucket::new(
                        self.limits.requests_per_second,
                        self.limits.burst,
                        Instant::now(),
                    )),
                })
            })
            .clone()
    }

    /// Admits one call of `tenant`: the permit must be held until the call (including its
    /// streamed response) ends.
    pub fn admit(&self, tenant: &str) -> Result<OwnedSemaphorePermit, Refusal> {
        let slot = self.slot(tenant);
        // Concurrency first, so a refused call does not also spend a rate token.
        let permit = slot
            .calls
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Concurrency)?;
        let mut bucket = slot.bucket.lock().unwrap_or_else(|p| p.into_inner());
        bucket
            .take(Instant::now())
            .map_err(|retry_after_secs| Refusal::Rate { retry_after_secs })?;
        Ok(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_a_burst_then_refills() {
        let t0 = Instant::now();
        let mut b = Bucket::new(2.0, 3, t0);
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(1));
        // Half a second at 2/s gives one token back.
        assert!(b.take(t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(t0 + Duration::from_millis(500)).is_err());
        // Never more than the burst.
        let later = t0 + Duration::from_secs(100);
        for _ in 0..3 {
            assert!(b.take(later).is_ok());
        }
        assert!(b.take(later).is_err());
    }

    #[test]
    fn slow_rates_ask_for_a_long_wait() {
        let t0 = Instant::now();
        let mut b = Bucket::new(0.01, 1, t0);
        assert!(b.take(t0).is_ok());
        assert_eq!(b.take(t0), Err(100));
    }

    #[test]
    fn concurrency_is_capped_per_tenant() {
        let limiter = TenantLimiter::new(TenantLimits {
            max_concurrent_calls: 2,
            requests_per_second: 1000.0,
            burst: 1000,
        });
        let a1 = limiter.admit("a").unwrap();
        let _a2 = limiter.admit("a").unwrap();
        assert_eq!(limiter.admit("a").unwrap_err(), Refusal::Concurrency);
        // Another tenant is not affected by a's load.
        let _b1 = limiter.admit("b").unwrap();
        drop(a1);
        assert!(limiter.admit("a").is_ok());
    }

    #[test]
    fn rate_is_limited_per_tenant() {
        let limiter = TenantLimiter::new(TenantLimits {
            max_concurrent_calls: 10,
            requests_per_second: 0.001,
            burst: 2,
        });
        assert!(limiter.admit("a").is_ok());
        assert!(limiter.admit("a").is_ok());
        match limiter.admit("a") {
            Err(Refusal::Rate { retry_after_secs }) => assert!(retry_after_secs >= 1),
            other => panic!("expected a rate refusal, got {other:?}"),
        }
        assert!(limiter.admit("b").is_ok());
    }
}
