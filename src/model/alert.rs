//! Flagger's alerts: a Rollout's `analysis.alerts[]` and the `AlertProvider`s they name.
//! Plain data; reading is in [`crate::rollout_kind`], sending in [`crate::controller`].

/// Which release events an alert receives (Flagger's `severity`): `info` every event,
/// `warn` warnings and errors, `error` only failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn from_name(name: &str) -> Option<Severity> {
        match name {
            "info" => Some(Severity::Info),
            "warn" => Some(Severity::Warn),
            "error" => Some(Severity::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// One of `analysis.alerts[]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub name: String,
    /// The least severe event it receives.
    pub severity: Severity,
    /// The AlertProvider, `namespace/name` (the Rollout's namespace by default).
    pub provider: String,
}

/// The payload an AlertProvider posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderType {
    /// Slack's incoming webhook (also Rocket.Chat's, which takes Slack's payload).
    Slack,
    Rocket,
    /// Discord's Slack-compatible endpoint (`<address>/slack`).
    Discord,
    /// A Microsoft Teams `MessageCard`.
    MsTeams,
    /// coalmine's addition: Flagger's event-webhook JSON (`name`, `namespace`, `phase`,
    /// `metadata`), for any receiver.
    Generic,
}

impl ProviderType {
    pub const NAMES: &'static str = "slack, msteams, discord, rocket or generic";

    pub fn from_name(name: &str) -> Option<ProviderType> {
        match name {
            "slack" => Some(ProviderType::Slack),
            "rocket" => Some(ProviderType::Rocket),
            "discord" => Some(ProviderType::Discord),
            "msteams" => Some(ProviderType::MsTeams),
            "generic" => Some(ProviderType::Generic),
            _ => None,
        }
    }
}

/// Flagger's `AlertProvider` (`flagger.app/v1beta1`).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertProvider {
    pub key: super::ResourceKey,
    pub kind: ProviderType,
    pub channel: Option<String>,
    pub username: Option<String>,
    /// The webhook URL: `spec.address`, or the `address` key of the `secretRef` Secret,
    /// which wins (resolved when the set is checked).
    pub address: String,
    /// An HTTP(S) proxy to post through.
    pub proxy: Option<String>,
    /// `namespace/name` of the Secret holding `address`, when there is one.
    pub secret: Option<String>,
}
