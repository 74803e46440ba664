//! An explicit memory budget for processing. Every allocation that grows with the input
//! (decoded pixels, whole compressed images) is reserved here first: a job that can never
//! fit fails `image_too_large` before decoding; one that fits later waits for others to end.
//! On Lambda the budget follows the function's memory size; the local stack shares one
//! budget between its concurrent jobs.

use std::sync::{Arc, Condvar, Mutex};

const MIB: u64 = 1 << 20;

/// What a function keeps outside the budget: runtime, SDK clients, stream buffers, allocator slack.
pub const LAMBDA_HEADROOM: u64 = 128 * MIB;

/// The budget when nothing says otherwise (tests, tools).
pub const DEFAULT_BUDGET: u64 = 256 << 20;

#[derive(Debug)]
pub struct MemoryBudget {
    total: u64,
    used: Mutex<u64>,
    freed: Condvar,
}

/// Bytes reserved until dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<MemoryBudget>,
    bytes: u64,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
        *used -= self.bytes;
        self.budget.freed.notify_all();
    }
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Adds `more` bytes. Two jobs each holding part of the budget and waiting for more would
    /// wait forever, so a job that cannot grow at once gives back what it holds and queues
    /// for the sum like a new one.
    pub fn grow(mut self, more: u64) -> Result<Reservation, OverBudget> {
        let want = self.bytes + more;
        {
            let mut used = self.budget.used.lock().unwrap_or_else(|e| e.into_inner());
            if want <= self.budget.total && *used + more <= self.budget.total {
                *used += more;
                drop(used);
                self.bytes = want;
                return Ok(self);
            }
        }
        let budget = self.budget.clone();
        drop(self);
        budget.reserve(want)
    }
}

/// The job needs more than the whole budget: it can never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverBudget {
    pub needed: u64,
    pub total: u64,
}

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "needs {} MiB of memory, over the processing budget of {} MiB",
            self.needed.div_ceil(MIB),
            self.total / MIB
        )
    }
}

impl MemoryBudget {
    pub fn new(total_bytes: u64) -> Arc<Self> {
        Arc::new(Self { total: total_bytes, used: Mutex::new(0), freed: Condvar::new() })
    }

    /// The function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`, in MB) less the headroom;
    /// `None` outside Lambda.
    pub fn for_lambda(memory_size_mb: Option<&str>) -> Option<Arc<Self>> {
        let mb: u64 = memory_size_mb?.trim().parse().ok()?;
        Some(Self::new((mb * MIB).saturating_sub(LAMBDA_HEADROOM).max(32 * MIB)))
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    pub fn in_use(&self) -> u64 {
        *self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until `bytes` fit (call it from a blocking thread), or fails at once if they never can.
    pub fn reserve(self: &Arc<Self>, bytes: u64) -> Result<Reservation, OverBudget> {
        if bytes > self.total {
            return Err(OverBudget { needed: bytes, total: self.total });
        }
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        while *used + bytes > self.total {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += bytes;
        Ok(Reservation { budget: self.clone(), bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reservations_wait_for_room_and_refuse_what_never_fits() {
        let b = MemoryBudget::new(100);
        assert_eq!(b.reserve(101).unwrap_err(), OverBudget { needed: 101, total: 100 });
        let first = b.reserve(70).unwrap();
        let b2 = b.clone();
        let waiter = std::thread::spawn(move || b2.reserve(50).map(|r| r.bytes()));
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "50 more than the 30 left must wait");
        drop(first);
        assert_eq!(waiter.join().unwrap(), Ok(50));
        assert_eq!(b.in_use(), 0);
    }

    #[test]
    fn growing_never_deadlocks() {
        let b = MemoryBudget::new(100);
        let (r1, r2) = (b.reserve(40).unwrap(), b.reserve(40).unwrap());
        let r1 = r1.grow(10).unwrap();
        assert_eq!((r1.bytes(), b.in_use()), (50, 90));
        let b2 = b.clone();
        // Both want 30 more: the second gives back its 40 and waits for 70 while the first grows.
        let t = std::thread::spawn(move || r2.grow(30).map(|r| (r.bytes(), b2.in_use())));
        let r1 = r1.grow(10).unwrap();
        drop(r1);
        assert_eq!(t.join().unwrap(), Ok((70, 70)));
        assert_eq!(b.reserve(1).unwrap().grow(100).unwrap_err(), OverBudget { needed: 101, total: 100 });
        // Nothing keeps the budget alive once every reservation is gone (the fuzzer's leak).
        drop(b2_check(&b));
        assert_eq!((Arc::strong_count(&b), b.in_use()), (1, 0));
    }

    fn b2_check(b: &Arc<MemoryBudget>) -> Reservation {
        b.reserve(10).unwrap().grow(10).unwrap()
    }

    #[test]
    fn lambda_budget_follows_the_function_memory() {
        assert_eq!(MemoryBudget::for_lambda(Some("512")).unwrap().total(), 384 * MIB);
        assert_eq!(MemoryBudget::for_lambda(Some("128")).unwrap().total(), 32 * MIB);
        assert!(MemoryBudget::for_lambda(None).is_none());
        assert!(MemoryBudget::for_lambda(Some("lots")).is_none());
    }
}
