//! The production transport: apalis 1.0 on Redis (`apalis-redis`), carrying [`Job`] pointers.
//!
//! apalis owns the task format and the worker loop (`RedisStorage`, `TaskSink::push_bulk`,
//! `WorkerBuilder` with `.concurrency(n)`); this module covers what apalis-redis 1.0 does not
//! (see `spec/notes/apalis-redis-findings.md`):
//!
//! - **Pushes never wake a worker.** A push lands in the `:scheduled` sorted set and publishes
//!   nothing, and an idle worker is only woken by its heartbeat (30 s). `consume` re-polls the
//!   worker future every poll interval (5 ms by default): one small `fetch_next` script per
//!   re-poll of an idle worker; a busy worker fetches again as soon as a slot frees.
//! - **A fetch promotes all due scheduled tasks with one Lua `unpack`**, which fails, on every
//!   fetch, beyond about 8,000 of them. `push` moves its tasks to the `:active` list itself, in
//!   chunks, and the maintenance loop of `consume` catches pushes whose process died in between.
//! - **Finished tasks are never deleted.** The maintenance loop (every second) pops finished ids
//!   from the `:done` and `:dead` sets in chunks and deletes their data and metadata, so Redis
//!   holds only queued and running tasks. apalis's `Vacuum::vacuum` is not used: it reads the
//!   whole data hash, queued tasks included, in one script, and leaves the `:done` set growing.
//!   [`RedisQueue::purge_finished`] runs the clean-up on demand.
//! - **apalis's retries are hard-coded** (25 attempts): the handler always succeeds, so apalis
//!   never retries; a panicking sink is logged. The outbox decides what runs again.
//! - **A worker that fails stays dead** (Redis unreachable, keys deleted or a `FLUSHALL`, a task
//!   whose data is gone, declared dead by another worker): `consume` retires it (its
//!   unacknowledged tasks go back to `:active`, except those whose data is gone; it leaves the
//!   workers set) and starts another under a fresh name, backing off up to 5 s, until shutdown.
//!   Retiring also re-queues tasks that apalis strands when shutdown interrupts a fetch.
//!
//! Delivery is at least once: a task whose acknowledgement did not reach Redis, or whose worker
//! failed, is delivered again, possibly while its first delivery still runs. The outbox lease
//! makes a duplicate harmless. A worker whose every slot stays busy for 5 minutes while it holds
//! fetched tasks misses its heartbeats (apalis heartbeats only between tasks), and another
//! worker re-queues those tasks.
//!
//! All keys start with `{namespace}:outbox:`, except one member per namespace in apalis's global
//! `core:apalis:queues:list` sorted set.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::{TaskSink, WorkerBuilder, WorkerBuilderExt, WorkerContext, WorkerError};
use apalis_redis::{Config, RedisStorage};
use futures::future::BoxFuture;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::{Error, Job, JobSink, Queue};

/// The apalis queue name is `{namespace}:{QUEUE_SUFFIX}`.
const QUEUE_SUFFIX: &str = "outbox";
/// How often an idle worker is re-polled (one `fetch_next` script each time).
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How often `consume` promotes stray scheduled tasks and deletes finished ones.
const DEFAULT_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(1);
/// Tasks fetched by one `fetch_next`: the concurrency, capped.
const MAX_BATCH: usize = 100;
/// Tasks per push script, per promotion and per purge script: keeps every script short and
/// below Lua's `unpack` limit.
const CHUNK: usize = 1_000;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
const RESTART_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RESTART_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A worker that ran this long before failing restarts after the minimum back-off again.
const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Moves due tasks from the scheduled set to the active list, one chunk per call.
/// KEYS: scheduled set, active list. ARGV: now (unix seconds, the clock the push used), chunk.
static PROMOTE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #ids > 0 then
  redis.call('RPUSH', KEYS[2], unpack(ids))
  redis.call('ZREM', KEYS[1], unpack(ids))
end
return #ids
",
    )
});

/// Deletes up to ARGV[1] finished tasks. KEYS: finished set (done or dead), data hash, meta
/// prefix. A finished task is in no list, set or inflight set any more, so nothing refers to it.
static PURGE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local ids = redis.call('SPOP', KEYS[1], tonumber(ARGV[1]))
for _, id in ipairs(ids) do
  redis.call('HDEL', KEYS[2], id)
  redis.call('DEL', KEYS[3] .. ':' .. id)
end
return #ids
",
    )
});

/// Retires a stopped or failed worker. Its unacknowledged tasks go back to the active list,
/// except those whose data or metadata is gone (keys deleted under a running queue), which fail
/// every fetch that meets them. It leaves the workers set and its metadata is deleted.
/// KEYS: inflight set, active list, workers set, worker metadata, data hash, meta prefix.
/// ARGV: worker name. Returns {re-queued, dropped}.
static RETIRE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local requeued, dropped = 0, 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('HEXISTS', KEYS[5], id) == 1
     and redis.call('HEXISTS', KEYS[6] .. ':' .. id, 'attempts') == 1 then
    redis.call('RPUSH', KEYS[2], id)
    requeued = requeued + 1
  else
    dropped = dropped + 1
  end
end
redis.call('DEL', KEYS[1], KEYS[4])
redis.call('ZREM', KEYS[3], ARGV[1])
return {requeued, dropped}
",
    )
});

/// Jobs on Redis through apalis. Cloning shares the connection.
#[derive(Clone, Debug)]
pub struct RedisQueue {
    conn: ConnectionManager,
    config: Config,
    poll_interval: Duration,
    maintenance_interval: Duration,
}

impl RedisQueue {
    /// Connects to `url` and checks the server answers. `namespace` prefixes every key (the
    /// apalis queue is `{namespace}:outbox`), so deployments and tests sharing a Redis stay apart.
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, Error> {
        if namespace.is_empty() || namespace.contains(|c: char| c.is_whitespace() || c == '*') {
            return Err(Error::Unavailable(format!(
                "invalid Redis namespace {namespace:?}: it must be non-empty, without spaces or '*'"
            )));
        }
        let client = redis::Client::open(url)
            .map_err(|e| Error::Unavailable(format!("invalid Redis URL: {e}")))?;
        let addr = client.get_connection_info().addr().to_string();
        // Few retries: an unreachable Redis fails `connect` in about a second, and a broken
        // connection fails commands fast (the worker restarts; the next command reconnects).
        let manager = ConnectionManagerConfig::new()
            .set_number_of_retries(2)
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(RESPONSE_TIMEOUT));
        let mut conn = tokio::time::timeout(
            CONNECT_TIMEOUT,
            client.get_connection_manager_with_config(manager),
        )
        .await
        .map_err(|_| {
            Error::Unavailable(format!(
                "Redis at {addr} did not answer within {CONNECT_TIMEOUT:?}"
            ))
        })?
        .map_err(|e| Error::Unavailable(format!("cannot connect to Redis at {addr}: {e}")))?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| {
                Error::Unavailable(format!("Redis at {addr} does not answer PING: {e}"))
            })?;
        let config = Config::default()
            .queue(format!("{namespace}:{QUEUE_SUFFIX}"))
            // Acknowledgements are what moves a task to `:done` (and out of the worker's
            // inflight set); without them every task would be re-queued when its worker goes.
            .persist_results(true)
            // Leases only matter for tasks outliving a heartbeat with apalis's `task-tracking`
            // feature; each costs a script with an `LREM` over the whole active list.
            .lock_tasks(false)
            // Pub/sub events feed apalis-board only; nothing here listens.
            .emit_events(false);
        Ok(RedisQueue {
            conn,
            config,
            poll_interval: DEFAULT_POLL_INTERVAL,
            maintenance_interval: DEFAULT_MAINTENANCE_INTERVAL,
        })
    }

    /// How often an idle worker looks for new jobs (default 5 ms): pushes do not wake it, so this
    /// bounds the added latency; each look is one small script on Redis.
    #[must_use]
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How often `consume` deletes finished tasks and promotes stray scheduled ones (default 1 s).
    #[must_use]
    pub fn with_maintenance_interval(mut self, interval: Duration) -> Self {
        self.maintenance_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// The apalis queue name; every key of this queue starts with it.
    pub fn queue_name(&self) -> &str {
        self.config.queue.as_ref()
    }

    /// Deletes the data and metadata of every finished task; returns how many. `consume` runs
    /// this every maintenance interval; call it yourself when nothing consumes.
    pub async fn purge_finished(&self) -> Result<usize, Error> {
        let mut conn = self.conn.clone();
        let mut purged = 0;
        for set in [self.config.done_jobs_set(), self.config.dead_jobs_set()] {
            loop {
                let n: usize = PURGE
                    .key(&set)
                    .key(self.config.job_data_hash())
                    .key(self.config.job_meta_hash())
                    .arg(CHUNK)
                    .invoke_async(&mut conn)
                    .await
                    .map_err(|e| unavailable("deleting finished tasks", e))?;
                purged += n;
                if n < CHUNK {
                    break;
                }
            }
        }
        Ok(purged)
    }

    /// Moves every due scheduled task to the active list; returns how many.
    async fn promote_due(&self) -> Result<usize, Error> {
        let mut conn = self.conn.clone();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut moved = 0;
        loop {
            let n: usize = PROMOTE
                .key(self.config.scheduled_jobs_set())
                .key(self.config.active_jobs_list())
                .arg(now)
                .arg(CHUNK)
                .invoke_async(&mut conn)
                .await
                .map_err(|e| unavailable("promoting pushed tasks", e))?;
            moved += n;
            if n < CHUNK {
                return Ok(moved);
            }
        }
    }

    async fn maintain(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.maintenance_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.promote_due().await {
                tracing::warn!(queue = self.queue_name(), error = %e, "redis queue maintenance failed");
            }
            match self.purge_finished().await {
                Ok(n) if n > 0 => tracing::debug!(
                    queue = self.queue_name(),
                    purged = n,
                    "deleted finished tasks"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(queue = self.queue_name(), error = %e, "redis queue maintenance failed")
                }
            }
        }
    }

    /// Runs one apalis worker until it fails or, after `shutdown`, until its in-flight jobs are
    /// done and acknowledged.
    ///
    /// The apalis future is boxed here, in a plain function: held unboxed across an `.await` of
    /// an async block, its type defeats the compiler's proof that `consume` is `Send`
    /// ("implementation of `Send` is not general enough" / "higher-ranked lifetime error").
    fn run_worker(
        &self,
        worker: WorkerContext,
        sink: JobSink,
        permits: Arc<Semaphore>,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> BoxFuture<'static, Result<(), String>> {
        let storage = RedisStorage::<Job>::new(self.conn.clone())
            .with_config(self.config.clone().batch_size(concurrency.min(MAX_BATCH)));
        let handler = move |job: Job| deliver(job, Arc::clone(&sink), Arc::clone(&permits));
        let run = WorkerBuilder::new(worker.clone())
            .backend(storage)
            .concurrency(concurrency)
            .build(handler)
            .run();
        let poll_interval = self.poll_interval;
        let mut run: BoxFuture<'static, Result<(), WorkerError>> = Box::pin(run);
        Box::pin(async move {
            let mut tick = tokio::time::interval(poll_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut stopping = false;
            loop {
                tokio::select! {
                    res = &mut run => return res.map_err(|e| e.to_string()),
                    () = shutdown.cancelled(), if !stopping => {
                        stopping = true;
                        // Stop fetching; `run` then awaits the in-flight jobs, flushes their
                        // acknowledgements, re-queues fetched-but-unstarted tasks and returns.
                        if worker.stop().is_err() {
                            return Ok(()); // never started: nothing fetched, nothing in flight
                        }
                    }
                    // Re-poll the worker: a push never wakes it (see the module docs).
                    _ = tick.tick() => {}
                }
            }
        })
    }

    /// After a worker is gone: re-queue what it still held, drop it from the workers set.
    /// Returns how many tasks were re-queued and how many dropped (their data was gone).
    async fn retire(&self, worker: &WorkerContext) -> Result<(usize, usize), Error> {
        let mut conn = self.conn.clone();
        RETIRE
            .key(self.config.inflight_set_for(worker))
            .key(self.config.active_jobs_list())
            .key(self.config.workers_set())
            .key(self.config.worker_metadata_key(worker))
            .key(self.config.job_data_hash())
            .key(self.config.job_meta_hash())
            .arg(worker.name())
            .invoke_async(&mut conn)
            .await
            .map_err(|e| unavailable("retiring a worker", e))
    }
}

/// Stops the maintenance loop when `consume` returns or is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Unavailable(format!("{what}: {e}"))
}

/// The apalis handler: runs the sink on its own task (parallelism, and a panic stays there) and
/// waits for it, so apalis's concurrency limit counts running jobs. Always succeeds: apalis must
/// never retry. The permit bounds jobs across worker restarts (a failed worker's jobs run on).
async fn deliver(job: Job, sink: JobSink, permits: Arc<Semaphore>) {
    let Ok(permit) = permits.acquire_owned().await else {
        return; // never closed
    };
    let outbox_id = job.outbox_id;
    let running = tokio::spawn(async move {
        sink(job).await;
        drop(permit);
    });
    if let Err(e) = running.await {
        tracing::error!(outbox_id, error = %e, "job sink failed; the outbox will hand the row out again");
    }
}

#[async_trait::async_trait]
impl Queue for RedisQueue {
    async fn push(&self, jobs: Vec<Job>) -> Result<(), Error> {
        if jobs.is_empty() {
            return Ok(());
        }
        let mut storage =
            RedisStorage::<Job>::new(self.conn.clone()).with_config(self.config.clone());
        let mut jobs = jobs.into_iter().peekable();
        while jobs.peek().is_some() {
            let chunk: Vec<Job> = jobs.by_ref().take(CHUNK).collect();
            storage
                .push_bulk(chunk)
                .await
                .map_err(|e| unavailable("pushing jobs", e))?;
        }
        // The jobs are accepted; if this fails, a worker's fetch or the maintenance loop
        // promotes them instead.
        if let Err(e) = self.promote_due().await {
            tracing::warn!(queue = self.queue_name(), error = %e, "pushed jobs wait for the next promotion");
        }
        Ok(())
    }

    async fn consume(
        &self,
        sink: JobSink,
        concurrency: usize,
        shutdown: CancellationToken,
    ) -> Result<(), Error> {
        let concurrency = concurrency.clamp(1, u32::MAX as usize);
        let permits = Arc::new(Semaphore::new(concurrency));
        let maintenance = AbortOnDrop(tokio::spawn(self.clone().maintain(shutdown.clone())));
        let mut backoff = RESTART_BACKOFF_MIN;
        while !shutdown.is_cancelled() {
            // A fresh name per worker: apalis refuses to register a name it saw alive recently.
            let worker = WorkerContext::new(&format!(
                "{}-{}",
                std::process::id(),
                uuid::Uuid::now_v7().simple()
            ));
            let started = Instant::now();
            let outcome = self
                .run_worker(
                    worker.clone(),
                    Arc::clone(&sink),
                    Arc::clone(&permits),
                    concurrency,
                    shutdown.clone(),
                )
                .await;
            match self.retire(&worker).await {
                Ok((_, 0)) => {}
                Ok((_, dropped)) => {
                    tracing::warn!(
                        queue = self.queue_name(),
                        dropped,
                        "dropped queued tasks whose data was gone"
                    );
                }
                Err(e) => tracing::warn!(
                    queue = self.queue_name(),
                    worker = worker.name(),
                    error = %e,
                    "could not retire a worker; another worker re-queues its tasks after 5 minutes"
                ),
            }
            if shutdown.is_cancelled() {
                if let Err(e) = outcome {
                    tracing::warn!(queue = self.queue_name(), worker = worker.name(), error = %e, "worker failed while shutting down");
                }
                break;
            }
            match outcome {
                Ok(()) => tracing::warn!(
                    queue = self.queue_name(),
                    worker = worker.name(),
                    "worker stopped unexpectedly; restarting"
                ),
                Err(e) => {
                    tracing::warn!(queue = self.queue_name(), worker = worker.name(), error = %e, "worker failed; restarting")
                }
            }
            if started.elapsed() >= HEALTHY_RUN {
                backoff = RESTART_BACKOFF_MIN;
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(RESTART_BACKOFF_MAX);
        }
        // Every job holds a permit until its sink returns, including jobs of failed workers.
        let _all = permits
            .acquire_many(u32::try_from(concurrency).unwrap_or(u32::MAX))
            .await
            .map_err(|_| Error::Unavailable("job permits closed".to_owned()))?;
        drop(maintenance);
        Ok(())
    }
}
