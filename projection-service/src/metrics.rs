//! The projection service's Prometheus metrics, named `inkwire_projection_<what>_<unit>`.

use prometheus::{GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Metrics of one projector, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    /// Records handled, by outcome (applied, redelivered, duplicate, gap, dead_letter).
    pub events: IntCounterVec,
    /// Time to apply one batch (one transaction).
    pub batch_seconds: Histogram,
    /// Messages in the log not yet applied, per group/topic/partition.
    pub lag_events: IntGaugeVec,
    /// Age of the oldest unapplied message, per group/topic/partition.
    pub lag_seconds: GaugeVec,
    /// Partitions this projector holds, per group: summed over instances, zero means nobody
    /// consumes for the group.
    pub partitions_assigned: IntGaugeVec,
    /// Whether a rebuild of each view is running (`inkwire replay`), 0 or 1.
    pub rebuild_running: IntGaugeVec,
    /// The running rebuild's share of the log read, per view (0 when none runs).
    pub rebuild_progress: GaugeVec,
    /// Completed rebuilds per view: the generation that is live.
    pub rebuild_generation: IntGaugeVec,
}

impl Metrics {
    /// Creates and registers the metrics.
    ///
    /// # Panics
    /// If they are already registered in `registry` (a start-up bug).
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        let events = IntCounterVec::new(
            Opts::new(
                "inkwire_projection_events_total",
                "Log records handled by the projector, by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric definition");
        let batch_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "inkwire_projection_batch_duration_seconds",
                "Time to apply one batch in one transaction",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ]),
        )
        .expect("valid metric definition");
        let labels = ["group", "topic", "partition"];
        let lag_events = IntGaugeVec::new(
            Opts::new(
                "inkwire_projection_lag_events",
                "Messages in the log not yet applied",
            ),
            &labels,
        )
        .expect("valid metric definition");
        let lag_seconds = GaugeVec::new(
            Opts::new(
                "inkwire_projection_lag_seconds",
                "Age of the oldest message not yet applied",
            ),
            &labels,
        )
        .expect("valid metric definition");
        let partitions_assigned = IntGaugeVec::new(
            Opts::new(
                "inkwire_projection_partitions_assigned",
                "Partitions of the topic this projector holds in its consumer group",
            ),
            &["group"],
        )
        .expect("valid metric definition");
        let rebuild_running = IntGaugeVec::new(
            Opts::new(
                "inkwire_projection_rebuild_running",
                "Whether a blue/green rebuild of the view is running (inkwire replay)",
            ),
            &["view"],
        )
        .expect("valid metric definition");
        let rebuild_progress = GaugeVec::new(
            Opts::new(
                "inkwire_projection_rebuild_progress_ratio",
                "Share of the log the running rebuild of the view has read (0 when none runs)",
            ),
            &["view"],
        )
        .expect("valid metric definition");
        let rebuild_generation = IntGaugeVec::new(
            Opts::new(
                "inkwire_projection_rebuild_generation",
                "Completed rebuilds of the view: the generation that is live",
            ),
            &["view"],
        )
        .expect("valid metric definition");
        for m in [
            Box::new(events.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(rebuild_running.clone()),
            Box::new(rebuild_progress.clone()),
            Box::new(rebuild_generation.clone()),
            Box::new(partitions_assigned.clone()),
            Box::new(batch_seconds.clone()),
            Box::new(lag_events.clone()),
            Box::new(lag_seconds.clone()),
        ] {
            registry
                .register(m)
                .expect("metric registered once per registry");
        }
        Self {
            events,
            batch_seconds,
            lag_events,
            lag_seconds,
            partitions_assigned,
            rebuild_running,
            rebuild_progress,
            rebuild_generation,
        }
    }
}
