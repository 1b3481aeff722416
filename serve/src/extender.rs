//! The Kubernetes scheduler-extender contract (k8s.io/kube-scheduler/extender/v1), backed by
//! a lepton placement score.
//!
//! kube-scheduler POSTs JSON to `<urlPrefix>/<verb>`:
//!
//! - `filter`: `ExtenderArgs` (`Pod`, and `Nodes` — a `NodeList` — when the extender is not
//!   `nodeCacheCapable`) → `ExtenderFilterResult` (`Nodes`, `NodeNames`, `FailedNodes`,
//!   `FailedAndUnresolvableNodes`, `Error`). A node passes when its allocatable covers the
//!   pod's requests for every resource the pod requests.
//! - `prioritize`: `ExtenderArgs` → `HostPriorityList` (`[{"Host", "Score"}]`), scores 0 to
//!   10 (`MaxExtenderPriority`), which kube-scheduler multiplies by the extender's weight.
//!
//! `bind` is not offered: an extender that binds must call the API server's binding
//! subresource itself, and lepton-serve has no Kubernetes client; kube-scheduler keeps
//! binding. The extender is stateless and sees only what kube-scheduler sends: the Pod and the
//! candidate Node objects with their `status.allocatable`. It does not see what is already
//! running on a node (that needs the API server), so its scores are about shape — which node a
//! pod fits best when empty — not current load; kube-scheduler's own plugins still weigh load.
//!
//! Policies ([`NodePolicy`]), each over every resource the pod requests or a node advertises
//! (`cpu` in cores, `memory` in bytes, extended resources such as `nvidia.com/gpu` in units),
//! normalised per resource by the largest allocatable among the candidates:
//!
//! - `best_fit` (lepton's `best_fit`: the tightest server): the smallest leftover
//!   Σ_r (allocatable_r − request_r) / max_r wins. Small pods go to small nodes and a pod
//!   without GPUs stays off GPU nodes (their GPUs would be left over).
//! - `tetris` (Grandl et al., SIGCOMM'14, lepton's `tetris`): the largest alignment
//!   Σ_r (request_r / max_r) · (allocatable_r / max_r) wins: a node rich in what the pod asks
//!   for.
//!
//! Raw scores map linearly onto 0..=10 (best 10, worst 0, rounded) over the nodes that can hold
//! the pod; a node that cannot scores 0, and equal raw scores all get 0.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// `MaxExtenderPriority` of the extender API.
pub const MAX_SCORE: i64 = 10;

/// How nodes are scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodePolicy {
    BestFit,
    Tetris,
}

/// A policy name the extender does not know.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown extender policy `{0}`: expected best_fit or tetris")]
pub struct UnknownNodePolicy(pub String);

impl NodePolicy {
    pub fn by_name(name: &str) -> Result<Self, UnknownNodePolicy> {
        match name {
            "best_fit" => Ok(Self::BestFit),
            "tetris" => Ok(Self::Tetris),
            _ => Err(UnknownNodePolicy(name.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::BestFit => "best_fit",
            Self::Tetris => "tetris",
        }
    }
}

/// `ExtenderArgs`.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ExtenderArgs {
    pod: Pod,
    nodes: Option<NodeList>,
    node_names: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct Pod {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    spec: PodSpec,
}

#[derive(Default, Deserialize)]
struct Metadata {
    #[serde(default)]
    name: String,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    containers: Vec<Container>,
    #[serde(default)]
    init_containers: Vec<Container>,
    #[serde(default)]
    overhead: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct Container {
    #[serde(default)]
    resources: Resources,
}

#[derive(Default, Deserialize)]
struct Resources {
    #[serde(default)]
    requests: BTreeMap<String, String>,
}

/// A `NodeList`; items are kept as sent, to return the passing ones unchanged.
#[derive(Deserialize)]
struct NodeList {
    #[serde(default)]
    items: Vec<Value>,
}

#[derive(Deserialize)]
struct NodeView {
    metadata: Metadata,
    #[serde(default)]
    status: NodeStatus,
}

#[derive(Default, Deserialize)]
struct NodeStatus {
    #[serde(default)]
    allocatable: BTreeMap<String, String>,
}

/// `ExtenderFilterResult`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct FilterResult {
    pub nodes: Option<Value>,
    pub node_names: Option<Vec<String>>,
    pub failed_nodes: BTreeMap<String, String>,
    pub failed_and_unresolvable_nodes: BTreeMap<String, String>,
    pub error: String,
}

/// `HostPriority`.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct HostPriority {
    pub host: String,
    pub score: i64,
}

/// Parses a Kubernetes resource quantity (`500m`, `2`, `1.5Gi`, `128974848`, `129e6`, `1k`)
/// into base units (cores, bytes, units).
pub fn parse_quantity(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let bad = || format!("`{text}` is not a Kubernetes quantity");
    let suffixes: [(&str, f64); 14] = [
        ("Ki", 1024f64),
        ("Mi", 1024f64.powi(2)),
        ("Gi", 1024f64.powi(3)),
        ("Ti", 1024f64.powi(4)),
        ("Pi", 1024f64.powi(5)),
        ("Ei", 1024f64.powi(6)),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (number, factor) = suffixes
        .iter()
        .find_map(|&(s, f)| t.strip_suffix(s).map(|n| (n, f)))
        // A bare `E` is exa; `1e3`/`1E3` are exponents, which `parse` reads.
        .or_else(|| t.strip_suffix('E').map(|n| (n, 1e18)))
        .unwrap_or((t, 1.0));
    let value: f64 = number.parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    Ok(value * factor)
}

fn quantities(map: &BTreeMap<String, String>, what: &str) -> Result<BTreeMap<String, f64>, String> {
    map.iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                parse_quantity(v).map_err(|e| format!("{what} {k}: {e}"))?,
            ))
        })
        .collect()
}

/// The pod's effective request: per resource, the larger of the containers' sum and the
/// largest init container, plus the pod overhead (as kube-scheduler computes it).
fn pod_requests(pod: &Pod) -> Result<BTreeMap<String, f64>, String> {
    let name = &pod.metadata.name;
    let mut total: BTreeMap<String, f64> = BTreeMap::new();
    for c in &pod.spec.containers {
        for (k, v) in quantities(&c.resources.requests, &format!("pod {name}: request"))? {
            *total.entry(k).or_default() += v;
        }
    }
    for c in &pod.spec.init_containers {
        for (k, v) in quantities(&c.resources.requests, &format!("pod {name}: init request"))? {
            let e = total.entry(k).or_default();
            *e = e.max(v);
        }
    }
    for (k, v) in quantities(&pod.spec.overhead, &format!("pod {name}: overhead"))? {
        *total.entry(k).or_default() += v;
    }
    total.retain(|_, v| *v > 0.0);
    Ok(total)
}

struct Candidate {
    name: String,
    raw: Value,
    allocatable: BTreeMap<String, f64>,
}

fn candidates(args: &ExtenderArgs) -> Result<Vec<Candidate>, String> {
    let Some(nodes) = &args.nodes else {
        return Err(if args.node_names.is_some() {
            "this extender needs Node objects: set nodeCacheCapable: false in the extender's \
             KubeSchedulerConfiguration"
                .to_owned()
        } else {
            "ExtenderArgs has neither Nodes nor NodeNames".to_owned()
        });
    };
    nodes
        .items
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            let view: NodeView = serde_json::from_value(raw.clone())
                .map_err(|e| format!("Nodes.items[{i}]: {e}"))?;
            let name = view.metadata.name;
            let allocatable = quantities(
                &view.status.allocatable,
                &format!("node {name}: allocatable"),
            )?;
            Ok(Candidate {
                name,
                raw: raw.clone(),
                allocatable,
            })
        })
        .collect()
}

fn parse_args(body: &str) -> Result<ExtenderArgs, String> {
    serde_json::from_str(body).map_err(|e| format!("malformed ExtenderArgs: {e}"))
}

/// `filter`: the nodes whose allocatable covers the pod's requests.
pub fn filter(body: &str) -> FilterResult {
    let result = parse_args(body).and_then(|args| {
        let requests = pod_requests(&args.pod)?;
        Ok((candidates(&args)?, requests))
    });
    let (nodes, requests) = match result {
        Ok(x) => x,
        Err(error) => {
            return FilterResult {
                nodes: None,
                node_names: None,
                failed_nodes: BTreeMap::new(),
                failed_and_unresolvable_nodes: BTreeMap::new(),
                error,
            };
        }
    };
    let mut passed = Vec::new();
    let mut failed = BTreeMap::new();
    for node in nodes {
        let short: Vec<String> = requests
            .iter()
            .filter_map(|(r, &want)| {
                let have = node.allocatable.get(r).copied().unwrap_or(0.0);
                (have < want)
                    .then(|| format!("Insufficient {r} (requests {want}, allocatable {have})"))
            })
            .collect();
        if short.is_empty() {
            passed.push(node.raw);
        } else {
            failed.insert(node.name, short.join("; "));
        }
    }
    FilterResult {
        nodes: Some(serde_json::json!({ "metadata": {}, "items": passed })),
        node_names: None,
        failed_nodes: failed,
        failed_and_unresolvable_nodes: BTreeMap::new(),
        error: String::new(),
    }
}

/// `prioritize`: every candidate node with a score in 0..=10.
pub fn prioritize(body: &str, policy: NodePolicy) -> Result<Vec<HostPriority>, String> {
    let args = parse_args(body)?;
    let requests = pod_requests(&args.pod)?;
    let nodes = candidates(&args)?;
    let mut resources: Vec<&String> = requests.keys().collect();
    for n in &nodes {
        resources.extend(n.allocatable.keys().filter(|r| r.as_str() != "pods"));
    }
    resources.sort();
    resources.dedup();
    let max = |r: &String| {
        nodes
            .iter()
            .map(|n| n.allocatable.get(r).copied().unwrap_or(0.0))
            .fold(0.0, f64::max)
    };
    let scale: Vec<(&String, f64)> = resources
        .iter()
        .map(|r| (*r, max(r)))
        .filter(|(_, m)| *m > 0.0)
        .collect();
    // kube-scheduler sends only nodes that passed its filters, but a node that cannot hold
    // the pod scores 0 and does not stretch the others' range.
    let fits = |n: &Candidate| {
        requests
            .iter()
            .all(|(r, &want)| n.allocatable.get(r).copied().unwrap_or(0.0) >= want)
    };
    let raw: Vec<f64> = nodes
        .iter()
        .map(|n| {
            scale
                .iter()
                .map(|&(r, m)| {
                    let have = n.allocatable.get(r).copied().unwrap_or(0.0);
                    let want = requests.get(r).copied().unwrap_or(0.0);
                    match policy {
                        // Negated leftover: higher is better for both policies.
                        NodePolicy::BestFit => -(have - want).max(0.0) / m,
                        NodePolicy::Tetris => (want / m) * (have / m),
                    }
                })
                .sum()
        })
        .collect();
    let fitting = || {
        nodes
            .iter()
            .zip(&raw)
            .filter(|(n, _)| fits(n))
            .map(|(_, &s)| s)
    };
    let best = fitting().fold(f64::NEG_INFINITY, f64::max);
    let worst = fitting().fold(f64::INFINITY, f64::min);
    Ok(nodes
        .iter()
        .zip(&raw)
        .map(|(n, &s)| HostPriority {
            host: n.name.clone(),
            score: if fits(n) && best > worst {
                (MAX_SCORE as f64 * (s - worst) / (best - worst)).round() as i64
            } else {
                0
            },
        })
        .collect())
}

/// The HTTP answer to one request: status and JSON body. Paths end in the verb
/// (`<urlPrefix>/filter`); `GET /healthz` answers `ok`.
pub fn respond(method: &str, path: &str, body: &str, policy: NodePolicy) -> (u16, String) {
    let path = path.split('?').next().unwrap_or("");
    let error = |status: u16, message: String| {
        (status, serde_json::json!({ "Error": message }).to_string())
    };
    match (method, path.rsplit('/').next().unwrap_or("")) {
        ("GET", "healthz") => (200, "ok".to_owned()),
        ("POST", "filter") => {
            let result = filter(body);
            let status = if result.error.starts_with("malformed") {
                400
            } else {
                200
            };
            (status, serde_json::to_string(&result).unwrap_or_default())
        }
        ("POST", "prioritize") => match prioritize(body, policy) {
            Ok(list) => (200, serde_json::to_string(&list).unwrap_or_default()),
            Err(e) => error(400, e),
        },
        ("POST", verb) => error(
            404,
            format!("unknown verb `{verb}`: this extender serves filter and prioritize"),
        ),
        _ => error(
            405,
            format!("{method} {path}: POST a verb, or GET /healthz"),
        ),
    }
}

/// The extender's HTTP server.
pub struct Server {
    http: tiny_http::Server,
    policy: NodePolicy,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("addr", &self.local_addr())
            .field("policy", &self.policy)
            .finish()
    }
}

impl Server {
    /// Listens on `addr` (`127.0.0.1:0` for an ephemeral port).
    pub fn bind(addr: &str, policy: NodePolicy) -> Result<Self, String> {
        let http =
            tiny_http::Server::http(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        Ok(Self { http, policy })
    }

    pub fn local_addr(&self) -> String {
        self.http
            .server_addr()
            .to_ip()
            .map_or_else(|| "?".to_owned(), |a| a.to_string())
    }

    fn answer(&self, mut request: tiny_http::Request) {
        let mut body = String::new();
        let (status, text) = match request.as_reader().read_to_string(&mut body) {
            Ok(_) => respond(request.method().as_str(), request.url(), &body, self.policy),
            Err(e) => (
                400,
                serde_json::json!({ "Error": format!("unreadable body: {e}") }).to_string(),
            ),
        };
        let header = tiny_http::Header::from_bytes("Content-Type", "application/json")
            .expect("a valid static header");
        let response = tiny_http::Response::from_string(text)
            .with_status_code(status)
            .with_header(header);
        let _ = request.respond(response);
    }

    /// Answers requests until `stop` is set.
    pub fn serve(&self, stop: &AtomicBool) {
        while !stop.load(Ordering::Relaxed) {
            if let Ok(Some(request)) = self.http.recv_timeout(Duration::from_millis(100)) {
                self.answer(request);
            }
        }
    }

    pub fn serve_forever(&self) {
        self.serve(&AtomicBool::new(false));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(parse_quantity("500m").unwrap(), 0.5);
        assert_eq!(parse_quantity("2").unwrap(), 2.0);
        assert_eq!(parse_quantity("1Gi").unwrap(), 1073741824.0);
        assert_eq!(parse_quantity("129e6").unwrap(), 129e6);
        assert_eq!(parse_quantity("1k").unwrap(), 1000.0);
        assert_eq!(parse_quantity("2E").unwrap(), 2e18);
        assert!(parse_quantity("lots").unwrap_err().contains("`lots`"));
        assert!(parse_quantity("-1").is_err());
    }
}
