//! Prometheus `/metrics`: totals read from the state database at scrape time with the same
//! query `scimsync status` uses ([`Store::stats`]), plus what only the running daemon knows.

use super::Shared;
use crate::clock::now;
use crate::store::{Stats, Store};
use anyhow::Context as _;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of the OpenMetrics text format prometheus-client writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Everything one scrape reports.
#[derive(Debug)]
pub struct Figures {
    pub stats: Stats,
    pub token_days_left: Option<i64>,
    pub records_read: Option<u64>,
    /// How long the last run this daemon finished took.
    pub last_run_seconds: Option<f64>,
    pub running: bool,
    /// Until when writes are stopped, while a quarantine is in force.
    pub quarantined_until: Option<i64>,
    pub notifications: crate::notify::Counts,
}

impl Figures {
    /// Reads the totals from the state database (blocking: call from a blocking thread).
    pub(super) fn read(shared: &Shared) -> anyhow::Result<Figures> {
        let config = shared.config();
        let store = Store::open(&config.state_path).context("opening the state database")?;
        let stats = store.stats().context("reading the run totals")?;
        let quarantine = store.quarantine().context("reading the quarantine state")?;
        let live = shared.live().clone();
        Ok(Figures {
            stats,
            token_days_left: config.target.token_expires.map(|t| (t - now()).div_euclid(86_400)),
            records_read: live.records_read,
            last_run_seconds: live.last_run_seconds,
            running: live.running_since.is_some(),
            quarantined_until: quarantine.filter(|q| q.active(now())).map(|q| q.until),
            notifications: crate::notify::Counts::read(&store).context("reading the notification counts")?,
        })
    }

    /// The OpenMetrics text.
    pub fn encode(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).expect("writing to a String");
        out
    }
}

fn gauge<N: prometheus_client::encoding::EncodeGaugeValue>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: N,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}

impl Collector for Figures {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut runs = encoder.encode_descriptor(
            "scimsync_runs",
            "Finished runs by kind and outcome, as `scimsync status` counts them.",
            None,
            MetricType::Counter,
        )?;
        for c in &self.stats.runs {
            let labels = [("kind", c.kind.as_str()), ("outcome", c.outcome.as_str())];
            ConstCounter::new(c.count).encode(runs.encode_family(&labels)?)?;
        }
        let mut ops = encoder.encode_descriptor(
            "scimsync_operations",
            "Journaled operations by kind and outcome (done, failed, abandoned, pending).",
            None,
            MetricType::Counter,
        )?;
        for c in &self.stats.operations {
            let labels = [("kind", c.kind.as_str()), ("outcome", c.outcome.as_str())];
            ConstCounter::new(c.count).encode(ops.encode_family(&labels)?)?;
        }
        if let Some(t) = self.stats.last_success {
            gauge(
                &mut encoder,
                "scimsync_last_success_timestamp_seconds",
                "When the last applying run ended ok or held.",
                t,
            )?;
        }
        gauge(
            &mut encoder,
            "scimsync_held_operations",
            "Deprovisioning operations held for `scimsync approve`.",
            self.stats.held,
        )?;
        if let Some(days) = self.token_days_left {
            gauge(&mut encoder, "scimsync_token_days_left", "Days until the target token expires.", days)?;
        }
        if let Some(n) = self.records_read {
            gauge(&mut encoder, "scimsync_source_records_read", "Records the last source read returned.", n)?;
        }
        if let Some(secs) = self.last_run_seconds {
            gauge(
                &mut encoder,
                "scimsync_last_run_duration_seconds",
                "How long the last run this daemon finished took, whatever its outcome.",
                secs,
            )?;
        }
        gauge(
            &mut encoder,
            "scimsync_quarantined",
            "1 while a quarantine stops writes to the target (see `scimsync status`).",
            i64::from(self.quarantined_until.is_some()),
        )?;
        if let Some(until) = self.quarantined_until {
            gauge(
                &mut encoder,
                "scimsync_quarantine_until_timestamp_seconds",
                "When the quarantine in force ends.",
                until,
            )?;
        }
        self.notifications.encode(&mut encoder)?;
        gauge(
            &mut encoder,
            "scimsync_run_in_progress",
            "1 while a run is under way.",
            i64::from(self.running),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Count;

    #[test]
    fn the_text_names_every_figure() {
        let c =
            |kind: &str, outcome: &str, count| Count { kind: kind.into(), outcome: outcome.into(), count };
        let f = Figures {
            stats: Stats {
                runs: vec![c("sync", "ok", 2), c("sync", "failed", 1)],
                operations: vec![c("create_user", "done", 5)],
                last_success: Some(1_700_000_000),
                held: 3,
            },
            token_days_left: Some(42),
            records_read: Some(9),
            last_run_seconds: Some(1.5),
            running: false,
            quarantined_until: Some(1_700_003_600),
            notifications: crate::notify::Counts {
                by_channel: vec![crate::notify::ChannelCount { channel: "webhook", sent: 4, failed: 1 }],
            },
        };
        let text = f.encode();
        for line in [
            "scimsync_runs_total{kind=\"sync\",outcome=\"ok\"} 2",
            "scimsync_runs_total{kind=\"sync\",outcome=\"failed\"} 1",
            "scimsync_operations_total{kind=\"create_user\",outcome=\"done\"} 5",
            "scimsync_last_success_timestamp_seconds 1700000000",
            "scimsync_held_operations 3",
            "scimsync_token_days_left 42",
            "scimsync_source_records_read 9",
            "scimsync_last_run_duration_seconds 1.5",
            "scimsync_run_in_progress 0",
            "scimsync_quarantined 1",
            "scimsync_quarantine_until_timestamp_seconds 1700003600",
            "scimsync_notifications_sent_total{channel=\"webhook\"} 4",
            "scimsync_notifications_failed_total{channel=\"webhook\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} missing from\n{text}");
        }
    }

    #[test]
    fn no_quarantine_is_a_zero_and_no_end_time() {
        let f = Figures {
            stats: Stats::default(),
            token_days_left: None,
            records_read: None,
            last_run_seconds: None,
            running: true,
            quarantined_until: None,
            notifications: Default::default(),
        };
        let text = f.encode();
        assert!(text.lines().any(|l| l == "scimsync_quarantined 0"), "{text}");
        assert!(text.lines().any(|l| l == "scimsync_run_in_progress 1"), "{text}");
        assert!(!text.contains("scimsync_quarantine_until"), "{text}");
    }
}
