//! The client's address, computed once per request: the connection's peer,
//! or, when the peer is a trusted proxy, the address X-Forwarded-For names
//! ([`crate::policy::traffic::ip::client_address`]).

use super::context::Client;
use crate::snapshot::Snapshot;
use pingora_proxy::Session;

/// Who is calling on `session`, under `snapshot`'s `trusted_proxies`.
pub(super) fn client(session: &Session, snapshot: &Snapshot) -> Client {
    let peer = session.client_addr().and_then(|a| a.as_inet()).map(|a| a.ip());
    // X-Forwarded-For is looked up only when some proxy is trusted, and read
    // only when the peer is one, in place.
    let trusting = !snapshot.trusted_proxies.is_empty();
    let xff = trusting
        .then(|| session.req_header().headers.get_all(&super::headers::X_FORWARDED_FOR))
        .into_iter()
        .flatten()
        .map(|v| v.as_bytes());
    let addr = crate::policy::traffic::ip::client_address(peer, xff, &snapshot.trusted_proxies);
    Client { peer, addr }
}
