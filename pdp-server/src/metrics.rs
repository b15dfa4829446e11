//! Counters and histograms of the server, rendered in the Prometheus text format
//! (exposition format 0.0.4) by `GET /metrics`.
//!
//! Hand-written on atomics: a handful of metrics do not need a registry, and the
//! decision path only does relaxed atomic adds.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use policy_core::decision::Effect;

/// A histogram with fixed upper bounds; the sum is kept in integer units of
/// `1 / scale` (microseconds for latencies, records for batch sizes).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_units: AtomicU64,
    scale: f64,
}

impl Histogram {
    /// A histogram with these bucket bounds (ascending) whose observations are
    /// summed in units of `1 / scale`.
    pub fn new(bounds: &'static [f64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_units: AtomicU64::new(0),
            scale,
        }
    }

    /// Records one observation.
    pub fn observe(&self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_units
            .fetch_add((v * self.scale).round() as u64, Ordering::Relaxed);
    }

    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// The sum of all observations.
    pub fn sum(&self) -> f64 {
        self.sum_units.load(Ordering::Relaxed) as f64 / self.scale
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, b) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum();
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {cumulative}");
    }
}

const LATENCY_BOUNDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];
const BATCH_BOUNDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];

/// Everything `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    decisions_allow: AtomicU64,
    decisions_deny: AtomicU64,
    /// Time from reading a decision request to having its records durable.
    pub decision_latency: Histogram,
    /// Records per access-log commit.
    pub log_batch_size: Histogram,
    /// Time one access-log commit took to be durable (write and sync).
    pub log_commit_latency: Histogram,
    /// Access records committed.
    pub log_records: AtomicU64,
    /// Access-log commits that failed (their decisions were not acknowledged).
    pub log_errors: AtomicU64,
    /// Failed attempts to store journaled access records (retried).
    pub log_index_errors: AtomicU64,
    /// Times the indexer read records it had missed back from the journal.
    pub log_index_catchups: AtomicU64,
    /// Successful policy reloads.
    pub reloads: AtomicU64,
    /// Failed policy reloads.
    pub reload_errors: AtomicU64,
    /// 1 while the policy file on disk does not compile (the last good rules serve).
    pub policy_error: AtomicU64,
    /// The current policy bundle version.
    pub bundle_version: AtomicU64,
    /// Accesses the detector found suspicious.
    pub suspicious: AtomicU64,
    /// Accesses denied because they were suspicious (`block_when_suspicious`).
    pub blocked: AtomicU64,
    /// Alert mails sent.
    pub alerts_sent: AtomicU64,
    /// Alert mails that could not be sent.
    pub alerts_failed: AtomicU64,
    /// Trips to the store for directory entries and users' latest accesses
    /// (cache misses and early refreshes).
    pub directory_loads: AtomicU64,
    http_2xx: AtomicU64,
    http_3xx: AtomicU64,
    http_4xx: AtomicU64,
    http_5xx: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            decisions_allow: AtomicU64::new(0),
            decisions_deny: AtomicU64::new(0),
            decision_latency: Histogram::new(LATENCY_BOUNDS, 1e6),
            log_batch_size: Histogram::new(BATCH_BOUNDS, 1.0),
            log_commit_latency: Histogram::new(LATENCY_BOUNDS, 1e6),
            log_records: AtomicU64::new(0),
            log_errors: AtomicU64::new(0),
            log_index_errors: AtomicU64::new(0),
            log_index_catchups: AtomicU64::new(0),
            reloads: AtomicU64::new(0),
            reload_errors: AtomicU64::new(0),
            policy_error: AtomicU64::new(0),
            bundle_version: AtomicU64::new(0),
            suspicious: AtomicU64::new(0),
            blocked: AtomicU64::new(0),
            alerts_sent: AtomicU64::new(0),
            alerts_failed: AtomicU64::new(0),
            directory_loads: AtomicU64::new(0),
            http_2xx: AtomicU64::new(0),
            http_3xx: AtomicU64::new(0),
            http_4xx: AtomicU64::new(0),
            http_5xx: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// Counts one acknowledged decision.
    pub fn decision(&self, effect: Effect, latency: Duration) {
        match effect {
            Effect::Allow => self.decisions_allow.fetch_add(1, Ordering::Relaxed),
            Effect::Deny => self.decisions_deny.fetch_add(1, Ordering::Relaxed),
        };
        self.decision_latency.observe(latency.as_secs_f64());
    }

    /// Acknowledged decisions so far, (allow, deny).
    pub fn decisions(&self) -> (u64, u64) {
        (
            self.decisions_allow.load(Ordering::Relaxed),
            self.decisions_deny.load(Ordering::Relaxed),
        )
    }

    /// Counts one HTTP response by status class.
    pub fn response(&self, status: u16) {
        let c = match status {
            200..=299 => &self.http_2xx,
            300..=399 => &self.http_3xx,
            400..=499 => &self.http_4xx,
            _ => &self.http_5xx,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let (allow, deny) = self.decisions();
        let _ = writeln!(
            out,
            "# HELP rzts_decisions_total Acknowledged decisions.\n\
             # TYPE rzts_decisions_total counter\n\
             rzts_decisions_total{{decision=\"allow\"}} {allow}\n\
             rzts_decisions_total{{decision=\"deny\"}} {deny}"
        );
        self.decision_latency.render(
            &mut out,
            "rzts_decision_latency_seconds",
            "Time from reading a decision request to its access record being durable.",
        );
        self.log_batch_size.render(
            &mut out,
            "rzts_log_batch_size",
            "Access records per group commit.",
        );
        self.log_commit_latency.render(
            &mut out,
            "rzts_log_commit_seconds",
            "Time one access-log group commit took to be durable (write and sync).",
        );
        let counters: [(&str, &str, &AtomicU64); 11] = [
            (
                "rzts_log_records_total",
                "Access records committed.",
                &self.log_records,
            ),
            (
                "rzts_log_errors_total",
                "Access-log commits that failed (decisions not acknowledged).",
                &self.log_errors,
            ),
            (
                "rzts_log_index_errors_total",
                "Failed attempts to store journaled access records (retried).",
                &self.log_index_errors,
            ),
            (
                "rzts_log_index_catchups_total",
                "Times the indexer read access records it had missed back from the journal.",
                &self.log_index_catchups,
            ),
            (
                "rzts_reloads_total",
                "Successful policy reloads.",
                &self.reloads,
            ),
            (
                "rzts_reload_errors_total",
                "Policy reloads that failed (the last good rules keep serving).",
                &self.reload_errors,
            ),
            (
                "rzts_suspicious_total",
                "Accesses the anomaly detector found suspicious.",
                &self.suspicious,
            ),
            (
                "rzts_blocked_total",
                "Accesses denied because they were suspicious.",
                &self.blocked,
            ),
            (
                "rzts_alerts_sent_total",
                "Alert mails sent.",
                &self.alerts_sent,
            ),
            (
                "rzts_alerts_failed_total",
                "Alert mails that could not be sent.",
                &self.alerts_failed,
            ),
            (
                "rzts_directory_loads_total",
                "Trips to the store for directory entries and users' latest accesses (cache misses and early refreshes).",
                &self.directory_loads,
            ),
        ];
        for (name, help, v) in counters {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rzts_http_responses_total HTTP responses by status class.\n\
             # TYPE rzts_http_responses_total counter"
        );
        for (class, v) in [
            ("2xx", &self.http_2xx),
            ("3xx", &self.http_3xx),
            ("4xx", &self.http_4xx),
            ("5xx", &self.http_5xx),
        ] {
            let _ = writeln!(
                out,
                "rzts_http_responses_total{{class=\"{class}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP rzts_bundle_version The policy bundle version being served.\n\
             # TYPE rzts_bundle_version gauge\n\
             rzts_bundle_version {}\n\
             # HELP rzts_policy_error 1 while the policy file does not compile.\n\
             # TYPE rzts_policy_error gauge\n\
             rzts_policy_error {}",
            self.bundle_version.load(Ordering::Relaxed),
            self.policy_error.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.decision(Effect::Allow, Duration::from_micros(300));
        m.decision(Effect::Deny, Duration::from_millis(3));
        m.log_batch_size.observe(5.0);
        let text = m.render();
        assert!(text.contains("rzts_decisions_total{decision=\"allow\"} 1"));
        assert!(text.contains("rzts_decisions_total{decision=\"deny\"} 1"));
        assert!(text.contains("rzts_decision_latency_seconds_bucket{le=\"0.0005\"} 1"));
        assert!(text.contains("rzts_decision_latency_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("rzts_decision_latency_seconds_bucket{le=\"+Inf\"} 2"));
        assert!(text.contains("rzts_log_batch_size_bucket{le=\"4\"} 0"));
        assert!(text.contains("rzts_log_batch_size_bucket{le=\"8\"} 1"));
        assert!(text.contains("rzts_log_batch_size_sum 5"));
    }
}
