//! The handler of the reference workload (PRODUCT §6): it does no work of its own, except, for
//! fault tests, an optional pause (`engine.reference_step_ms`) so that a worker is killed in the
//! middle of a step, and an optional log of every run (`engine.reference_run_log`) so that a
//! test can count executions, duplicates included, across processes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use partnerflow_core::handler::{HandlerError, StepContext, StepHandler, StepOutput};
use serde_json::json;

/// How the reference handler behaves (fault tests only; both off in service).
#[derive(Debug, Clone, Default)]
pub struct ReferenceOptions {
    pub pause: Option<Duration>,
    /// Every run appends `<idempotency key>` as a line to this file.
    pub run_log: Option<PathBuf>,
}

pub struct ReferenceStep {
    options: ReferenceOptions,
}

impl ReferenceStep {
    pub fn new(options: ReferenceOptions) -> Self {
        ReferenceStep { options }
    }
}

#[async_trait::async_trait]
impl StepHandler for ReferenceStep {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        if let Some(path) = &self.options.run_log {
            // One short line per write, appended: lines from several processes never mix.
            let line = format!("{}\n", ctx.idempotency_key);
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| f.write_all(line.as_bytes()))
                .map_err(|e| HandlerError::Retryable(format!("run log {}: {e}", path.display())))?;
        }
        if let Some(pause) = self.options.pause {
            tokio::time::sleep(pause).await;
        }
        Ok(StepOutput::new(
            "done",
            json!({ "step": ctx.step, "at": ctx.now }),
        ))
    }
}
