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
        self.event(
            "standing_recorded",
            &Actor::system(),
            json!({ "partner_id": partner, "facts": facts, "step": self.state.step }),
        );
        self.out.effects.push(Effect::RecordStanding {
            partner,
            facts: facts.clone(),
        });
        Ok(())
    }
}
