//! Secrets through the admin API ([`crate::store::secrets`]): a write's
//! secrets in the clear are sealed before it is compiled or stored, and a
//! redacted one sent back keeps the stored secret it names; everything
//! read is shown with its secrets redacted (fingerprints only).

use super::Problem;
use crate::config::sealed;
use crate::store::{secrets, Resource};
use serde_json::Value;

/// Seals the secrets of a write of `body` to `kind`/`name`, with the
/// resource as stored now among `all`; the problems (422) when one cannot
/// be stored (a clear one, when the process has no secrets key).
pub(super) fn seal(kind: &str, name: &str, body: &mut Value, all: &[Resource]) -> Result<(), Vec<Problem>> {
    let key = sealed::installed();
    let stored = all.iter().find(|r| r.kind == kind && r.name == name).map(|r| &r.body);
    secrets::seal_resource(kind, body, stored, key).map_err(|problems| {
        problems
            .into_iter()
            .map(|(path, message)| Problem { path, message })
            .collect()
    })
}

/// A resource's body as the API shows it.
pub(super) fn shown(kind: &str, mut body: Value) -> Value {
    secrets::redact_resource(kind, &mut body);
    body
}

/// A whole document as the API shows it.
pub(super) fn shown_document(mut doc: Value) -> Value {
    secrets::redact_document(&mut doc);
    doc
}
