// TEMPORARY placeholder until the real module lands.
use crate::config::SecretRef;
use serde::Deserialize;
use std::path::Path;
#[derive(Debug, Deserialize, Clone, PartialEq)]
pub struct IntrospectionConfig {
    pub endpoint: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub consumer_claim: String,
    pub header: String,
    #[serde(default)]
    pub hide_credentials: bool,
    #[serde(default)]
    pub optional: bool,
    #[serde(default)]
    pub require_consumer: bool,
}
pub struct Introspector;
#[derive(Debug, thiserror::Error)]
pub enum IntrospectError {
    #[error("x")]
    TooLarge,
    #[error("x")]
    Inactive,
    #[error("x")]
    Unavailable(String),
}
impl Introspector {
    pub fn new(_c: &IntrospectionConfig, _b: &Path) -> Result<Introspector, String> {
        Err("todo".into())
    }
    pub fn extract<'a>(&self, _h: Option<&'a [u8]>) -> Result<Option<&'a str>, IntrospectError> {
        Ok(None)
    }
    pub async fn introspect(&self, _t: &str) -> Result<serde_json::Map<String, serde_json::Value>, IntrospectError> {
        Err(IntrospectError::Inactive)
    }
    pub fn consumer_of<'c>(&self, _c: &'c serde_json::Map<String, serde_json::Value>) -> Option<&'c str> {
        None
    }
}
