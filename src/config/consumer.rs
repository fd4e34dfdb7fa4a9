//! The `consumers:` part of the YAML schema: who calls the gateway and with
//! which credentials. Compiled into lookup tables by
//! [`crate::policy::auth::consumer`].

use super::SecretRef;
use serde::Deserialize;
use std::collections::BTreeMap;

/// A client of the gateway: a person, team or program with credentials.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
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
    pub subjects: Vec<String>,
}

/// An API key: its SHA-256 (hex), or the key itself from an environment
/// variable or a file. Keys are never written in the config in the clear.
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
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
}
