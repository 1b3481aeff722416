//! The Kubernetes scheduler extender over HTTP on 127.0.0.1 (an ephemeral port), fed request
//! bodies written as kube-scheduler sends them (`tests/data/*.json`: ExtenderArgs with full
//! Pod and Node objects), with the exact responses expected.
//!
//! The nodes: cpu-small (4 CPUs, 16Gi), cpu-medium (8, 32Gi), cpu-large (32, 128Gi), gpu-node
//! (24, 64Gi, 4 nvidia.com/gpu), each with 100Gi ephemeral storage. The pods: train-resnet
//! asks for 2 CPUs, 4Gi and 1 GPU (two containers); etl-batch for 6 CPUs and 8Gi (its init
//! container's 2 CPUs do not add).

use lepton_serve::extender::{NodePolicy, Server};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

struct Running {
    addr: String,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(policy: NodePolicy) -> Running {
    let server = Server::bind("127.0.0.1:0", policy).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || server.serve(&flag));
    Running {
        addr,
        stop,
        thread: Some(thread),
    }
}

/// One HTTP/1.1 request; returns (status, body).
fn request(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn data(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn post(server: &Running, verb: &str, body: &str) -> (u16, Value) {
    let (status, text) = request(&server.addr, "POST", &format!("/lepton/{verb}"), body);
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

fn node(args: &Value, name: &str) -> Value {
    args["Nodes"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["metadata"]["name"] == name)
        .unwrap()
        .clone()
}

#[test]
fn filter_keeps_nodes_that_hold_the_gpu_pod() {
    let server = start(NodePolicy::BestFit);
    let body = data("gpu_pod.json");
    let args: Value = serde_json::from_str(&body).unwrap();
    let (status, result) = post(&server, "filter", &body);
    assert_eq!(status, 200);
    let no_gpu = "Insufficient nvidia.com/gpu (requests 1, allocatable 0)";
    assert_eq!(
        result,
        json!({
            "Nodes": { "metadata": {}, "items": [node(&args, "gpu-node")] },
            "NodeNames": null,
            "FailedNodes": { "cpu-large": no_gpu, "cpu-medium": no_gpu, "cpu-small": no_gpu },
            "FailedAndUnresolvableNodes": {},
            "Error": ""
        })
    );
}

#[test]
fn filter_counts_containers_not_init_containers() {
    let server = start(NodePolicy::BestFit);
    let body = data("cpu_pod.json");
    let args: Value = serde_json::from_str(&body).unwrap();
    let (status, result) = post(&server, "filter", &body);
    assert_eq!(status, 200);
    let items: Vec<Value> = ["cpu-medium", "cpu-large", "gpu-node"]
        .iter()
        .map(|n| node(&args, n))
        .collect();
    assert_eq!(
        result,
        json!({
            "Nodes": { "metadata": {}, "items": items },
            "NodeNames": null,
            "FailedNodes": { "cpu-small": "Insufficient cpu (requests 6, allocatable 4)" },
            "FailedAndUnresolvableNodes": {},
            "Error": ""
        })
    );
}

#[test]
fn prioritize_best_fit_prefers_the_tightest_node() {
    // Leftover, normalised by the largest allocatable (32 CPUs, 128Gi, 4 GPUs, 100Gi disk):
    // cpu-medium 2/32 + 24/128 + 0 + 1 = 1.25, cpu-large 26/32 + 120/128 + 0 + 1 = 2.75,
    // gpu-node 18/32 + 56/128 + 4/4 + 1 = 3.0 (its idle GPUs count against it); cpu-small
    // cannot hold the pod. Scores: 10, 10·0.25/1.75 = 1.4 → 1, 0, and 0.
    let server = start(NodePolicy::BestFit);
    let (status, result) = post(&server, "prioritize", &data("cpu_pod.json"));
    assert_eq!(status, 200);
    assert_eq!(
        result,
        json!([
            { "Host": "cpu-small", "Score": 0 },
            { "Host": "cpu-medium", "Score": 10 },
            { "Host": "cpu-large", "Score": 1 },
            { "Host": "gpu-node", "Score": 0 }
        ])
    );
}

#[test]
fn prioritize_tetris_prefers_the_best_aligned_node() {
    // Alignment (6/32)·(cpu/32) + (8/128)·(mem/128): cpu-medium 0.0625, cpu-large 0.25,
    // gpu-node 0.171875 → 0, 10, 10·0.109375/0.1875 = 5.8 → 6; cpu-small cannot hold it.
    let server = start(NodePolicy::Tetris);
    let (status, result) = post(&server, "prioritize", &data("cpu_pod.json"));
    assert_eq!(status, 200);
    assert_eq!(
        result,
        json!([
            { "Host": "cpu-small", "Score": 0 },
            { "Host": "cpu-medium", "Score": 0 },
            { "Host": "cpu-large", "Score": 10 },
            { "Host": "gpu-node", "Score": 6 }
        ])
    );
}

#[test]
fn node_names_only_asks_for_node_objects() {
    let server = start(NodePolicy::BestFit);
    let body = data("node_names_only.json");
    let (status, result) = post(&server, "filter", &body);
    assert_eq!(status, 200);
    assert_eq!(
        result["Error"],
        "this extender needs Node objects: set nodeCacheCapable: false in the extender's KubeSchedulerConfiguration"
    );
    assert_eq!(result["Nodes"], Value::Null);
    let (status, result) = post(&server, "prioritize", &body);
    assert_eq!(status, 400);
    assert!(
        result["Error"]
            .as_str()
            .unwrap()
            .contains("nodeCacheCapable: false")
    );
}

#[test]
fn malformed_requests_get_one_clear_error() {
    let server = start(NodePolicy::BestFit);
    let (status, result) = post(&server, "filter", "{\"Pod\": ");
    assert_eq!(status, 400);
    assert!(
        result["Error"]
            .as_str()
            .unwrap()
            .starts_with("malformed ExtenderArgs: "),
        "{result}"
    );
    let bad = data("cpu_pod.json").replace("\"cpu\": \"6\"", "\"cpu\": \"six\"");
    let (status, result) = post(&server, "prioritize", &bad);
    assert_eq!(status, 400);
    assert_eq!(
        result["Error"],
        "pod etl-batch: request cpu: `six` is not a Kubernetes quantity"
    );
    let (status, result) = post(&server, "bind", "{}");
    assert_eq!(status, 404);
    assert_eq!(
        result["Error"],
        "unknown verb `bind`: this extender serves filter and prioritize"
    );
    assert_eq!(
        request(&server.addr, "GET", "/healthz", ""),
        (200, "ok".to_owned())
    );
}
