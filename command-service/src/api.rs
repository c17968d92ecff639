//! [`CommandService`]: every command of [`command_api`], executed. The HTTP routes
//! (`crate::http`) decode a request into the same command and call the same method here; in one
//! process (`inkwire dev`) the gateway calls it directly through [`CommandApi`], with no socket,
//! no JSON and no caller proof (there is no network to cross).

use std::sync::Arc;
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use command_api::{
    Accepted, AccountCommand, Caller, CommandApi, CommandError, Done, PostCommand, Session,
    SessionCommand,
};
use events::{CommentId, PostId};

use crate::domain::post::Authored;
use crate::domain::post::commands::{self as domain, PostCommand as Command};
use crate::handler::{CommandBus, CommandError as BusError, RequestMeta};
use crate::http::ApiError;
use crate::mail::MailSettings;
use crate::users::{Access, Registration, UserService};

/// Longest a session may be refreshed, from the password sign-in.
const MAX_SESSION: Duration = Duration::from_secs(30 * 24 * 3600);

/// The command service's commands, callable in-process.
#[derive(Clone)]
pub struct CommandService {
    /// Executes post and comment commands.
    pub bus: Arc<CommandBus>,
    /// Sign-up, sign-in, roles.
    pub users: UserService,
    /// Notification email settings and links.
    pub mail: MailSettings,
}

/// A caller as the commands see it: the account's current name and roles, read fresh.
struct Resolved {
    caller: domain::Caller,
    meta: RequestMeta,
    client: String,
}

impl Resolved {
    fn access(&self) -> Option<(uuid::Uuid, Access)> {
        self.caller.user_id.map(|id| {
            (
                id.0,
                Access {
                    roles: self.caller.roles.clone(),
                    display_name: self.caller.name.clone().unwrap_or_default(),
                    disabled: false,
                },
            )
        })
    }
}

impl CommandService {
    /// The identity comes from the gateway (checked there); the name and roles from our own
    /// credentials table, so a role revoked a second ago no longer counts.
    async fn resolve(&self, caller: &Caller) -> Result<Resolved, ApiError> {
        let (name, roles) = match caller.user_id {
            None => (None, Vec::new()),
            Some(id) => match self.users.access(id.0).await {
                Ok(Some(access)) if !access.disabled => (Some(access.display_name), access.roles),
                Ok(Some(_)) => {
                    return Err(ApiError::Unauthenticated {
                        reason: "USER_DISABLED",
                        message: "this account is disabled".into(),
                    });
                }
                Ok(None) => {
                    return Err(ApiError::Unauthenticated {
                        reason: "UNKNOWN_USER",
                        message: "no such user".into(),
                    });
                }
                Err(e) if infra::db::is_unavailable(&e) => return Err(ApiError::Unavailable),
                Err(e) => {
                    tracing::error!(error = ?e, "caller lookup failed");
                    return Err(ApiError::Internal);
                }
            },
        };
        Ok(Resolved {
            caller: domain::Caller {
                user_id: caller.user_id,
                name,
                roles,
            },
            meta: RequestMeta {
                correlation_id: caller.request_id.as_deref().and_then(|v| v.parse().ok()),
                traceparent: caller.traceparent.clone(),
            },
            client: caller
                .client
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        })
    }

    /// Executes a post or comment command.
    ///
    /// # Errors
    /// [`ApiError`]; nothing is written then.
    pub async fn execute_post(
        &self,
        caller: &Caller,
        command: PostCommand,
        expected_version: Option<i64>,
    ) -> Result<Accepted, ApiError> {
        use PostCommand as C;
        let who = self.resolve(caller).await?;
        let (post, command, expected, comment) = match command {
            C::Create(b) => {
                let post = b.id.map_or_else(PostId::new, PostId);
                let command = Command::DraftPost(domain::DraftPost {
                    title: b.title,
                    slug: b.slug,
                    body_markdown: b.body_markdown,
                    tags: b.tags,
                    allow_anonymous_comments: b.allow_anonymous_comments,
                });
                // A create applies only to a new stream: version 0.
                (post, command, Some(0), None)
            }
            C::Edit(post, b) => {
                let expected = b.expected_version.or(expected_version);
                let command = Command::EditPost(domain::EditPost {
                    title: b.title,
                    slug: b.slug,
                    body_markdown: b.body_markdown,
                    tags: b.tags,
                    allow_anonymous_comments: b.allow_anonymous_comments,
                });
                (post, command, expected, None)
            }
            C::Publish(post) => (post, Command::PublishPost, expected_version, None),
            C::Unpublish(post) => (post, Command::UnpublishPost, expected_version, None),
            C::Delete(post) => (post, Command::DeletePost, expected_version, None),
            C::Schedule(post, b) => {
                let command = Command::SchedulePost {
                    publish_at: b.publish_at.trunc_subsecs(0),
                    now: Utc::now(),
                };
                (post, command, expected_version, None)
            }
            C::Unschedule(post) => (post, Command::UnschedulePost, expected_version, None),
            C::AddComment(post, b) => {
                let comment_id = CommentId::new();
                let command = Command::AddComment(domain::AddComment {
                    comment_id,
                    parent_id: b.parent_id.map(CommentId),
                    body: b.body,
                    author_name: b.author_name,
                });
                (post, command, expected_version, Some(comment_id))
            }
            C::EditComment(post, comment_id, b) => {
                let command = Command::EditComment {
                    comment_id,
                    body: b.body,
                };
                (post, command, expected_version, Some(comment_id))
            }
            C::DeleteComment(post, comment_id) => (
                post,
                Command::DeleteComment { comment_id },
                expected_version,
                Some(comment_id),
            ),
            C::HideComment(post, comment_id, b) => (
                post,
                Command::HideComment {
                    comment_id,
                    reason: b.reason,
                },
                expected_version,
                Some(comment_id),
            ),
            C::RestoreComment(post, comment_id) => (
                post,
                Command::RestoreComment { comment_id },
                expected_version,
                Some(comment_id),
            ),
            C::React(post, comment_id, kind) => (
                post,
                Command::React {
                    comment_id,
                    kind,
                    on: true,
                },
                expected_version,
                comment_id,
            ),
            C::Unreact(post, comment_id, kind) => (
                post,
                Command::React {
                    comment_id,
                    kind,
                    on: false,
                },
                expected_version,
                comment_id,
            ),
        };
        let creating = matches!(command, Command::DraftPost(_));
        let authored = Authored {
            caller: who.caller,
            command,
        };
        let accepted = self
            .bus
            .execute(post, authored, expected, who.meta)
            .await
            .map_err(|e| match e {
                BusError::VersionMismatch { .. } if creating => {
                    crate::domain::post::PostError::PostAlreadyExists.into()
                }
                other => ApiError::from(other),
            })?;
        Ok(Accepted::new(
            accepted.post_id,
            comment,
            accepted.version,
            accepted.events,
        ))
    }

    /// Signs someone in.
    ///
    /// # Errors
    /// [`ApiError`]; nothing is written then.
    pub async fn execute_session(
        &self,
        caller: &Caller,
        command: SessionCommand,
    ) -> Result<Session, ApiError> {
        let who = self.resolve(caller).await?;
        let session = match command {
            // Self-service sign-up makes readers; roles come from an admin afterwards.
            SessionCommand::Register(b) => {
                let registration = Registration {
                    id: None,
                    username: b.username,
                    password: b.password,
                    display_name: b.display_name,
                    roles: Vec::new(),
                };
                self.users.register(registration, &who.meta).await?
            }
            SessionCommand::Login(b) => {
                self.users
                    .login(&b.username, &b.password, &who.client)
                    .await?
            }
            SessionCommand::Refresh(b) => {
                let access = who.access();
                self.users
                    .refresh(
                        access.as_ref().map(|(id, a)| (*id, a)),
                        b.auth_time,
                        MAX_SESSION,
                    )
                    .await?
            }
        };
        Ok(session)
    }

    /// Changes an account.
    ///
    /// # Errors
    /// [`ApiError`]; nothing is written then.
    pub async fn execute_account(
        &self,
        caller: &Caller,
        command: AccountCommand,
    ) -> Result<Done, ApiError> {
        let who = self.resolve(caller).await?;
        let access = who.access();
        let access = access.as_ref().map(|(id, a)| (*id, a));
        Ok(match command {
            AccountCommand::ChangeDisplayName(b) => {
                self.users
                    .change_display_name(access, &b.display_name, &who.meta)
                    .await?;
                Done::OK
            }
            AccountCommand::ChangePassword(b) => {
                self.users
                    .change_password(access, &b.current_password, &b.new_password, &who.meta)
                    .await?;
                Done::OK
            }
            AccountCommand::GrantRole(user, b) => Done::User(
                self.users
                    .set_role(access, user.0, &b.role, true, &who.meta)
                    .await?,
            ),
            AccountCommand::RevokeRole(user, role) => Done::User(
                self.users
                    .set_role(access, user.0, &role, false, &who.meta)
                    .await?,
            ),
            AccountCommand::Disable(user) => {
                self.users.disable(access, user.0, &who.meta).await?;
                Done::OK
            }
            AccountCommand::RecordMedia(b) => {
                self.users.record_media(access, b, &who.meta).await?;
                Done::OK
            }
            AccountCommand::MarkNotificationsRead(b) => {
                self.users
                    .mark_notifications_read(access, b, &who.meta)
                    .await?;
                Done::OK
            }
            AccountCommand::ShowEmail => Done::Email(self.mail.show(access.map(|a| a.0)).await?),
            AccountCommand::SetEmail(b) => Done::Email(
                self.mail
                    .set(access.map(|a| a.0), b.email.as_deref(), b.enabled)
                    .await?,
            ),
            AccountCommand::ConfirmEmail(b) => {
                self.mail.confirm(&b.token).await?;
                Done::OK
            }
            AccountCommand::Unsubscribe(b) => {
                self.mail.unsubscribe(&b.token).await?;
                Done::OK
            }
        })
    }
}

#[async_trait::async_trait]
impl CommandApi for CommandService {
    async fn post(
        &self,
        caller: &Caller,
        command: PostCommand,
        expected_version: Option<i64>,
    ) -> Result<Accepted, CommandError> {
        Ok(self.execute_post(caller, command, expected_version).await?)
    }

    async fn session(
        &self,
        caller: &Caller,
        command: SessionCommand,
    ) -> Result<Session, CommandError> {
        Ok(self.execute_session(caller, command).await?)
    }

    async fn account(
        &self,
        caller: &Caller,
        command: AccountCommand,
    ) -> Result<Done, CommandError> {
        Ok(self.execute_account(caller, command).await?)
    }
}
