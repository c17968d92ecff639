//! Logging (tracing), traces (OpenTelemetry) and metrics (Prometheus) set-up, and the `/metrics`,
//! `/healthz` and `/readyz` endpoints every service exposes.
//!
//! Traces: spans are `tracing` spans; when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set they are also exported over OTLP/HTTP, configured
//! by the standard `OTEL_*` variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
//! `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_TRACES_SAMPLER`, …); unset, nothing is exported. A
//! comment's journey is one trace: the W3C `traceparent` goes from the GraphQL request to the
//! command service (HTTP header), into the event (envelope and Kafka header), and from there to
//! the projection and the subscription push ([`set_parent`], [`traceparent_of`]).

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use prometheus::{Encoder, Registry, TextEncoder};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::db::Db;

/// The provider spans are exported through, kept to flush it at exit.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Installs the global tracing subscriber: human-readable by default, one JSON object per line
/// when `json` is set (production). The filter comes from `RUST_LOG` (default `info`). Logs go
/// to stderr, so what a command prints on stdout (`lag --json`, `events tail`, `print-schema`)
/// stays clean for pipes. Spans are exported over OTLP when the `OTEL_*` variables ask for it.
pub fn init_tracing(json: bool) {
    let provider = match otlp_provider() {
        Ok(provider) => provider,
        Err(e) => {
            eprintln!("OpenTelemetry export disabled: {e}");
            None
        }
    };
    init_tracing_with(json, provider);
}

/// [`init_tracing`] with spans exported through `provider` (tests pass an in-memory exporter).
pub fn init_tracing_with(json: bool, provider: Option<SdkTracerProvider>) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,rdkafka=warn,tower_http=warn"));
    let fmt = if json {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed()
    } else {
        // Colours only for a person at a terminal: a log file or a pipe gets plain text
        // (`NO_COLOR` turns them off at a terminal too).
        let colour = std::io::IsTerminal::is_terminal(&std::io::stderr())
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        tracing_subscriber::fmt::layer()
            .with_ansi(colour)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("inkwire"))
            .with_tracked_inactivity(false)
    });
    // A second initialisation (tests booting several services) is harmless: keep the first.
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init()
        .is_ok()
        && let Some(provider) = provider
    {
        let _ = PROVIDER.set(provider);
    }
}

/// Exports what is still buffered; call before the process exits.
pub fn shutdown_tracing() {
    if let Some(provider) = PROVIDER.get()
        && let Err(e) = provider.shutdown()
    {
        eprintln!("OpenTelemetry shutdown: {e}");
    }
}

/// The OTLP/HTTP exporter the standard variables describe, or `None` when no endpoint is set
/// (or `OTEL_TRACES_EXPORTER=none`).
fn otlp_provider() -> Result<Option<SdkTracerProvider>, opentelemetry_otlp::ExporterBuildError> {
    let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
    let wanted = (set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        && std::env::var("OTEL_TRACES_EXPORTER").map_or(true, |v| v != "none");
    if !wanted {
        return Ok(None);
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if !set("OTEL_SERVICE_NAME") {
        resource = resource.with_service_name("inkwire");
    }
    Ok(Some(
        SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build(),
    ))
}

/// Makes `span` a child of the W3C `traceparent` (when there is a valid one), so work done for an
/// event or a forwarded request joins the trace that caused it.
pub fn set_parent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
    let parent = TraceContextPropagator::new().extract(&carrier);
    let _ = span.set_parent(parent);
}

/// The W3C `traceparent` of `span`, when it is being traced (spans are exported); to pass on in
/// an HTTP header or an event.
#[must_use]
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let mut carrier: HashMap<String, String> = HashMap::new();
    TraceContextPropagator::new().inject_context(&span.context(), &mut carrier);
    carrier.remove("traceparent")
}

#[derive(Clone)]
struct OpsState {
    registry: Registry,
    db: Db,
}

/// `/metrics` (Prometheus text format from `registry`), `/healthz` (the process runs) and
/// `/readyz` (the database answers).
pub fn ops_router(registry: Registry, db: Db) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { registry, db })
}

async fn metrics(State(state): State<OpsState>) -> impl IntoResponse {
    let mut buf = Vec::new();
    let mut families = state.registry.gather();
    // The process's own, whichever services it runs.
    families.extend(prometheus::core::Collector::collect(
        crate::db::conflict_retries(),
    ));
    match TextEncoder::new().encode(&families, &mut buf) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)],
            buf,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "metrics encoding failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    match state.db.ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}
