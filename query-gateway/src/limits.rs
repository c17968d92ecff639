//! Guards in front of the executor, and stable codes for the errors GraphQL itself raises:
//! parse errors (`GRAPHQL_PARSE_FAILED`), validation (`GRAPHQL_VALIDATION_FAILED`), too deep
//! (`QUERY_TOO_DEEP`), too complex (`QUERY_TOO_COMPLEX`), too many aliases (`TOO_MANY_ALIASES`),
//! and anything else without a code (`BAD_USER_INPUT`). Also times operations for `/metrics`.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextSubscribe,
    NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};
use async_graphql::{Response, ServerError, ServerResult, ValidationResult, Variables};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::metrics::Metrics;

/// Most aliased fields in one document.
pub const MAX_ALIASES: usize = 30;

/// A token bucket per key: `burst` requests at once, refilled at `per_minute`.
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<String, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` sustained and `burst` at once, per key.
    #[must_use]
    pub fn new(per_minute: u32, burst: u32) -> Self {
        Self {
            per_second: f64::from(per_minute) / 60.0,
            burst: f64::from(burst.max(1)),
            buckets: std::sync::Mutex::default(),
        }
    }

    /// Takes a token for `key`; false when there is none.
    pub fn allow(&self, key: &str) -> bool {
        let now = std::time::Instant::now();
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > 100_000 {
            let full = self.burst;
            let rate = self.per_second;
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * rate < full
            });
        }
        let (tokens, at) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens =
            (*tokens + now.duration_since(*at).as_secs_f64() * self.per_second).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Mutation rate limits: per signed-in user, and (stricter) per client address for anonymous
/// callers, which covers anonymous comments, sign-ups and sign-in attempts.
pub struct MutationLimits {
    /// Per user id.
    pub signed_in: RateLimiter,
    /// Per client address, for callers without a token.
    pub anonymous: RateLimiter,
}

/// The extension factory.
pub struct Limits {
    /// Where operation counts and latencies go.
    pub metrics: Metrics,
    /// Mutation rate limits.
    pub mutations: Arc<MutationLimits>,
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            metrics: self.metrics.clone(),
            mutations: self.mutations.clone(),
            kind: std::sync::Mutex::new("unknown"),
        })
    }
}

struct LimitsExtension {
    metrics: Metrics,
    mutations: Arc<MutationLimits>,
    kind: std::sync::Mutex<&'static str>,
}

fn with_code(mut error: ServerError, code: &str) -> ServerError {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code);
    }
    error
}

fn count_aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some()) + count_aliases(&f.node.selection_set.node)
            }
            Selection::InlineFragment(f) => count_aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

fn aliases(doc: &ExecutableDocument) -> usize {
    let in_operations: usize = doc
        .operations
        .iter()
        .map(|(_, op)| count_aliases(&op.node.selection_set.node))
        .sum();
    let in_fragments: usize = doc
        .fragments
        .values()
        .map(|f| count_aliases(&f.node.selection_set.node))
        .sum();
    in_operations + in_fragments
}

#[async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let started = std::time::Instant::now();
        let mut response = next.run(ctx).await;
        response.errors = response
            .errors
            .into_iter()
            .map(|e| with_code(e, "BAD_USER_INPUT"))
            .collect();
        let kind = *self
            .kind
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let outcome = if response.errors.is_empty() {
            "ok"
        } else {
            "error"
        };
        self.metrics
            .operations
            .with_label_values(&[kind, outcome])
            .inc();
        self.metrics
            .operation_seconds
            .with_label_values(&[kind])
            .observe(started.elapsed().as_secs_f64());
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|mut response| {
                response.errors = response
                    .errors
                    .into_iter()
                    .map(|e| with_code(e, "BAD_USER_INPUT"))
                    .collect();
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, "GRAPHQL_PARSE_FAILED"))?;
        let count = aliases(&doc);
        if count > MAX_ALIASES {
            return Err(with_code(
                ServerError::new(
                    format!("{count} aliases; at most {MAX_ALIASES} are allowed"),
                    None,
                ),
                "TOO_MANY_ALIASES",
            ));
        }
        if let Some(scope) = ctx.data_opt::<Arc<crate::cache::Scope>>()
            && !crate::cache::cacheable_document(&doc)
        {
            scope.refuse();
        }
        if let Some((_, op)) = doc.operations.iter().next() {
            let kind = match op.node.ty {
                OperationType::Query => "query",
                OperationType::Mutation => "mutation",
                OperationType::Subscription => "subscription",
            };
            *self
                .kind
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = kind;
            if kind == "mutation" {
                let caller = ctx.data_opt::<crate::commands::Caller>();
                let allowed = match caller.and_then(|c| c.user_id.as_deref()) {
                    Some(user) => self.mutations.signed_in.allow(user),
                    None => {
                        let client = caller
                            .and_then(|c| c.client.as_deref())
                            .unwrap_or("unknown");
                        self.mutations.anonymous.allow(client)
                    }
                };
                if !allowed {
                    return Err(with_code(
                        ServerError::new("too many changes from this client; slow down", None),
                        "RATE_LIMITED",
                    ));
                }
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = match e.message.as_str() {
                        "Query is nested too deep." => "QUERY_TOO_DEEP",
                        "Query is too complex." => "QUERY_TOO_COMPLEX",
                        _ => "GRAPHQL_VALIDATION_FAILED",
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }
}
