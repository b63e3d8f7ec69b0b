//! The in-process queue of the embedded default: a channel, nothing durable (the outbox is).

use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Error, Job, JobSink, Queue};

/// An unbounded in-process channel; one process both dispatches and works.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    tx: mpsc::UnboundedSender<Job>,
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Job>>>,
}

impl Default for MemoryQueue {
    fn default() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        MemoryQueue {
            tx,
            rx: Arc::new(Mutex::new(rx)),
        }
    }
}

#[async_trait::async_trait]
impl Queue for MemoryQueue {
    async fn push(&self, jobs: Vec<Job>) -> Result<(), Error> {
        for job in jobs {
            self.tx
                .send(job)
                .map_err(|_| Error::Unavailable("in-process queue closed".to_owned()))?;
        }
        Ok(())
    }

    async fn consume(
        &self,
        sink: JobSink,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let tracker = TaskTracker::new();
        let mut rx = self.rx.lock().await;
        loop {
            let permit = tokio::select! {
                () = shutdown.cancelled() => break,
                p = Arc::clone(&permits).acquire_owned() => p.map_err(|_| Error::Unavailable("semaphore closed".to_owned()))?,
            };
            let job = tokio::select! {
                () = shutdown.cancelled() => break,
                job = rx.recv() => match job { Some(job) => job, None => break },
            };
            let sink = Arc::clone(&sink);
            tracker.spawn(async move {
                sink(job).await;
                drop(permit);
            });
        }
        tracker.close();
        tracker.wait().await;
        Ok(())
    }
}
