//! The apalis-redis queue against a real Redis, never a mock: redis://127.0.0.1:6379, or
//! `PARTNERFLOW_TEST_REDIS_URL`. Without a reachable Redis these tests fail; they do not skip.
//!
//! Each test works in its own namespace (`pftest-<uuid>`) and deletes only its own keys, so the
//! tests run in parallel with each other and with anything else using the same Redis.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use partnerflow_engine::queue::{Job, JobSink, Queue, RedisQueue};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Whether Redis answers. Otherwise the test is skipped with one line on the terminal, or
/// fails when `PARTNERFLOW_REQUIRE_SERVICES=1` (which `.ci/run` sets).
fn redis_or_skip(test: &str) -> bool {
    let url = redis_url();
    let up = redis::Client::open(url.as_str())
        .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(1)))
        .is_ok();
    if up {
        return true;
    }
    if std::env::var("PARTNERFLOW_REQUIRE_SERVICES").is_ok_and(|v| v == "1") {
        panic!(
            "{test} needs Redis at {url}, which is not reachable (PARTNERFLOW_REQUIRE_SERVICES=1)"
        );
    }
    // Straight to the terminal: the test harness captures only the print macros.
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "skipped {test}: needs Redis at {url}; start it (or set PARTNERFLOW_TEST_REDIS_URL) to run it"
    );
    false
}

fn redis_url() -> String {
    std::env::var("PARTNERFLOW_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// A fresh namespace whose keys are deleted when the test ends, failed or not.
struct Namespace(String);

impl Namespace {
    fn new() -> Self {
        Namespace(format!("pftest-{}", uuid::Uuid::new_v4().simple()))
    }
}

impl std::ops::Deref for Namespace {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        if let Err(e) = wipe_blocking(&self.0) {
            eprintln!("could not delete the keys of {}: {e}", self.0);
        }
    }
}

async fn connect(namespace: &str) -> RedisQueue {
    let url = redis_url();
    RedisQueue::connect(&url, namespace).await.unwrap_or_else(|e| {
        panic!("these tests need a running Redis at {url} (set PARTNERFLOW_TEST_REDIS_URL for another one): {e}")
    })
}

async fn raw() -> redis::aio::MultiplexedConnection {
    let url = redis_url();
    let client =
        redis::Client::open(url.as_str()).unwrap_or_else(|e| panic!("bad Redis URL {url}: {e}"));
    client
        .get_multiplexed_async_connection()
        .await
        .unwrap_or_else(|e| panic!("these tests need a running Redis at {url}: {e}"))
}

/// Every key of the namespace (SCAN, never KEYS).
fn keys_blocking(conn: &mut redis::Connection, namespace: &str) -> redis::RedisResult<Vec<String>> {
    let mut found = Vec::new();
    let mut cursor = 0_u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{namespace}:*"))
            .arg("COUNT")
            .arg(1000)
            .query(conn)?;
        found.extend(batch);
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

/// Deletes this namespace's keys only (FLUSHALL would hit the tests running beside us), and its
/// entry in apalis's global queue list.
fn wipe_blocking(namespace: &str) -> redis::RedisResult<usize> {
    let mut conn = redis::Client::open(redis_url().as_str())?.get_connection()?;
    let found = keys_blocking(&mut conn, namespace)?;
    for key in &found {
        redis::cmd("DEL").arg(key).query::<()>(&mut conn)?;
    }
    let listed: Vec<String> = redis::cmd("ZRANGE")
        .arg("core:apalis:queues:list")
        .arg(0)
        .arg(-1)
        .query(&mut conn)?;
    for member in listed
        .iter()
        .filter(|m| m.starts_with(&format!("{namespace}:")))
    {
        redis::cmd("ZREM")
            .arg("core:apalis:queues:list")
            .arg(member)
            .query::<()>(&mut conn)?;
    }
    Ok(found.len())
}

async fn keys(namespace: &str) -> Vec<String> {
    let namespace = namespace.to_owned();
    tokio::task::spawn_blocking(move || {
        let mut conn = redis::Client::open(redis_url().as_str())?.get_connection()?;
        keys_blocking(&mut conn, &namespace)
    })
    .await
    .expect("SCAN task")
    .expect("SCAN")
}

async fn wipe(namespace: &str) -> usize {
    let namespace = namespace.to_owned();
    tokio::task::spawn_blocking(move || wipe_blocking(&namespace))
        .await
        .expect("wipe task")
        .expect("deleting the namespace's keys")
}

/// Counts deliveries per outbox id and how many sink calls run at once.
#[derive(Default)]
struct Recorder {
    counts: Mutex<HashMap<i64, u32>>,
    running: AtomicUsize,
    max_running: AtomicUsize,
    finished: AtomicUsize,
}

impl Recorder {
    fn sink(self: &Arc<Self>, work: Duration) -> JobSink {
        let recorder = Arc::clone(self);
        Arc::new(move |job: Job| {
            let recorder = Arc::clone(&recorder);
            async move {
                let now = recorder.running.fetch_add(1, SeqCst) + 1;
                recorder.max_running.fetch_max(now, SeqCst);
                *recorder
                    .counts
                    .lock()
                    .unwrap()
                    .entry(job.outbox_id)
                    .or_default() += 1;
                tokio::time::sleep(work).await;
                recorder.running.fetch_sub(1, SeqCst);
                recorder.finished.fetch_add(1, SeqCst);
            }
            .boxed()
        })
    }

    fn missing(&self, ids: &[i64]) -> Vec<i64> {
        let counts = self.counts.lock().unwrap();
        ids.iter()
            .copied()
            .filter(|id| !counts.contains_key(id))
            .collect()
    }

    async fn wait_for(&self, ids: &[i64], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let missing = self.missing(ids);
            if missing.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {} jobs not delivered within {within:?}, e.g. {:?}",
                missing.len(),
                ids.len(),
                &missing[..missing.len().min(20)]
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn duplicates(&self) -> BTreeMap<i64, u32> {
        self.counts
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(id, n)| (*id, *n))
            .collect()
    }

    fn deliveries(&self) -> usize {
        self.counts
            .lock()
            .unwrap()
            .values()
            .map(|n| *n as usize)
            .sum()
    }
}

fn jobs(ids: impl IntoIterator<Item = i64>) -> Vec<Job> {
    ids.into_iter().map(|outbox_id| Job { outbox_id }).collect()
}

fn spawn_consumer(
    queue: &RedisQueue,
    sink: JobSink,
    concurrency: usize,
    shutdown: &CancellationToken,
) -> JoinHandle<Result<(), partnerflow_engine::queue::Error>> {
    let queue = queue.clone();
    let shutdown = shutdown.clone();
    tokio::spawn(async move { queue.consume(sink, concurrency, shutdown).await })
}

async fn stop(
    consumer: JoinHandle<Result<(), partnerflow_engine::queue::Error>>,
    shutdown: &CancellationToken,
) {
    shutdown.cancel();
    match tokio::time::timeout(Duration::from_secs(15), consumer).await {
        Ok(Ok(Ok(()))) => {}
        Ok(Ok(Err(e))) => panic!("consume returned an error: {e}"),
        Ok(Err(e)) => panic!("consume panicked: {e}"),
        Err(_) => panic!("consume did not return within 15 s of shutdown"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_every_job_with_bounded_concurrency() {
    if !redis_or_skip("delivers_every_job_with_bounded_concurrency") {
        return;
    }
    let ns = Namespace::new();
    let queue = connect(&ns).await;
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();

    // A backlog before anyone consumes, then pushes to a running (often idle) worker.
    for chunk in (1..=300).collect::<Vec<i64>>().chunks(100) {
        queue.push(jobs(chunk.iter().copied())).await.expect("push");
    }
    let started = Instant::now();
    let consumer = spawn_consumer(
        &queue,
        recorder.sink(Duration::from_millis(2)),
        16,
        &shutdown,
    );
    for chunk in (301..=500).collect::<Vec<i64>>().chunks(50) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        queue.push(jobs(chunk.iter().copied())).await.expect("push");
    }

    let all: Vec<i64> = (1..=500).collect();
    recorder.wait_for(&all, Duration::from_secs(60)).await;
    let elapsed = started.elapsed();
    let duplicates = recorder.duplicates();
    let max_running = recorder.max_running.load(SeqCst);
    println!(
        "500 jobs delivered in {elapsed:?}: {} deliveries, {} duplicated ids {duplicates:?}, at most {max_running} at once",
        recorder.deliveries(),
        duplicates.len()
    );
    assert!(
        max_running <= 16,
        "{max_running} jobs ran at once, above the concurrency of 16"
    );
    assert!(max_running > 1, "jobs never ran concurrently");

    stop(consumer, &shutdown).await;
    assert_eq!(
        recorder.running.load(SeqCst),
        0,
        "consume returned with jobs still running"
    );
    assert_eq!(recorder.finished.load(SeqCst), recorder.deliveries());

    // Finished tasks do not pile up in Redis.
    let purged = queue.purge_finished().await.expect("purge");
    let left = keys(&ns).await;
    println!("purged {purged} finished tasks after shutdown; keys left: {left:?}");
    assert!(
        left.iter()
            .all(|k| !k.contains(":meta:") && !k.ends_with(":data") && !k.ends_with(":done")),
        "finished tasks left behind: {left:?}"
    );
    assert!(left.len() <= 2, "unexpected keys left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keeps_consuming_after_its_keys_are_deleted() {
    if !redis_or_skip("keeps_consuming_after_its_keys_are_deleted") {
        return;
    }
    let ns = Namespace::new();
    let queue = connect(&ns).await;
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(
        &queue,
        recorder.sink(Duration::from_millis(5)),
        8,
        &shutdown,
    );

    let first: Vec<i64> = (1..=50).collect();
    queue.push(jobs(first.iter().copied())).await.expect("push");
    recorder.wait_for(&first, Duration::from_secs(30)).await;

    // Delete everything while idle (what a FLUSHALL does to us)...
    let deleted = wipe(&ns).await;
    println!("deleted {deleted} keys while idle");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second: Vec<i64> = (1001..=1050).collect();
    queue
        .push(jobs(second.iter().copied()))
        .await
        .expect("push after the keys were deleted");
    recorder.wait_for(&second, Duration::from_secs(30)).await;
    assert!(
        !consumer.is_finished(),
        "consume ended after its keys were deleted"
    );

    // ...and while jobs are queued and running (these may be lost: the outbox re-dispatches).
    queue.push(jobs(2001..=2200)).await.expect("push");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let deleted = wipe(&ns).await;
    println!(
        "deleted {deleted} keys while busy; {} of 200 had been delivered",
        200 - recorder.missing(&(2001..=2200).collect::<Vec<_>>()).len()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third: Vec<i64> = (3001..=3050).collect();
    queue
        .push(jobs(third.iter().copied()))
        .await
        .expect("push after the keys were deleted again");
    recorder.wait_for(&third, Duration::from_secs(30)).await;
    assert!(
        !consumer.is_finished(),
        "consume ended after its keys were deleted"
    );
    println!("duplicated ids: {:?}", recorder.duplicates());

    stop(consumer, &shutdown).await;
    assert_eq!(
        recorder.running.load(SeqCst),
        0,
        "consume returned with jobs still running"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_awaits_and_acknowledges_in_flight_jobs() {
    if !redis_or_skip("shutdown_awaits_and_acknowledges_in_flight_jobs") {
        return;
    }
    let ns = Namespace::new();
    let queue = connect(&ns).await;
    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(
        &queue,
        recorder.sink(Duration::from_millis(500)),
        4,
        &shutdown,
    );

    let ids: Vec<i64> = (1..=4).collect();
    queue.push(jobs(ids.iter().copied())).await.expect("push");
    recorder.wait_for(&ids, Duration::from_secs(10)).await;
    assert_eq!(recorder.running.load(SeqCst), 4);
    stop(consumer, &shutdown).await;
    assert_eq!(
        recorder.finished.load(SeqCst),
        4,
        "consume returned before its jobs finished"
    );

    // They were acknowledged: a new consumer gets nothing.
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(&queue, recorder.sink(Duration::ZERO), 4, &shutdown);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop(consumer, &shutdown).await;
    assert_eq!(
        recorder.deliveries(),
        4,
        "acknowledged jobs were delivered again: {:?}",
        recorder.duplicates()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_a_backlog_beyond_luas_unpack_limit() {
    if !redis_or_skip("delivers_a_backlog_beyond_luas_unpack_limit") {
        return;
    }
    // apalis-redis's fetch promotes all due scheduled tasks with one `unpack`, which fails past
    // ~8,000; the queue must keep its scheduled set small.
    let ns = Namespace::new();
    let queue = connect(&ns).await;
    let recorder = Arc::new(Recorder::default());
    let all: Vec<i64> = (1..=10_000).collect();
    queue.push(jobs(all.iter().copied())).await.expect("push");
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let consumer = spawn_consumer(&queue, recorder.sink(Duration::ZERO), 64, &shutdown);
    recorder.wait_for(&all, Duration::from_secs(60)).await;
    println!(
        "10,000 jobs delivered in {:?}, {} duplicated",
        started.elapsed(),
        recorder.duplicates().len()
    );
    stop(consumer, &shutdown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drops_queued_tasks_whose_data_is_gone() {
    if !redis_or_skip("drops_queued_tasks_whose_data_is_gone") {
        return;
    }
    // A task id without its data fails every apalis fetch that meets it; the queue must drop it
    // and go on.
    let ns = Namespace::new();
    let queue = connect(&ns).await;
    let all: Vec<i64> = (1..=20).collect();
    queue.push(jobs(all.iter().copied())).await.expect("push");
    let mut conn = raw().await;
    let active = format!("{}:active", queue.queue_name());
    let data = format!("{}:data", queue.queue_name());
    let task_ids: Vec<String> = redis::cmd("LRANGE")
        .arg(&active)
        .arg(0)
        .arg(2)
        .query_async(&mut conn)
        .await
        .expect("LRANGE");
    assert_eq!(task_ids.len(), 3, "pushed tasks are not on {active}");
    let mut lost = Vec::new();
    for task_id in &task_ids {
        let json: String = redis::cmd("HGET")
            .arg(&data)
            .arg(task_id)
            .query_async(&mut conn)
            .await
            .expect("HGET");
        let job: Job = serde_json::from_str(&json).expect("a task's data is a JSON job");
        lost.push(job.outbox_id);
        redis::cmd("HDEL")
            .arg(&data)
            .arg(task_id)
            .query_async::<()>(&mut conn)
            .await
            .expect("HDEL");
    }
    let kept: Vec<i64> = all
        .iter()
        .copied()
        .filter(|id| !lost.contains(id))
        .collect();

    let recorder = Arc::new(Recorder::default());
    let shutdown = CancellationToken::new();
    let consumer = spawn_consumer(&queue, recorder.sink(Duration::ZERO), 4, &shutdown);
    // The three jobs without data are dropped; the other 17 arrive, and so do later pushes.
    recorder.wait_for(&kept, Duration::from_secs(30)).await;
    queue.push(jobs(101..=110)).await.expect("push");
    recorder
        .wait_for(&(101..=110).collect::<Vec<_>>(), Duration::from_secs(30))
        .await;
    assert!(
        !consumer.is_finished(),
        "consume ended on tasks without data"
    );
    assert_eq!(
        recorder.missing(&lost),
        lost,
        "a job without data was delivered"
    );
    stop(consumer, &shutdown).await;
}

#[tokio::test]
async fn connect_fails_clearly_when_redis_is_unreachable() {
    let started = Instant::now();
    let err = RedisQueue::connect("redis://127.0.0.1:1", &Namespace::new())
        .await
        .expect_err("connected to a closed port");
    let message = err.to_string();
    println!("{message} (after {:?})", started.elapsed());
    assert!(
        message.contains("127.0.0.1:1"),
        "the error does not say where: {message}"
    );
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(
        RedisQueue::connect(&redis_url(), "").await.is_err(),
        "an empty namespace was accepted"
    );
}
