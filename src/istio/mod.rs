//! The Istio dialect: `networking.istio.io` Gateway, VirtualService, DestinationRule and
//! ServiceEntry, and `security.istio.io` RequestAuthentication and AuthorizationPolicy
//! specs into the validated model, one document at a time.
//!
//! Each reader walks its spec with [`crate::ingest`]'s field walker and reports every
//! error by resource and field path; a field coalmine does not support is an error,
//! never silently dropped. Destinations come out unresolved: resolving them against
//! the whole set is [`crate::resource_set`]'s. Nothing here talks to Envoy, Kubernetes
//! or the store.

mod authorization_policy;
mod destination_rule;
mod gateway;
mod http_policy;
mod policy_target;
mod request_authentication;
mod server_tls;
mod service_entry;
mod virtual_service;

pub(crate) use authorization_policy::try_authorization_policy;
pub(crate) use destination_rule::try_destination_rule;
pub(crate) use gateway::try_gateway;
pub(crate) use request_authentication::try_request_authentication;
pub(crate) use service_entry::try_service_entry;
pub(crate) use virtual_service::try_virtual_service;
