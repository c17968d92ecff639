//! `inkwire user add`: creates a user (the first admin, say) straight in the event store, with
//! the password read from stdin. Its events reach the log through the outbox the next time a
//! command service (or `inkwire dev`) runs its relay.

use std::io::{Read, Write};

use clap::{Args, Subcommand};
use infra::db::Db;
use uuid::Uuid;

/// `inkwire user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Adds a user; the password is read from stdin (one line).
    Add(AddArgs),
}

/// Arguments of `inkwire user add`.
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Login name.
    #[arg(long)]
    pub username: String,
    /// Role besides `reader` (repeatable): `author`, `moderator`, `admin`.
    #[arg(long = "role")]
    pub roles: Vec<String>,
    /// Shown name (default: the username).
    #[arg(long)]
    pub display_name: Option<String>,
    /// A fixed id (for scripts); a new one by default.
    #[arg(long)]
    pub id: Option<Uuid>,
    /// The database (`postgresql://…` or `sqlite://…`).
    #[arg(long, env = "INKWIRE_DATABASE_URL", conflicts_with = "data_dir")]
    pub database_url: Option<String>,
    /// The data directory of `inkwire dev` [default: ./inkwire-data].
    #[arg(long, env = "INKWIRE_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
}

/// The password: asked for twice, unseen, at a terminal; else one line of stdin.
fn read_password() -> anyhow::Result<String> {
    use std::io::IsTerminal;
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Password again: ")?;
        anyhow::ensure!(
            first == again,
            "the two passwords differ; nothing was written"
        );
        return Ok(first);
    }
    let mut password = String::new();
    std::io::stdin().read_to_string(&mut password)?;
    Ok(password.trim_end_matches(['\n', '\r']).to_owned())
}

/// Creates the user described by `args` with `password` in `db`; returns its id.
///
/// # Errors
/// When the input is refused or the database fails.
pub async fn add(db: &Db, args: &AddArgs, password: String) -> anyhow::Result<Uuid> {
    db.migrate().await?;
    // Signing keys are irrelevant here: the token of the new session is thrown away.
    let keys = command_api::auth::TokenKeys::new(
        Uuid::new_v4().as_bytes(),
        std::time::Duration::from_secs(1),
    );
    let users = command_service::users::UserService::new(
        command_service::store::EventStore::new(db.clone()),
        keys,
        std::sync::Arc::default(),
    );
    let session = users
        .register(
            command_service::users::Registration {
                id: args.id,
                username: args.username.clone(),
                password,
                display_name: args.display_name.clone(),
                roles: args.roles.clone(),
            },
            &command_service::handler::RequestMeta::default(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(session.user.id)
}

/// Runs `inkwire user …`.
///
/// # Errors
/// When the input is refused or the database fails.
pub async fn run(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add(args) => {
            let target = crate::config::DatabaseArgs {
                database_url: args.database_url.clone(),
                data_dir: args
                    .data_dir
                    .clone()
                    .unwrap_or_else(|| "./inkwire-data".into()),
            };
            let where_ = target.describe();
            // A SQLite file that is not there yet is made: say so, as it is most likely a
            // mistyped data directory rather than the blog the user meant.
            let new = target.is_missing();
            let password = read_password()?;
            let db = target.open(2).await?;
            let id = add(&db, &args, password).await?;
            // The id alone on stdout, for scripts; the rest for people, on stderr.
            println!("{id}");
            let mut err = std::io::stderr();
            let _ = writeln!(
                err,
                "user add: {} ({id}) written to {where_}",
                args.username
            );
            if new {
                let _ = writeln!(
                    err,
                    "user add: warning: {where_} did not exist, so a new, empty blog was made there; \
                     if you meant a running `inkwire dev`, pass its --data-dir"
                );
            }
            Ok(())
        }
    }
}
