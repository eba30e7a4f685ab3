//! CSDS (`envoy.service.status.v3.ClientStatusDiscoveryService`): what each proxy was
//! served and where it stands on it, per resource, from the ledger's record of its
//! streams and the view the current snapshot has for it.
//!
//! Pure: [`client_config`] turns one [`ProxyRecord`] (and, for an Envoy, its current
//! view) into a `ClientConfig`; [`matcher`] selects proxies by `node_matchers`;
//! [`service`] is the tonic edge and its access rule. Per resource:
//! - `SYNCED`: the proxy ACKed the set holding this very version;
//! - `STALE`: sent, not answered yet;
//! - `ERROR`: the proxy NACKed the response that carried it (`error_state` has the
//!   rejected version and Envoy's text);
//! - `NOT_SENT`: the current snapshot has it (or a newer version of it) for the proxy,
//!   but it has not gone yet, e.g. held back by make-before-break warming.
//!
//! `xds_config` is the resource as it was served; for `NOT_SENT`, the version waiting
//! to go. `version_info` is the xDS version of the response that carried it (`SYNCED`:
//! the one ACKed), empty for `NOT_SENT`.

pub mod matcher;
pub mod service;

use std::time::SystemTime;

use envoy_types::pb::envoy::admin::v3::{ClientResourceStatus, UpdateFailureState};
use envoy_types::pb::envoy::service::status::v3::client_config::GenericXdsConfig;
use envoy_types::pb::envoy::service::status::v3::{ClientConfig, ConfigStatus};
use envoy_types::pb::google::protobuf::{Any, Timestamp};
use prost::Message;

use crate::ledger::{NackRecord, ProxyRecord, TypeRecord};
use crate::snapshot::{Encoded, ResourceMap, TypeKind, View};

/// One proxy's `ClientConfig`. `view` is what the current snapshot serves it, when it
/// subscribes to everything of it (an Envoy): what it has not been sent of that view is
/// `NOT_SENT`. A client that names what it wants (proxyless gRPC) gets `None`, and only
/// what it was sent is listed.
pub fn client_config(record: &ProxyRecord, view: Option<&View>) -> ClientConfig {
    let mut generic_xds_configs = Vec::new();
    for kind in TypeKind::ALL {
        let wanted = view.map(|v| v.resources(kind));
        let start = generic_xds_configs.len();
        type_configs(kind, record.get(kind), wanted, &mut generic_xds_configs);
        if kind == TypeKind::Secret {
            // Secrets are listed by name, version and status, never with their keys.
            for entry in &mut generic_xds_configs[start..] {
                without_contents(entry);
            }
        }
    }
    ClientConfig {
        node: Some(record.node.to_reported()),
        generic_xds_configs,
        ..Default::default()
    }
}

/// The same answer without resource contents (`exclude_resource_contents`).
pub fn drop_contents(config: &mut ClientConfig) {
    config
        .generic_xds_configs
        .iter_mut()
        .for_each(without_contents);
}

fn without_contents(entry: &mut GenericXdsConfig) {
    entry.xds_config = None;
    if let Some(error) = &mut entry.error_state {
        error.failed_configuration = None;
    }
}

/// The entries of one type, sorted by name: everything the proxy holds or is being
/// sent, then what `wanted` has that it was not sent.
fn type_configs(
    kind: TypeKind,
    t: &TypeRecord,
    wanted: Option<&ResourceMap>,
    out: &mut Vec<GenericXdsConfig>,
) {
    let start = out.len();
    // A NACK stands for what is held only while the rejected set is the one held.
    let nack = t
        .nack
        .as_ref()
        .filter(|n| t.served.as_ref() == Some(&n.version));
    for r in t.resources.iter() {
        let acked = find(&t.acked_resources, &r.name).is_some_and(|a| a.version == r.version);
        let newer = wanted
            .and_then(|w| w.get(&r.name))
            .filter(|w| w.version != r.version);
        let entry = match (newer, acked, nack) {
            (Some(pending), _, _) => not_sent(kind, pending, acked),
            (None, true, _) => served(kind, r, ConfigStatus::Synced, t.acked.as_deref()),
            (None, false, Some(nack)) => rejected(kind, r, nack),
            (None, false, None) => served(kind, r, ConfigStatus::Stale, t.served.as_deref()),
        };
        out.push(entry);
    }
    for (name, pending) in wanted.into_iter().flatten() {
        if find(&t.resources, name).is_none() {
            let held = find(&t.acked_resources, name).is_some();
            out.push(not_sent(kind, pending, held));
        }
    }
    out[start..].sort_by(|a, b| a.name.cmp(&b.name));
}

fn find<'a>(list: &'a [std::sync::Arc<Encoded>], name: &str) -> Option<&'a Encoded> {
    list.binary_search_by(|r| r.name.as_str().cmp(name))
        .ok()
        .map(|i| &*list[i])
}

fn served(
    kind: TypeKind,
    r: &Encoded,
    status: ConfigStatus,
    version: Option<&str>,
) -> GenericXdsConfig {
    let client = match status {
        ConfigStatus::Synced => ClientResourceStatus::Acked,
        _ => ClientResourceStatus::Unknown,
    };
    GenericXdsConfig {
        type_url: kind.type_url().to_string(),
        name: r.name.clone(),
        version_info: version.unwrap_or_default().to_string(),
        xds_config: any_of(r),
        config_status: status as i32,
        client_status: client as i32,
        ..Default::default()
    }
}

fn rejected(kind: TypeKind, r: &Encoded, nack: &NackRecord) -> GenericXdsConfig {
    let at = timestamp(nack.at);
    GenericXdsConfig {
        client_status: ClientResourceStatus::Nacked as i32,
        last_updated: Some(at),
        error_state: Some(UpdateFailureState {
            failed_configuration: any_of(r),
            last_update_attempt: Some(at),
            details: nack.message.clone(),
            version_info: nack.version.clone(),
        }),
        ..served(kind, r, ConfigStatus::Error, Some(&nack.version))
    }
}

/// `held`: the proxy holds an ACKed version of that name.
fn not_sent(kind: TypeKind, pending: &Encoded, held: bool) -> GenericXdsConfig {
    let client = match held {
        true => ClientResourceStatus::Acked,
        false => ClientResourceStatus::Unknown,
    };
    GenericXdsConfig {
        client_status: client as i32,
        ..served(kind, pending, ConfigStatus::NotSent, None)
    }
}

/// The resource's `Any`; none for a placeholder (a resource a Delta client said it
/// holds that coalmine does not know).
fn any_of(r: &Encoded) -> Option<Any> {
    if r.any.is_empty() {
        return None;
    }
    Any::decode(r.any.as_ref()).ok()
}

fn timestamp(at: SystemTime) -> Timestamp {
    let since = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Timestamp {
        seconds: since.as_secs() as i64,
        nanos: since.subsec_nanos() as i32,
    }
}

#[cfg(test)]
mod tests;
