//! Properties of the wire layer: decoding never panics and fails only with the two decode error
//! kinds; IDs and MACs round-trip through their text forms.

use kuryr_plugin_api::ipam::{
    ReleaseAddressRequest, ReleasePoolRequest, RequestAddressRequest, RequestPoolRequest,
};
use kuryr_plugin_api::network::{
    AllocateNetworkRequest, CreateEndpointRequest, CreateNetworkRequest, DiscoveryNotification,
    EndpointRequest, GwAllocCheckRequest, JoinRequest, NetworkRequest,
    ProgramExternalConnectivityRequest,
};
use kuryr_plugin_api::{decode_request, DockerId, ErrorKind, MacAddr, PluginRequest};
use proptest::prelude::*;

fn decode_kind<T: PluginRequest>(body: &[u8]) -> Option<ErrorKind> {
    decode_request::<T>(body).err().map(|e| {
        assert!(!e.message().is_empty());
        e.kind()
    })
}

fn all_kinds(body: &[u8]) -> Vec<Option<ErrorKind>> {
    vec![
        decode_kind::<CreateNetworkRequest>(body),
        decode_kind::<NetworkRequest>(body),
        decode_kind::<AllocateNetworkRequest>(body),
        decode_kind::<CreateEndpointRequest>(body),
        decode_kind::<EndpointRequest>(body),
        decode_kind::<JoinRequest>(body),
        decode_kind::<ProgramExternalConnectivityRequest>(body),
        decode_kind::<DiscoveryNotification>(body),
        decode_kind::<GwAllocCheckRequest>(body),
        decode_kind::<RequestPoolRequest>(body),
        decode_kind::<ReleasePoolRequest>(body),
        decode_kind::<RequestAddressRequest>(body),
        decode_kind::<ReleaseAddressRequest>(body),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..300)) {
        for kind in all_kinds(&body).into_iter().flatten() {
            prop_assert!(matches!(kind, ErrorKind::Malformed | ErrorKind::BadRequest), "{kind:?}");
        }
    }

    #[test]
    fn object_like_text_fails_cleanly(body in r#"\{("[A-Za-z0-9.]{0,12}": ?("[^"\\]{0,20}"|[0-9]{1,5}|null|true|\[\]|\{\}),? ?){0,6}\}"#) {
        for kind in all_kinds(body.as_bytes()).into_iter().flatten() {
            prop_assert!(matches!(kind, ErrorKind::Malformed | ErrorKind::BadRequest), "{kind:?}");
        }
    }

    #[test]
    fn docker_ids_round_trip(id in "[0-9a-zA-Z]{1,128}") {
        let parsed: DockerId = id.parse().unwrap();
        prop_assert_eq!(parsed.as_str(), id.as_str());
        let json = serde_json::to_string(&parsed).unwrap();
        prop_assert_eq!(serde_json::from_str::<DockerId>(&json).unwrap(), parsed);
    }

    #[test]
    fn ids_with_other_characters_are_rejected(id in "[0-9a-f]{0,20}[^0-9a-zA-Z][0-9a-f]{0,20}") {
        prop_assert!(id.parse::<DockerId>().is_err());
    }

    #[test]
    fn macs_round_trip(octets in any::<[u8; 6]>()) {
        let mac = MacAddr::new(octets);
        let text = mac.to_string();
        prop_assert_eq!(text.len(), 17);
        prop_assert_eq!(text.parse::<MacAddr>().unwrap(), mac);
        prop_assert_eq!(text.to_uppercase().parse::<MacAddr>().unwrap(), mac);
    }
}
