//! What an uploaded attachment must satisfy before a byte of it is kept: a known screen, an
//! extension that screen allows, no forbidden character in its name, and a size limit (enforced
//! while the upload streams). The seeds' rules are the defaults (notes/mdf-nre-incentives.md
//! §3.5): jpg png gif pdf doc docx ppt pptx xls xlsx zip rar, at most 50 MB, none of
//! `: * % & + |`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::validation::FieldError;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentRules {
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    #[serde(default = "default_forbidden")]
    pub forbidden_characters: String,
    /// Allowed extensions (lower case, without the dot) per screen.
    #[serde(default = "default_screens")]
    pub screens: BTreeMap<String, Vec<String>>,
}

impl Default for AttachmentRules {
    fn default() -> Self {
        AttachmentRules {
            max_bytes: default_max_bytes(),
            forbidden_characters: default_forbidden(),
            screens: default_screens(),
        }
    }
}

fn default_max_bytes() -> u64 {
    50 * 1024 * 1024
}

fn default_forbidden() -> String {
    ":*%&+|".to_owned()
}

fn default_screens() -> BTreeMap<String, Vec<String>> {
    let materials: Vec<String> = [
        "jpg", "png", "gif", "pdf", "doc", "docx", "ppt", "pptx", "xls", "xlsx", "zip", "rar",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    ["mdf_claim", "nre_milestones"]
        .into_iter()
        .map(|s| (s.to_owned(), materials.clone()))
        .collect()
}

impl AttachmentRules {
    /// Checks the screen and the file name of an upload.
    pub fn check_name(&self, screen: &str, filename: &str) -> Result<(), FieldError> {
        let Some(allowed) = self.screens.get(screen) else {
            let known: Vec<&str> = self.screens.keys().map(String::as_str).collect();
            return Err(FieldError::new(
                "screen",
                "screen",
                format!(
                    "screen `{screen}` takes no uploads; known: {}",
                    known.join(", ")
                ),
            ));
        };
        let name = filename.trim();
        if name.is_empty() || name.contains(['/', '\\']) || name.chars().any(char::is_control) {
            return Err(FieldError::new(
                "filename",
                "name",
                "filename must be a plain file name, without folders".to_owned(),
            ));
        }
        if let Some(c) = name
            .chars()
            .find(|c| self.forbidden_characters.contains(*c))
        {
            return Err(FieldError::new(
                "filename",
                "forbidden_character",
                format!(
                    "filename may not contain `{c}` (none of {})",
                    self.forbidden_characters
                ),
            ));
        }
        let extension = name
            .rsplit_once('.')
            .map(|(_, e)| e.to_ascii_lowercase())
            .unwrap_or_default();
        if !allowed.contains(&extension) {
            return Err(FieldError::new(
                "filename",
                "extension",
                format!(
                    "`.{extension}` is not allowed on {screen}; allowed: {}",
                    allowed.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// The refusal of an upload that grew past the limit.
    pub fn too_large(&self) -> FieldError {
        FieldError::new(
            "body",
            "max_bytes",
            format!("an attachment may have at most {} bytes", self.max_bytes),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(r: Result<(), FieldError>) -> Option<String> {
        r.err().map(|e| e.rule)
    }

    #[test]
    fn names_are_checked_against_the_screens_rules() {
        let r = AttachmentRules::default();
        assert_eq!(rule(r.check_name("mdf_claim", "photos.ZIP")), None);
        assert_eq!(
            rule(r.check_name("mdf_claim", "setup.exe")).as_deref(),
            Some("extension")
        );
        assert_eq!(
            rule(r.check_name("mdf_claim", "no_extension")).as_deref(),
            Some("extension")
        );
        for c in [':', '*', '%', '&', '+', '|'] {
            assert_eq!(
                rule(r.check_name("mdf_claim", &format!("a{c}b.pdf"))).as_deref(),
                Some("forbidden_character"),
                "{c}"
            );
        }
        assert_eq!(
            rule(r.check_name("mdf_claim", "../etc/passwd.pdf")).as_deref(),
            Some("name")
        );
        assert_eq!(
            rule(r.check_name("payroll", "a.pdf")).as_deref(),
            Some("screen")
        );
    }
}
