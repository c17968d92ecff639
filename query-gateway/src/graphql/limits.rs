//! Guards in front of the executor (depth, counted apart for introspection; aliases; mutation
//! rates), and stable codes for the errors GraphQL itself raises:
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

/// Most nested levels under `__schema` or `__type`: enough for graphql-js's standard
/// introspection query (seven levels of `ofType`), not for an unbounded walk of the schema.
pub const MAX_INTROSPECTION_DEPTH: usize = 20;

/// How deep a document reaches: (data fields, introspection fields). Data depth counts nested
/// fields as async-graphql's limit did; an introspection root (`__schema`, `__type`) and what it
/// selects are counted apart, so schema tools' queries are not refused as deep queries on data.
fn depths(doc: &ExecutableDocument) -> (usize, usize) {
    fn walk(
        doc: &ExecutableDocument,
        set: &SelectionSet,
        introspection: bool,
        seen: &mut Vec<String>,
        out: &mut (usize, usize),
        level: usize,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let name = f.node.name.node.as_str();
                    let inside =
                        introspection || (level == 0 && matches!(name, "__schema" | "__type"));
                    let depth = level + 1;
                    if inside {
                        out.1 = out.1.max(depth);
                    } else {
                        out.0 = out.0.max(depth);
                    }
                    walk(doc, &f.node.selection_set.node, inside, seen, out, depth);
                }
                Selection::InlineFragment(f) => {
                    walk(
                        doc,
                        &f.node.selection_set.node,
                        introspection,
                        seen,
                        out,
                        level,
                    );
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A fragment inside itself is for validation to refuse; here it ends the walk.
                    if seen.iter().any(|s| s == name) || seen.len() > 64 {
                        continue;
                    }
                    if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                        seen.push(name.to_owned());
                        walk(
                            doc,
                            &fragment.node.selection_set.node,
                            introspection,
                            seen,
                            out,
                            level,
                        );
                        seen.pop();
                    }
                }
            }
        }
    }
    let mut out = (0, 0);
    for (_, op) in doc.operations.iter() {
        walk(
            doc,
            &op.node.selection_set.node,
            false,
            &mut Vec::new(),
            &mut out,
            0,
        );
    }
    out
}

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
    /// Most nested levels of data fields (introspection has [`MAX_INTROSPECTION_DEPTH`]).
    pub max_depth: usize,
    /// Whether `__schema` and `__type` may be asked for; when not, asking is a validation
    /// error (async-graphql alone would answer `null` and say nothing).
    pub introspection: bool,
}

impl ExtensionFactory for Limits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension {
            metrics: self.metrics.clone(),
            mutations: self.mutations.clone(),
            max_depth: self.max_depth,
            introspection: self.introspection,
            kind: std::sync::Mutex::new("unknown"),
        })
    }
}

struct LimitsExtension {
    metrics: Metrics,
    mutations: Arc<MutationLimits>,
    max_depth: usize,
    introspection: bool,
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
        let (data_depth, introspection_depth) = depths(&doc);
        if introspection_depth > 0 && !self.introspection {
            return Err(with_code(
                ServerError::new(
                    "introspection is turned off on this server (INKWIRE_INTROSPECTION=false)",
                    None,
                ),
                "GRAPHQL_VALIDATION_FAILED",
            ));
        }
        if data_depth > self.max_depth || introspection_depth > MAX_INTROSPECTION_DEPTH {
            return Err(with_code(
                ServerError::new("Query is nested too deep.", None),
                "QUERY_TOO_DEEP",
            ));
        }
        if let Some(error) =
            crate::graphql::int_range::check(&doc, variables, &ctx.schema_env.registry)
        {
            return Err(with_code(error, "GRAPHQL_VALIDATION_FAILED"));
        }
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
        if let Some(scope) = ctx.data_opt::<Arc<crate::live::cache::Scope>>()
            && !crate::live::cache::cacheable_document(&doc)
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
                let caller = ctx.data_opt::<crate::caller::Caller>();
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
