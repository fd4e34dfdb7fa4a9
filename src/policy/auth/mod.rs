//! Who is calling: the consumer table and the steps that identify a caller
//! (`key_auth`, `basic_auth`, `jwt`, `oauth2_introspection`) or check what
//! an identified caller may do (`acl`, and a service's `subscription` gate).

pub(crate) mod acl;
pub(crate) mod basic;
pub(crate) mod consumer;
pub(crate) mod introspection;
pub(crate) mod jwt;
pub(crate) mod key;
pub(crate) mod subscription;
pub(crate) mod token;
