//! The Kubernetes manifest operators apply (packaging/kubernetes/kuryr-cni.yaml), read as
//! Kubernetes and the daemon would read it: its kuryr.conf serves CNI on the socket its conflist
//! names, its conflist is one kuryr-cni accepts, and the DaemonSet mounts what the daemon and
//! the init container use.

use kuryr_config::KuryrConfig;
use serde::Deserialize;
use serde_yaml::Value;

fn documents() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../packaging/kubernetes/kuryr-cni.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| Value::deserialize(d).expect("valid YAML"))
        .collect()
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no {kind} in the manifest"))
}

fn strs(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn mount_path<'a>(container: &'a Value, volume: &str) -> &'a str {
    container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some(volume))
        .and_then(|m| m["mountPath"].as_str())
        .unwrap_or_else(|| panic!("no mount of {volume}"))
}

#[test]
fn config_map_configures_a_cni_daemon_and_a_conflist_for_it() {
    let docs = documents();
    let cm = of_kind(&docs, "ConfigMap");
    let conf = KuryrConfig::parse(cm["data"]["kuryr.conf"].as_str().unwrap()).unwrap();
    assert!(conf.cni_daemon.enabled);
    let conflist: serde_json::Value =
        serde_json::from_str(cm["data"]["10-kuryr.conflist"].as_str().unwrap()).unwrap();
    let plugins = conflist["plugins"].as_array().unwrap();
    let first: kuryr_cni::NetConf = serde_json::from_value(plugins[0].clone()).unwrap();
    assert_eq!(first.plugin_type, "kuryr-cni");
    assert_eq!(
        first.daemon_socket.as_deref().map(std::path::PathBuf::from),
        Some(conf.cni_daemon.socket_path.clone()),
        "kuryr-cni must find the daemon where it listens"
    );
    assert!(first.neutron_network.is_some());
    assert_eq!(
        conflist["cniVersion"], "1.0.0",
        "containerd 1.6 reads results up to 1.0.0"
    );
    let types: Vec<&str> = plugins.iter().filter_map(|p| p["type"].as_str()).collect();
    assert_eq!(types, ["kuryr-cni", "portmap", "bandwidth"]);
}

#[test]
fn daemonset_mounts_what_the_daemon_and_the_installer_use() {
    let docs = documents();
    let cm = of_kind(&docs, "ConfigMap");
    let conf = KuryrConfig::parse(cm["data"]["kuryr.conf"].as_str().unwrap()).unwrap();
    let ds = of_kind(&docs, "DaemonSet");
    let pod = &ds["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"].as_bool(), Some(true));
    assert_eq!(
        ds["spec"]["selector"]["matchLabels"],
        ds["spec"]["template"]["metadata"]["labels"]
    );

    let init = &pod["initContainers"][0];
    let cmd = strs(&init["command"]);
    assert_eq!(cmd[..2], ["/usr/bin/kuryr-cni", "install"]);
    assert_eq!(cmd[2], mount_path(init, "cni-bin"));
    assert_eq!(cmd[4], mount_path(init, "cni-conf"));
    assert!(cmd[3].starts_with(mount_path(init, "config")));

    let server = &pod["containers"][0];
    let caps = strs(&server["securityContext"]["capabilities"]["add"]);
    for c in ["NET_ADMIN", "SYS_ADMIN"] {
        assert!(caps.contains(&c.to_string()), "{c} missing");
    }
    let socket_dir = conf.cni_daemon.socket_path.parent().unwrap();
    assert_eq!(
        mount_path(server, "kuryr-run"),
        socket_dir.to_str().unwrap()
    );
    assert_eq!(mount_path(server, "openvswitch"), "/var/run/openvswitch");
    let netns = server["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"].as_str() == Some("netns"))
        .unwrap();
    assert_eq!(netns["mountPropagation"].as_str(), Some("HostToContainer"));
    let host_env = server["env"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("OS_DEFAULT__HOST"))
        .expect("the node name as binding:host_id");
    assert_eq!(
        host_env["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("spec.nodeName")
    );
    // Every mount names a volume of the pod.
    let volumes: Vec<&str> = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for c in [init, server] {
        for m in c["volumeMounts"].as_sequence().unwrap() {
            let n = m["name"].as_str().unwrap();
            assert!(volumes.contains(&n), "mount of unknown volume {n}");
        }
    }
}
