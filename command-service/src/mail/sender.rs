//! The mailer: one instance at a time (the `notification-mailer` lease) looks every
//! [`MailConfig::poll`] for confirmation links to send and for users whose notifications the read
//! model has and no email told them of yet, and sends each user one email with all of them,
//! never sooner than [`MailConfig::window`] after the last email to that user.
//!
//! Delivery is at least once: a user's position moves only after the SMTP server took the
//! message, so a mailer that dies between the two sends that email again on the next look.
//! Notifications read on the site before the email goes out are not sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use command_api::auth::{LinkPurpose, TokenKeys};
use infra::db::Db;
use infra::with_db;
use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use read_model::NotificationRow;
use read_model::ReadModel;
use sqlx::Row;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{CONFIRM_LINK_LIFETIME, UNSUBSCRIBE_LINK_LIFETIME, window_passed};
use crate::metrics::Metrics;
use crate::store::outbox::Outbox;

const LEASE: &str = "notification-mailer";
/// Users read per page of a look.
const PAGE: i64 = 100;
/// Notifications listed in one email; the rest are counted.
const LISTED: usize = 20;
/// Characters of a comment quoted in an email.
const QUOTED: usize = 280;
/// Longest pause after the SMTP server failed.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// How and where notification email is sent.
#[derive(Debug, Clone)]
pub struct MailConfig {
    /// The SMTP server: `smtp://host:port` (plain, for a local relay), `smtp://host?tls=required`
    /// (STARTTLS), `smtps://user:password@host:465`.
    pub smtp_url: String,
    /// The sender, `Name <address>`.
    pub from: String,
    /// Where readers reach the site, for the links in emails (`https://blog.example`).
    pub public_url: String,
    /// At most one email per user in this long.
    pub window: Duration,
    /// How often the mailer looks for something to send.
    pub poll: Duration,
}

impl MailConfig {
    /// Checks the settings: the SMTP URL and the sender parse.
    ///
    /// # Errors
    /// Plain words on what is wrong.
    pub fn check(&self) -> Result<(), String> {
        self.from
            .parse::<Mailbox>()
            .map_err(|e| format!("the mail sender {:?} is not an address: {e}", self.from))?;
        AsyncSmtpTransport::<Tokio1Executor>::from_url(&self.smtp_url)
            .map_err(|e| format!("the SMTP URL is not usable: {e}"))?;
        Ok(())
    }
}

/// A user whose notifications are due.
struct Due {
    user: Uuid,
    email: String,
    name: String,
    since: DateTime<Utc>,
    mailed_seq: i64,
}

/// The mailer task.
pub struct Mailer {
    db: Db,
    reads: ReadModel,
    leases: Outbox,
    keys: TokenKeys,
    config: MailConfig,
    from: Mailbox,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    holder: String,
    wake: Arc<Notify>,
    metrics: Metrics,
}

impl Mailer {
    /// A mailer over `db` (write model and read tables), signing links with `keys`; `wake`
    /// makes it look at once.
    ///
    /// # Errors
    /// When the configuration does not parse ([`MailConfig::check`]).
    pub fn new(
        db: Db,
        keys: TokenKeys,
        config: MailConfig,
        wake: Arc<Notify>,
        metrics: Metrics,
    ) -> Result<Self, String> {
        config.check()?;
        let from = config.from.parse().map_err(|e| format!("{e}"))?;
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.smtp_url)
            .map_err(|e| e.to_string())?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        Ok(Self {
            reads: ReadModel::uncounted(db.clone()),
            leases: Outbox::new(db.clone()),
            db,
            keys,
            config,
            from,
            transport,
            holder: format!("mailer-{}", Uuid::now_v7()),
            wake,
            metrics,
        })
    }

    /// Runs until `cancel`, then gives the lease up.
    pub async fn run(self, cancel: CancellationToken) {
        let ttl = chrono::Duration::from_std(self.config.poll * 3 + Duration::from_secs(10))
            .unwrap_or(chrono::Duration::seconds(30));
        let mut backoff = Duration::ZERO;
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.config.poll.max(backoff)) => {}
            }
            match self.leases.acquire_lease(LEASE, &self.holder, ttl).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    tracing::warn!(error = %error, "mailer could not take its lease");
                    continue;
                }
            }
            match self.look().await {
                Ok(sent) => {
                    backoff = Duration::ZERO;
                    if sent > 0 {
                        tracing::debug!(sent, "notification email sent");
                    }
                }
                Err(error) => {
                    self.metrics.mail_failures.inc();
                    backoff = (backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                    tracing::warn!(error = %error, ?backoff, "notification email not sent; trying again");
                }
            }
        }
        let _ = self.leases.release_lease(LEASE, &self.holder).await;
    }

    /// One look: the confirmation links due, then the notifications due. Answers how many
    /// emails went out.
    ///
    /// # Errors
    /// The first database or SMTP failure (what was sent before it stays sent and recorded).
    pub async fn look(&self) -> Result<usize, MailError> {
        let now = Utc::now();
        let mut sent = self.confirmations(now).await?;
        let mut after = Uuid::nil();
        loop {
            let page = self.due(now, after).await?;
            let Some(last) = page.last() else { break };
            after = last.user;
            let full = i64::try_from(page.len()).unwrap_or(i64::MAX) == PAGE;
            let wanted: Vec<_> = page
                .iter()
                .map(|d| (d.user, d.since, d.mailed_seq))
                .collect();
            let mut pending = self.reads.notifications_to_mail(&wanted).await?;
            for due in &page {
                let Some(rows) = pending.remove(&due.user) else {
                    continue;
                };
                self.send_digest(due, &rows, now).await?;
                sent += 1;
            }
            if !full {
                break;
            }
        }
        Ok(sent)
    }

    async fn confirmations(&self, now: DateTime<Utc>) -> Result<usize, MailError> {
        let rows: Vec<(Uuid, String, String, Option<DateTime<Utc>>)> =
            infra::db::retry_read(|| async {
                with_db!(&self.db, |pool| {
                    sqlx::query(
                        "SELECT m.user_id, m.email, c.display_name, m.last_mailed_at \
                         FROM notification_mail m JOIN user_credentials c ON c.user_id = m.user_id \
                         WHERE m.confirm_pending AND NOT c.disabled ORDER BY m.user_id LIMIT 100",
                    )
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|row| {
                        Ok((
                            row.try_get(0)?,
                            row.try_get(1)?,
                            row.try_get(2)?,
                            row.try_get(3)?,
                        ))
                    })
                    .collect::<Result<Vec<_>, sqlx::Error>>()
                })
            })
            .await?;
        let mut sent = 0;
        for (user, email, name, last) in rows {
            if !window_passed(last, self.config.window, now) {
                continue;
            }
            let link = self.link(LinkPurpose::ConfirmEmail, user, &email, "confirm-email")?;
            let body = format!(
                "Hello {name},\n\n\
                 Someone, we hope you, asked for notifications from {site} to be emailed to this \
                 address. To confirm, open:\n\n  {link}\n\n\
                 If it was not you, ignore this email: nothing more will be sent.\n",
                site = self.config.public_url,
            );
            let message = self.message(&name, &email, "Confirm your email address", body, None);
            if self.deliver(user, message, "confirmation").await? {
                tracing::info!(user_id = %user, "confirmation link emailed");
                sent += 1;
            }
            self.record(user, &email, now, None).await?;
        }
        Ok(sent)
    }

    async fn due(&self, now: DateTime<Utc>, after: Uuid) -> Result<Vec<Due>, MailError> {
        let cutoff = now
            - chrono::Duration::from_std(self.config.window).unwrap_or(chrono::Duration::zero());
        Ok(infra::db::retry_read(|| async {
            with_db!(&self.db, |pool| {
                sqlx::query(
                    "SELECT m.user_id, m.email, c.display_name, m.since, m.mailed_seq \
                     FROM notification_mail m JOIN user_credentials c ON c.user_id = m.user_id \
                     WHERE m.enabled AND m.verified_at IS NOT NULL AND NOT c.disabled \
                     AND (m.last_mailed_at IS NULL OR m.last_mailed_at <= $1) AND m.user_id > $2 \
                     ORDER BY m.user_id LIMIT $3",
                )
                .bind(cutoff)
                .bind(after)
                .bind(PAGE)
                .fetch_all(pool)
                .await?
                .into_iter()
                .map(|row| {
                    Ok(Due {
                        user: row.try_get(0)?,
                        email: row.try_get(1)?,
                        name: row.try_get(2)?,
                        since: row.try_get(3)?,
                        mailed_seq: row.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>, sqlx::Error>>()
            })
        })
        .await?)
    }

    /// One email telling `due` of `rows` (change order), then their position moved past them.
    async fn send_digest(
        &self,
        due: &Due,
        rows: &[NotificationRow],
        now: DateTime<Utc>,
    ) -> Result<(), MailError> {
        let listed = &rows[rows.len().saturating_sub(LISTED)..];
        let comments: HashMap<Uuid, read_model::CommentRow> = self
            .reads
            .comments_by_ids(&listed.iter().map(|n| n.comment_id).collect::<Vec<_>>())
            .await?
            .into_iter()
            .map(|c| (c.id, c))
            .collect();
        let mut posts: HashMap<Uuid, (String, String)> = HashMap::new();
        for n in listed {
            if !posts.contains_key(&n.post_id)
                && let Some(post) = self.reads.post_by_id(n.post_id, false).await?
            {
                posts.insert(n.post_id, (post.title, post.slug));
            }
        }
        let mut body = format!("Hello {},\n\n", due.name);
        let mut subject = None;
        for n in listed.iter().rev() {
            let (Some(comment), Some((title, slug))) =
                (comments.get(&n.comment_id), posts.get(&n.post_id))
            else {
                continue;
            };
            let what = if n.kind == "reply" {
                "replied to your comment on"
            } else {
                "commented on your post"
            };
            let line = format!("{} {what} “{title}”", comment.author_name);
            subject.get_or_insert_with(|| line.clone());
            body.push_str(&format!(
                "{line}:\n\n{}\n\n  {}/posts/{slug}#comment-{}\n\n",
                quote(&comment.body),
                self.config.public_url,
                comment.id
            ));
        }
        let Some(mut subject) = subject else {
            // Every comment is gone since the read: nothing to tell, move on.
            return self.record(due.user, &due.email, now, rows.last()).await;
        };
        if rows.len() > 1 {
            subject = format!("{} new replies and comments for you", rows.len());
        }
        if rows.len() > listed.len() {
            body.push_str(&format!(
                "…and {} more: {}/notifications\n\n",
                rows.len() - listed.len(),
                self.config.public_url
            ));
        }
        let unsubscribe = self.link(
            LinkPurpose::Unsubscribe,
            due.user,
            &due.email,
            "unsubscribe",
        )?;
        // The mail client's one-click POST (RFC 8058) has an address of its own, so the page at
        // `/unsubscribe` stays a page for every method a browser uses.
        let one_click = unsubscribe.replacen("/unsubscribe?", "/unsubscribe/one-click?", 1);
        body.push_str(&format!(
            "All your notifications: {site}/notifications\n\n--\n\
             You get these emails because you turned on email notifications at {site}.\n\
             To stop them: {unsubscribe}\n",
            site = self.config.public_url,
        ));
        let message = self.message(&due.name, &due.email, &subject, body, Some(&one_click));
        if self.deliver(due.user, message, "notifications").await? {
            tracing::info!(user_id = %due.user, notifications = rows.len(), "notifications emailed");
        }
        self.record(due.user, &due.email, now, rows.last()).await
    }

    /// Hands `message` to the SMTP server: `true` when it took it, `false` when it refused it
    /// for good (the address does not exist, say), which is logged and not tried again, so one
    /// bad address never holds the others' email back.
    ///
    /// # Errors
    /// A failure worth trying again (the server is away, a temporary refusal).
    async fn deliver(
        &self,
        user: Uuid,
        message: Result<Message, MailError>,
        kind: &str,
    ) -> Result<bool, MailError> {
        let refused = match message {
            Ok(message) => match self.transport.send(message).await {
                Ok(_) => {
                    self.metrics.mail_sent.with_label_values(&[kind]).inc();
                    return Ok(true);
                }
                Err(e) if e.is_permanent() => e.to_string(),
                Err(e) => return Err(e.into()),
            },
            Err(e) => e.to_string(),
        };
        self.metrics.mail_failures.inc();
        tracing::warn!(user_id = %user, error = %refused, kind, "email refused for good; not tried again");
        Ok(false)
    }

    /// Records an email to `user` at `email`: the window starts again, the position moves past
    /// `last` (a digest) or the confirmation is no longer pending (`None`).
    async fn record(
        &self,
        user: Uuid,
        email: &str,
        now: DateTime<Utc>,
        last: Option<&NotificationRow>,
    ) -> Result<(), MailError> {
        infra::db::retry_tx(|| async {
            with_db!(&self.db, |pool| {
                match last {
                    Some(last) => sqlx::query(
                        "UPDATE notification_mail SET last_mailed_at = $3, \
                         mailed_seq = CASE WHEN mailed_seq > $4 THEN mailed_seq ELSE $4 END \
                         WHERE user_id = $1 AND email = $2",
                    )
                    .bind(user)
                    .bind(email)
                    .bind(now)
                    .bind(last.changed_seq),
                    None => sqlx::query(
                        "UPDATE notification_mail SET last_mailed_at = $3, confirm_pending = $4 \
                         WHERE user_id = $1 AND email = $2",
                    )
                    .bind(user)
                    .bind(email)
                    .bind(now)
                    .bind(false),
                }
                .execute(pool)
                .await
                .map(|_| ())
            })
        })
        .await?;
        Ok(())
    }

    fn link(
        &self,
        purpose: LinkPurpose,
        user: Uuid,
        email: &str,
        page: &str,
    ) -> Result<String, MailError> {
        let lifetime = match purpose {
            LinkPurpose::ConfirmEmail => CONFIRM_LINK_LIFETIME,
            LinkPurpose::Unsubscribe => UNSUBSCRIBE_LINK_LIFETIME,
        };
        let token = self
            .keys
            .sign_link(purpose, user, email, lifetime)
            .map_err(|e| MailError::Message(e.to_string()))?;
        Ok(format!("{}/{page}?token={token}", self.config.public_url))
    }

    fn message(
        &self,
        name: &str,
        email: &str,
        subject: &str,
        body: String,
        unsubscribe: Option<&str>,
    ) -> Result<Message, MailError> {
        let to = Mailbox::new(
            Some(name.to_owned()),
            email
                .parse()
                .map_err(|e| MailError::Message(format!("{e}")))?,
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".to_owned(),
            ));
        if let Some(link) = unsubscribe {
            // RFC 8058: mail clients offer "unsubscribe" and POST to the link themselves.
            builder = builder
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe"),
                    format!("<{link}>"),
                ))
                .raw_header(HeaderValue::new(
                    HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                    "List-Unsubscribe=One-Click".to_owned(),
                ));
        }
        builder
            .body(body)
            .map_err(|e| MailError::Message(e.to_string()))
    }
}

/// A comment's markdown, shortened and quoted.
fn quote(body: &str) -> String {
    let mut text: String = body.chars().take(QUOTED).collect();
    if body.chars().count() > QUOTED {
        text.push('…');
    }
    text.lines()
        .map(|line| format!("> {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Why a look sent nothing more.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// The SMTP server refused or could not be reached.
    #[error("SMTP: {0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// The message could not be made (a bad address in the table, a bug).
    #[error("message: {0}")]
    Message(String),
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn comments_are_quoted_and_shortened() {
        assert_eq!(quote("Nice post!\nThanks"), "> Nice post!\n> Thanks");
        let long = "é".repeat(300);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), 2 + 280 + 1);
        assert!(quoted.ends_with('…'));
    }
}
