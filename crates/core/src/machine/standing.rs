//! Facts a transition records about the instance's partner (`record = { … }`): the partner's
//! standing that other workflows' validators consult.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Actor, Effect, Error, Machine};
use crate::validation::FieldError;

impl Machine<'_, '_> {
    /// Asks for `facts` to be recorded for the instance's partner in this transition; refused
    /// when the instance belongs to no partner.
    pub(super) fn record_standing(
        &mut self,
        facts: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if facts.is_empty() {
            return Ok(());
        }
        let Some(partner) = self.state.partner_id.clone() else {
            return Err(Error::InvalidData(vec![FieldError::new(
                "partner_id",
                "required",
                "recording a partner's standing needs the instance's partner_id".to_owned(),
            )]));
        };
        // A state may be a template of the instance's data (`"{/input/partner_type}"`).
        let mut filled = BTreeMap::new();
        for (fact, state) in facts {
            let value = self.state.fill(state).map_err(|name| {
                Error::InvalidData(vec![FieldError::new(
                    &name.trim_start_matches('/').replace('/', "."),
                    "required",
                    format!("recording `{fact}` needs {name}, which the instance has not"),
                )])
            })?;
            filled.insert(fact.clone(), value);
        }
        self.event(
            "standing_recorded",
            &Actor::system(),
            json!({ "partner_id": partner, "facts": filled, "step": self.state.step }),
        );
        self.out.effects.push(Effect::RecordStanding {
            partner,
            facts: filled,
        });
        Ok(())
    }
}
