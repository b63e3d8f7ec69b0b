//! The partner's invoice for a statement's payable (the `await_invoice` decision's data): a
//! special VAT invoice must be for the payable exactly and is paid at par; an ordinary invoice
//! must also be for the payable, needs the partner's consent to the deduction, and is paid at
//! the programme's share of it (gross × 0.94, notes/tencent-and-marketplace.md T-8).

use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::money::round_fen;
use crate::validation::read::{Reader, object};
use crate::validation::{FieldError, RecordFacts};

/// Checks the invoice against `payable`; the data with `payout_amount` and `deduction` added.
pub fn validate_invoice(
    data: &Value,
    payable: Decimal,
    ordinary_share: Decimal,
    facts: &RecordFacts,
) -> Result<Value, Vec<FieldError>> {
    object(data)?;
    let mut r = Reader::default();
    r.text(data, "number", "number");
    r.attachment(data, "attachment", "attachment", facts);
    let amount = r.amount(data, "amount", "amount");
    let kind = r.text(data, "kind", "kind");
    let payout = match kind.as_deref() {
        Some("special") => Some(payable),
        Some("ordinary") => {
            if data.get("consent_to_deduction").and_then(Value::as_bool) != Some(true) {
                r.fail(
                    "consent_to_deduction",
                    "required",
                    format!(
                        "an ordinary invoice is paid at {ordinary_share} of the payable; the partner must consent (consent_to_deduction = true)"
                    ),
                );
            }
            Some(round_fen(payable * ordinary_share))
        }
        Some(other) => {
            r.fail(
                "kind",
                "kind",
                format!("an invoice is `special` or `ordinary`, not `{other}`"),
            );
            None
        }
        None => None,
    };
    if let Some(a) = amount
        && a != payable
    {
        r.fail(
            "amount",
            "equals_payable",
            format!("the invoice must be for the payable {payable} exactly, not {a}"),
        );
    }
    let Some(payout) = payout.filter(|_| r.errors.is_empty()) else {
        return Err(r.errors);
    };
    let mut out = data.clone();
    out["payout_amount"] = json!(payout.to_string());
    out["deduction"] = json!((payable - payout).to_string());
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().expect("decimal")
    }

    fn check(data: Value) -> Result<Value, Vec<(String, String)>> {
        let facts = RecordFacts::for_partner("P-1").with_upload("att-1");
        validate_invoice(&data, d("1234.56"), d("0.94"), &facts)
            .map_err(|e| e.into_iter().map(|f| (f.field, f.rule)).collect())
    }

    #[test]
    fn a_special_invoice_equals_the_payable_to_the_fen() {
        let ok = check(json!({ "kind": "special", "number": "F-1", "amount": "1234.56", "attachment": "att-1" }))
            .expect("special");
        assert_eq!(
            (ok["payout_amount"].as_str(), ok["deduction"].as_str()),
            (Some("1234.56"), Some("0.00"))
        );
        let off = check(
            json!({ "kind": "special", "number": "F-1", "amount": "1234.55", "attachment": "att-1" }),
        );
        assert_eq!(
            off.expect_err("off by a fen"),
            vec![("amount".to_owned(), "equals_payable".to_owned())]
        );
    }

    #[test]
    fn an_ordinary_invoice_is_paid_at_94_percent_with_consent() {
        let data = json!({ "kind": "ordinary", "number": "F-2", "amount": "1234.56", "attachment": "att-1" });
        assert_eq!(
            check(data.clone()).expect_err("no consent"),
            vec![("consent_to_deduction".to_owned(), "required".to_owned())]
        );
        let mut consented = data;
        consented["consent_to_deduction"] = json!(true);
        let ok = check(consented).expect("ordinary");
        // 1,234.56 × 0.94 = 1,160.4864 → 1,160.49
        assert_eq!(ok["payout_amount"], "1160.49");
        assert_eq!(ok["deduction"], "74.07");
    }
}
