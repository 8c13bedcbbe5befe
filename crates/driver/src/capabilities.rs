//! Static answers: capabilities and default address spaces (from configuration).

use crate::driver::KuryrDriver;

impl KuryrDriver {
    /// NetworkDriver scope (`local` or `global`).
    pub fn scope(&self) -> &str {
        &self.cfg.capability_scope
    }

    /// `(local, global)` default address spaces.
    pub fn default_address_spaces(&self) -> (&str, &str) {
        (
            &self.cfg.local_default_address_space,
            &self.cfg.global_default_address_space,
        )
    }
}
