//! Time as a run sees it: a plain function, so a test can hand a run another clock.

/// Seconds since the epoch.
pub type Clock = fn() -> i64;

/// The system clock, in seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
