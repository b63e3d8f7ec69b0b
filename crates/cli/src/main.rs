//! `partnerflow`: parses the command line, sets up tracing and metrics, and runs a command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use partnerflow::app::{self, ConfigData};
use partnerflow::settings::Settings;
use partnerflow_engine::{Clock, SystemClock};
use tokio_util::sync::CancellationToken;

// glibc's malloc spent more time than the work itself on the many short-lived JSON values and
// rows of a bulk start or a settlement run (its arenas consolidating on every large free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "partnerflow",
    version,
    about = "Durable workflow and approval orchestrator for partner programmes"
)]
struct Cli {
    /// Directory of the configuration files.
    #[arg(
        long,
        env = "PARTNERFLOW_CONFIG_DIR",
        default_value = "config",
        global = true
    )]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum BenchWhat {
    /// The reference workload driven over HTTP against a running `partnerflow serve`, learning
    /// of tasks and completions from webhooks (run both with PARTNERFLOW_ENV=bench).
    Http {
        /// The served API.
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// Where the driver receives webhooks (the `bench` subscriber's address).
        #[arg(long, default_value = "127.0.0.1:9099")]
        listen: String,
        #[arg(long, default_value_t = 1000)]
        workflows: usize,
        #[arg(long, default_value_t = 100)]
        concurrency: usize,
    },
    /// A transition's statements through sqlx's Any driver and through the native PostgreSQL
    /// driver, in turns: wall time and client and server CPU per transition.
    Driver {
        #[arg(long, default_value_t = 5_000)]
        transitions: u64,
        #[arg(long, default_value_t = 3)]
        rounds: u32,
    },
    /// Open tasks with their SLA timers, opened in bulk, and the sweeper while their first
    /// reminders come due (a share at one instant): lateness, memory, task listing.
    Timers {
        #[arg(long, default_value_t = 1_000_000)]
        tasks: u64,
        /// Tasks whose first reminder is due at the same instant.
        #[arg(long, default_value_t = 100_000)]
        burst: u64,
        /// Seconds over which the other first reminders come due.
        #[arg(long, default_value_t = 600)]
        over: u64,
    },
    /// Imports a generated month of transactions and settles it (twice), on the configured backend.
    Settlement {
        #[arg(long, default_value_t = 100_000)]
        partners: u64,
        #[arg(long, default_value_t = 10_000_000)]
        transactions: u64,
    },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Transactions from a CSV file (columns in README § Rebate settlement).
    Transactions {
        file: PathBuf,
        /// Import the good rows and write the bad ones to --rejects instead of refusing the file.
        #[arg(long)]
        skip_invalid: bool,
        /// Where the bad rows go (`row,column,reason`).
        #[arg(long, default_value = "rejects.csv")]
        rejects: PathBuf,
    },
}

#[derive(Subcommand)]
enum Command {
    /// API, workers, dispatcher, timer sweeper and janitor in one process.
    Serve,
    /// Workers only (add --dispatch to also run a dispatcher, timer sweeper and janitor).
    Worker {
        #[arg(long)]
        dispatch: bool,
    },
    /// Applies the database migrations.
    Migrate,
    /// Imports data: `import transactions FILE.csv` (refused whole on any bad row, unless
    /// --skip-invalid; a file imported twice is imported once).
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Settles a month of rebates: statements for every partner and their workflows (exactly
    /// once; a re-run creates nothing).
    Settle {
        /// The month, YYYY-MM.
        #[arg(long)]
        period: String,
    },
    /// Validates workflow definitions (a file or a directory; default: the configured one).
    Validate { path: Option<PathBuf> },
    /// Runs several partners through onboarding, contract signing, an MDF activity, an NRE project and a month's rebate settlement on a virtual clock.
    Demo,
    /// Cancels a running instance: its task closes, its timers and running child are cancelled.
    Cancel {
        id: uuid::Uuid,
        /// Why (recorded in the audit).
        #[arg(long)]
        reason: String,
        /// The configured operator doing it (recorded in the audit).
        #[arg(long = "as")]
        operator: String,
    },
    /// Resumes a failed instance by retrying its failed step.
    Resume {
        id: uuid::Uuid,
        /// The configured operator doing it (recorded in the audit).
        #[arg(long = "as")]
        operator: String,
    },
    /// Prints a partner's ledger (each account's balance and postings, payables and payments),
    /// or with --check replays every account's postings against its stored balance.
    Ledger {
        #[arg(long, required_unless_present = "check")]
        partner: Option<String>,
        /// Check the whole ledger; fails when any account does not hold together.
        #[arg(long)]
        check: bool,
    },
    /// The service at a glance (backlog, due timers, open and overdue tasks, failed instances),
    /// or with --partner a partner's instances (MDF activities, NRE projects and their
    /// milestone, …) with their step, summary and SLA clocks.
    Status {
        #[arg(long)]
        partner: Option<String>,
        /// Only this workflow's instances.
        #[arg(long)]
        workflow: Option<String>,
    },
    /// Runs the reference workload (3-step approval by signed callback) and reports throughput and latency.
    Bench {
        #[command(subcommand)]
        what: Option<BenchWhat>,
        /// Workflows to complete.
        #[arg(long, default_value_t = 2000)]
        workflows: usize,
        /// Workflows in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        let quiet = matches!(
            cli.command,
            Command::Demo | Command::Bench { .. } | Command::Validate { .. }
        );
        tracing_subscriber::EnvFilter::new(if quiet { "error" } else { "info" })
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Demo => partnerflow::demo::run().await,
        Command::Validate { path } => validate(&cli.config_dir, path).await,
        command => {
            let settings = Settings::load(&cli.config_dir)?;
            match command {
                Command::Serve => serve(settings).await,
                Command::Worker { dispatch } => worker(settings, dispatch).await,
                Command::Migrate => migrate(settings).await,
                Command::Import {
                    what:
                        ImportWhat::Transactions {
                            file,
                            skip_invalid,
                            rejects,
                        },
                } => {
                    let report = skip_invalid.then_some(rejects.as_path());
                    partnerflow::settle::import(&settings, &file, skip_invalid, report).await
                }
                Command::Settle { period } => partnerflow::settle::settle(&settings, &period).await,
                Command::Cancel {
                    id,
                    reason,
                    operator,
                } => {
                    let op = partnerflow::operate::Operation::Cancel { reason };
                    let answer =
                        partnerflow::operate::run_now(&settings, id, op, &operator).await?;
                    println!("{answer}");
                    Ok(())
                }
                Command::Ledger { partner, check } => {
                    let engine = app::build(&settings, Arc::new(SystemClock)).await?;
                    if check {
                        let findings = engine.verify_ledger().await?;
                        for f in &findings {
                            println!("{}: {}", f.account, f.problem);
                        }
                        if !findings.is_empty() {
                            anyhow::bail!("{} account(s) do not hold together", findings.len());
                        }
                        println!("every account is what its postings add up to");
                    }
                    if let Some(partner) = partner {
                        let ledger = engine.partner_ledger(&partner).await?;
                        print!("{}", partnerflow::report::partner_ledger(&ledger));
                    }
                    Ok(())
                }
                Command::Status {
                    partner: None,
                    workflow: _,
                } => {
                    let engine = app::build(&settings, Arc::new(SystemClock)).await?;
                    let g = engine.publish_gauges().await?;
                    print!("{}", partnerflow::report::overview(&g, engine.now()));
                    Ok(())
                }
                Command::Status {
                    partner: Some(partner),
                    workflow,
                } => {
                    let engine = app::build(&settings, Arc::new(SystemClock)).await?;
                    let filter = partnerflow_engine::Listing {
                        workflow: workflow.as_deref(),
                        ..partnerflow_engine::Listing::default()
                    };
                    let listed = engine.partner_status(&partner, filter, 200).await?;
                    print!("{}", partnerflow::report::partner_status(&partner, &listed));
                    Ok(())
                }
                Command::Resume { id, operator } => {
                    let op = partnerflow::operate::Operation::Resume;
                    let answer =
                        partnerflow::operate::run_now(&settings, id, op, &operator).await?;
                    println!("{answer}");
                    Ok(())
                }
                Command::Bench {
                    what: Some(BenchWhat::Timers { tasks, burst, over }),
                    ..
                } => {
                    let plan = partnerflow::bench_timers::Plan {
                        tasks,
                        burst,
                        over_secs: over,
                    };
                    partnerflow::bench_timers::run(&settings, plan).await
                }
                Command::Bench {
                    what:
                        Some(BenchWhat::Driver {
                            transitions,
                            rounds,
                        }),
                    ..
                } => partnerflow::bench_driver::run(&settings, transitions, rounds).await,
                Command::Bench {
                    what:
                        Some(BenchWhat::Settlement {
                            partners,
                            transactions,
                        }),
                    ..
                } => partnerflow::bench_settlement::run(&settings, partners, transactions).await,
                Command::Bench {
                    what:
                        Some(BenchWhat::Http {
                            url,
                            listen,
                            workflows,
                            concurrency,
                        }),
                    ..
                } => {
                    partnerflow::bench_http::run(&settings, &url, &listen, workflows, concurrency)
                        .await
                }
                Command::Bench {
                    what: None,
                    workflows,
                    concurrency,
                } => partnerflow::bench::run(&settings, workflows, concurrency).await,
                Command::Demo | Command::Validate { .. } => unreachable!("handled above"),
            }
        }
    }
}

async fn validate(config_dir: &std::path::Path, path: Option<PathBuf>) -> Result<()> {
    let settings = Settings::load(config_dir)?;
    let data = ConfigData::load(&settings)?;
    let registry = app::registry(&settings, app::Providers::default().payments)?;
    let files = match &path {
        Some(p) => app::read_definitions(p)?,
        None => app::read_definitions_or_embedded(&settings.paths.workflows)?,
    };
    let mut failed = 0;
    let mut templates: std::collections::BTreeSet<String> =
        partnerflow_engine::reach::BUILT_IN_TEMPLATES
            .iter()
            .map(|t| (*t).to_owned())
            .collect();
    for (file, text) in &files {
        let overrides = Some(&data.programme.workflows);
        match partnerflow_core::WorkflowDefinition::parse(file, text, overrides, &registry) {
            Ok(def) => {
                templates.extend(def.templates().into_iter().map(str::to_owned));
                println!(
                    "ok      {file}: {} v{} ({} steps)",
                    def.id,
                    def.version,
                    def.steps.len()
                )
            }
            Err(errors) => {
                failed += 1;
                for e in errors {
                    println!("error   {e}");
                }
            }
        }
    }
    // The settlement's policies and schedule (only when validating the configured set).
    if path.is_none() {
        match app::policies(&settings) {
            Ok(set) if set.is_empty() => println!(
                "warning no rebate policy in {}: nothing can be settled",
                settings.paths.policies.display()
            ),
            Ok(_) => println!(
                "ok      rebate policies in {}",
                settings.paths.policies.display()
            ),
            Err(e) => {
                failed += 1;
                println!("error   {e:#}");
            }
        }
        if let Err(e) = partnerflow_settlement::schedule::schedule(&data.programme.settlement) {
            failed += 1;
            println!("error   {e}");
        }
    }
    // Every template those definitions and the engine send, in every language.
    match partnerflow::reach::templates(&settings.notifications)
        .map(|t| t.check(templates.iter().map(String::as_str)))
    {
        Ok(Ok(())) => println!(
            "ok      notification templates ({} names, zh-CN and en)",
            templates.len()
        ),
        Ok(Err(problems)) => {
            failed += 1;
            for p in problems {
                println!("error   {p}");
            }
        }
        Err(e) => {
            failed += 1;
            println!("error   {e:#}");
        }
    }
    if let Some(w) = app::warn_if_calendar_ends_soon(&data.calendar, SystemClock.now()) {
        println!("warning {w}");
    }
    if failed > 0 {
        bail!("{failed} definition(s) or configuration file(s) failed validation");
    }
    Ok(())
}

async fn migrate(settings: Settings) -> Result<()> {
    let store = partnerflow_store::Store::connect(&settings.database.url, 2).await?;
    store.migrate().await?;
    println!("migrated {}", app::redact(&settings.database.url));
    Ok(())
}

fn install_metrics() -> Result<Arc<dyn Fn() -> String + Send + Sync>> {
    let handle = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    Ok(Arc::new(move || handle.render()))
}

async fn serve(settings: Settings) -> Result<()> {
    let addr: SocketAddr = settings
        .http
        .listen
        .parse()
        .with_context(|| format!("http.listen `{}`", settings.http.listen))?;
    settings.check_listen(addr)?;
    let metrics = install_metrics()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let engine = app::build(&settings, clock.clone()).await?;
    engine.register_metrics();
    let settlement = app::settlement(&settings, &engine)?;
    let shutdown = CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    app::spawn_loops(&engine, &shutdown, &tracker);
    partnerflow::settle::spawn_schedule(
        settlement.clone(),
        std::time::Duration::from_secs(settings.settlement.check_every_secs.max(1)),
        &shutdown,
        &tracker,
    );
    app::spawn_workers(
        &engine,
        settings.engine.worker_concurrency,
        &shutdown,
        &tracker,
    );
    let state = partnerflow_api::AppState {
        engine: engine.clone(),
        auth: Arc::new(app::auth_config(&settings)),
        metrics: Some(metrics),
        clock,
        settlement: Some(settlement),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    tracing::info!(%addr, database = %app::redact(&settings.database.url), queue = %settings.queue.kind, "serving");
    let s = shutdown.clone();
    // The peer address is kept for the evidence of signed links.
    axum::serve(
        listener,
        partnerflow_api::router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        s.cancel();
    })
    .await?;
    drain(tracker).await;
    Ok(())
}

async fn worker(settings: Settings, dispatch: bool) -> Result<()> {
    let engine = app::build(&settings, Arc::new(SystemClock)).await?;
    let shutdown = CancellationToken::new();
    let tracker = tokio_util::task::TaskTracker::new();
    if dispatch {
        app::spawn_loops(&engine, &shutdown, &tracker);
        partnerflow::settle::spawn_schedule(
            app::settlement(&settings, &engine)?,
            std::time::Duration::from_secs(settings.settlement.check_every_secs.max(1)),
            &shutdown,
            &tracker,
        );
    }
    app::spawn_workers(
        &engine,
        settings.engine.worker_concurrency,
        &shutdown,
        &tracker,
    );
    tracing::info!(dispatch, queue = %settings.queue.kind, "worker running");
    let s = shutdown.clone();
    tokio::select! {
        () = shutdown_signal() => s.cancel(),
        () = shutdown.cancelled() => {}
    }
    drain(tracker).await;
    Ok(())
}

async fn drain(tracker: tokio_util::task::TaskTracker) {
    tracker.close();
    if tokio::time::timeout(std::time::Duration::from_secs(30), tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            "shutdown timed out with work in flight; the outbox hands it out again after its lease"
        );
    }
}

/// SIGINT or SIGTERM starts a graceful drain; a second signal exits at once.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}
