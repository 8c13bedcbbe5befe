//! The one BPF question the binding asks: are programs attached to a link through tcx? Such
//! programs (like XDP ones) stay on a link when it changes network namespace, so a link a
//! container had may only be handed to the next one when it has none.

use crate::error::BindingError;

const BPF_PROG_QUERY: libc::c_int = 16;
const BPF_TCX_INGRESS: u32 = 46;
const BPF_TCX_EGRESS: u32 = 47;

/// `union bpf_attr`'s part for BPF_PROG_QUERY (linux/bpf.h), 64 bytes.
#[repr(C)]
#[derive(Default)]
struct ProgQuery {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// Programs attached through tcx (ingress and egress) to the link with index `ifindex`. A
/// kernel without tcx (before 6.6) answers EINVAL: it can have none.
pub(crate) fn tcx_programs(ifindex: u32, link: &str) -> Result<u32, BindingError> {
    let mut total = 0;
    for attach_type in [BPF_TCX_INGRESS, BPF_TCX_EGRESS] {
        let mut q = ProgQuery {
            target_ifindex: ifindex,
            attach_type,
            ..Default::default()
        };
        // SAFETY: `q` is a valid, writable bpf_attr prefix of the size passed; with `prog_ids`
        // null the kernel only writes the count fields inside it.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_PROG_QUERY,
                &mut q as *mut ProgQuery,
                std::mem::size_of::<ProgQuery>(),
            )
        };
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::EINVAL) {
                return Ok(0);
            }
            return Err(BindingError::Link {
                link: link.to_string(),
                op: "query bpf programs",
                message: err.to_string(),
            });
        }
        total += q.prog_cnt;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_layout_is_the_kernels() {
        assert_eq!(std::mem::size_of::<ProgQuery>(), 64);
        assert_eq!(std::mem::offset_of!(ProgQuery, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(ProgQuery, revision), 56);
    }

    fn bpf(cmd: libc::c_int, attr: &mut [u8]) -> i64 {
        // SAFETY: `attr` is a zeroed bpf_attr buffer of the length passed.
        unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), attr.len()) }
    }

    fn put32(b: &mut [u8], at: usize, v: u32) {
        b[at..at + 4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A tcx program attached to a link is counted (and the attach type numbers are the
    /// kernel's): in a private namespace, on its loopback.
    #[test]
    fn counts_a_tcx_program() {
        if unsafe { libc::geteuid() } != 0 {
            eprintln!("SKIP counts_a_tcx_program: needs root");
            return;
        }
        // A plain thread: the namespace change stays on it.
        std::thread::spawn(|| {
            nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
            assert_eq!(tcx_programs(1, "lo").unwrap(), 0);
            // r0 = 0; exit
            let insns: [u8; 16] = [0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0];
            let license = b"GPL\0";
            let mut load = [0u8; 128];
            put32(&mut load, 0, 3); // BPF_PROG_TYPE_SCHED_CLS
            put32(&mut load, 4, 2);
            load[8..16].copy_from_slice(&(insns.as_ptr() as u64).to_ne_bytes());
            load[16..24].copy_from_slice(&(license.as_ptr() as u64).to_ne_bytes());
            let fd = bpf(5, &mut load); // BPF_PROG_LOAD
            assert!(fd >= 0, "load: {}", std::io::Error::last_os_error());
            let mut attach = [0u8; 32];
            put32(&mut attach, 0, 1); // lo
            put32(&mut attach, 4, fd as u32);
            put32(&mut attach, 8, BPF_TCX_INGRESS);
            let rc = bpf(8, &mut attach); // BPF_PROG_ATTACH
            assert_eq!(rc, 0, "attach: {}", std::io::Error::last_os_error());
            assert_eq!(tcx_programs(1, "lo").unwrap(), 1);
        })
        .join()
        .unwrap();
    }
}
