//! Platform mechanisms shared by Inkwire's services: database pools for PostgreSQL/CockroachDB
//! and SQLite (migrations, retries, change probes), the event log (Kafka or the embedded log),
//! sockets and service start-up, runtimes, shutdown and telemetry.
//! No application semantics live here: access tokens and caller proofs are the command
//! boundary's (`command_api::auth`), the projector's commit bell the read model's
//! (`read_model::bell`).

pub mod db;
pub mod log;
pub mod net;
pub mod rt;
pub mod shutdown;
pub mod telemetry;
