//! The tables of a rebuild's next generation: created beside the live ones (`__next`), indexed
//! once filled, and the generations a switch retires (`__old`) dropped.

use chrono::Utc;
use infra::db::Db;
use infra::with_db;

use crate::projections::{NEXT_SUFFIX, View, replace_table};

/// Whether the database is CockroachDB (which speaks PostgreSQL's protocol).
pub(super) async fn is_cockroach(db: &Db) -> Result<bool, sqlx::Error> {
    Ok(match db {
        Db::Postgres(pool) => sqlx::query_scalar::<_, String>("SELECT version()")
            .fetch_one(pool)
            .await?
            .contains("CockroachDB"),
        Db::Sqlite(_) => false,
    })
}

/// Drops `<table><suffix>` for every table of `view`, when they exist.
pub(super) async fn drop_tables(db: &Db, view: View, suffix: &str) -> Result<(), sqlx::Error> {
    for table in view.tables() {
        with_db!(db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TABLE IF EXISTS {table}{suffix}"
            )))
            .execute(pool)
            .await
            .map(|r| r.rows_affected())
        })?;
    }
    Ok(())
}

/// Creates the next generation's tables (when they do not exist yet) with the live tables'
/// columns, constraints and primary key; the secondary indexes follow in [`create_next_indexes`]
/// (except on CockroachDB, where every table needs its final primary key from the start).
pub(super) async fn create_next_tables(
    db: &Db,
    view: View,
    cockroach: bool,
) -> Result<(), sqlx::Error> {
    for table in view.tables() {
        let next = format!("{table}{NEXT_SUFFIX}");
        match db {
            Db::Postgres(pool) if cockroach => {
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE IF NOT EXISTS {next} (LIKE {table} INCLUDING ALL)"
                )))
                .execute(pool)
                .await?;
            }
            Db::Postgres(pool) => {
                // The primary key now (the projection looks rows up by it), the other indexes
                // once the table is filled ([`create_next_indexes`]).
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "CREATE TABLE IF NOT EXISTS {next} (LIKE {table} INCLUDING ALL EXCLUDING INDEXES)"
                )))
                .execute(pool)
                .await?;
                let has_key: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1::text) AND indisprimary",
                )
                .bind(next.as_str())
                .fetch_one(pool)
                .await?;
                if has_key == 0 {
                    let columns: Vec<String> = sqlx::query_scalar(
                        "SELECT a.attname::text FROM pg_index i \
                         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                         WHERE i.indrelid = to_regclass($1::text) AND i.indisprimary \
                         ORDER BY array_position(i.indkey::int2[], a.attnum)",
                    )
                    .bind(*table)
                    .fetch_all(pool)
                    .await?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "ALTER TABLE {next} ADD PRIMARY KEY ({})",
                        columns.join(", ")
                    )))
                    .execute(pool)
                    .await?;
                }
            }
            Db::Sqlite(pool) => {
                let exists: i64 = sqlx::query_scalar(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = $1",
                )
                .bind(next.as_str())
                .fetch_one(pool)
                .await?;
                if exists > 0 {
                    continue;
                }
                // SQLite keeps each object's CREATE statement, columns added later included.
                let rows: Vec<(String, String, String)> = sqlx::query_as(
                    "SELECT type, name, sql FROM sqlite_master \
                     WHERE tbl_name = $1 AND sql IS NOT NULL ORDER BY type = 'index'",
                )
                .bind(*table)
                .fetch_all(pool)
                .await?;
                let mut tx = pool.begin().await?;
                // Secondary indexes come later ([`create_next_indexes`]): filling a table and
                // then sorting it into an index is much faster than keeping the index up to date
                // row by row.
                for (_, _, sql) in rows.into_iter().filter(|(kind, _, _)| kind == "table") {
                    let sql = replace_table(&sql, table, &next);
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
            }
        }
    }
    Ok(())
}

/// Gives the next generation's tables the live tables' secondary indexes, where they do not have
/// them yet (on CockroachDB they were created with the tables).
pub(super) async fn create_next_indexes(
    db: &Db,
    view: View,
    cockroach: bool,
) -> Result<(), sqlx::Error> {
    // (how many secondary indexes a table has, and their names and definitions)
    let (count_sql, list_sql) = match db {
        Db::Sqlite(_) => (
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = $1 AND sql IS NOT NULL",
        ),
        Db::Postgres(_) if cockroach => return Ok(()),
        Db::Postgres(_) => (
            "SELECT count(*) FROM pg_index WHERE indrelid = to_regclass($1::text) AND NOT indisprimary",
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = to_regclass($1::text) AND NOT i.indisprimary",
        ),
    };
    let stamp = Utc::now().timestamp_millis();
    for table in view.tables() {
        let next = format!("{table}{NEXT_SUFFIX}");
        with_db!(db, |pool| {
            let existing: i64 = sqlx::query_scalar(count_sql)
                .bind(next.as_str())
                .fetch_one(pool)
                .await?;
            if existing > 0 {
                continue;
            }
            let indexes: Vec<(String, String)> = sqlx::query_as(list_sql)
                .bind(*table)
                .fetch_all(pool)
                .await?;
            let mut tx = pool.begin().await?;
            for (name, sql) in indexes {
                // Index names are global: give the copy a name of its own.
                let base = name.split("__g").next().unwrap_or(&name);
                let sql = replace_table(
                    &replace_table(&sql, table, &next),
                    &name,
                    &format!("{base}__g{stamp}"),
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
    }
    Ok(())
}
