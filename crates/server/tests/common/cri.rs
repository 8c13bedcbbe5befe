//! containerd's CRI, as the kubelet calls it: the client over its unix socket and a pod
//! sandbox's configuration. Shared by the `driver_cri` test and the benchmark's `cri_pods`.

#![allow(dead_code)]

use std::collections::HashMap;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    LinuxPodSandboxConfig, LinuxSandboxSecurityContext, NamespaceMode, NamespaceOption,
    PodSandboxConfig, PodSandboxMetadata, PortMapping,
};
use tonic::transport::{Channel, Endpoint, Uri};

pub type CriClient = RuntimeServiceClient<Channel>;

/// A CRI client on containerd's unix socket.
pub async fn connect(path: String) -> CriClient {
    let ch = Endpoint::try_from("http://[::]:50051")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .expect("connect to containerd's CRI socket");
    RuntimeServiceClient::new(ch)
}

/// A pod sandbox with its own network namespace, in Kubernetes namespace `namespace`.
pub fn sandbox_config(
    name: &str,
    namespace: &str,
    annotations: &[(&str, &str)],
    port_mappings: Vec<PortMapping>,
) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.to_string(),
            uid: format!("uid-{name}"),
            namespace: namespace.to_string(),
            attempt: 0,
        }),
        hostname: name.to_string(),
        port_mappings,
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Pod as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}
