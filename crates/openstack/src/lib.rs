//! kuryr-openstack: Keystone v3 authentication, the service catalog and a typed Neutron client.
//!
//! Code that talks to Neutron is written against [`neutron::NeutronApi`]; the daemon uses
//! [`neutron::HttpNeutron`], tests use `neutron::FakeNeutron` (feature `fake`).
//!
//! # Where credentials come from
//!
//! [`client_from_options`] (through [`auth::ClientSettings::resolve`]) takes, in this order:
//! 1. the given [`auth::KeystoneOptions`] (kuryr.conf `[neutron]`, as `kuryr-config` parses it)
//!    when they set `auth_type`, `auth_url` or `endpoint`;
//! 2. else `OS_CLOUD` and its entry in `clouds.yaml` (`OS_CLIENT_CONFIG_FILE`, `./clouds.yaml`,
//!    `~/.config/openstack/clouds.yaml`, `/etc/openstack/clouds.yaml`; `secure.yaml` merged in);
//! 3. else the `OS_*` environment variables (`OS_AUTH_URL`, `OS_USERNAME`, `OS_PASSWORD`,
//!    `OS_APPLICATION_CREDENTIAL_ID`, ...).
//!
//! Secrets are held as `secrecy::SecretString` and never appear in `Debug` output, logs or
//! errors.

pub mod auth;
pub mod neutron;

use std::sync::Arc;

pub use neutron::{NeutronApi, NeutronError};

/// A ready Neutron client for `options` (kuryr.conf's `[neutron]`), falling back to `OS_CLOUD`
/// and the `OS_*` variables as [`auth::ClientSettings::resolve`] does.
pub fn client_from_options(
    options: &auth::KeystoneOptions,
) -> Result<Arc<neutron::HttpNeutron>, NeutronError> {
    client_with_observer(options, None)
}

/// [`client_from_options`], telling `observer` (when given) of every HTTP attempt to Neutron.
pub fn client_with_observer(
    options: &auth::KeystoneOptions,
    observer: Option<Arc<dyn neutron::RequestObserver>>,
) -> Result<Arc<neutron::HttpNeutron>, NeutronError> {
    let settings = auth::ClientSettings::resolve(options)?;
    tracing::info!(source = %settings.source, auth_type = settings.auth.kind(), "neutron credentials");
    let client = neutron::HttpNeutron::new(&settings)?;
    Ok(Arc::new(match observer {
        Some(o) => client.with_observer(o),
        None => client,
    }))
}
