#!/usr/bin/env bash
# The main job (make demo): the local cluster with its real node, the CRD, the operator running as its
# ServiceAccount, and the example ModelDeployment served by real pods on that node, answering through its Service.
#   hack/demo.sh up     start everything (reuses what is running)
#   hack/demo.sh down   stop the operator and the cluster
set -euo pipefail
source "$(dirname "$0")/lib.sh"

DEMO_DIR="$BERTH_CACHE/demo"
PID_FILE="$DEMO_DIR/operator.pid"
OPERATOR_LOG="$DEMO_DIR/operator.log"
SA_KUBECONFIG="$DEMO_DIR/operator-kubeconfig.yaml"
EXAMPLE="$REPO_ROOT/examples/tiny-demo.yaml"
VENV_BIN="$REPO_ROOT/.venv/bin"
HEALTH_PORT=${BERTH_DEMO_HEALTH_PORT:-18081}
METRICS_PORT=${BERTH_DEMO_METRICS_PORT:-18080}

kubeconfig() { "$HACK_DIR/cluster.sh" kubeconfig; }
k() { "$CONTROLPLANE_BIN/kubectl" --kubeconfig "$(kubeconfig)" "$@"; }
operator_running() { [ -f "$PID_FILE" ] && kill -0 "$(<"$PID_FILE")" 2>/dev/null; }

# A kubeconfig holding only the operator ServiceAccount's token: the demo runs with the declared RBAC.
write_sa_kubeconfig() {
  local token server ca
  token=$(k create token berth-operator -n berth-system --duration=24h)
  server=$(k config view --raw -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(k config view --raw --flatten -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
  cat >"$SA_KUBECONFIG" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: berth-operator, user: {token: "$token"}}]
contexts: [{name: berth-operator, context: {cluster: local, user: berth-operator}}]
current-context: berth-operator
YAML
}

# Polled rather than `kubectl wait --for=condition=Established`, which fails outright while a CRD just
# created has no conditions yet.
established() { [ "$(k get crd "$1" -o jsonpath='{.status.conditions[?(@.type=="Established")].status}')" = True ]; }
wait_established() { wait_for "CRD $1 established" 30 established "$1"; }

up() {
  mkdir -p "$DEMO_DIR"
  "$HACK_DIR/cluster.sh" up
  log "installing the CRD and the operator's RBAC"
  k apply --server-side -f "$REPO_ROOT/crds/" >&2
  wait_established modeldeployments.berth.dev
  k create namespace berth-system --dry-run=client -o yaml | k apply -f - >&2
  k apply --server-side -f "$REPO_ROOT/deploy/rbac.yaml" >&2
  if operator_running; then
    log "operator already running (pid $(<"$PID_FILE"))"
  else
    write_sa_kubeconfig
    log "starting the operator (log: $OPERATOR_LOG)"
    # Only the demo's namespace: a demo left running must not reconcile what the tests create elsewhere.
    nohup "$VENV_BIN/berth-operator" --kubeconfig "$SA_KUBECONFIG" --namespace berth-demo --metrics-port "$METRICS_PORT" \
      --health-port "$HEALTH_PORT" >"$OPERATOR_LOG" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 60); do
      "$VENV_BIN/python" -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$HEALTH_PORT/healthz', timeout=1)" \
        2>/dev/null && break
      operator_running || { tail -20 "$OPERATOR_LOG" >&2; log "the operator exited"; exit 1; }
      sleep 0.5
    done
  fi
  k create namespace berth-demo --dry-run=client -o yaml | k apply -f - >&2
  # Pod Security "restricted" enforced by the API server: the demo's pods meet it or are refused.
  k label --overwrite namespace berth-demo pod-security.kubernetes.io/enforce=restricted >&2
  demo_on_real_node | k apply -f - >&2
  log "waiting for tiny-demo to be Ready: its pods load the demo model on the real node ($NODE_NAME)"
  k wait --for=condition=Ready modeldeployment/tiny-demo -n berth-demo --timeout=600s >&2
  echo
  k get modeldeployments -n berth-demo
  echo
  k get deployments,services,poddisruptionbudgets,pods -n berth-demo -o wide
  echo
  ask_through_the_service
  echo
  echo "The operator runs as ServiceAccount berth-system/berth-operator; metrics: http://127.0.0.1:$METRICS_PORT/metrics"
  echo "Try: export KUBECONFIG=$(kubeconfig) PATH=$CONTROLPLANE_BIN:\$PATH"
  echo "     kubectl scale md tiny-demo -n berth-demo --replicas=3; kubectl get md -n berth-demo -w"
  echo "     kubectl logs -n berth-demo deploy/tiny-demo; berth status tiny-demo -n berth-demo"
  echo "Stop: make demo-down"
}

# examples/tiny-demo.yaml as written, plus what lands its pods on the real node (its label, its taint tolerated)
# and the runtime image built by hack/images.sh (the chart's default name): the real test tier's own placement
# (tests/support/real_node.py), so the demo runs what the tests check.
demo_on_real_node() {
  (cd "$REPO_ROOT" && "$VENV_BIN/python" -c 'import json
from tests.support.real_node import demo_on_real_node
print(json.dumps(demo_on_real_node("berth-demo")))')
}

# One chat request with the official openai client, through the ModelDeployment's Service: kube-proxy's rules on
# this machine carry the ClusterIP to one of the pods on the real node.
ask_through_the_service() {
  local ip
  ip=$(k get service tiny-demo -n berth-demo -o jsonpath='{.spec.clusterIP}')
  echo "POST http://$ip:8000/v1/chat/completions through Service berth-demo/tiny-demo"
  echo "(the demo model has random weights: its words mean nothing)"
  "$VENV_BIN/python" - "$ip" <<'PY'
import sys
import openai

client = openai.OpenAI(base_url=f"http://{sys.argv[1]}:8000/v1", api_key="demo", max_retries=3, timeout=60)
reply = client.chat.completions.create(
    model="tiny-demo", messages=[{"role": "user", "content": "Say hello to Berth."}], max_tokens=16, temperature=0.9,
    seed=7,
)
print(f"  assistant: {reply.choices[0].message.content.strip()!r}")
print(f"  finish_reason={reply.choices[0].finish_reason} usage={reply.usage.model_dump()}")
PY
}

down() {
  if operator_running; then
    kill "$(<"$PID_FILE")" && log "operator stopped"
  fi
  rm -f "$PID_FILE"
  "$HACK_DIR/cluster.sh" down
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
