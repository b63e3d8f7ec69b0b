//! Faults with real processes: a worker killed with SIGKILL in the middle of a step, Redis
//! emptied by FLUSHALL, and PostgreSQL restarted, each under a run of many instances. Every
//! instance still completes, no step is applied twice, and the reference handler's own log of
//! its runs shows what was executed again.
//!
//! Workers are `partnerflow worker --dispatch` processes (dispatcher, sweeper and workers each).
//! Every reference step sleeps 30 ms, so faults land in the middle of steps; the outbox lease
//! is 2 s, so work lost with a process or with Redis comes back within seconds.

mod payment;
mod rig;
mod settlement;

use rig::{INSTANCES, Rig};

use crate::servers::{OwnPostgres, OwnRedis};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_with_sigkill_mid_step_loses_nothing() {
    if !crate::services::postgres_and_redis("a_worker_killed_with_sigkill_mid_step_loses_nothing") {
        return;
    }
    let mut rig = Rig::new(&crate::services::redis_url()).await;
    rig.spawn_worker();
    rig.spawn_worker();
    let starting = rig.start_instances(INSTANCES);
    // First fault: a worker dies with `prepare` steps in flight and more queued.
    rig.until_a_fifth_prepared().await;
    let held_first = rig.kill_mid_step(0).await;
    rig.spawn_worker();
    let ids = starting.await.expect("starts");
    // Second fault: a worker dies among the `finish` steps the decisions enqueued.
    rig.approve_all_until_a_fifth_completed().await;
    let held_second = rig.kill_mid_step(1).await;
    rig.spawn_worker();
    let runs = rig.complete_and_check(&ids).await;
    assert!(
        runs.again > 0,
        "the kills (holding {held_first} and {held_second} jobs) landed in the middle of steps, which ran again elsewhere"
    );
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redis_flushall_during_a_run_loses_nothing() {
    let test = "a_redis_flushall_during_a_run_loses_nothing";
    if !crate::services::postgres(test)
        || !crate::services::program(test, "redis-server", OwnRedis::installed())
    {
        return;
    }
    // A Redis of its own: FLUSHALL empties every database of the server, which must not be
    // the one the other tests share.
    let redis = OwnRedis::start();
    let mut rig = Rig::new(&redis.url()).await;
    // The instances are in the record before any worker runs: the first dispatch pushes all
    // their `prepare` jobs at once, and they queue in Redis behind the few job slots.
    let ids = rig.start_instances(INSTANCES).await.expect("starts");
    rig.spawn_worker();
    rig.spawn_worker();
    rig.until_a_fifth_prepared().await;
    let queued = rig.queued().await;
    flushall(&rig).await;
    rig.say(&format!("FLUSHALL with {queued} prepare jobs queued"));
    assert!(
        queued > 0,
        "the first FLUSHALL found no queued job: the fault missed the run"
    );
    rig.approve_all_until_a_fifth_completed().await;
    flushall(&rig).await;
    rig.say("FLUSHALL with finish steps in flight");
    rig.complete_and_check(&ids).await;
    rig.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgresql_restart_during_a_run_loses_nothing() {
    let test = "a_postgresql_restart_during_a_run_loses_nothing";
    if !crate::services::available(test, &[("Redis", &crate::services::redis_url())])
        || !crate::services::program(
            test,
            "the PostgreSQL server binaries",
            OwnPostgres::installed(),
        )
    {
        return;
    }
    // A PostgreSQL cluster of its own: restarting the shared one would cut every other test.
    let postgres = OwnPostgres::start();
    let mut rig = Rig::on(&crate::services::redis_url(), &postgres.url()).await;
    rig.spawn_worker();
    rig.spawn_worker();
    let ids = rig.start_instances(INSTANCES).await.expect("starts");
    // Every connection of every process is cut in the middle of the run, twice.
    rig.until_a_fifth_prepared().await;
    postgres.restart();
    rig.say("PostgreSQL restarted with prepare steps in flight");
    rig.approve_all_until_a_fifth_completed().await;
    postgres.restart();
    rig.say("PostgreSQL restarted with finish steps in flight");
    rig.complete_and_check(&ids).await;
    rig.finish().await;
}

async fn flushall(rig: &Rig) {
    let mut c = rig.redis().await;
    redis::cmd("FLUSHALL")
        .query_async::<()>(&mut c)
        .await
        .expect("FLUSHALL");
}
