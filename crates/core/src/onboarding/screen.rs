//! `auto_screen`: the soft rules that decide between automatic approval and a human review.

use super::validate::money;
use super::*;

/// `auto_screen`: approves automatically only when every soft check passes and nothing was
/// declared; otherwise lists why the application needs `qualification_review`.
///
/// Expects an application that passed [`validate`]: hard rules are not repeated here.
#[must_use]
pub fn screen(app: &Application, rules: &OnboardingRules) -> Screening {
    let t = rules.for_type(app.partner_type);
    let mut reasons = Vec::new();
    if app.sensitive_relationship_declared {
        // Tencent's supplier-relationship declaration (002:118) and Huawei's sensitive-
        // relationship rule (004:660) exist precisely so that a person looks at the case.
        reasons
            .push("the partner declared a sensitive relationship with vendor employees".to_owned());
    }
    for kind in &t.required_documents {
        let present = app
            .documents
            .iter()
            .any(|d| d.kind.trim().eq_ignore_ascii_case(kind.trim()));
        if !present {
            reasons.push(format!("required document \"{kind}\" is missing"));
        }
    }
    if rules.deposit_check == RuleStrength::Soft && app.deposit_paid < t.deposit {
        reasons.push(format!(
            "cooperation deposit not paid in full: {} paid of {}",
            money(app.deposit_paid, &app.company.currency),
            money(t.deposit, &app.company.currency)
        ));
    }
    Screening {
        auto_approve: reasons.is_empty(),
        reasons,
    }
}
