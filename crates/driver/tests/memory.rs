//! What the driver keeps per container lifecycle: after a warm-up, many more `docker run` /
//! `docker rm` cycles on a pooled network must not leave the heap bigger by more than the few
//! bounded caches allow. A counting allocator measures the live heap of this test binary.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::*;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static A: Counting = Counting;

#[tokio::test]
async fn lifecycles_leave_nothing_on_the_heap() {
    let t = setup();
    let net = id("mem-net");
    let (pool_id, _, _) = t
        .network_create(&net, "10.44.0.0/22", "", &[])
        .await
        .unwrap();
    let cycle = |i: usize| {
        let (t, net, pool_id) = (&t, &net, &pool_id);
        async move {
            let ep = id(&format!("mem-ep-{i}"));
            let addr = t.run(net, &ep, pool_id, "", "").await.unwrap();
            t.rm(net, &ep, pool_id, &addr).await;
        }
    };
    for i in 0..300 {
        cycle(i).await;
    }
    t.neutron.reset_calls();
    t.binding.reset_calls();
    let before = LIVE.load(Ordering::Relaxed);
    for i in 300..1300 {
        cycle(i).await;
    }
    t.neutron.reset_calls();
    t.binding.reset_calls();
    let after = LIVE.load(Ordering::Relaxed);
    let per = (after - before) / 1000;
    eprintln!("live heap {before} -> {after}: {per} bytes per lifecycle");
    assert!(per < 512, "{per} bytes kept per lifecycle");
}
