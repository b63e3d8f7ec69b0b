//! Operator commands on the command line: cancel a running instance, resume a failed one. They
//! act through the engine like the API does, audited under the operator named with `--as`,
//! which must be one of the configured operators.

use std::sync::Arc;

use anyhow::{Result, bail};
use partnerflow_core::machine::Actor;
use partnerflow_engine::{Clock, SystemClock};
use serde_json::Value;
use uuid::Uuid;

use crate::settings::Settings;

/// What an operator asks for.
#[derive(Debug, Clone)]
pub enum Operation {
    Cancel { reason: String },
    Resume,
}

/// Carries out `op` on instance `id` as `operator`, on the clock given (the system clock in
/// service); returns the engine's answer.
pub async fn run(
    settings: &Settings,
    clock: Arc<dyn Clock>,
    id: Uuid,
    op: Operation,
    operator: &str,
) -> Result<Value> {
    if !settings.auth.operators.iter().any(|o| o.id == operator) {
        bail!("`{operator}` is not a configured operator (auth.operators)");
    }
    let engine = crate::app::build(settings, clock).await?;
    let actor = Actor {
        id: operator.to_owned(),
    };
    Ok(match op {
        Operation::Cancel { reason } if reason.trim().is_empty() => {
            bail!("--reason must say why the instance is cancelled")
        }
        Operation::Cancel { reason } => engine.cancel(id, &reason, actor, None).await?,
        Operation::Resume => engine.resume(id, actor, None).await?,
    })
}

/// `run` on the system clock.
pub async fn run_now(
    settings: &Settings,
    id: Uuid,
    op: Operation,
    operator: &str,
) -> Result<Value> {
    run(settings, Arc::new(SystemClock), id, op, operator).await
}
