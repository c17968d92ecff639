//! `sqlx::migrate!` embeds `schema/` at compile time; without this a new migration file would not
//! reach a build whose sources did not otherwise change (sqlx's documented build-script line).
fn main() {
    println!("cargo:rerun-if-changed=../schema");
}
