//! Inkwire's command boundary, as types: the commands a gateway may send ([`PostCommand`],
//! [`SessionCommand`], [`AccountCommand`]), what comes back ([`Accepted`], [`Session`],
//! [`UserView`]), and why a command was refused ([`CommandError`], whose [`ErrorCode`] is an
//! enum, never a string to match).
//!
//! [`CommandApi`] has two implementations: [`HttpCommands`] here, a client of the command
//! service's internal HTTP API (each request signed with a caller proof), and the command
//! service itself in-process (`inkwire dev`). The gateway depends on this crate only; no
//! server code lives here. The HTTP routes and bodies are defined once, by [`PostCommand::route`]
//! and its siblings, and the command service's router decodes the same request types.

mod answers;
pub mod auth;
mod commands;
mod error;
mod http;

pub use answers::{Accepted, Done, EmailSettings, Session, UserView};
pub use commands::{
    AccountCommand, AddComment, ChangeDisplayName, ChangePassword, CreatePost, EditComment,
    EditPost, GrantRole, HideComment, Login, MailLink, MarkNotificationsRead, PostCommand,
    RecordMedia, Refresh, Register, Route, SchedulePost, SessionCommand, SetEmail,
};
pub use error::{CommandError, ErrorBody, ErrorCode, Refusal};
pub use http::HttpCommands;

use events::UserId;

/// Who is asking, as the gateway established it: the user its access token named (checked),
/// the client's address (for sign-in throttling), and the request's correlation and trace
/// context. The command service reads the user's current roles and name itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    /// The signed-in user; `None` for an anonymous reader.
    pub user_id: Option<UserId>,
    /// The client's address.
    pub client: Option<String>,
    /// `x-request-id`, for correlation.
    pub request_id: Option<String>,
    /// W3C `traceparent`.
    pub traceparent: Option<String>,
}

/// Where commands go: the command service, over HTTP or in this process.
#[async_trait::async_trait]
pub trait CommandApi: Send + Sync + 'static {
    /// A command on a post's stream (its comments included). With `expected_version`, it applies
    /// only if the post is at exactly that version.
    ///
    /// # Errors
    /// The refusal, or [`CommandError::Unavailable`].
    async fn post(
        &self,
        caller: &Caller,
        command: PostCommand,
        expected_version: Option<i64>,
    ) -> Result<Accepted, CommandError>;

    /// A command that signs someone in (sign-up, sign-in, refresh).
    ///
    /// # Errors
    /// The refusal, or [`CommandError::Unavailable`].
    async fn session(
        &self,
        caller: &Caller,
        command: SessionCommand,
    ) -> Result<Session, CommandError>;

    /// A change to an account: the caller's own, or another's by an admin. Role changes answer
    /// with the user as it is now; the others with [`Done`].
    ///
    /// # Errors
    /// The refusal, or [`CommandError::Unavailable`].
    async fn account(&self, caller: &Caller, command: AccountCommand)
    -> Result<Done, CommandError>;
}
