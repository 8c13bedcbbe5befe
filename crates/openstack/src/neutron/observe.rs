//! A hook on every HTTP attempt [`super::HttpNeutron`] makes, for metrics. The crate only defines
//! it: whoever installs an observer (the daemon's Prometheus endpoint) decides what to record.

use std::time::Duration;

/// How one HTTP attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    /// Neutron answered with this HTTP status (an error status included).
    Status(u16),
    /// No answer in time.
    Timeout,
    /// No answer at all: connection refused or reset, TLS failure, ...
    Transport,
}

impl RequestOutcome {
    /// The status code, or `timeout` / `transport`: a metric label.
    pub fn label(self) -> String {
        match self {
            RequestOutcome::Status(s) => s.to_string(),
            RequestOutcome::Timeout => "timeout".into(),
            RequestOutcome::Transport => "transport".into(),
        }
    }
}

/// Told of every HTTP attempt to Neutron (each retry and re-authentication is one attempt).
/// Called on the request's task: keep it quick and never block.
pub trait RequestObserver: Send + Sync {
    /// `path` is the URL path with its query string (`/v2.0/ports/<id>?fields=id`); use
    /// [`request_resource`] for a label that carries no ids. `elapsed` runs until the response
    /// headers arrived (or the attempt failed).
    fn observe(&self, method: &str, path: &str, outcome: RequestOutcome, elapsed: Duration);
}

/// The resource a Neutron request path is about, with no ids and no query: the collection after
/// `v2.0` (`networks`, `ports`, `security-group-rules`, `extensions`, ...), or `tags` for the tag
/// sub-resource of any collection (`/v2.0/ports/<id>/tags/<tag>`). Trunk actions
/// (`/v2.0/trunks/<id>/add_subports`) count as `trunks`. `unknown` for a path with no segment.
pub fn request_resource(path: &str) -> &str {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // An endpoint may carry a prefix (`/networking/v2.0/...`): start after the version.
    let rest = match segments.iter().position(|s| *s == "v2.0") {
        Some(i) => &segments[i + 1..],
        None => &segments[..],
    };
    match rest {
        [] => "unknown",
        [_, _, "tags", ..] => "tags",
        [collection, ..] => collection,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_carry_no_ids_or_queries() {
        let id = "3f0c0b6e-6f3a-4b8e-9a43-0c4d5e6f7a8b";
        for (path, want) in [
            ("/v2.0/networks", "networks"),
            (
                "/v2.0/networks?tags=kuryr.net.uuid.uh%3Aabc&fields=id",
                "networks",
            ),
            (&format!("/v2.0/ports/{id}"), "ports"),
            (&format!("/v2.0/ports/{id}?fields=status"), "ports"),
            (&format!("/v2.0/subnets/{id}"), "subnets"),
            (
                "/v2.0/subnetpools?name=kuryrPool-10.0.0.0%2F24",
                "subnetpools",
            ),
            (&format!("/v2.0/security-groups/{id}"), "security-groups"),
            (
                &format!("/v2.0/security-group-rules/{id}"),
                "security-group-rules",
            ),
            (&format!("/v2.0/trunks/{id}/add_subports"), "trunks"),
            (&format!("/v2.0/ports/{id}/tags"), "tags"),
            (
                &format!("/v2.0/networks/{id}/tags/kuryr.net.uuid.lh:ab%2Fc"),
                "tags",
            ),
            ("/v2.0/extensions", "extensions"),
            (&format!("/networking/v2.0/ports/{id}"), "ports"),
            ("/v2.0", "unknown"),
            ("/", "unknown"),
        ] {
            assert_eq!(request_resource(path), want, "{path}");
        }
    }

    #[test]
    fn outcome_labels() {
        assert_eq!(RequestOutcome::Status(404).label(), "404");
        assert_eq!(RequestOutcome::Timeout.label(), "timeout");
        assert_eq!(RequestOutcome::Transport.label(), "transport");
    }
}
