//! Filter chains of one listener port: one per TLS setting of its servers, each for
//! the host names it serves (SNI), sorted. Builds no protobuf.

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{Server, ServerTls};

/// One filter chain: TLS clients that ask for one of `server_names` (SNI) get its
/// certificate; empty names is the chain for every other client.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct ChainPlan<'a> {
    pub server_names: Vec<String>,
    pub tls: Option<&'a ServerTls>,
}

/// The chains of one port's servers: one per TLS setting with the union of their hosts
/// (no names when one of them is `*`), sorted so that output is deterministic. A port
/// with one TLS setting has one chain without names: clients that send no SNI (or
/// another name) still get its certificate.
pub(super) fn to_chains<'a>(servers: &[&'a Server]) -> Vec<ChainPlan<'a>> {
    let mut by_tls: BTreeMap<Option<&'a ServerTls>, BTreeSet<String>> = BTreeMap::new();
    for server in servers {
        let names = by_tls.entry(server.tls.as_ref()).or_default();
        names.extend(server.hosts.iter().map(|h| h.to_ascii_lowercase()));
    }
    let single = by_tls.len() == 1;
    let mut chains: Vec<ChainPlan<'a>> = by_tls
        .into_iter()
        .map(|(tls, names)| ChainPlan {
            server_names: match single || names.contains("*") || tls.is_none() {
                true => Vec::new(),
                false => names.into_iter().collect(),
            },
            tls,
        })
        .collect();
    chains.sort();
    chains
}
