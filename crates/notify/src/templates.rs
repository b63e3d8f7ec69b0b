//! Notification templates: `config/templates/<locale>/<name>.j2`, each with the blocks
//! `subject`, `body` and `sms`, wrapped by the locale's `_layout.txt.j2`, `_layout.html.j2`
//! and `_layout.sms.j2` (which add the details and the signed links). Files are read at
//! start-up, so they are edited without a rebuild; undefined variables are errors.

use std::collections::BTreeSet;
use std::path::Path;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

use crate::context::{Context, KNOWN};

/// The locales every template must exist in; the first is the default.
pub const LOCALES: &[&str] = &["zh-CN", "en"];

const LAYOUTS: &[&str] = &["_layout.txt.j2", "_layout.html.j2", "_layout.sms.j2"];
const BLOCKS: &[&str] = &["subject", "body", "sms"];

/// A message rendered for one recipient.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rendered {
    pub locale: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub sms: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("templates directory {dir}: {reason}")]
    Directory { dir: String, reason: String },
    #[error("template `{name}` ({locale}) is missing: add {file}")]
    Missing {
        name: String,
        locale: String,
        file: String,
    },
    #[error("template {file}: {reason}")]
    Invalid { file: String, reason: String },
}

/// Every template of every locale, parsed.
#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Reads `<dir>/<locale>/*.j2` for every locale of [`LOCALES`].
    pub fn load(dir: &Path) -> Result<Self, TemplateError> {
        let mut files = Vec::new();
        for locale in LOCALES {
            let sub = dir.join(locale);
            let entries = std::fs::read_dir(&sub).map_err(|e| TemplateError::Directory {
                dir: sub.display().to_string(),
                reason: e.to_string(),
            })?;
            for entry in entries.flatten() {
                let path = entry.path();
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                if !file.ends_with(".j2") {
                    continue;
                }
                let source =
                    std::fs::read_to_string(&path).map_err(|e| TemplateError::Invalid {
                        file: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                files.push((format!("{locale}/{file}"), source));
            }
        }
        Self::from_sources(files)
    }

    /// Builds the set from `(locale/file.j2, source)` pairs.
    pub fn from_sources(files: Vec<(String, String)>) -> Result<Self, TemplateError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_keep_trailing_newline(false);
        for (name, source) in files {
            env.add_template_owned(name.clone(), source)
                .map_err(|e| TemplateError::Invalid {
                    file: name,
                    reason: e.to_string(),
                })?;
        }
        Ok(Templates { env })
    }

    /// The locale a recipient gets: theirs when it exists, else one of the same language,
    /// else the default.
    pub fn locale_for(wanted: &str) -> &'static str {
        let lang = |l: &str| {
            l.split(['-', '_'])
                .next()
                .unwrap_or("")
                .to_ascii_lowercase()
        };
        LOCALES
            .iter()
            .find(|l| l.eq_ignore_ascii_case(wanted))
            .or_else(|| LOCALES.iter().find(|l| lang(l) == lang(wanted)))
            .copied()
            .unwrap_or(LOCALES[0])
    }

    /// Checks that every template of `names` exists in every locale with its three blocks,
    /// uses only the variables of [`Context`], and renders; and that the layouts do too.
    /// Every problem is listed.
    pub fn check<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), Vec<String>> {
        let names: BTreeSet<&str> = names.into_iter().collect();
        let mut problems = Vec::new();
        for locale in LOCALES {
            for layout in LAYOUTS {
                self.check_variables(
                    &format!("{locale}/{layout}"),
                    &["content", "subject"],
                    &mut problems,
                );
            }
            for name in &names {
                let file = format!("{locale}/{name}.j2");
                if self.check_variables(&file, &[], &mut problems)
                    && let Err(e) = self.render(name, locale, &Context::sample())
                {
                    problems.push(e.to_string());
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// False when the file is missing or invalid (the problem is listed).
    fn check_variables(&self, file: &str, extra: &[&str], problems: &mut Vec<String>) -> bool {
        let Ok(t) = self.env.get_template(file) else {
            problems.push(format!("template {file} is missing"));
            return false;
        };
        let unknown: BTreeSet<String> = t
            .undeclared_variables(true)
            .into_iter()
            .filter(|v| !KNOWN.contains(&v.as_str()) && !extra.contains(&v.as_str()))
            .collect();
        if unknown.is_empty() {
            return true;
        }
        let unknown: Vec<String> = unknown.into_iter().collect();
        problems.push(format!(
            "template {file} uses undefined variables: {} (known: {})",
            unknown.join(", "),
            KNOWN.join(", ")
        ));
        false
    }

    /// Renders template `name` for a recipient of `locale`.
    pub fn render(
        &self,
        name: &str,
        locale: &str,
        ctx: &Context,
    ) -> Result<Rendered, TemplateError> {
        let locale = Self::locale_for(locale);
        let file = format!("{locale}/{name}.j2");
        let invalid = |file: &str, e: minijinja::Error| TemplateError::Invalid {
            file: file.to_owned(),
            reason: format!("{e:#}"),
        };
        let t = self
            .env
            .get_template(&file)
            .map_err(|_| TemplateError::Missing {
                name: name.to_owned(),
                locale: locale.to_owned(),
                file: format!("config/templates/{file}"),
            })?;
        #[allow(deprecated)] // `render_captured` renders the whole template; blocks need the state.
        let mut state = t.eval_to_state(ctx).map_err(|e| invalid(&file, e))?;
        let mut blocks = Vec::with_capacity(BLOCKS.len());
        for block in BLOCKS {
            let text = state.render_block(block).map_err(|e| invalid(&file, e))?;
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Err(TemplateError::Invalid {
                    file,
                    reason: format!("block `{block}` renders empty"),
                });
            }
            blocks.push(text);
        }
        let [subject, body, sms] =
            <[String; 3]>::try_from(blocks).map_err(|_| TemplateError::Invalid {
                file: file.clone(),
                reason: "blocks".to_owned(),
            })?;
        let mut vars = serde_json::to_value(ctx).map_err(|e| TemplateError::Invalid {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        let layout =
            |which: &str, content: &str, vars: &mut Value| -> Result<String, TemplateError> {
                if let Value::Object(map) = vars {
                    map.insert("content".to_owned(), Value::String(content.to_owned()));
                    map.insert("subject".to_owned(), Value::String(subject.clone()));
                }
                let file = format!("{locale}/_layout.{which}.j2");
                let t = self
                    .env
                    .get_template(&file)
                    .map_err(|_| TemplateError::Missing {
                        name: format!("_layout.{which}"),
                        locale: locale.to_owned(),
                        file: format!("config/templates/{file}"),
                    })?;
                t.render(&*vars)
                    .map(|s| s.trim().to_owned())
                    .map_err(|e| invalid(&file, e))
            };
        let text = layout("txt", &body, &mut vars)?;
        let html = layout("html", &body, &mut vars)?;
        let sms = layout("sms", &sms, &mut vars)?;
        Ok(Rendered {
            locale: locale.to_owned(),
            subject,
            text,
            html,
            sms,
        })
    }
}

#[cfg(test)]
mod tests;
