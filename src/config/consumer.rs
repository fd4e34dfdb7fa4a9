//! The `consumers:` part of the YAML schema: who calls the gateway and with
//! which credentials. Compiled into lookup tables by
//! [`crate::policy::auth::consumer`].
//!
//! A consumer with a `team` is what the management plane calls an
//! application: owned by that team, subscribing to services. Every
//! credential may carry an `id` (to revoke it by) and an `expires_at`
//! (RFC 3339); an expired one is refused with 401 `credential_expired`.

use super::SecretRef;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A client of the gateway: a person, team or program with credentials.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    /// The team that owns it: an application of that team.
    pub team: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Groups for `acl` policies.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Free-form labels, passed to nothing but the admin views and logs.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    #[serde(default)]
    pub credentials: CredentialsConfig,
}

#[derive(Debug, Deserialize, Clone, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct CredentialsConfig {
    /// API keys of this consumer.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// A Basic-auth login.
    pub basic: Option<BasicCredentialConfig>,
    /// Values of a JWT's or introspected token's consumer claim that mean this
    /// consumer; the consumer's name always matches too.
    #[serde(default)]
    pub subjects: Vec<SubjectConfig>,
}

/// A token subject: the value alone, or with an id and an expiry.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(untagged)]
pub enum SubjectConfig {
    Plain(String),
    Full {
        subject: String,
        id: Option<String>,
        expires_at: Option<String>,
    },
}

impl SubjectConfig {
    pub fn subject(&self) -> &str {
        match self {
            SubjectConfig::Plain(s) | SubjectConfig::Full { subject: s, .. } => s,
        }
    }

    /// The name it is revoked by, if given.
    pub fn id(&self) -> Option<&str> {
        match self {
            SubjectConfig::Plain(_) => None,
            SubjectConfig::Full { id, .. } => id.as_deref(),
        }
    }

    pub fn expires_at(&self) -> Option<&str> {
        match self {
            SubjectConfig::Plain(_) => None,
            SubjectConfig::Full { expires_at, .. } => expires_at.as_deref(),
        }
    }
}

/// An API key: its SHA-256 (hex), or the key itself from an environment
/// variable or a file. Keys are never written in the config in the clear.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// A name to revoke it by.
    pub id: Option<String>,
    /// When it stops working (RFC 3339).
    pub expires_at: Option<String>,
    /// When it was made (RFC 3339), for the admin views.
    pub created_at: Option<String>,
    pub sha256: Option<String>,
    pub env: Option<String>,
    pub file: Option<std::path::PathBuf>,
}

impl ApiKeyConfig {
    pub fn secret_ref(&self) -> SecretRef {
        SecretRef {
            env: self.env.clone(),
            file: self.file.clone(),
        }
    }
}

#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredentialConfig {
    /// Default: the consumer's name.
    pub username: Option<String>,
    /// A bcrypt (`$2b$...`) or argon2 (`$argon2id$...`) hash.
    pub password_hash: String,
    /// When it stops working (RFC 3339).
    pub expires_at: Option<String>,
}
