//! The gateway's Prometheus metrics, named `inkwire_gateway_<what>_<unit>`.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

/// Metrics of one gateway instance.
#[derive(Clone)]
pub struct Metrics {
    /// Subscriptions currently open.
    pub subscriptions_open: IntGauge,
    /// Comment events handed to subscribers (one per subscriber and event).
    pub deliveries: IntCounter,
    /// Subscriptions ended because the client fell too far behind.
    pub slow_disconnects: IntCounter,
    /// GraphQL operations by type and outcome.
    pub operations: IntCounterVec,
    /// Time to answer a query or mutation, by operation type.
    pub operation_seconds: HistogramVec,
    /// SQL statements sent to the read tables.
    pub sql_statements: IntCounter,
    /// Mutations whose `waitForProjection` expired.
    pub projection_timeouts: IntCounter,
    /// Page-cache lookups by result (`hit`, `miss`, `stale`).
    pub page_cache: IntCounterVec,
    /// Bytes held by the page cache.
    pub page_cache_bytes: IntGauge,
    /// Shared executions of live subscriptions running (each serves every client subscribed
    /// with the same document to the same post).
    pub shared_executions: IntGauge,
    /// Atom feed requests by result (`ok`, `not_modified`, `error`).
    pub feed_requests: IntCounterVec,
    /// Image uploads by result (`stored`, `refused`, `failed`).
    pub media_uploads: IntCounterVec,
    /// Time from an upload's first byte read to its answer.
    pub media_upload_seconds: prometheus::Histogram,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(registry: &Registry, m: M) -> M {
    registry
        .register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

impl Metrics {
    /// Creates and registers the metrics.
    ///
    /// # Panics
    /// If they are already registered in `registry` (a start-up bug).
    #[must_use]
    pub fn new(registry: &Registry) -> Self {
        let metrics = Self {
            subscriptions_open: register(
                registry,
                IntGauge::new(
                    "inkwire_gateway_subscriptions_open",
                    "Comment subscriptions currently open",
                )
                .expect("valid metric definition"),
            ),
            deliveries: register(
                registry,
                IntCounter::new(
                    "inkwire_gateway_deliveries_total",
                    "Comment events handed to subscribers",
                )
                .expect("valid metric definition"),
            ),
            slow_disconnects: register(
                registry,
                IntCounter::new(
                    "inkwire_gateway_slow_client_disconnects_total",
                    "Subscriptions ended because the client fell too far behind",
                )
                .expect("valid metric definition"),
            ),
            operations: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "inkwire_gateway_operations_total",
                        "GraphQL operations answered, by type and outcome",
                    ),
                    &["type", "outcome"],
                )
                .expect("valid metric definition"),
            ),
            operation_seconds: register(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "inkwire_gateway_operation_duration_seconds",
                        "Time to answer a GraphQL query or mutation",
                    )
                    .buckets(vec![
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                        5.0,
                    ]),
                    &["type"],
                )
                .expect("valid metric definition"),
            ),
            sql_statements: register(
                registry,
                IntCounter::new(
                    "inkwire_gateway_sql_statements_total",
                    "SQL statements sent to the read tables",
                )
                .expect("valid metric definition"),
            ),
            projection_timeouts: register(
                registry,
                IntCounter::new(
                    "inkwire_gateway_projection_timeouts_total",
                    "Mutations whose waitForProjection expired",
                )
                .expect("valid metric definition"),
            ),
            page_cache: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "inkwire_gateway_page_cache_lookups_total",
                        "Anonymous post reads looked up in the page cache, by result",
                    ),
                    &["result"],
                )
                .expect("valid metric definition"),
            ),
            page_cache_bytes: register(
                registry,
                IntGauge::new(
                    "inkwire_gateway_page_cache_bytes",
                    "Bytes of requests and answers held by the page cache",
                )
                .expect("valid metric definition"),
            ),
            shared_executions: register(
                registry,
                IntGauge::new(
                    "inkwire_gateway_shared_executions",
                    "Shared executions of live subscriptions running",
                )
                .expect("valid metric definition"),
            ),
            feed_requests: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "inkwire_gateway_feed_requests_total",
                        "Atom feed requests, by result",
                    ),
                    &["result"],
                )
                .expect("valid metric definition"),
            ),
            media_uploads: register(
                registry,
                IntCounterVec::new(
                    Opts::new(
                        "inkwire_gateway_media_uploads_total",
                        "Image uploads, by result (stored, refused, failed)",
                    ),
                    &["result"],
                )
                .expect("valid metric definition"),
            ),
            media_upload_seconds: register(
                registry,
                prometheus::Histogram::with_opts(
                    HistogramOpts::new(
                        "inkwire_gateway_media_upload_seconds",
                        "Time to check, clean, store and record an image upload",
                    )
                    .buckets(vec![0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0]),
                )
                .expect("valid metric definition"),
            ),
        };
        // Exported at zero from the start, so rates and ratios exist before the first lookup.
        for result in ["hit", "miss", "stale"] {
            metrics.page_cache.with_label_values(&[result]);
        }
        for result in ["ok", "not_modified", "error"] {
            metrics.feed_requests.with_label_values(&[result]);
        }
        for result in ["stored", "refused", "failed"] {
            metrics.media_uploads.with_label_values(&[result]);
        }
        metrics
    }
}
