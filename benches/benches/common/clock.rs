//! The clock the benches measure with: wall time (criterion's default) or, with
//! `RZTS_BENCH_CLOCK=cpu`, the benchmark thread's CPU time.
//!
//! On a small shared machine (2 cores, other builds running) the bench thread is
//! descheduled for a good part of each sample, and wall time counts those pauses.
//! CPU time (`CLOCK_THREAD_CPUTIME_ID`) only counts the time the thread actually ran,
//! which is what "cost per decision" means; it still includes cache and frequency
//! effects of the neighbours, but not their time slices. Reading it is a system call
//! (~0.1-0.5 µs); criterion times batches of many iterations, so that is amortised.

use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Wall time or thread CPU time, chosen at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    /// `Instant::now()`, as criterion's `WallTime`.
    Wall,
    /// The calling thread's CPU time.
    ThreadCpu,
}

impl Clock {
    /// `RZTS_BENCH_CLOCK=cpu` selects [`Clock::ThreadCpu`] where it is available;
    /// anything else (or nothing) is [`Clock::Wall`].
    pub fn from_env() -> Clock {
        let want_cpu = std::env::var("RZTS_BENCH_CLOCK").is_ok_and(|v| v == "cpu");
        let clock = if want_cpu && thread_cpu_time().is_some() {
            Clock::ThreadCpu
        } else {
            Clock::Wall
        };
        eprintln!(
            "clock: {}",
            match clock {
                Clock::Wall => "wall time (RZTS_BENCH_CLOCK=cpu for thread CPU time)",
                Clock::ThreadCpu => "thread CPU time (RZTS_BENCH_CLOCK=cpu)",
            }
        );
        clock
    }
}

/// Where a sample started, in the clock's own terms.
pub enum Start {
    Wall(Instant),
    Cpu(Duration),
}

#[cfg(unix)]
fn thread_cpu_time() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the call writes only into it.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

#[cfg(not(unix))]
fn thread_cpu_time() -> Option<Duration> {
    None
}

static WALL: WallTime = WallTime;

impl Measurement for Clock {
    type Intermediate = Start;
    type Value = Duration;

    fn start(&self) -> Start {
        match self {
            Clock::Wall => Start::Wall(Instant::now()),
            Clock::ThreadCpu => Start::Cpu(thread_cpu_time().unwrap_or_default()),
        }
    }

    fn end(&self, start: Start) -> Duration {
        match start {
            Start::Wall(t) => t.elapsed(),
            Start::Cpu(t) => thread_cpu_time().unwrap_or_default().saturating_sub(t),
        }
    }

    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        // Both clocks count nanoseconds: criterion's duration formatter fits.
        WALL.formatter()
    }
}
