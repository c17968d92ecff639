//! Scheduled publishing: every instance looks for due schedules in `post_schedules` (written
//! with the events that set them, so they survive restarts) and publishes each through the
//! post's stream like any command. The stream's version check makes it happen once: an
//! instance that loses the race finds the post published and does nothing.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::domain::post::Authored;
use crate::domain::post::commands::{Caller, PostCommand};
use crate::handler::{CommandBus, RequestMeta};

/// Schedules carried out per look.
const PER_LOOK: i64 = 100;

/// Publishes due scheduled posts.
pub struct Scheduler {
    bus: Arc<CommandBus>,
    every: Duration,
}

impl Scheduler {
    /// A scheduler over `bus`, looking every `every`.
    #[must_use]
    pub fn new(bus: Arc<CommandBus>, every: Duration) -> Self {
        Self { bus, every }
    }

    /// Looks for due schedules until `cancel`.
    pub async fn run(self, cancel: CancellationToken) {
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
            if let Err(error) = self.publish_due().await {
                tracing::warn!(error = %error, "scheduled publishing failed; trying again");
            }
        }
    }

    /// Publishes every post due now; answers how many this call published.
    ///
    /// # Errors
    /// The store's error reading the schedules (a post that fails is tried again next time).
    pub async fn publish_due(&self) -> Result<usize, crate::store::StoreError> {
        let mut published = 0;
        for (post, publish_at) in self.bus.store().due_schedules(Utc::now(), PER_LOOK).await? {
            let command = Authored {
                caller: Caller::scheduler(),
                command: PostCommand::PublishScheduled { publish_at },
            };
            match self
                .bus
                .execute(post, command, None, RequestMeta::default())
                .await
            {
                Ok(accepted) if accepted.events.is_empty() => {
                    // Its stream has no such schedule (carried out or replaced meanwhile).
                    self.bus.store().drop_schedule(post, publish_at).await?;
                }
                Ok(accepted) => {
                    published += 1;
                    self.bus.metrics().scheduled_published.inc();
                    tracing::info!(post_id = %post, publish_at = %publish_at, version = accepted.version, "scheduled post published");
                }
                Err(error) => {
                    tracing::warn!(post_id = %post, error = %error, "scheduled post not published yet");
                }
            }
        }
        Ok(published)
    }
}
