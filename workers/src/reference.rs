//! The handler of the reference workload (PRODUCT §6): it does no work of its own, except an
//! optional pause (`PARTNERFLOW_REFERENCE_STEP_MS`) that fault tests use to be sure a worker
//! is killed in the middle of a step.

use std::time::Duration;

use partnerflow_core::handler::{HandlerError, StepContext, StepHandler, StepOutput};
use serde_json::json;

pub struct ReferenceStep {
    pause: Option<Duration>,
}

impl ReferenceStep {
    pub fn new(pause: Option<Duration>) -> Self {
        ReferenceStep { pause }
    }
}

#[async_trait::async_trait]
impl StepHandler for ReferenceStep {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        if let Some(pause) = self.pause {
            tokio::time::sleep(pause).await;
        }
        Ok(StepOutput::new(
            "done",
            json!({ "step": ctx.step, "at": ctx.now }),
        ))
    }
}
