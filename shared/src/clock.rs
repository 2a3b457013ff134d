//! The one clock. Every wall-clock read of the suite goes through [`Clock`]: token lifetimes, verdict and
//! ledger times, checkpoint times, key dates, challenge expiry, document expiry, webhook timestamps. A test
//! on a [`ManualClock`] therefore sees its own time everywhere at once, and clippy's `disallowed-methods`
//! (workspace `clippy.toml`) refuses `Utc::now` and `SystemTime::now` anywhere else.
//!
//! Durations (stage timings, deadlines, back-off) use `Instant`, which is monotonic and no test moves.

use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, NaiveDate, Utc};

/// A source of "now".
pub trait Clock: Send + Sync + std::fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;

    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Seconds since the Unix epoch.
    fn now_secs(&self) -> i64 {
        self.now().timestamp()
    }

    /// Today's date (UTC).
    fn today(&self) -> NaiveDate {
        self.now().date_naive()
    }
}

/// The clock services run on.
pub type SharedClock = Arc<dyn Clock>;

/// The machine's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(Self)
    }
}

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one place the wall clock is read
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told, in milliseconds; for tests of expiry, lifetimes and windows.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl Default for ManualClock {
    /// Starts at the machine's time, so tokens and keys it dates look ordinary.
    fn default() -> Self {
        Self::at(SystemClock.now())
    }
}

impl ManualClock {
    /// A clock standing at `at`.
    pub fn at(at: DateTime<Utc>) -> Self {
        Self(AtomicI64::new(at.timestamp_millis()))
    }

    /// A clock standing at midnight (UTC) of `day`.
    pub fn on(day: NaiveDate) -> Self {
        Self::at(day.and_time(chrono::NaiveTime::MIN).and_utc())
    }

    /// Moves time forward (saturating).
    pub fn advance(&self, by: Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the time.
    pub fn set(&self, at: DateTime<Utc>) {
        self.0.store(at.timestamp_millis(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        to_datetime(self.0.load(Ordering::SeqCst))
    }

    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Milliseconds since the epoch as a UTC time (clamped to the representable range).
pub fn to_datetime(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_saturates() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 3).unwrap_or_default();
        let clock = ManualClock::on(day);
        assert_eq!(clock.today(), day);
        assert_eq!(clock.now_secs(), clock.now().timestamp());
        clock.advance(Duration::from_secs(48 * 3600));
        assert_eq!(
            clock.today(),
            day.succ_opt()
                .and_then(|d| d.succ_opt())
                .unwrap_or_default()
        );
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_ms(), i64::MAX);
        clock.set(to_datetime(0));
        assert_eq!(clock.now_secs(), 0);
    }

    #[test]
    fn the_system_clock_is_the_machines() {
        assert!(SystemClock.now_secs() > 1_700_000_000);
    }
}
