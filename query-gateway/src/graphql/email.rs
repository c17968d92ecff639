//! Notification email: `emailNotifications` (where and whether the signed-in user's
//! notifications are emailed), `updateEmailNotifications`, and the two links an email carries,
//! `confirmEmail` and `unsubscribeEmail`, which work signed out (the link is the proof). The
//! addresses live in the command service's write model; every field here goes through the
//! command API.

use async_graphql::{Context, Object, Result, SimpleObject};
use command_api::{AccountCommand, Done, EmailSettings, MailLink, SetEmail};

use super::notifications::signed_in;
use super::{command_caller, gql, shared};
use crate::error::GatewayError;

/// Where and whether the signed-in user's notifications are emailed.
#[derive(SimpleObject)]
pub struct EmailNotifications {
    /// The address, if they gave one.
    pub email: Option<String>,
    /// Whether they followed the confirmation link sent to it; until then nothing else is sent.
    pub verified: bool,
    /// Whether notifications are emailed (at most one email per configured window; what comes
    /// in between is gathered into the next).
    pub enabled: bool,
    /// Whether this site sends email at all.
    pub available: bool,
}

impl From<EmailSettings> for EmailNotifications {
    fn from(s: EmailSettings) -> Self {
        Self {
            email: s.email,
            verified: s.verified,
            enabled: s.enabled,
            available: s.available,
        }
    }
}

async fn settings(ctx: &Context<'_>, command: AccountCommand) -> Result<EmailNotifications> {
    match shared(ctx)
        .commands
        .account(&command_caller(ctx), command)
        .await
        .map_err(|e| gql(e.into()))?
    {
        Done::Email(settings) => Ok(settings.into()),
        _ => Err(gql(GatewayError::Internal)),
    }
}

/// `emailNotifications`.
#[derive(Default)]
pub struct EmailQueries;

#[Object]
impl EmailQueries {
    /// Where and whether the signed-in user's notifications are emailed. Signed out:
    /// `UNAUTHENTICATED`.
    async fn email_notifications(&self, ctx: &Context<'_>) -> Result<EmailNotifications> {
        signed_in(ctx, "see your email settings")?;
        settings(ctx, AccountCommand::ShowEmail).await
    }
}

/// `updateEmailNotifications`, `confirmEmail`, `unsubscribeEmail`.
#[derive(Default)]
pub struct EmailMutations;

#[Object]
impl EmailMutations {
    /// Sets where the signed-in user's notifications are emailed, and whether they are. A new
    /// address is sent a confirmation link first; nothing else goes to it until the link is
    /// followed. `email: null` forgets the address. Refusals: `UNAUTHENTICATED`, `VALIDATION`
    /// (reason `INVALID_FIELD`, field `email`), `CONFLICT` (reason `EMAIL_UNAVAILABLE`: this site
    /// sends no email).
    async fn update_email_notifications(
        &self,
        ctx: &Context<'_>,
        email: Option<String>,
        enabled: bool,
    ) -> Result<EmailNotifications> {
        signed_in(ctx, "change your email settings")?;
        settings(ctx, AccountCommand::SetEmail(SetEmail { email, enabled })).await
    }

    /// Confirms an address with the token of the link sent to it. Works signed out.
    /// Refusals: `VALIDATION` (reasons `INVALID_LINK`, `LINK_EXPIRED`), `CONFLICT`
    /// (reason `LINK_STALE`: the account has another address now).
    async fn confirm_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        link(ctx, AccountCommand::ConfirmEmail(MailLink { token })).await
    }

    /// Stops notification email with the token of the link at the bottom of one. Works signed
    /// out; following it again changes nothing. Refusals: `VALIDATION` (reasons
    /// `INVALID_LINK`, `LINK_EXPIRED`).
    async fn unsubscribe_email(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        link(ctx, AccountCommand::Unsubscribe(MailLink { token })).await
    }
}

async fn link(ctx: &Context<'_>, command: AccountCommand) -> Result<bool> {
    shared(ctx)
        .commands
        .account(&command_caller(ctx), command)
        .await
        .map_err(|e| gql(e.into()))?;
    Ok(true)
}
