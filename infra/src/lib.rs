//! Thin infrastructure shared by Inkwire's services: database pools for PostgreSQL/CockroachDB
//! and SQLite, the event log (Kafka or the embedded log), retries, shutdown, telemetry, and the
//! markdown renderer (pure, shared by the projector and the gateway).
//! No business rules live here.

pub mod auth;
pub mod db;
pub mod log;
pub mod markdown;
pub mod shutdown;
pub mod telemetry;
