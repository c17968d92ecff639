//! One trace follows a comment through the whole system: the GraphQL request, the command, the
//! event-store append, the outbox relay, the log, the projection and the subscription push all
//! share its trace id. Spans go to an in-memory OpenTelemetry exporter, on both backends.

mod common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::graphql::{WsClient, WsEvent, add_comment};

use common::{Backend, TestStack};
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};

/// The exporter every test of this binary shares (the tracing subscriber is process-wide).
fn exporter() -> &'static (InMemorySpanExporter, SdkTracerProvider) {
    static TRACING: OnceLock<(InMemorySpanExporter, SdkTracerProvider)> = OnceLock::new();
    TRACING.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        infra::telemetry::init_tracing_with(false, Some(provider.clone()));
        (exporter, provider)
    })
}

/// The spans of a comment's journey. The embedded log, in the event store's own database, is
/// written in the append's transaction (`log.append`); Kafka gets it from the outbox relay.
fn journey(backend: Backend) -> [&'static str; 6] {
    let publish = match backend {
        Backend::Embedded => "log.append",
        Backend::Distributed => "outbox.publish",
    };
    [
        "graphql.request",
        "command",
        "event_store.append",
        publish,
        "projection.apply",
        "subscription.push",
    ]
}

/// The id of a trace holding every span of `names` (the last one first found), and all the
/// spans exported so far, once they are.
async fn trace_through(names: &[&str]) -> (TraceId, Vec<SpanData>) {
    let (exporter, provider) = exporter();
    let last = names.last().expect("a journey");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let _ = provider.force_flush();
        let spans: Vec<SpanData> = exporter.get_finished_spans().expect("spans");
        let trace: Option<TraceId> = spans
            .iter()
            .filter(|s| s.name == *last)
            .map(|s| s.span_context.trace_id())
            .find(|t| {
                names.iter().all(|name| {
                    spans
                        .iter()
                        .any(|s| s.name == *name && s.span_context.trace_id() == *t)
                })
            });
        if let Some(trace) = trace {
            return (trace, spans);
        }
        assert!(
            Instant::now() < deadline,
            "no trace spans the whole journey; spans by trace: {:#?}",
            spans
                .iter()
                .map(|s| (s.span_context.trace_id().to_string(), s.name.to_string()))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the subscription's next event and checks it carries `comment`.
async fn expect_comment(ws: &mut WsClient, comment: &str) {
    match ws.next(Duration::from_secs(20)).await {
        Some(WsEvent::Next(_, payload)) => {
            let (_, sent, _) = common::graphql::comment_event(&payload);
            assert_eq!(sent, comment, "{payload}");
        }
        other => panic!("no event for the comment: {other:?}"),
    }
}

/// A published post, once the gateway shows it.
async fn visible_post(stack: &TestStack) -> String {
    let post = stack.published_post().await;
    common::eventually(Duration::from_secs(20), || async {
        let r = common::graphql::gql(
            &stack.http,
            &stack.graphql_url,
            None,
            "query($id: ID!) { post(id: $id) { id } }",
            serde_json::json!({ "id": post }),
        )
        .await;
        r["data"]["post"]["id"] == post.as_str()
    })
    .await;
    post
}

async fn a_comment_is_one_trace_from_request_to_push(backend: Backend) {
    let journey_spans = journey(backend);
    exporter();
    let stack = TestStack::boot(backend).await;
    let post = visible_post(&stack).await;
    // Subscribe from the cursor read with the post, as the web UI does: a comment projected
    // before the subscription is set up is then sent as missed rather than lost.
    let cursor =
        common::graphql::comment_events_cursor(&stack.http, &stack.graphql_url, &post).await;
    let mut ws = WsClient::connect(&stack.graphql_url.replace("http://", "ws://"))
        .await
        .expect("the WebSocket connects");
    ws.subscribe("1", &post, Some(&cursor)).await;
    // A first comment received proves the subscription is registered (it may come live or as
    // missed, read back from the tables): the next one is then a live push, the span under
    // test, however long registering took on a loaded machine.
    let (warm_up, response) =
        add_comment(&stack.http, &stack.graphql_url, &post, "warm-up", false).await;
    assert!(!warm_up.is_empty(), "{response}");
    expect_comment(&mut ws, &warm_up).await;

    let (comment, response) =
        add_comment(&stack.http, &stack.graphql_url, &post, "traced", false).await;
    assert!(!comment.is_empty(), "{response}");
    expect_comment(&mut ws, &comment).await;

    // The push's trace, once every span of the journey has ended and been exported.
    let (trace, spans) = trace_through(&journey_spans).await;
    let journey: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    // One request, and everything after it descends from it.
    let request = journey
        .iter()
        .find(|s| s.name == "graphql.request")
        .expect("request span");
    let command = journey
        .iter()
        .find(|s| s.name == "command")
        .expect("command");
    assert_eq!(command.parent_span_id, request.span_context.span_id());
    let append = journey
        .iter()
        .find(|s| s.name == "event_store.append")
        .expect("append");
    assert_eq!(append.parent_span_id, command.span_context.span_id());
    for name in &journey_spans[3..] {
        let span = journey.iter().find(|s| s.name == *name).expect(name);
        assert_eq!(
            span.parent_span_id,
            command.span_context.span_id(),
            "{name}"
        );
        assert!(
            span.start_time >= command.start_time,
            "{name} after the command"
        );
    }
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_request_to_push_embedded() {
    a_comment_is_one_trace_from_request_to_push(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_from_request_to_push_postgres_and_kafka() {
    a_comment_is_one_trace_from_request_to_push(Backend::Distributed).await;
}

/// A subscriber that arrives after a comment was pushed gets it in its catch-up, read from the
/// tables; that delivery joins the comment's trace too (`subscription.catch_up`), under the
/// command like the live push.
async fn a_comment_caught_up_later_is_in_its_trace(backend: Backend) {
    exporter();
    let stack = TestStack::boot(backend).await;
    let post = visible_post(&stack).await;
    let cursor =
        common::graphql::comment_events_cursor(&stack.http, &stack.graphql_url, &post).await;
    // A subscriber already there gets the comment live only once the gateway's log follower,
    // which keeps the trace context, has read it: that, not a guess at how long it takes, is
    // when a later subscriber's catch-up can join the trace.
    let ws_url = stack.graphql_url.replace("http://", "ws://");
    let mut early = WsClient::connect(&ws_url)
        .await
        .expect("the WebSocket connects");
    early.subscribe("early", &post, Some(&cursor)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (comment, response) =
        add_comment(&stack.http, &stack.graphql_url, &post, "caught up", true).await;
    assert!(!comment.is_empty(), "{response}");
    expect_comment(&mut early, &comment).await;

    let mut ws = WsClient::connect(&ws_url)
        .await
        .expect("the WebSocket connects");
    ws.subscribe("1", &post, Some(&cursor)).await;
    expect_comment(&mut ws, &comment).await;

    let (trace, spans) =
        trace_through(&["graphql.request", "command", "subscription.catch_up"]).await;
    let in_trace = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name && s.span_context.trace_id() == trace)
            .unwrap_or_else(|| panic!("{name} in the trace"))
    };
    let command = in_trace("command");
    let caught_up = in_trace("subscription.catch_up");
    assert_eq!(caught_up.parent_span_id, command.span_context.span_id());
    assert!(caught_up.start_time >= command.start_time);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_caught_up_later_is_in_its_trace_embedded() {
    a_comment_caught_up_later_is_in_its_trace(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_comment_caught_up_later_is_in_its_trace_postgres_and_kafka() {
    a_comment_caught_up_later_is_in_its_trace(Backend::Distributed).await;
}
