//! A bell rung inside one process when the read tables move, so in-process readers waiting for
//! them (the gateway's live pushes, read-your-writes waits) act at the commit instead of at their
//! next poll. Across processes nothing rings: readers there keep polling.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

/// How long a reader that hears the bell waits on its own before it looks again anyway: with a
/// bell, every commit wakes it at once, so its timer is only a safety net.
pub const SAFETY_NET: Duration = Duration::from_millis(32);

/// Rung by the projector after each committed batch; cheap to clone.
#[derive(Clone, Debug)]
pub struct CommitBell(Arc<watch::Sender<u64>>);

impl Default for CommitBell {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(0)))
    }
}

impl CommitBell {
    /// A bell nobody listens to yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Tells every listener that a batch was committed.
    pub fn ring(&self) {
        self.0.send_modify(|rung| *rung = rung.wrapping_add(1));
    }
}

/// A listener of a bell, or of none (then it never hears anything).
#[derive(Debug)]
pub struct Ear(Option<watch::Receiver<u64>>);

impl Ear {
    /// Listens to `bell` when there is one, having heard every ring so far.
    #[must_use]
    pub fn of(bell: Option<&CommitBell>) -> Self {
        Self(bell.map(|b| b.0.subscribe()))
    }

    /// Completes at the first ring since the last one heard (at once if one came in between);
    /// never, without a bell.
    pub async fn rung(&mut self) {
        if let Some(rx) = &mut self.0
            && rx.changed().await.is_ok()
        {
            return;
        }
        // No bell, or it was dropped: nothing will ring again.
        self.0 = None;
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{CommitBell, Ear};

    #[tokio::test]
    async fn a_listener_hears_a_ring_made_while_it_was_busy() {
        let bell = CommitBell::new();
        let mut ear = Ear::of(Some(&bell));
        bell.ring();
        tokio::time::timeout(Duration::from_secs(1), ear.rung())
            .await
            .expect("the ring was heard");
        assert!(
            tokio::time::timeout(Duration::from_millis(20), ear.rung())
                .await
                .is_err(),
            "one ring is heard once"
        );
    }

    #[tokio::test]
    async fn without_a_bell_nothing_is_heard() {
        let mut ear = Ear::of(None);
        assert!(
            tokio::time::timeout(Duration::from_millis(20), ear.rung())
                .await
                .is_err()
        );
    }
}
