//! Inkwire's load tools, apart from the product: the benchmarks behind `inkwire bench`
//! ([`bench`]: commands, catch-up, replay, the log's own rates; [`gateway`]: live fan-out and
//! the post page), the stress run behind `inkwire stress` ([`stress`]), the epoll subscribers
//! that timestamp pushes with the kernel's receive time ([`wire`]), and the one GraphQL and
//! WebSocket client they share with the integration tests ([`client`]). They reach Inkwire
//! through its public APIs (GraphQL, the log, the projector's library) only.

pub mod bench;
pub mod client;
pub mod gateway;
pub mod stress;
pub mod wire;
