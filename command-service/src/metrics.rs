//! The command service's Prometheus metrics, named `inkwire_command_<what>_<unit>`.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metrics of one command-service instance, registered in its own registry (no globals, so
/// several instances can live in one test process).
#[derive(Clone)]
pub struct Metrics {
    /// Command handling latency by outcome.
    pub commands: HistogramVec,
    /// Optimistic-concurrency conflicts with other instances.
    pub conflicts: IntCounter,
    /// Events the relay published and the log acknowledged.
    pub relay_published: IntCounter,
    /// Relay publish failures.
    pub relay_failures: IntCounter,
    /// Rows waiting in the outbox.
    pub outbox_depth: IntGauge,
    /// Age of the oldest row in the outbox, in seconds.
    pub outbox_oldest_age: prometheus::Gauge,
    /// Scheduled posts this instance published.
    pub scheduled_published: IntCounter,
    /// Emails the SMTP server took, by kind (`confirmation`, `notifications`).
    pub mail_sent: IntCounterVec,
    /// Looks of the mailer that failed, and emails refused for good.
    pub mail_failures: IntCounter,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    ///
    /// # Panics
    /// If a metric of the same name is already registered in `registry` (a start-up bug).
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        let commands = HistogramVec::new(
            HistogramOpts::new(
                "inkwire_command_duration_seconds",
                "Command handling latency by outcome",
            )
            .buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["outcome"],
        )
        .expect("valid metric definition");
        let conflicts = IntCounter::with_opts(Opts::new(
            "inkwire_command_conflicts_total",
            "Optimistic-concurrency conflicts with other writers",
        ))
        .expect("valid metric definition");
        let relay_published = IntCounter::with_opts(Opts::new(
            "inkwire_outbox_published_total",
            "Events published by the outbox relay and acknowledged by the log",
        ))
        .expect("valid metric definition");
        let relay_failures = IntCounter::with_opts(Opts::new(
            "inkwire_outbox_publish_failures_total",
            "Outbox relay publish attempts that failed",
        ))
        .expect("valid metric definition");
        let outbox_depth = IntGauge::with_opts(Opts::new(
            "inkwire_outbox_depth_events",
            "Events accepted but not yet acknowledged by the log",
        ))
        .expect("valid metric definition");
        let outbox_oldest_age = prometheus::Gauge::with_opts(Opts::new(
            "inkwire_outbox_oldest_age_seconds",
            "Age of the oldest unsent outbox row",
        ))
        .expect("valid metric definition");
        let scheduled_published = IntCounter::with_opts(Opts::new(
            "inkwire_command_scheduled_published_total",
            "Scheduled posts this instance published when their time came",
        ))
        .expect("valid metric definition");
        let mail_sent = IntCounterVec::new(
            Opts::new(
                "inkwire_command_mail_sent_total",
                "Emails the SMTP server accepted, by kind",
            ),
            &["kind"],
        )
        .expect("valid metric definition");
        let mail_failures = IntCounter::with_opts(Opts::new(
            "inkwire_command_mail_failures_total",
            "Mailer looks that failed (tried again) and emails refused for good",
        ))
        .expect("valid metric definition");
        for m in [
            Box::new(commands.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(conflicts.clone()),
            Box::new(relay_published.clone()),
            Box::new(relay_failures.clone()),
            Box::new(outbox_depth.clone()),
            Box::new(outbox_oldest_age.clone()),
            Box::new(scheduled_published.clone()),
            Box::new(mail_sent.clone()),
            Box::new(mail_failures.clone()),
        ] {
            registry
                .register(m)
                .expect("metric registered once per registry");
        }
        Self {
            commands,
            conflicts,
            relay_published,
            relay_failures,
            outbox_depth,
            outbox_oldest_age,
            scheduled_published,
            mail_sent,
            mail_failures,
        }
    }
}
