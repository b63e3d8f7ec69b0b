//! Faults with real processes: a worker killed with SIGKILL in the middle of a step, Redis
//! emptied by FLUSHALL, and PostgreSQL restarted, each under a run of many instances. Every
//! instance still completes, no step is applied twice, and the reference handler's own log of
//! its runs shows what was executed again.
//!
//! Workers are `partnerflow worker --dispatch` processes (dispatcher, sweeper and workers each).
//! Every reference step sleeps 30 ms, so faults land in the middle of steps; the outbox lease
//! is 2 s, so work lost with a process or with Redis comes back within seconds.

mod rig;

use rig::{INSTANCES, Rig};

use crate::servers::{OwnPostgres, OwnRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_with_sigkill_mid_step_loses_nothing() {
    let mut rig = Rig::new("redis://127.0.0.1:6379").await;
    rig.spawn_worker();
    rig.spawn_worker();
    let starting = rig.start_instances(INSTANCES);

    // First fault: a worker dies with `prepare` steps in flight and more queued.
    rig.wait_for("a fifth of the instances past prepare", |p| {
        p.prepared >= INSTANCES / 5
    })
    .await;
    let held_first = rig.kill_mid_step(0).await;
    rig.spawn_worker();
    let ids = starting.await.expect("starts");
    rig.wait_for("every instance waiting for its approval", |p| {
        p.prepared == INSTANCES
    })
    .await;

    // Second fault: the decisions enqueue every `finish` step; a worker dies among them.
    let decided = rig.decide_open().await;
    rig.say(&format!("decided {decided} tasks"));
    assert_eq!(decided, INSTANCES, "every instance's task was open");
    rig.wait_for("a fifth of the instances completed", |p| {
        p.completed >= INSTANCES / 5
    })
    .await;
    let held_second = rig.kill_mid_step(1).await;
    rig.spawn_worker();

    rig.run_to_completion(INSTANCES).await;
    let runs = rig.assert_each_step_applied_once(&ids).await;
    rig.say(&format!(
        "every step applied once; killed holding {held_first} and {held_second} jobs; {} handler runs, {} of them again after a fault",
        runs.total, runs.again
    ));
    assert!(
        runs.again > 0,
        "the kills landed in the middle of steps, which ran again elsewhere"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_flushall_during_a_run_loses_nothing() {
    // A Redis of its own: FLUSHALL empties every database of the server, which must not be
    // the one the other tests share.
    let redis = OwnRedis::start();
    let mut rig = Rig::new(&redis.url()).await;
    // The instances are in the record before any worker runs: the first dispatch pushes all
    // their `prepare` jobs at once, and they queue in Redis behind the few job slots.
    let ids = rig.start_instances(INSTANCES).await.expect("starts");
    rig.say(&format!("started {} instances", ids.len()));
    rig.spawn_worker();
    rig.spawn_worker();

    rig.wait_for("a fifth of the instances past prepare", |p| {
        p.prepared >= INSTANCES / 5
    })
    .await;
    let queued = rig.queued().await;
    flushall(&rig).await;
    rig.say(&format!("FLUSHALL with {queued} prepare jobs queued"));
    rig.wait_for("every instance waiting for its approval", |p| {
        p.prepared == INSTANCES
    })
    .await;

    let decided = rig.decide_open().await;
    rig.say(&format!("decided {decided} tasks"));
    assert_eq!(decided, INSTANCES, "every instance's task was open");
    rig.wait_for("a fifth of the instances completed", |p| {
        p.completed >= INSTANCES / 5
    })
    .await;
    flushall(&rig).await;
    rig.say("FLUSHALL with finish steps in flight");

    rig.run_to_completion(INSTANCES).await;
    let runs = rig.assert_each_step_applied_once(&ids).await;
    rig.say(&format!(
        "every step applied once; {} handler runs, {} of them again after a fault",
        runs.total, runs.again
    ));
    assert!(
        queued > 0,
        "the first FLUSHALL found no queued job: the fault missed the run"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_during_a_run_loses_nothing() {
    // A PostgreSQL cluster of its own: restarting the shared one would cut every other test.
    let postgres = OwnPostgres::start();
    let mut rig = Rig::on("redis://127.0.0.1:6379", &postgres.url()).await;
    rig.spawn_worker();
    rig.spawn_worker();
    let ids = rig.start_instances(INSTANCES).await.expect("starts");
    rig.wait_for("a fifth of the instances past prepare", |p| {
        p.prepared >= INSTANCES / 5
    })
    .await;
    // Every connection of every process is cut in the middle of the run.
    postgres.restart();
    rig.say("PostgreSQL restarted with prepare steps in flight");
    rig.wait_for("every instance waiting for its approval", |p| {
        p.prepared == INSTANCES
    })
    .await;
    let decided = rig.decide_open().await;
    rig.say(&format!("decided {decided} tasks"));
    assert_eq!(decided, INSTANCES, "every instance's task was open");
    rig.wait_for("a fifth of the instances completed", |p| {
        p.completed >= INSTANCES / 5
    })
    .await;
    postgres.restart();
    rig.say("PostgreSQL restarted with finish steps in flight");
    rig.run_to_completion(INSTANCES).await;
    let runs = rig.assert_each_step_applied_once(&ids).await;
    rig.say(&format!(
        "every step applied once; {} handler runs, {} of them again after a fault",
        runs.total, runs.again
    ));
    rig.finish().await;
}

async fn flushall(rig: &Rig) {
    let mut c = rig.redis().await;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut c)
        .await
        .expect("FLUSHALL");
}
