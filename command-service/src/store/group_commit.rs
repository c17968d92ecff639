//! Group commit: appends from concurrent commands are gathered and written in one transaction,
//! so the database pays one commit for many commands. A command still gets its own answer: if a
//! shared transaction fails (a conflict on one stream, say), each append is retried alone so one
//! command's conflict never fails another's.

use tokio::sync::{mpsc, oneshot};

use super::{Append, EventStore, StoreError};

/// Most appends in one transaction.
const MAX_BATCH: usize = 128;

type Request = (Append, oneshot::Sender<Result<(), StoreError>>);

/// Handle to the group committer; cheap to clone.
#[derive(Clone, Debug)]
pub struct GroupCommitter {
    requests: mpsc::Sender<Request>,
}

impl GroupCommitter {
    /// Starts `workers` committer tasks over `store`. They stop when every handle is dropped.
    #[must_use]
    pub fn start(store: EventStore, workers: usize) -> Self {
        let (requests, receiver) = mpsc::channel::<Request>(MAX_BATCH * 4);
        let receiver = std::sync::Arc::new(tokio::sync::Mutex::new(receiver));
        for _ in 0..workers.max(1) {
            let store = store.clone();
            let receiver = receiver.clone();
            tokio::spawn(async move {
                loop {
                    let mut batch = Vec::new();
                    {
                        let mut rx = receiver.lock().await;
                        if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                            return;
                        }
                    }
                    commit(&store, batch).await;
                }
            });
        }
        Self { requests }
    }

    /// Appends `append` (in a transaction shared with other commands' appends).
    ///
    /// # Errors
    /// The append's own [`StoreError`].
    pub async fn append(&self, append: Append) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((append, reply))
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?;
        answer
            .await
            .map_err(|_| StoreError::Db(sqlx::Error::PoolClosed))?
    }
}

async fn commit(store: &EventStore, batch: Vec<Request>) {
    let (appends, replies): (Vec<Append>, Vec<_>) = batch.into_iter().unzip();
    match store.append(&appends).await {
        Ok(()) => {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(e) if appends.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => {
            // Something in the batch failed, and the whole transaction with it; find out whose
            // it was by writing each append on its own.
            for (append, reply) in appends.into_iter().zip(replies) {
                let result = store.append(std::slice::from_ref(&append)).await;
                let _ = reply.send(result);
            }
        }
    }
}
