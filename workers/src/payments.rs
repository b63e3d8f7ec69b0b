//! Paying a payable (an MDF claim, an NRE milestone) through a [`PaymentProvider`], on the
//! engine's external-call discipline: the `pay` step's handler runs outside any transaction and
//! calls the provider with the payable's own idempotency key, so a call repeated after a crash
//! or a lost answer pays once. The provider answers `confirmed` (the money left) or
//! `submitted` (the bank confirms later with a `payment_confirmed` event correlated to the
//! payable); the ledger consumes the reservation only on confirmation.
//!
//! Parameters of the step (`params`): `payable`, a template naming the payable (`{instance}` is
//! the instance's id, `{/pointer}` a value of its data), and `amount`, a pointer to the amount.

mod http;

pub use http::HttpBank;

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use partnerflow_core::handler::{HandlerError, StepContext, StepHandler, StepOutput};
use rust_decimal::Decimal;
use serde_json::{Value, json};

/// One payment as the provider receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentRequest {
    /// The payable's id: the same for every attempt to pay it.
    pub idempotency_key: String,
    pub payee: String,
    pub amount: Decimal,
    pub currency: String,
}

/// What the provider says of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentAnswer {
    Confirmed { reference: String },
    Submitted { reference: String },
}

#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync + 'static {
    /// Pays `request` once per idempotency key: a repeated key answers the first payment.
    async fn pay(&self, request: &PaymentRequest) -> Result<PaymentAnswer, HandlerError>;
}

/// The embedded default: a bank that keeps its payments in memory, pays each key once and
/// confirms at once.
#[derive(Debug, Default)]
pub struct SimulatedBank {
    payments: Mutex<BTreeMap<String, (PaymentRequest, String)>>,
}

impl SimulatedBank {
    /// What the bank has paid, by idempotency key.
    pub fn payments(&self) -> Vec<PaymentRequest> {
        self.payments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .map(|(r, _)| r.clone())
            .collect()
    }
}

#[async_trait::async_trait]
impl PaymentProvider for SimulatedBank {
    async fn pay(&self, request: &PaymentRequest) -> Result<PaymentAnswer, HandlerError> {
        let mut payments = self
            .payments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = payments.len() + 1;
        let (_, reference) = payments
            .entry(request.idempotency_key.clone())
            .or_insert_with(|| (request.clone(), format!("SIM-{n:06}")));
        Ok(PaymentAnswer::Confirmed {
            reference: reference.clone(),
        })
    }
}

/// The `pay` handler.
pub struct Pay {
    provider: Arc<dyn PaymentProvider>,
}

impl Pay {
    pub fn new(provider: Arc<dyn PaymentProvider>) -> Self {
        Pay { provider }
    }
}

#[async_trait::async_trait]
impl StepHandler for Pay {
    async fn run(&self, ctx: StepContext) -> Result<StepOutput, HandlerError> {
        let param = |k: &str| {
            ctx.params
                .get(k)
                .and_then(Value::as_str)
                .ok_or_else(|| HandlerError::Fatal(format!("the pay step needs params.{k}")))
        };
        let template = param("payable")?;
        let payable = ctx.instance.fill(template).map_err(|name| {
            HandlerError::Fatal(format!(
                "payable `{template}`: {name} is not in the instance"
            ))
        })?;
        let amount = ctx
            .instance
            .value_at(param("amount")?)
            .and_then(Value::as_str)
            .and_then(|a| Decimal::from_str(a).ok())
            .ok_or_else(|| {
                HandlerError::Fatal(format!("payable {payable}: no amount at params.amount"))
            })?;
        let request = PaymentRequest {
            idempotency_key: payable.clone(),
            payee: ctx.instance.partner_id.clone().unwrap_or_default(),
            amount,
            currency: "CNY".to_owned(),
        };
        Ok(match self.provider.pay(&request).await? {
            PaymentAnswer::Confirmed { reference } => StepOutput::new(
                "confirmed",
                json!({ "payable_id": payable, "reference": reference, "amount": amount.to_string() }),
            ),
            PaymentAnswer::Submitted { reference } => StepOutput::new(
                "submitted",
                json!({ "payable_id": payable, "reference": reference, "amount": amount.to_string() }),
            ),
        })
    }
}
