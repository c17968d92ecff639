//! Shared subscription executions: one execution per distinct live subscription, whatever the
//! number of clients.
//!
//! A popular post has thousands of readers subscribed with the same `commentEvents` document.
//! Executing it once per subscriber resolved every event thousands of times. Here a
//! [`LiveExecutor`] (the executor the WebSocket protocols run on) gives subscriptions with the
//! same document, variables (the `after` cursor aside) and caller one *group*: one execution
//! whose live events are resolved once and broadcast as finished responses.
//!
//! A subscriber joins in three steps, in this order, so that it gets every event once:
//! 1. it takes a receiver on the group's broadcast (the group's own execution has subscribed to
//!    the post before anyone waits on it: "armed");
//! 2. it runs its own document in catch-up mode ([`CatchUpTap`]): what it missed since its
//!    cursor, read from the tables, and the version it continues from;
//! 3. it forwards the group's events above that version.
//!
//! Everything that is not such a subscription (queries, mutations, other subscriptions, bad
//! documents) runs on the schema as before, and a group that cannot start (the post does not
//! exist) sends its subscriber down that path too, where it gets the proper error.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Data, Executor, Pos, Request, Response, Value};
use axum::body::Bytes;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::caller::Caller;
use crate::graphql::InkwireSchema;
use crate::live::{LiveError, LiveEvent, OpenGuard};
use crate::metrics::Metrics;

/// Longest a subscriber waits for its group's execution to subscribe to the post.
const ARM_TIMEOUT: Duration = Duration::from_secs(10);

/// Request data of a subscriber's own, catch-up-only execution: the resolver yields what the
/// subscriber missed and records the version it continues from.
#[derive(Debug, Default)]
pub struct CatchUpTap {
    start: OnceLock<i64>,
}

impl CatchUpTap {
    /// The subscriber continues live after `version`.
    pub fn started(&self, version: i64) {
        let _ = self.start.set(version);
    }
}

/// Request data of a group's execution: the resolver says when it has subscribed to the post,
/// and the version of each event it yields (so the group can label its responses).
#[derive(Debug)]
pub struct GroupTap {
    armed: watch::Sender<Option<bool>>,
    versions: Mutex<VecDeque<i64>>,
}

impl GroupTap {
    /// The execution has subscribed to the post: what is pushed from now on reaches it.
    pub fn armed(&self) {
        self.armed.send_replace(Some(true));
    }

    /// The execution yields the event at `version`.
    pub fn yielded(&self, version: i64) {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(version);
    }

    fn next_version(&self) -> Option<i64> {
        self.versions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }
}

/// One resolved event, as every subscriber of a group receives it: the response's data, and the
/// same response serialised once (what `graphql-transport-ws` sends as a `next` payload).
pub struct Frame {
    version: i64,
    data: Value,
    payload: Bytes,
    /// The last message of a group whose execution ended: its subscribers must resume
    /// elsewhere. Sent through the channel rather than watched beside it, so a subscriber waits
    /// on one thing per event.
    ended: bool,
}

impl Frame {
    fn ended() -> Self {
        Self {
            version: i64::MIN,
            data: Value::Null,
            payload: Bytes::new(),
            ended: true,
        }
    }

    /// The response, serialised.
    #[must_use]
    pub fn payload(&self) -> &Bytes {
        &self.payload
    }
}

/// What a subscription yields: a response of its own, or a shared event.
pub enum Outgoing {
    /// A response resolved for this subscriber alone (catch-up, errors, unshared documents).
    Own(Box<Response>),
    /// An event resolved once for every subscriber of the group.
    Shared(Arc<Frame>),
}

impl Outgoing {
    fn into_response(self) -> Response {
        match self {
            Self::Own(response) => *response,
            Self::Shared(frame) => Response::new(frame.data.clone()),
        }
    }
}

struct Group {
    tx: broadcast::Sender<Arc<Frame>>,
    armed: watch::Receiver<Option<bool>>,
    /// Cancelled when the group's execution ended, just before the [`Frame::ended`] message.
    ended: CancellationToken,
    /// Stops the execution when the last subscriber leaves.
    _stop: DropGuard,
}

/// The executor of the WebSocket protocols: shares `commentEvents` executions, delegates the
/// rest to the schema. A clone is one reference count (every connection and subscription holds
/// one).
#[derive(Clone)]
pub struct LiveExecutor(Arc<LiveInner>);

/// What every clone of a [`LiveExecutor`] shares.
pub struct LiveInner {
    schema: InkwireSchema,
    metrics: Metrics,
    capacity: usize,
    groups: Mutex<HashMap<String, Weak<Group>>>,
}

impl std::ops::Deref for LiveExecutor {
    type Target = LiveInner;

    fn deref(&self) -> &LiveInner {
        &self.0
    }
}

impl LiveExecutor {
    /// Runs on `schema`, with `capacity` events of slack per subscriber.
    #[must_use]
    pub fn new(schema: InkwireSchema, metrics: Metrics, capacity: usize) -> Self {
        Self(Arc::new(LiveInner {
            schema,
            metrics,
            capacity: capacity.max(1),
            groups: Mutex::default(),
        }))
    }

    /// The running group for `key`, or a new one executing `request`.
    fn group(&self, key: String, request: &Request, data: &Arc<Data>) -> Arc<Group> {
        let mut groups = self.groups.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(group) = groups.get(&key).and_then(Weak::upgrade)
            && !group.ended.is_cancelled()
        {
            return group;
        }
        groups.retain(|_, g| g.strong_count() > 0);
        let (armed_tx, armed) = watch::channel(None);
        let tap = Arc::new(GroupTap {
            armed: armed_tx,
            versions: Mutex::default(),
        });
        let execution = same_operation(request).data(tap.clone());
        let mut responses = self
            .schema
            .execute_stream_with_session_data(execution, data.clone());
        let (tx, _) = broadcast::channel(self.capacity);
        let (stop, ended) = (CancellationToken::new(), CancellationToken::new());
        let group = Arc::new(Group {
            tx: tx.clone(),
            armed,
            ended: ended.clone(),
            _stop: stop.clone().drop_guard(),
        });
        let metrics = self.metrics.clone();
        metrics.shared_executions.inc();
        // The group's execution resolves each event once for all its subscribers: it runs on
        // the pipeline runtime, ahead of the connection tasks its last event woke.
        infra::rt::pipeline().spawn(async move {
            loop {
                let response = tokio::select! {
                    () = stop.cancelled() => break,
                    r = responses.next() => r,
                };
                let Some(response) = response else { break };
                // An error (the post is gone, the execution itself fell behind) ends the group:
                // its subscribers resume from their cursors and start a new one.
                let Some(version) = tap.next_version().filter(|_| response.is_ok()) else {
                    break;
                };
                let Ok(payload) = serde_json::to_vec(&response) else {
                    break;
                };
                metrics.deliveries.inc_by(tx.receiver_count() as u64);
                let _ = tx.send(Arc::new(Frame {
                    version,
                    data: response.data,
                    payload: Bytes::from(payload),
                    ended: false,
                }));
            }
            tap.armed.send_if_modified(|armed| {
                let unset = armed.is_none();
                if unset {
                    *armed = Some(false);
                }
                unset
            });
            // Cancelled first: a subscriber that joins after the message sees the cancellation.
            ended.cancel();
            let _ = tx.send(Arc::new(Frame::ended()));
            metrics.shared_executions.dec();
        });
        groups.insert(key, Arc::downgrade(&group));
        group
    }

    /// A subscriber's stream through `group`, or `None` when the group could not start.
    async fn join(
        self,
        group: Arc<Group>,
        request: Request,
        data: Arc<Data>,
    ) -> Option<BoxStream<'static, Outgoing>> {
        let rx = group.tx.subscribe();
        if group.ended.is_cancelled() {
            // Ended before this receiver existed, so it will never hear of it: run alone.
            return None;
        }
        let mut armed = group.armed.clone();
        let ok = tokio::time::timeout(ARM_TIMEOUT, armed.wait_for(Option::is_some))
            .await
            .ok()?
            .ok()?
            .unwrap_or(false);
        if !ok {
            return None;
        }
        let tap = Arc::new(CatchUpTap::default());
        let own = self
            .schema
            .execute_stream_with_session_data(request.data(tap.clone()), data);
        let open = OpenGuard::open(&self.metrics);
        let state = Joined::CatchingUp {
            own,
            tap,
            rx,
            group,
            open,
        };
        Some(
            futures::stream::unfold(state, move |state| {
                let live = self.clone();
                async move { state.next(&live.metrics).await }
            })
            .boxed(),
        )
    }
}

/// Where a shared subscriber is.
enum Joined {
    CatchingUp {
        own: BoxStream<'static, Response>,
        tap: Arc<CatchUpTap>,
        rx: broadcast::Receiver<Arc<Frame>>,
        group: Arc<Group>,
        open: OpenGuard,
    },
    Live {
        rx: broadcast::Receiver<Arc<Frame>>,
        group: Arc<Group>,
        last: i64,
        open: OpenGuard,
    },
    Done,
}

impl Joined {
    async fn next(self, metrics: &Metrics) -> Option<(Outgoing, Self)> {
        match self {
            Self::CatchingUp {
                mut own,
                tap,
                rx,
                group,
                open,
            } => {
                if let Some(response) = own.next().await {
                    let state = Self::CatchingUp {
                        own,
                        tap,
                        rx,
                        group,
                        open,
                    };
                    return Some((Outgoing::Own(Box::new(response)), state));
                }
                // No start: the catch-up failed, and its error was the last response.
                let last = *tap.start.get()?;
                Self::live(rx, group, last, open, metrics).await
            }
            Self::Live {
                rx,
                group,
                last,
                open,
            } => Self::live(rx, group, last, open, metrics).await,
            Self::Done => None,
        }
    }

    async fn live(
        mut rx: broadcast::Receiver<Arc<Frame>>,
        group: Arc<Group>,
        last: i64,
        open: OpenGuard,
        metrics: &Metrics,
    ) -> Option<(Outgoing, Self)> {
        loop {
            match rx.recv().await {
                Ok(frame) if frame.ended => {
                    return Self::fail(broadcast::error::RecvError::Closed, last, open, metrics);
                }
                Ok(frame) if frame.version <= last => {}
                Ok(frame) => {
                    let state = Self::Live {
                        rx,
                        group,
                        last: frame.version,
                        open,
                    };
                    return Some((Outgoing::Shared(frame), state));
                }
                Err(e) => return Self::fail(e, last, open, metrics),
            }
        }
    }

    /// The subscription's last message: it fell behind, or its group ended; either way it may
    /// resume from `last`.
    fn fail(
        e: broadcast::error::RecvError,
        last: i64,
        open: OpenGuard,
        metrics: &Metrics,
    ) -> Option<(Outgoing, Self)> {
        if matches!(e, broadcast::error::RecvError::Lagged(_)) {
            metrics.slow_disconnects.inc();
        }
        drop(open);
        let mut error =
            crate::graphql::subscription::slow_consumer(last).into_server_error(Pos::default());
        error.path = vec![async_graphql::PathSegment::Field("commentEvents".into())];
        Some((
            Outgoing::Own(Box::new(Response::from_errors(vec![error]))),
            Self::Done,
        ))
    }
}

/// A new request for the same document, operation and variables (requests are not `Clone`:
/// they carry their own data).
fn same_operation(request: &Request) -> Request {
    let copy = Request::new(request.query.clone()).variables(request.variables.clone());
    match &request.operation_name {
        Some(name) => copy.operation_name(name.clone()),
        None => copy,
    }
}

/// The group key of `request` on a connection with `data`: the document, the operation, the
/// variables but the one holding the `after` cursor, and who is asking; `None` unless it is
/// exactly one `commentEvents` subscription.
fn share_key(request: &Request, data: &Data) -> Option<String> {
    if !request.extensions.is_empty() || !request.uploads.is_empty() {
        return None;
    }
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    if !doc.fragments.is_empty() {
        return None;
    }
    let op = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    if op.node.ty != OperationType::Subscription || !op.node.directives.is_empty() {
        return None;
    }
    let [item] = op.node.selection_set.node.items.as_slice() else {
        return None;
    };
    let Selection::Field(field) = &item.node else {
        return None;
    };
    if field.node.name.node != "commentEvents" {
        return None;
    }
    // `after: $cursor` prints as `$cursor`; a literal cursor stays in the document's text.
    let cursor_variable = field
        .node
        .get_argument("after")
        .and_then(|a| a.node.to_string().strip_prefix('$').map(str::to_owned));
    let variables: Vec<_> = request
        .variables
        .iter()
        .filter(|(name, _)| Some(name.as_str()) != cursor_variable.as_deref())
        .collect();
    let caller = data
        .get(&std::any::TypeId::of::<Caller>())
        .and_then(|c| c.downcast_ref::<Caller>());
    let who = caller.map(|c| (&c.user_id, &c.roles));
    serde_json::to_string(&(&request.query, &request.operation_name, variables, who)).ok()
}

impl LiveExecutor {
    /// Runs `request` for a connection with `data`: shared when it is a `commentEvents`
    /// subscription, alone otherwise.
    pub fn execute_outgoing(&self, request: Request, data: Arc<Data>) -> OutgoingStream {
        let Some(key) = share_key(&request, &data) else {
            return OutgoingStream::Streaming(alone(&self.schema, request, data));
        };
        let group = self.group(key, &request, &data);
        let this = self.clone();
        // The joining future boxed on its own and dropped once it is done, where inline it
        // would keep its room for the whole subscription (kilobytes per idle subscriber).
        OutgoingStream::Joining(Box::pin(async move {
            let schema = this.schema.clone();
            let fallback = same_operation(&request);
            match this.join(group, request, data.clone()).await {
                Some(stream) => stream,
                // The group could not start: run it alone, which reports why.
                None => alone(&schema, fallback, data),
            }
        }))
    }
}

/// `request` executed for this subscriber alone.
fn alone(
    schema: &InkwireSchema,
    request: Request,
    data: Arc<Data>,
) -> BoxStream<'static, Outgoing> {
    schema
        .execute_stream_with_session_data(request, data)
        .map(|r| Outgoing::Own(Box::new(r)))
        .boxed()
}

/// What [`LiveExecutor::execute_outgoing`] yields: joining a group, then the stream that gave.
///
/// Every delivery polls through this, 100,000 times a second on a busy post: one object with
/// the join and the stream in turn, rather than `once(join).flatten()` in a box of its own,
/// saves a layer and a heap object (a cache miss) per delivery.
pub enum OutgoingStream {
    /// Joining (or starting alone); its stream follows.
    Joining(BoxFuture<'static, BoxStream<'static, Outgoing>>),
    /// The subscription's responses.
    Streaming(BoxStream<'static, Outgoing>),
}

impl futures::Stream for OutgoingStream {
    type Item = Outgoing;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Outgoing>> {
        loop {
            match &mut *self {
                Self::Joining(join) => {
                    let stream = std::task::ready!(join.as_mut().poll(cx));
                    *self = Self::Streaming(stream);
                }
                Self::Streaming(stream) => return stream.poll_next_unpin(cx),
            }
        }
    }
}

/// For the legacy `graphql-ws` protocol, which async-graphql serves.
impl Executor for LiveExecutor {
    async fn execute(&self, request: Request) -> Response {
        self.schema.execute(request).await
    }

    fn execute_stream(
        &self,
        request: Request,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, Response> {
        self.execute_outgoing(request, session_data.unwrap_or_default())
            .map(Outgoing::into_response)
            .boxed()
    }
}

/// The live events of `post` after `after` for the `commentEvents` resolver running in `ctx`:
/// the one stream a resolver asks for, whichever way the fan-out runs it.
///
/// - In a subscriber's own catch-up execution ([`CatchUpTap`]): what it missed, then the end
///   (its live part comes from its group's execution).
/// - In a group's execution ([`GroupTap`]): everything from now on, with the group told when
///   it is armed and which version each event is at.
/// - Anywhere else: what was missed since `after`, then live.
///
/// # Errors
/// The database error of the catch-up read.
pub async fn comment_events(
    ctx: &async_graphql::Context<'_>,
    hub: &crate::live::Hub,
    post: uuid::Uuid,
    after: Option<i64>,
) -> Result<BoxStream<'static, Result<Arc<LiveEvent>, LiveError>>, sqlx::Error> {
    if let Some(tap) = ctx.data_opt::<Arc<CatchUpTap>>() {
        let (missed, start) = hub.catch_up(post, after).await?;
        tap.started(start);
        return Ok(futures::stream::iter(missed.into_iter().map(Ok)).boxed());
    }
    let group = ctx.data_opt::<Arc<GroupTap>>().cloned();
    let after = if group.is_some() { None } else { after };
    let stream = hub.subscribe(post, after, group.is_none()).await?;
    let Some(group) = group else {
        return Ok(stream.boxed());
    };
    group.armed();
    Ok(stream
        .map(move |item| {
            group.yielded(match &item {
                Ok(event) => event.comment.changed_version,
                Err(LiveError::SlowConsumer { last_version }) => *last_version,
            });
            item
        })
        .boxed())
}
