//! Notification email: where a user's notifications are emailed (`notification_mail`, in the
//! write model: addresses are personal data and never go into an event), the links sent by
//! email (confirm an address, unsubscribe), and the [`sender::Mailer`] that sends what the read
//! model's notifications say, one email per user per window at most.
//!
//! Off unless an SMTP server is configured: then every setting but forgetting an address is
//! refused with `EMAIL_UNAVAILABLE`.

pub mod sender;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use command_api::EmailSettings;
use command_api::auth::{LinkPurpose, Refused, TokenKeys};
use infra::db::Db;
use infra::with_db;
use sqlx::Row;
use tokio::sync::Notify;
use uuid::Uuid;

pub use sender::{MailConfig, Mailer};

use crate::users::UserError;

/// How long a confirmation link works.
pub const CONFIRM_LINK_LIFETIME: Duration = Duration::from_secs(3 * 24 * 3600);
/// How long an unsubscribe link works (mail clients keep messages for a long time).
pub const UNSUBSCRIBE_LINK_LIFETIME: Duration = Duration::from_secs(400 * 24 * 3600);
/// Longest address accepted (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// The notification email settings of every user.
#[derive(Clone)]
pub struct MailSettings {
    db: Db,
    keys: TokenKeys,
    /// Whether an SMTP server is configured.
    available: bool,
    /// Wakes the mailer (a confirmation to send).
    wake: Arc<Notify>,
}

/// One row of `notification_mail`, as settings show it.
struct Row_ {
    email: String,
    verified: bool,
    enabled: bool,
}

impl MailSettings {
    /// The settings in `db`; links signed with `keys`; `available` when a mailer runs, which
    /// `wake` wakes.
    #[must_use]
    pub fn new(db: Db, keys: TokenKeys, available: bool, wake: Arc<Notify>) -> Self {
        Self {
            db,
            keys,
            available,
            wake,
        }
    }

    fn answer(&self, row: Option<Row_>) -> EmailSettings {
        match row {
            Some(row) => EmailSettings {
                email: Some(row.email),
                verified: row.verified,
                enabled: row.enabled,
                available: self.available,
            },
            None => EmailSettings {
                email: None,
                verified: false,
                enabled: false,
                available: self.available,
            },
        }
    }

    async fn row(&self, user: Uuid) -> Result<Option<Row_>, sqlx::Error> {
        infra::db::retry_read(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "SELECT email, verified_at IS NOT NULL AS verified, enabled \
                     FROM notification_mail WHERE user_id = $1",
                )
                .bind(user)
                .fetch_optional(pool)
                .await?
                .map(|row| {
                    Ok(Row_ {
                        email: row.try_get("email")?,
                        verified: row.try_get("verified")?,
                        enabled: row.try_get("enabled")?,
                    })
                })
                .transpose()
            })
        })
        .await
    }

    /// The caller's settings.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`], or a store failure.
    pub async fn show(&self, caller: Option<Uuid>) -> Result<EmailSettings, UserError> {
        let user = caller.ok_or(UserError::Unauthenticated)?;
        Ok(self.answer(self.row(user).await?))
    }

    /// Sets the caller's address and whether notifications are emailed. A new address is
    /// unconfirmed and gets a confirmation link (within the rate window); turning email on
    /// starts from now, never with a backlog. `None` forgets the address.
    ///
    /// # Errors
    /// [`UserError::Unauthenticated`], [`UserError::Invalid`] for an address that is not one,
    /// [`UserError::MailUnavailable`] when this site sends no email, or a store failure.
    pub async fn set(
        &self,
        caller: Option<Uuid>,
        email: Option<&str>,
        enabled: bool,
    ) -> Result<EmailSettings, UserError> {
        let user = caller.ok_or(UserError::Unauthenticated)?;
        let Some(email) = email else {
            infra::db::retry_tx(|| async {
                with_db!(&self.db, |pool| {
                    sqlx::query("DELETE FROM notification_mail WHERE user_id = $1")
                        .bind(user)
                        .execute(pool)
                        .await
                        .map(|_| ())
                })
            })
            .await?;
            return Ok(self.answer(None));
        };
        if !self.available {
            return Err(UserError::MailUnavailable);
        }
        let email = validate_address(email)?;
        let now = Utc::now();
        infra::db::retry_tx(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "INSERT INTO notification_mail (user_id, email, enabled, verified_at, \
                     confirm_pending, since, mailed_seq, last_mailed_at, updated_at) \
                     VALUES ($1, $2, $3, NULL, $4, $5, 0, NULL, $5) \
                     ON CONFLICT (user_id) DO UPDATE SET \
                     since = CASE WHEN notification_mail.email <> excluded.email \
                        OR (excluded.enabled AND NOT notification_mail.enabled) \
                        THEN excluded.since ELSE notification_mail.since END, \
                     verified_at = CASE WHEN notification_mail.email = excluded.email \
                        THEN notification_mail.verified_at ELSE NULL END, \
                     confirm_pending = CASE WHEN notification_mail.email = excluded.email \
                        AND notification_mail.verified_at IS NOT NULL THEN $6 ELSE $4 END, \
                     enabled = excluded.enabled, email = excluded.email, \
                     updated_at = excluded.updated_at",
                )
                .bind(user)
                .bind(&email)
                .bind(enabled)
                .bind(true)
                .bind(now)
                .bind(false)
                .execute(pool)
                .await
                .map(|_| ())
            })
        })
        .await?;
        self.wake.notify_one();
        Ok(self.answer(self.row(user).await?))
    }

    /// Confirms the address a confirmation link was sent to, if the account still has it.
    ///
    /// # Errors
    /// [`UserError::BadLink`], [`UserError::LinkExpired`], [`UserError::LinkStale`] when the
    /// account has another address now, or a store failure.
    pub async fn confirm(&self, token: &str) -> Result<(), UserError> {
        let claims = self.link(LinkPurpose::ConfirmEmail, token)?;
        let now = Utc::now();
        let changed = infra::db::retry_tx(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "UPDATE notification_mail SET verified_at = COALESCE(verified_at, $3), \
                     confirm_pending = $4, updated_at = $3 WHERE user_id = $1 AND email = $2",
                )
                .bind(claims.sub)
                .bind(&claims.email)
                .bind(now)
                .bind(false)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
            })
        })
        .await?;
        if changed == 0 {
            return Err(UserError::LinkStale);
        }
        tracing::info!(user_id = %claims.sub, "notification email address confirmed");
        Ok(())
    }

    /// Stops notification email to the address an unsubscribe link was sent to. Following it
    /// again, or after the address changed, changes nothing and is not an error.
    ///
    /// # Errors
    /// [`UserError::BadLink`], [`UserError::LinkExpired`], or a store failure.
    pub async fn unsubscribe(&self, token: &str) -> Result<(), UserError> {
        let claims = self.link(LinkPurpose::Unsubscribe, token)?;
        let now = Utc::now();
        infra::db::retry_tx(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "UPDATE notification_mail SET enabled = $3, updated_at = $4 \
                     WHERE user_id = $1 AND email = $2",
                )
                .bind(claims.sub)
                .bind(&claims.email)
                .bind(false)
                .bind(now)
                .execute(pool)
                .await
                .map(|_| ())
            })
        })
        .await?;
        tracing::info!(user_id = %claims.sub, "unsubscribed from notification email");
        Ok(())
    }

    fn link(
        &self,
        purpose: LinkPurpose,
        token: &str,
    ) -> Result<command_api::auth::LinkClaims, UserError> {
        self.keys
            .verify_link(purpose, token.trim())
            .map_err(|refused| match refused {
                Refused::Expired => UserError::LinkExpired,
                Refused::Invalid => UserError::BadLink,
            })
    }
}

/// `raw`, trimmed, if it is an email address we can send to.
///
/// # Errors
/// [`UserError::Invalid`] on the field `email`.
pub fn validate_address(raw: &str) -> Result<String, UserError> {
    let email = raw.trim();
    let invalid = |message| UserError::Invalid {
        field: "email",
        message,
    };
    if email.len() > MAX_ADDRESS {
        return Err(invalid("an address of at most 254 characters"));
    }
    let address: lettre::Address = email
        .parse()
        .map_err(|_| invalid("an email address, such as ada@example.org"))?;
    // A bare host (`ada@localhost`) is a local mailbox, not somewhere to send a reader's mail.
    if !address.domain().contains('.') && !address.domain().starts_with('[') {
        return Err(invalid(
            "an email address with a full domain, such as ada@example.org",
        ));
    }
    Ok(email.to_owned())
}

/// When `last` plus `window` has passed at `now`: another email may go out.
#[must_use]
pub fn window_passed(last: Option<DateTime<Utc>>, window: Duration, now: DateTime<Utc>) -> bool {
    last.is_none_or(|last| now.signed_duration_since(last).to_std().unwrap_or_default() >= window)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_checked() {
        assert_eq!(
            validate_address("  ada@example.org ").expect("valid"),
            "ada@example.org"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.org",
            "ada@localhost",
            "ada example@example.org",
            "ada@example.org\r\nBcc: eve@example.org",
        ] {
            assert!(validate_address(bad).is_err(), "{bad:?} accepted");
        }
        let long = format!("{}@example.org", "a".repeat(250));
        assert!(validate_address(&long).is_err());
    }

    #[test]
    fn the_window_counts_from_the_last_email() {
        let now = Utc::now();
        let window = Duration::from_secs(600);
        assert!(window_passed(None, window, now));
        assert!(!window_passed(
            Some(now - chrono::Duration::seconds(599)),
            window,
            now
        ));
        assert!(window_passed(
            Some(now - chrono::Duration::seconds(600)),
            window,
            now
        ));
        // A clock that went back never lets a second email through early.
        assert!(!window_passed(
            Some(now + chrono::Duration::seconds(5)),
            window,
            now
        ));
    }
}
