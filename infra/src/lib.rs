//! Thin infrastructure shared by Inkwire's services: database pools for PostgreSQL/CockroachDB
//! and SQLite, the event log (Kafka or the embedded log), retries, shutdown, telemetry and
//! access tokens.
//! No business rules live here.

pub mod auth;
pub mod bell;
pub mod db;
pub mod log;
pub mod net;
pub mod rt;
pub mod shutdown;
pub mod telemetry;
