//! The rig of the fault tests: a fresh database, a Redis namespace, `partnerflow worker
//! --dispatch` processes on both, and a driver engine in the test process that starts
//! instances and decides tasks but never runs loops of its own.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use partnerflow::settings::Settings;
use partnerflow_core::machine::Actor;
use partnerflow_engine::{Engine, Error, SystemClock};
use serde_json::{Value, json};
use uuid::Uuid;

const REPO_ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
pub(crate) const WORKFLOW: &str = "reference_approval";
const ROLE: &str = "channel_manager";
pub(crate) const INSTANCES: usize = 150;
pub(crate) const LEASE_SECS: u64 = 2;
/// Job slots per worker process: few, so jobs queue up in Redis and every process has steps in
/// flight when a fault lands.
const WORKER_CONCURRENCY: usize = 4;
const POLL: Duration = Duration::from_millis(100);
const TIMEOUT: Duration = Duration::from_secs(60);
/// apalis's global list of queues (one member per namespace).
const APALIS_QUEUES: &str = "core:apalis:queues:list";

fn repo_root() -> PathBuf {
    Path::new(REPO_ROOT)
        .canonicalize()
        .expect("the repository root exists")
}

/// One `partnerflow worker --dispatch` process.
struct Worker {
    name: String,
    child: Child,
    killed: bool,
}

/// A fresh PostgreSQL database, a Redis namespace of its own, worker processes on both, and a
/// driver engine in the test process.
pub(crate) struct Rig {
    engine: Engine,
    admin_url: String,
    database: String,
    database_url: String,
    redis_url: String,
    namespace: String,
    logs: PathBuf,
    workers: Vec<Worker>,
    started: Instant,
}

/// What the reference handler's run log counted after a run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Executions {
    /// Handler runs, in every process.
    pub(crate) total: usize,
    /// Runs of a step entry that had run before (a fault interrupted the earlier run).
    pub(crate) again: usize,
}

/// Where a run stands.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    instances: usize,
    /// Instances past `prepare` (their approval task exists, open or decided).
    pub(crate) prepared: usize,
    open_tasks: usize,
    pub(crate) completed: usize,
    /// Instances per `status/current step`.
    by_status: BTreeMap<String, usize>,
    backlog: i64,
}

impl Rig {
    /// A rig on the shared PostgreSQL (`PARTNERFLOW_TEST_PG`) and the Redis at `redis_url`.
    pub(crate) async fn new(redis_url: &str) -> Rig {
        Self::on(redis_url, &crate::services::postgres_admin()).await
    }

    /// A rig on the PostgreSQL server of `admin` (its `postgres` database's URL).
    pub(crate) async fn on(redis_url: &str, admin: &str) -> Rig {
        let admin = admin.to_owned();
        let name = format!("pf_faults_{}", Uuid::now_v7().simple());
        let store = partnerflow_store::Store::connect(&admin, 1)
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is required for these tests and is not reachable at {admin}: {e}"
                )
            });
        partnerflow_store::raw_execute(&store, &format!("create database {name}"))
            .await
            .expect("create database");
        store.pool.close().await;
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let database_url = format!("{base}/{name}");
        let namespace = format!("pftest-{}", Uuid::now_v7().simple());
        let root = repo_root();
        let mut settings = Settings::load(&root.join("config")).expect("settings");
        settings.database.url = database_url.clone();
        settings.database.max_connections = 8;
        settings.queue.kind = "redis".to_owned();
        settings.queue.redis_url = redis_url.to_owned();
        settings.queue.namespace = namespace.clone();
        settings.engine.lease_secs = LEASE_SECS;
        settings.engine.redispatch_secs = LEASE_SECS;
        settings.paths.workflows = root.join("workflows");
        settings.paths.extra_workflows = vec![root.join("workflows/reference")];
        settings.paths.programme = root.join("config/programme.toml");
        settings.paths.directory = root.join("config/directory.toml");
        settings.paths.calendars = root.join("config/calendars");
        // Migrates the database before any worker process starts.
        let engine = partnerflow::app::build(&settings, Arc::new(SystemClock))
            .await
            .expect("driver engine");
        // Registers the reference workflow in the record (whether or not `build` reads
        // `paths.extra_workflows`), so every worker process started after this knows it.
        let mut files =
            partnerflow::app::read_definitions(&settings.paths.workflows).expect("definitions");
        for dir in &settings.paths.extra_workflows {
            files.extend(partnerflow::app::read_definitions(dir).expect("reference definitions"));
        }
        engine
            .load_definitions(&files)
            .await
            .expect("load definitions");
        let logs = std::env::temp_dir().join(format!("pf-faults-{}", Uuid::now_v7().simple()));
        std::fs::create_dir_all(&logs).expect("log directory");
        Rig {
            engine,
            admin_url: admin,
            database: name,
            database_url,
            redis_url: redis_url.to_owned(),
            namespace,
            logs,
            workers: Vec::new(),
            started: Instant::now(),
        }
    }

    /// The driver engine (no loops of its own: the worker processes do the work).
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The rig's own database.
    pub(crate) fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Waits until a fifth of the instances are past `prepare` (steps in flight, more queued).
    pub(crate) async fn until_a_fifth_prepared(&mut self) {
        self.wait_for("a fifth of the instances past prepare", |p| {
            p.prepared >= INSTANCES / 5
        })
        .await;
    }

    /// Waits until every instance waits for its approval, approves them all at once (which
    /// enqueues every `finish` step), and waits until a fifth have completed.
    pub(crate) async fn approve_all_until_a_fifth_completed(&mut self) {
        self.wait_for("every instance waiting for its approval", |p| {
            p.prepared == INSTANCES
        })
        .await;
        let decided = self.decide_open().await;
        self.say(&format!("decided {decided} tasks"));
        assert_eq!(decided, INSTANCES, "every instance's task was open");
        self.wait_for("a fifth of the instances completed", |p| {
            p.completed >= INSTANCES / 5
        })
        .await;
    }

    /// Runs every instance to completion and checks that each step was applied once; what
    /// the handlers executed.
    pub(crate) async fn complete_and_check(&mut self, ids: &[Uuid]) -> Executions {
        self.run_to_completion(INSTANCES).await;
        let runs = self.assert_each_step_applied_once(ids).await;
        self.say(&format!(
            "every step applied once; {} handler runs, {} of them again after a fault",
            runs.total, runs.again
        ));
        runs
    }

    /// Where every worker's reference handler logs its runs.
    fn run_log(&self) -> PathBuf {
        self.logs.join("runs.log")
    }

    pub(crate) fn say(&self, what: &str) {
        eprintln!("[{:>6.2}s] {what}", self.started.elapsed().as_secs_f64());
    }

    /// Starts one more worker process; returns its index.
    pub(crate) fn spawn_worker(&mut self) -> usize {
        self.spawn_worker_with(&[])
    }

    /// A worker process with more settings in its environment (`PARTNERFLOW__…`).
    pub(crate) fn spawn_worker_with(&mut self, env: &[(&str, &str)]) -> usize {
        let i = self.workers.len();
        let name = format!("worker-{i}");
        let out = File::create(self.logs.join(format!("{name}.out"))).expect("stdout file");
        let err = File::create(self.logs.join(format!("{name}.err"))).expect("stderr file");
        let child = Command::new(env!("CARGO_BIN_EXE_partnerflow"))
            .args(["worker", "--dispatch"])
            .current_dir(REPO_ROOT)
            .env("PARTNERFLOW__DATABASE__URL", &self.database_url)
            .env("PARTNERFLOW__DATABASE__MAX_CONNECTIONS", "8")
            .env("PARTNERFLOW__QUEUE__KIND", "redis")
            // The run checks that no outbox row is left: no message may wait for working hours.
            .env("PARTNERFLOW__NOTIFICATIONS__WORKING_HOURS", "")
            .env("PARTNERFLOW__QUEUE__REDIS_URL", &self.redis_url)
            .env("PARTNERFLOW__QUEUE__NAMESPACE", &self.namespace)
            .env("PARTNERFLOW__ENGINE__LEASE_SECS", LEASE_SECS.to_string())
            .env(
                "PARTNERFLOW__ENGINE__REDISPATCH_SECS",
                LEASE_SECS.to_string(),
            )
            .env("PARTNERFLOW__ENGINE__POLL_MS", "50")
            .env("PARTNERFLOW__ENGINE__REFERENCE_STEP_MS", "30")
            .env("PARTNERFLOW__ENGINE__REFERENCE_RUN_LOG", self.run_log())
            .env(
                "PARTNERFLOW__ENGINE__WORKER_CONCURRENCY",
                WORKER_CONCURRENCY.to_string(),
            )
            .env(
                "PARTNERFLOW__PATHS__EXTRA_WORKFLOWS",
                r#"["workflows/reference"]"#,
            )
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn a worker process");
        self.say(&format!("started {name} (pid {})", child.id()));
        self.workers.push(Worker {
            name,
            child,
            killed: false,
        });
        i
    }

    /// SIGKILL (no drain, no acknowledgement, no clean-up of any kind), as soon as the worker
    /// holds jobs it fetched and has not finished. Returns how many it held.
    pub(crate) async fn kill_mid_step(&mut self, i: usize) -> usize {
        let pid = self.workers[i].child.id();
        let deadline = Instant::now() + TIMEOUT;
        let held = loop {
            self.check_workers();
            let held = self.held_by(pid).await;
            if held > 0 {
                break held;
            }
            assert!(
                Instant::now() < deadline,
                "worker-{i} never held a job to be killed with"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let w = &mut self.workers[i];
        w.child.kill().expect("SIGKILL");
        w.child.wait().expect("reap");
        w.killed = true;
        let name = w.name.clone();
        self.say(&format!("SIGKILLed {name} holding {held} jobs"));
        held
    }

    /// Jobs the worker process `pid` fetched and has not acknowledged (apalis's inflight sets
    /// of its workers, named `{pid}-{uuid}`).
    async fn held_by(&self, pid: u32) -> usize {
        let mut c = self.redis().await;
        let pattern = format!("{}:outbox:inflight:{pid}-*", self.namespace);
        let mut held = 0;
        for key in scan(&mut c, &pattern).await {
            held += redis::cmd("SCARD")
                .arg(&key)
                .query_async::<usize>(&mut c)
                .await
                .expect("SCARD");
        }
        held
    }

    /// Fails at once when a worker process died without being killed by the test.
    fn check_workers(&mut self) {
        for w in &mut self.workers {
            if w.killed {
                continue;
            }
            if let Some(status) = w.child.try_wait().expect("try_wait") {
                w.killed = true;
                panic!(
                    "{} exited by itself ({status}); logs in {}",
                    w.name,
                    self.logs.display()
                );
            }
        }
    }

    /// Where the run stands; an error while the database is away (a restart).
    async fn progress(&self) -> Result<Progress, Error> {
        let e = &self.engine;
        let instances = e
            .instances(partnerflow_engine::Listing::default(), 10_000)
            .await?;
        let tasks = e
            .tasks(
                &partnerflow_engine::TaskFilter {
                    role: Some(ROLE),
                    ..Default::default()
                },
                10_000,
            )
            .await?;
        let mut by_status = BTreeMap::new();
        for i in &instances {
            let key = format!("{}/{}", i.status, i.current_step.as_deref().unwrap_or("-"));
            *by_status.entry(key).or_insert(0) += 1;
        }
        Ok(Progress {
            instances: instances.len(),
            prepared: tasks.len(),
            open_tasks: tasks.iter().filter(|t| t.status == "open").count(),
            completed: instances.iter().filter(|i| i.status == "completed").count(),
            by_status,
            backlog: e.backlog().await?,
        })
    }

    /// [`Rig::progress`], asked again while the database is away, until [`TIMEOUT`].
    async fn progress_now(&self, deadline: Instant) -> Progress {
        loop {
            match self.progress().await {
                Ok(p) => return p,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "the record stayed unreachable: {e}"
                    );
                    self.say(&format!("progress not readable yet: {e}"));
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// Polls until `done` holds; fails after [`TIMEOUT`] with where the run stands.
    pub(crate) async fn wait_for(
        &mut self,
        what: &str,
        done: impl Fn(&Progress) -> bool,
    ) -> Progress {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.check_workers();
            let p = self.progress_now(deadline).await;
            if done(&p) {
                self.say(&format!(
                    "{what}: {} prepared, {} completed",
                    p.prepared, p.completed
                ));
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {TIMEOUT:?} waiting for: {what}; instances per status/step: {:?}; {} of {} past prepare, {} tasks open, {} completed, outbox backlog {}",
                p.by_status,
                p.prepared,
                p.instances,
                p.open_tasks,
                p.completed,
                p.backlog
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts `n` instances one after another on a task of its own.
    pub(crate) fn start_instances(&self, n: usize) -> tokio::task::JoinHandle<Vec<Uuid>> {
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let mut ids = Vec::with_capacity(n);
            for i in 0..n {
                let (started, created) = engine
                    .start(
                        WORKFLOW,
                        &format!("F-{i:04}"),
                        json!({}),
                        partnerflow_engine::Submitter {
                            actor: Actor {
                                id: "bench".to_owned(),
                            },
                            partner: None,
                        },
                        None,
                    )
                    .await
                    .expect("start");
                assert!(created, "F-{i:04} started once");
                ids.push(started.id);
            }
            ids
        })
    }

    /// Approves every open task, all at once; returns how many. A decision the record could
    /// not take (the database away) is left for the next round.
    pub(crate) async fn decide_open(&self) -> usize {
        let filter = partnerflow_engine::TaskFilter {
            role: Some(ROLE),
            status: Some("open"),
            partner: None,
        };
        let open = match self.engine.tasks(&filter, 10_000).await {
            Ok(open) => open,
            Err(e) => {
                self.say(&format!("open tasks not readable yet: {e}"));
                return 0;
            }
        };
        let mut decisions = tokio::task::JoinSet::new();
        for t in open {
            let engine = self.engine.clone();
            decisions.spawn(async move {
                let id = Uuid::parse_str(&t.id).expect("task id");
                let actor = Actor {
                    id: "cm.li".to_owned(),
                };
                match engine
                    .decide(id, "approve", None, actor, Value::Null, None)
                    .await
                {
                    Ok(_) => 1,
                    // Decided meanwhile by another round: the record refuses the second.
                    Err(Error::Refused(_)) => 0,
                    // The database is away: the next round decides it.
                    Err(Error::Store(_)) => 0,
                    Err(e) => panic!("deciding task {id}: {e}"),
                }
            });
        }
        let mut n = 0;
        while let Some(r) = decisions.join_next().await {
            n += r.expect("decision task");
        }
        n
    }

    /// Decides tasks as they open until every instance is completed.
    pub(crate) async fn run_to_completion(&mut self, n: usize) -> Progress {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            self.check_workers();
            self.decide_open().await;
            let p = self.progress_now(deadline).await;
            if p.completed == n {
                self.say(&format!("all {n} instances completed"));
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {TIMEOUT:?} waiting for all {n} instances to complete; instances per status/step: {:?}; {} tasks open, outbox backlog {}",
                p.by_status,
                p.open_tasks,
                p.backlog
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Every instance ran each step once: two step results (prepare, finish), one decision, one
    /// end; its audit chain verifies; nothing is left in the outbox; and the handler executed
    /// exactly the step entries that were applied, each at least once. Returns what the
    /// handler's run log counted.
    pub(crate) async fn assert_each_step_applied_once(&self, ids: &[Uuid]) -> Executions {
        let mut applied = std::collections::BTreeSet::new();
        for &id in ids {
            let v = self.engine.instance(id).await.expect("instance");
            let kinds: Vec<&str> = v.timeline.iter().map(|e| e.event.kind.as_str()).collect();
            let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
            assert_eq!(v.status, "completed", "{id} {}: {kinds:?}", v.business_key);
            assert_eq!(
                count("step_completed"),
                2,
                "{id} {}: prepare and finish applied once each: {kinds:?}",
                v.business_key
            );
            assert_eq!(count("decision"), 1, "{id}: one decision: {kinds:?}");
            assert_eq!(count("finished"), 1, "{id}: finished once: {kinds:?}");
            assert_eq!(count("started"), 1, "{id}: started once: {kinds:?}");
            let steps: Vec<&str> = v
                .timeline
                .iter()
                .filter(|e| e.event.kind == "step_completed")
                .filter_map(|e| e.event.payload.get("step").and_then(Value::as_str))
                .collect();
            assert_eq!(steps, ["prepare", "finish"], "{id}: {kinds:?}");
            let mut entered_seq = BTreeMap::new();
            for e in &v.timeline {
                if e.event.kind == "step_entered"
                    && let (Some(step), Some(seq)) = (
                        e.event.payload.get("step").and_then(Value::as_str),
                        e.event.payload.get("seq").and_then(Value::as_u64),
                    )
                {
                    entered_seq.insert(step.to_owned(), seq);
                }
            }
            for step in ["prepare", "finish"] {
                let seq = entered_seq.get(step).expect("entered");
                applied.insert(format!("{id}:{seq}:{step}"));
            }
            assert_eq!(
                self.engine.verify_chain(id).await.expect("verify"),
                Ok(()),
                "{id}: audit chain"
            );
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let backlog = self.engine.backlog().await.expect("backlog");
            if backlog == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{backlog} outbox rows still pending after every instance completed"
            );
            tokio::time::sleep(POLL).await;
        }
        let log = std::fs::read_to_string(self.run_log()).expect("the reference handler's run log");
        let mut runs: BTreeMap<&str, usize> = BTreeMap::new();
        for key in log.lines() {
            *runs.entry(key).or_default() += 1;
        }
        let executed: std::collections::BTreeSet<String> =
            runs.keys().map(|k| (*k).to_owned()).collect();
        assert_eq!(
            executed, applied,
            "the handler executed exactly the step entries that were applied"
        );
        let total: usize = runs.values().sum();
        Executions {
            total,
            again: total - runs.len(),
        }
    }

    pub(crate) async fn redis(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.redis_url.as_str())
            .expect("redis url")
            .get_multiplexed_async_connection()
            .await
            .expect("redis connection")
    }

    /// Jobs waiting in the namespace's apalis active list.
    pub(crate) async fn queued(&self) -> usize {
        let mut c = self.redis().await;
        redis::cmd("LLEN")
            .arg(format!("{}:outbox:active", self.namespace))
            .query_async(&mut c)
            .await
            .expect("LLEN")
    }

    /// After a passing run: stops the workers, deletes the Redis keys and drops the database.
    pub(crate) async fn finish(mut self) {
        for w in &mut self.workers {
            if !w.killed {
                let _ = w.child.kill();
                let _ = w.child.wait();
                w.killed = true;
            }
        }
        self.clean_redis().await;
        self.engine.store().pool.close().await;
        let admin = partnerflow_store::Store::connect(&self.admin_url, 1)
            .await
            .expect("admin connection");
        partnerflow_store::raw_execute(
            &admin,
            &format!("drop database if exists {} with (force)", self.database),
        )
        .await
        .expect("drop database");
        admin.pool.close().await;
    }

    /// Deletes the namespace's keys and its entries in apalis's global list of queues.
    async fn clean_redis(&self) {
        let mut c = self.redis().await;
        let keys = scan(&mut c, &format!("{}:*", self.namespace)).await;
        for chunk in keys.chunks(500) {
            redis::cmd("DEL")
                .arg(chunk)
                .query_async::<()>(&mut c)
                .await
                .expect("DEL");
        }
        let queues: Vec<String> = redis::cmd("ZRANGE")
            .arg(APALIS_QUEUES)
            .arg(0)
            .arg(-1)
            .query_async(&mut c)
            .await
            .expect("ZRANGE");
        let ours: Vec<&String> = queues
            .iter()
            .filter(|q| q.starts_with(&format!("{}:", self.namespace)))
            .collect();
        if !ours.is_empty() {
            redis::cmd("ZREM")
                .arg(APALIS_QUEUES)
                .arg(ours)
                .query_async::<()>(&mut c)
                .await
                .expect("ZREM");
        }
    }
}

/// Every key matching `pattern`.
async fn scan(c: &mut redis::aio::MultiplexedConnection, pattern: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut *c)
            .await
            .expect("SCAN");
        keys.extend(batch);
        cursor = next;
        if cursor == 0 {
            return keys;
        }
    }
}

fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for Rig {
    fn drop(&mut self) {
        for w in &mut self.workers {
            if !w.killed {
                let _ = w.child.kill();
                let _ = w.child.wait();
            }
        }
        if std::thread::panicking() {
            for w in &self.workers {
                for ext in ["out", "err"] {
                    let path = self.logs.join(format!("{}.{ext}", w.name));
                    eprintln!(
                        "----- {} (last 40 lines) -----\n{}",
                        path.display(),
                        tail(&path, 40)
                    );
                }
            }
        } else {
            let _ = std::fs::remove_dir_all(&self.logs);
        }
    }
}
