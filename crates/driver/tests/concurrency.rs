//! Concurrent Docker calls: same network/endpoint serialised, different ones in parallel.

mod common;

use std::collections::HashSet;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_containers_in_parallel_get_distinct_addresses_and_clean_up() {
    let t = std::sync::Arc::new(setup());
    let net = id("net-par");
    let pools = t
        .network_create(&net, "10.30.0.0/24", "10.30.0.1", &[])
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..20u8 {
        let (t, net, pool) = (t.clone(), net.clone(), pools.0.clone());
        tasks.push(tokio::spawn(async move {
            let ep = id(&format!("ep-par-{i}"));
            let addr = t.run(&net, &ep, &pool, "", &mac(100 + i)).await.unwrap();
            (ep, addr)
        }));
    }
    let mut started = Vec::new();
    for task in tasks {
        started.push(task.await.unwrap());
    }
    let addrs: HashSet<_> = started.iter().map(|(_, a)| a.clone()).collect();
    assert_eq!(addrs.len(), 20);
    assert_eq!(t.ports_on(&t.network_of(&net).id).len(), 20);
    let mut tasks = Vec::new();
    for (ep, addr) in started {
        let (t, net, pool) = (t.clone(), net.clone(), pools.0.clone());
        tasks.push(tokio::spawn(
            async move { t.rm(&net, &ep, &pool, &addr).await },
        ));
    }
    for task in tasks {
        task.await.unwrap();
    }
    t.network_rm(&net, &[pools]).await;
    assert!(t.neutron.is_empty());
    assert!(t.binding.bound_ports().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn duplicate_create_network_calls_make_one_network() {
    let t = std::sync::Arc::new(setup());
    let net = id("net-dup");
    let r = t
        .driver
        .request_pool(&pool_req("10.31.0.0/24", "", false, &[]))
        .await
        .unwrap();
    let req = net_req(&net, &[("10.31.0.0/24", "10.31.0.1/24")], &[]);
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let (t, req) = (t.clone(), req.clone());
        tasks.push(tokio::spawn(
            async move { t.driver.create_network(&req).await },
        ));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(t.neutron.networks().len(), 1);
    assert_eq!(t.neutron.subnets().len(), 1);
    t.network_rm(
        &net,
        &[(
            r.pool_id.to_string(),
            r.pool.to_string(),
            "10.31.0.1/24".into(),
        )],
    )
    .await;
    assert!(t.neutron.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pool_requests_for_one_cidr_make_one_pool() {
    let t = std::sync::Arc::new(setup());
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            t.driver
                .request_pool(&pool_req("10.32.0.0/24", "", false, &[]))
                .await
                .unwrap()
                .pool_id
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(t.neutron.subnetpools().len(), 1);
}
