//! The credentials the API accepts and what each may do. Built by the CLI from configuration.

use serde::Deserialize;

/// The signature tolerance of the product spec (±5 minutes).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

#[derive(Clone)]
pub struct AuthConfig {
    pub integrations: Vec<Integration>,
    /// Named operators: the audit records which one acted.
    pub operators: Vec<Operator>,
    /// How far a signature's timestamp may lie from now, in seconds, either way.
    pub tolerance_secs: i64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            integrations: Vec::new(),
            operators: Vec::new(),
            tolerance_secs: DEFAULT_TOLERANCE_SECS,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("integrations", &self.integrations)
            .field("operators", &self.operators)
            .field("tolerance_secs", &self.tolerance_secs)
            .finish()
    }
}

/// A person at the vendor who calls the API with a bearer token. Their id is the actor of what
/// they do, so it should be their directory id when they also decide tasks.
#[derive(Clone)]
pub struct Operator {
    pub id: String,
    pub token: String,
}

impl std::fmt::Debug for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Operator")
            .field("id", &self.id)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// What an integration may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Read {
    /// Instance views and listings.
    Instances,
    /// Task listings.
    Tasks,
    /// Evidence bundles.
    Evidence,
    /// A partner's ledger accounts.
    Ledger,
    /// Rebate statements and their explanations.
    Statements,
}

impl Read {
    pub fn label(self) -> &'static str {
        match self {
            Read::Instances => "instances",
            Read::Tasks => "tasks",
            Read::Evidence => "evidence",
            Read::Ledger => "the ledger",
            Read::Statements => "statements",
        }
    }
}

/// A system that calls back (a review portal, an e-signature provider, a bank feed, a partner's
/// own system). Everything it may do is listed; anything else is refused.
#[derive(Clone)]
pub struct Integration {
    pub id: String,
    /// Several during a rotation: any of them may sign.
    pub secrets: Vec<String>,
    /// The task roles it may decide for.
    pub roles: Vec<String>,
    /// The external events it may post.
    pub events: Vec<String>,
    /// The workflows it may start.
    pub workflows: Vec<String>,
    /// What it may read.
    pub reads: Vec<Read>,
    /// What it may import (`transactions`).
    pub imports: Vec<String>,
    /// Set for a partner-side integration: the one partner whose instances it sees and acts on.
    pub partner: Option<String>,
}

impl std::fmt::Debug for Integration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Integration")
            .field("id", &self.id)
            .field(
                "secrets",
                &format_args!("[{} redacted]", self.secrets.len()),
            )
            .field("roles", &self.roles)
            .field("events", &self.events)
            .field("workflows", &self.workflows)
            .field("reads", &self.reads)
            .field("partner", &self.partner)
            .finish()
    }
}
