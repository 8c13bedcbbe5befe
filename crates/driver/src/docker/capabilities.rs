//! NetworkDriver.GetCapabilities, IpamDriver.GetCapabilities and GetDefaultAddressSpaces:
//! static answers from the configuration.

use kuryr_plugin_api::ipam::{AddressSpacesResponse, IpamCapabilitiesResponse};
use kuryr_plugin_api::network::{CapabilitiesResponse, Scope};

use super::KuryrDriver;

impl KuryrDriver {
    pub fn network_capabilities(&self) -> CapabilitiesResponse {
        // The config crate accepts only `local` and `global`.
        let scope = if self.cfg.capability_scope == "global" {
            Scope::Global
        } else {
            Scope::Local
        };
        CapabilitiesResponse {
            scope,
            connectivity_scope: Some(scope),
            gw_alloc_checker: false,
        }
    }

    pub fn ipam_capabilities(&self) -> IpamCapabilitiesResponse {
        IpamCapabilitiesResponse {
            // Neutron chooses MACs as it chooses addresses: a port taken from a pool already
            // has one. A user's --mac-address still reaches CreateEndpoint.
            requires_mac_address: false,
            // Everything is in Neutron: nothing to replay.
            requires_request_replay: false,
        }
    }

    pub fn default_address_spaces(&self) -> AddressSpacesResponse {
        AddressSpacesResponse {
            local_default_address_space: self.cfg.local_default_address_space.clone(),
            global_default_address_space: self.cfg.global_default_address_space.clone(),
        }
    }
}
