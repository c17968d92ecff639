//! Users: the `User` type, `viewer`, and the account mutations (sign-up, sign-in, refresh,
//! name and password changes, roles, disabling).

use async_graphql::{Context, ID, InputObject, Object, Result, SimpleObject};
use command_api::{
    AccountCommand, ChangeDisplayName, ChangePassword, Done, GrantRole, Login, Refresh, Register,
    Session, SessionCommand, UserView,
};
use events::UserId;
use read_model::UserRow;

use super::loaders::load_user;
use super::{caller, command_caller, gql, parse_id, shared};
use crate::error::GatewayError;

/// A person with an account.
#[derive(SimpleObject, Clone)]
pub struct User {
    /// Id.
    pub id: ID,
    /// Login name.
    pub username: String,
    /// Shown name.
    pub display_name: String,
    /// `reader`, `author`, `moderator`, `admin`.
    pub roles: Vec<String>,
}

impl From<&UserRow> for User {
    fn from(row: &UserRow) -> Self {
        Self {
            id: ID(row.id.to_string()),
            username: row.username.clone(),
            display_name: row.display_name.clone(),
            roles: row.roles.0.clone(),
        }
    }
}

/// A signed-in session.
#[derive(SimpleObject)]
pub struct AuthPayload {
    /// Send as `Authorization: Bearer <token>` (HTTP) or `{"authorization": "Bearer <token>"}`
    /// in `connection_init` (WebSocket). Expires; sign in again to renew.
    pub token: String,
    /// Who it is for.
    pub user: User,
}

/// A new account.
#[derive(InputObject)]
pub struct RegisterInput {
    /// 3 to 32 lower-case letters, digits, `_` or `-`.
    pub username: String,
    /// 8 to 128 characters.
    pub password: String,
    /// Shown name; the username when absent.
    pub display_name: Option<String>,
}

impl From<UserView> for User {
    fn from(u: UserView) -> Self {
        Self {
            id: ID(u.id.to_string()),
            username: u.username,
            display_name: u.display_name,
            roles: u.roles,
        }
    }
}

impl From<Session> for AuthPayload {
    fn from(session: Session) -> Self {
        Self {
            token: session.token,
            user: session.user.into(),
        }
    }
}

/// `viewer`.
#[derive(Default)]
pub struct UserQueries;

#[Object]
impl UserQueries {
    /// The signed-in user, or null.
    async fn viewer(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let Some(caller) = caller(ctx) else {
            return Ok(None);
        };
        let Some(id) = caller.user() else {
            return Ok(None);
        };
        Ok(Some(match load_user(ctx, id).await? {
            Some(row) => User::from(row.as_ref()),
            // Just signed up, not projected yet: what the token says.
            None => User {
                id: ID(id.to_string()),
                username: caller.username.clone().unwrap_or_default(),
                display_name: caller.name.clone().unwrap_or_default(),
                roles: caller.roles.clone(),
            },
        }))
    }
}

/// Sends a command that signs someone in.
async fn session(ctx: &Context<'_>, command: SessionCommand) -> Result<AuthPayload> {
    let session = shared(ctx)
        .commands
        .session(&command_caller(ctx), command)
        .await
        .map_err(|e| gql(e.into()))?;
    Ok(session.into())
}

/// Sends an account command.
async fn account(ctx: &Context<'_>, command: AccountCommand) -> Result<Done> {
    shared(ctx)
        .commands
        .account(&command_caller(ctx), command)
        .await
        .map_err(|e| gql(e.into()))
}

/// A role change's answer: the user as it is now.
fn changed_user(done: Done) -> Result<User> {
    match done {
        Done::User(user) => Ok(user.into()),
        Done::Ok { .. } | Done::Email(_) => Err(gql(GatewayError::Internal)),
    }
}

/// Account mutations.
#[derive(Default)]
pub struct UserMutations;

#[Object]
impl UserMutations {
    /// Creates an account (role `reader`) and signs it in.
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> Result<AuthPayload> {
        let command = SessionCommand::Register(Register {
            username: input.username,
            password: input.password,
            display_name: input.display_name,
        });
        session(ctx, command).await
    }

    /// Signs in. A wrong username and a wrong password get the same error
    /// (`UNAUTHENTICATED`); repeated failures are throttled (`RATE_LIMITED`).
    async fn login(
        &self,
        ctx: &Context<'_>,
        username: String,
        password: String,
    ) -> Result<AuthPayload> {
        session(ctx, SessionCommand::Login(Login { username, password })).await
    }

    /// A new token for the signed-in user, with their current roles, while the session (from the
    /// password sign-in) is younger than 30 days and the account is enabled. Call it before the
    /// token expires.
    async fn refresh_token(&self, ctx: &Context<'_>) -> Result<AuthPayload> {
        let who = caller(ctx).filter(|c| c.user_id.is_some()).ok_or_else(|| {
            gql(GatewayError::Domain {
                code: "UNAUTHENTICATED".into(),
                reason: "SIGN_IN_REQUIRED".into(),
                message: "sign in first".into(),
                field: None,
            })
        })?;
        let auth_time = who.auth_time.unwrap_or(0);
        session(ctx, SessionCommand::Refresh(Refresh { auth_time })).await
    }

    /// Changes the signed-in user's shown name.
    async fn change_display_name(&self, ctx: &Context<'_>, display_name: String) -> Result<bool> {
        let command = AccountCommand::ChangeDisplayName(ChangeDisplayName { display_name });
        account(ctx, command).await?;
        Ok(true)
    }

    /// Changes the signed-in user's password; needs the current one.
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<bool> {
        let command = AccountCommand::ChangePassword(ChangePassword {
            current_password,
            new_password,
        });
        account(ctx, command).await?;
        Ok(true)
    }

    /// Disables an account (admins): it can no longer sign in, and its tokens stop working for
    /// every change at once.
    async fn disable_user(&self, ctx: &Context<'_>, user_id: ID) -> Result<bool> {
        let user = UserId(parse_id(&user_id, "userId").map_err(gql)?);
        account(ctx, AccountCommand::Disable(user)).await?;
        Ok(true)
    }

    /// Grants a role (admins).
    async fn grant_role(&self, ctx: &Context<'_>, user_id: ID, role: String) -> Result<User> {
        let user = UserId(parse_id(&user_id, "userId").map_err(gql)?);
        changed_user(account(ctx, AccountCommand::GrantRole(user, GrantRole { role })).await?)
    }

    /// Revokes a role (admins).
    async fn revoke_role(&self, ctx: &Context<'_>, user_id: ID, role: String) -> Result<User> {
        let user = UserId(parse_id(&user_id, "userId").map_err(gql)?);
        if role.is_empty() || !role.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(gql(GatewayError::bad_input("INVALID_ROLE", "no such role")));
        }
        changed_user(account(ctx, AccountCommand::RevokeRole(user, role)).await?)
    }
}
