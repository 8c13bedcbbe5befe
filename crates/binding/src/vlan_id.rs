//! VLAN ID choice for trunk subports. Pure: the caller passes the IDs already in use, read
//! from the trunk's own `trunk_details`, so nothing is lost on restart.

use std::collections::BTreeSet;

use crate::constants::{MAX_VLAN_ID, MIN_VLAN_ID};
use crate::error::BindingError;

/// The lowest VLAN ID in `MIN_VLAN_ID..=MAX_VLAN_ID` not in `in_use`. Deterministic (unlike
/// kuryr-lib's random choice) so two retries after a Neutron conflict pick predictably.
pub fn pick_free_vlan_id<I>(in_use: I) -> Result<u16, BindingError>
where
    I: IntoIterator<Item = u16>,
{
    let used: BTreeSet<u16> = in_use.into_iter().collect();
    (MIN_VLAN_ID..=MAX_VLAN_ID)
        .find(|id| !used.contains(id))
        .ok_or(BindingError::NoFreeVlanId {
            min: MIN_VLAN_ID,
            max: MAX_VLAN_ID,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_lowest_free() {
        assert_eq!(pick_free_vlan_id([]).unwrap(), 1);
        assert_eq!(pick_free_vlan_id([1, 2, 4]).unwrap(), 3);
        // IDs outside the range are ignored.
        assert_eq!(pick_free_vlan_id([0, 4095, 1]).unwrap(), 2);
    }

    #[test]
    fn exhausted() {
        let all = MIN_VLAN_ID..=MAX_VLAN_ID;
        assert!(matches!(
            pick_free_vlan_id(all),
            Err(BindingError::NoFreeVlanId { .. })
        ));
        let all_but_last = MIN_VLAN_ID..MAX_VLAN_ID;
        assert_eq!(pick_free_vlan_id(all_but_last).unwrap(), MAX_VLAN_ID);
    }
}
