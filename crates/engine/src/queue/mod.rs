//! Transport between the outbox and the workers.
//!
//! The database is the record; a queue only carries pointers to outbox rows. Losing a job
//! (a Redis FLUSHALL, a killed worker) costs latency, never correctness: the outbox row stays
//! due and the reconciler hands it out again after its lease.

mod memory;
mod redis;

use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use memory::MemoryQueue;
pub use redis::RedisQueue;

/// A pointer to one outbox row. The row, not the job, says what to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub outbox_id: i64,
}

/// Receives every job a queue delivers. The engine acknowledges to the queue at once; whether
/// the work is retried is the outbox's business, not the queue's.
pub type JobSink = Arc<dyn Fn(Job) -> BoxFuture<'static, ()> + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
}

/// A job transport: in-process for the embedded default, apalis on Redis in production.
#[async_trait::async_trait]
pub trait Queue: Send + Sync + 'static {
    /// Enqueues jobs. Returning Ok means the transport accepted them, not that they ran.
    async fn push(&self, jobs: Vec<Job>) -> Result<(), Error>;

    /// Delivers jobs to `sink`, at most `concurrency` at a time, until `shutdown` is cancelled;
    /// in-flight jobs are awaited before it returns.
    async fn consume(
        &self,
        sink: JobSink,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), Error>;
}
