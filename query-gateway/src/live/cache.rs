//! The page cache: answers to anonymous reads of one post (the post page, a post's comments)
//! kept as the bytes sent, so a hot post is served without parsing, validating, executing or
//! touching the database.
//!
//! Correctness comes from versions, not from timers. While a query runs, every resolver that
//! reads a post or a user records the stream version of the row it read ([`Scope::depend`]);
//! everything else a cacheable query reads (a post's comments, a comment's parent) is read after
//! its post's row, so it is at least as new. The entry keeps, per stream, the lowest version
//! read. The gateway learns the latest version of every stream from its log follower, from the
//! live broadcaster's reads and from `waitForProjection` ([`PageCache::saw`]); an entry is served
//! only while no stream it depends on is known to be past the version it was built from. So:
//! - a comment pushed to a subscriber was seen first, and a refetch never returns less;
//! - a mutation with `waitForProjection` raises the version before it answers: read-your-writes
//!   holds for anonymous commenters too;
//! - an answer read from a projection that lags the log is never stored.
//!
//! Only documents whose every root field is `post` or `comments` (and `__typename`) are cached,
//! only for callers without a token, and only answers without errors. Entries also expire after
//! a maximum age, which bounds what no event announces: a rebuild's switch, or a follower that
//! lost the log. Memory is bounded in bytes, least recently used first.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection,
};
use axum::body::Bytes;
use lru::LruCache;
use prometheus::IntCounter;
use uuid::Uuid;

use crate::metrics::Metrics;

/// Root fields whose answers depend only on the posts and users their resolvers record.
const CACHEABLE_ROOTS: &[&str] = &["post", "comments", "__typename"];

/// What one query read, recorded by its resolvers.
#[derive(Debug)]
pub struct Scope {
    state: Mutex<ScopeState>,
}

#[derive(Debug)]
struct ScopeState {
    cacheable: bool,
    /// The lowest version read, per stream.
    deps: HashMap<Uuid, i64>,
}

impl Default for Scope {
    fn default() -> Self {
        Self {
            state: Mutex::new(ScopeState {
                cacheable: true,
                deps: HashMap::new(),
            }),
        }
    }
}

impl Scope {
    /// The answer shows stream `id` as of `version`.
    pub fn depend(&self, id: Uuid, version: i64) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let v = state.deps.entry(id).or_insert(version);
        *v = (*v).min(version);
    }

    /// The answer depends on something no version describes (a row not found, a list).
    pub fn refuse(&self) {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .cacheable = false;
    }

    fn into_deps(self) -> Option<Vec<(Uuid, i64)>> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        state.cacheable.then(|| state.deps.into_iter().collect())
    }
}

/// Whether every operation of `doc` is a query whose root fields the cache understands.
#[must_use]
pub fn cacheable_document(doc: &ExecutableDocument) -> bool {
    let operations: Vec<_> = match &doc.operations {
        DocumentOperations::Single(op) => vec![op],
        DocumentOperations::Multiple(ops) => ops.values().collect(),
    };
    operations.into_iter().all(|op| {
        op.node.ty == OperationType::Query
            && op
                .node
                .selection_set
                .node
                .items
                .iter()
                .all(|item| match &item.node {
                    Selection::Field(f) => CACHEABLE_ROOTS.contains(&f.node.name.node.as_str()),
                    Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
                })
    })
}

struct Entry {
    response: Bytes,
    deps: Vec<(Uuid, i64)>,
    born: Instant,
}

struct Entries {
    map: LruCache<Bytes, Arc<Entry>>,
    bytes: usize,
}

struct Inner {
    entries: Mutex<Entries>,
    /// The latest version known of each stream.
    seen: Mutex<HashMap<Uuid, i64>>,
    /// Off until the gateway follows the log (without it nothing would say an entry is stale).
    enabled: AtomicBool,
    max_bytes: usize,
    max_age: Duration,
    metrics: Metrics,
    /// The lookup counters by result, resolved once (every anonymous read counts one).
    lookups: Lookups,
}

struct Lookups {
    hit: IntCounter,
    miss: IntCounter,
    stale: IntCounter,
}

/// The per-instance page cache. Cloning shares it.
#[derive(Clone)]
pub struct PageCache {
    inner: Arc<Inner>,
}

impl PageCache {
    /// A cache of at most `max_bytes` (request and answer bytes together; 0 turns it off),
    /// serving an entry at most `max_age` after it was built.
    #[must_use]
    pub fn new(max_bytes: usize, max_age: Duration, metrics: Metrics) -> Self {
        Self {
            inner: Arc::new(Inner {
                entries: Mutex::new(Entries {
                    map: LruCache::unbounded(),
                    bytes: 0,
                }),
                seen: Mutex::new(HashMap::new()),
                enabled: AtomicBool::new(false),
                max_bytes,
                max_age,
                lookups: Lookups {
                    hit: metrics.page_cache.with_label_values(&["hit"]),
                    miss: metrics.page_cache.with_label_values(&["miss"]),
                    stale: metrics.page_cache.with_label_values(&["stale"]),
                },
                metrics,
            }),
        }
    }

    /// Starts serving from the cache; called once something keeps [`PageCache::saw`] current.
    pub fn enable(&self) {
        if self.inner.max_bytes > 0 && !self.inner.max_age.is_zero() {
            self.inner.enabled.store(true, Ordering::Relaxed);
        }
    }

    /// Stops serving from the cache and forgets everything in it: the log no longer tells it
    /// about every change (the follower lost its position and starts again at the log's end).
    pub fn disable(&self) {
        self.inner.enabled.store(false, Ordering::Relaxed);
        let mut entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entries.map.clear();
        entries.bytes = 0;
        self.inner.metrics.page_cache_bytes.set(0);
        self.inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Whether answers are cached at all.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.inner.enabled.load(Ordering::Relaxed)
    }

    /// Stream `id` is known to be at `version` or later.
    pub fn saw(&self, id: Uuid, version: i64) {
        if !self.enabled() {
            return;
        }
        let mut seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let v = seen.entry(id).or_insert(version);
        *v = (*v).max(version);
    }

    fn fresh(&self, entry: &Entry) -> bool {
        if entry.born.elapsed() > self.inner.max_age {
            return false;
        }
        let seen = self
            .inner
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entry
            .deps
            .iter()
            .all(|(id, version)| seen.get(id).is_none_or(|s| s <= version))
    }

    /// The stored answer to the request `body`, when it is still fresh.
    #[must_use]
    pub fn get(&self, body: &[u8]) -> Option<Bytes> {
        if !self.enabled() {
            return None;
        }
        let entry = {
            let mut entries = self
                .inner
                .entries
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            entries.map.get(body).cloned()
        };
        let Some(entry) = entry else {
            self.inner.lookups.miss.inc();
            return None;
        };
        if self.fresh(&entry) {
            self.inner.lookups.hit.inc();
            Some(entry.response.clone())
        } else {
            self.inner.lookups.stale.inc();
            None
        }
    }

    /// A scope for a query that may be stored, or `None` when the cache is off.
    #[must_use]
    pub fn scope(&self) -> Option<Arc<Scope>> {
        self.enabled().then(Arc::default)
    }

    /// Stores `response` as the answer to `body`, if `scope` says it may be and it is not
    /// already stale.
    pub fn put(&self, body: Bytes, response: Bytes, scope: Arc<Scope>) {
        let Some(deps) = Arc::into_inner(scope).and_then(Scope::into_deps) else {
            return;
        };
        let size = body.len() + response.len();
        if size > self.inner.max_bytes / 16 {
            return;
        }
        let entry = Entry {
            response,
            deps,
            born: Instant::now(),
        };
        if !self.fresh(&entry) {
            return;
        }
        let mut entries = self
            .inner
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key_len = body.len();
        if let Some(old) = entries.map.put(body, Arc::new(entry)) {
            entries.bytes = entries.bytes.saturating_sub(key_len + old.response.len());
        }
        entries.bytes += size;
        while entries.bytes > self.inner.max_bytes {
            let Some((key, old)) = entries.map.pop_lru() else {
                break;
            };
            entries.bytes = entries.bytes.saturating_sub(key.len() + old.response.len());
        }
        self.inner
            .metrics
            .page_cache_bytes
            .set(i64::try_from(entries.bytes).unwrap_or(i64::MAX));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache() -> PageCache {
        let cache = PageCache::new(
            1 << 20,
            Duration::from_secs(60),
            Metrics::new(&prometheus::Registry::new()),
        );
        cache.enable();
        cache
    }

    fn scope(deps: &[(Uuid, i64)]) -> Arc<Scope> {
        let scope = Arc::new(Scope::default());
        for (id, v) in deps {
            scope.depend(*id, *v);
        }
        scope
    }

    #[test]
    fn an_answer_is_served_until_a_stream_it_read_moves_on() {
        let cache = cache();
        let (post, user) = (Uuid::now_v7(), Uuid::now_v7());
        cache.saw(post, 3);
        cache.put(
            Bytes::from_static(b"q"),
            Bytes::from_static(b"a"),
            scope(&[(post, 3), (user, 1)]),
        );
        assert_eq!(cache.get(b"q").as_deref(), Some(&b"a"[..]));
        assert_eq!(cache.get(b"other"), None);
        cache.saw(user, 1);
        assert!(cache.get(b"q").is_some(), "the version it was built from");
        cache.saw(user, 2);
        assert_eq!(cache.get(b"q"), None, "the author changed");
    }

    #[test]
    fn the_lowest_version_read_counts() {
        let cache = cache();
        let post = Uuid::now_v7();
        cache.put(
            Bytes::from_static(b"q"),
            Bytes::from_static(b"a"),
            scope(&[(post, 5), (post, 4)]),
        );
        cache.saw(post, 5);
        assert_eq!(cache.get(b"q"), None);
    }

    #[test]
    fn an_answer_already_behind_the_log_is_not_stored() {
        let cache = cache();
        let post = Uuid::now_v7();
        cache.saw(post, 7);
        cache.put(
            Bytes::from_static(b"q"),
            Bytes::from_static(b"a"),
            scope(&[(post, 6)]),
        );
        assert_eq!(cache.get(b"q"), None);
    }

    #[test]
    fn refused_scopes_and_a_disabled_cache_store_nothing() {
        let cache = cache();
        let refused = scope(&[]);
        refused.refuse();
        cache.put(Bytes::from_static(b"q"), Bytes::from_static(b"a"), refused);
        assert_eq!(cache.get(b"q"), None);

        let off = PageCache::new(
            1 << 20,
            Duration::from_secs(60),
            Metrics::new(&prometheus::Registry::new()),
        );
        assert!(off.scope().is_none(), "not following the log yet");
        off.put(
            Bytes::from_static(b"q"),
            Bytes::from_static(b"a"),
            scope(&[]),
        );
        assert_eq!(off.get(b"q"), None);
    }

    #[test]
    fn entries_expire_and_memory_stays_bounded() {
        let metrics = Metrics::new(&prometheus::Registry::new());
        let cache = PageCache::new(16 * 100, Duration::from_millis(50), metrics.clone());
        cache.enable();
        for i in 0..100u8 {
            cache.put(Bytes::from(vec![i]), Bytes::from(vec![0; 49]), scope(&[]));
        }
        assert!(metrics.page_cache_bytes.get() <= 1600);
        assert!(cache.get(&[0]).is_none(), "least recently used went first");
        assert!(cache.get(&[99]).is_some());
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.get(&[99]).is_none(), "older than the maximum age");
    }

    #[test]
    fn only_post_and_comment_reads_are_cacheable() {
        let doc = |q: &str| async_graphql::parser::parse_query(q).expect("valid query");
        assert!(cacheable_document(&doc("{ post(slug: \"a\") { title } }")));
        assert!(cacheable_document(&doc(
            "query Page($id: ID!) { comments(postId: $id) { edges { cursor } } __typename }"
        )));
        assert!(!cacheable_document(&doc("{ posts { edges { cursor } } }")));
        assert!(!cacheable_document(&doc("{ viewer { id } }")));
        assert!(!cacheable_document(&doc(
            "{ ... on Query { post(slug: \"a\") { id } } }"
        )));
        assert!(!cacheable_document(&doc("mutation { logout }")));
    }
}
