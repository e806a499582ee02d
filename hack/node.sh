#!/usr/bin/env bash
# The local cluster's real node: a kubelet with containerd, runc and a CNI bridge, and kube-proxy, joined to the
# cluster hack/cluster.sh runs, beside the kwok nodes. It runs Berth's own images (hack/images.sh) for what a
# pod really does: probes, Services, drains, volumes.
#   hack/node.sh up       start it (the cluster must be running; cluster.sh up calls this); no-op if running
#   hack/node.sh down     stop it, its containers and its network, and delete the Node
#   hack/node.sh status   exit 0 when the kubelet and containerd are running
#   hack/node.sh logs     print the folder of kubelet's, containerd's and kube-proxy's logs
#   hack/node.sh show     print the node's name, address, label and taint
# Addresses: the node's own and its pods' are on a bridge this script creates. Routes for the Service range and
# both pod ranges point at that bridge, so a packet to any of them stays on this machine whatever else runs
# (nothing is forwarded: ip_forward stays as it is, and nothing is masqueraded).
# The node carries the label and the taint in NODE_LABEL/NODE_TAINT: only pods that ask land there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PKI_DIR="$KWOK_CLUSTER_DIR/pki"
CLUSTER_KUBECONFIG="$KWOK_CLUSTER_DIR/kubeconfig.yaml"
LOG_DIR="$NODE_DIR/logs"
PID_DIR="$NODE_DIR/pids"
CERT_DIR="$NODE_DIR/pki"
KUBELET_ROOT="$NODE_DIR/kubelet"
CNI_DIR="$NODE_DIR/cni"
BRIDGE=berth-cni0
# A route's metric above the kernel's 0: the bridge's own route wins once the bridge exists.
SAFETY_METRIC=4242

kubectl_() { "$CONTROLPLANE_BIN/kubectl" --kubeconfig "$CLUSTER_KUBECONFIG" "$@"; }
pid_of() { [ -f "$PID_DIR/$1.pid" ] && kill -0 "$(<"$PID_DIR/$1.pid")" 2>/dev/null && cat "$PID_DIR/$1.pid"; }
running() { pid_of containerd >/dev/null && pid_of kubelet >/dev/null && pid_of kube-proxy >/dev/null; }

start() { # start NAME COMMAND...: in its own session, so it outlives this script; output to its log
  local name=$1
  shift
  mkdir -p "$LOG_DIR" "$PID_DIR"
  [ -f "$LOG_DIR/$name.log" ] && mv "$LOG_DIR/$name.log" "$LOG_DIR/$name.log.1" # this start's log, and the last one's
  setsid "$@" >"$LOG_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$PID_DIR/$name.pid"
}

stop() { # stop NAME: TERM, then KILL after 10 s
  local pid
  pid=$(pid_of "$1") || { rm -f "$PID_DIR/$1.pid"; return 0; }
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PID_DIR/$1.pid"
}

# The node's address is the pods' gateway on their bridge, made here before the kubelet needs it (this machine's
# kernel has no dummy interfaces); the CNI plugin finds it as it would have set it.
network_up() {
  ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
  ip addr replace "$NODE_IP/${NODE_POD_CIDR#*/}" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  local cidr
  for cidr in "$SERVICE_CIDR" "$NODE_POD_CIDR" "$KWOK_POD_CIDR"; do
    ip route replace "$cidr" dev "$BRIDGE" metric "$SAFETY_METRIC"
  done
}

network_down() {
  ip link del "$BRIDGE" 2>/dev/null || true # takes its addresses and routes with it
}

# Client certificates from the cluster's CA: the kubelet as system:node:<name> (the Node authorizer and
# NodeRestriction admission then hold it to its own node), kube-proxy as system:kube-proxy (bound to
# system:node-proxier by the default RBAC policy); and the kubelet's serving certificate for its address.
issue_cert() { # issue_cert NAME SUBJECT [SAN]
  local name=$1 subject=$2 san=${3:-}
  if [ -f "$CERT_DIR/$name.crt" ] && openssl verify -CAfile "$PKI_DIR/ca.crt" "$CERT_DIR/$name.crt" >/dev/null 2>&1 \
    && [ "$(cat "$CERT_DIR/$name.for" 2>/dev/null)" = "$subject $san" ]; then
    return
  fi
  mkdir -p "$CERT_DIR"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$CERT_DIR/$name.key" -subj "$subject" -out "$CERT_DIR/$name.csr" 2>/dev/null
  local ext="$CERT_DIR/$name.ext"
  printf 'keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=%s\n' \
    "$([ -n "$san" ] && echo serverAuth || echo clientAuth)" >"$ext"
  [ -n "$san" ] && echo "subjectAltName=$san" >>"$ext"
  openssl x509 -req -in "$CERT_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" -CAcreateserial \
    -days 365 -extfile "$ext" -out "$CERT_DIR/$name.crt" 2>/dev/null
  echo "$subject $san" >"$CERT_DIR/$name.for"
}

write_kubeconfig() { # write_kubeconfig NAME
  local server
  server=$(kubectl_ config view -o jsonpath='{.clusters[0].cluster.server}')
  cat >"$NODE_DIR/$1.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: local, cluster: {server: "$server", certificate-authority: "$PKI_DIR/ca.crt"}}]
users: [{name: $1, user: {client-certificate: "$CERT_DIR/$1.crt", client-key: "$CERT_DIR/$1.key"}}]
contexts: [{name: $1, context: {cluster: local, user: $1}}]
current-context: $1
YAML
}

# containerd 2 (config version 4): its own root (images, kept between runs), state and sockets. Two settings for
# this machine, not for the product: restrict_oom_score_adj, because root lacks CAP_SYS_RESOURCE here and may not
# lower a process's oom_score_adj (without it every sandbox fails: "can't get final child's PID from pipe: EOF");
# and runc, because Debian's crun 1.8 refuses the hybrid cgroup layout. NRI is off (it would listen in /var/run).
write_containerd_config() {
  mkdir -p "$NODE_DIR/containerd" "$NODE_DIR/run" "$CNI_DIR/net.d"
  cat >"$NODE_DIR/containerd.toml" <<TOML
version = 4
root = '$NODE_DIR/containerd'
state = '$NODE_DIR/run/containerd'
imports = []
[plugins.'io.containerd.server.v1.grpc']
  address = '$CONTAINERD_SOCKET'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '$CONTAINERD_SOCKET.ttrpc'
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
[plugins.'io.containerd.cri.v1.images'.pinned_images]
  sandbox = '$(node_pause_image)'
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
[plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
  BinaryName = '$(command -v runc)'
  SystemdCgroup = false
[plugins.'io.containerd.cri.v1.runtime'.cni]
  bin_dirs = ['$CNI_PLUGINS']
  conf_dir = '$CNI_DIR/net.d'
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
TOML
  # Pods on a bridge of their own, addresses from host-local; no masquerade, so nothing a pod sends is
  # rewritten to leave the machine.
  cat >"$CNI_DIR/net.d/10-berth.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "berth",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$NODE_POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$CNI_DIR/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
}

# The kubelet. cgroupfs and failCgroupV1: false because this machine's cgroups are v1 (hybrid) with no systemd;
# an empty resolv.conf because pods here resolve nothing; image garbage collection off because an image
# imported here cannot be pulled again; eviction thresholds low because the disk is shared with builds.
write_kubelet_config() {
  : >"$NODE_DIR/resolv.conf"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI_DIR/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $CERT_DIR/kubelet-serving.crt
tlsPrivateKeyFile: $CERT_DIR/kubelet-serving.key
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$CONTAINERD_SOCKET
resolvConf: $NODE_DIR/resolv.conf
registerWithTaints:
- {key: ${NODE_TAINT%%=*}, value: "${NODE_TAINT#*=}", effect: NoSchedule}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: 2%, imagefs.available: 2%}
maxPods: 30
serializeImagePulls: false
YAML
}

# What a kubelet that stopped leaves behind: containers still running in containerd, the volumes it mounted, the
# addresses host-local handed out. Cleared before a start and after a stop.
clear_leftovers() {
  if [ -S "$CONTAINERD_SOCKET" ] && pid_of containerd >/dev/null; then
    local id
    for id in $(node_ctr tasks ls -q 2>/dev/null); do node_ctr tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    sleep 1
    for id in $(node_ctr containers ls -q 2>/dev/null); do
      node_ctr tasks delete --force "$id" >/dev/null 2>&1 || true
      node_ctr containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  unmount_under "$KUBELET_ROOT"
  rm -rf "$KUBELET_ROOT" "$CNI_DIR/ipam"
}

unmount_under() { # unmount_under DIR: every mount below DIR, deepest first
  local mount
  for mount in $(awk -v dir="$1" 'index($2, dir) == 1 {print $2}' /proc/mounts | sort -r); do
    umount -l "$mount" 2>/dev/null || true
  done
}

up() {
  kubectl_ get --raw /readyz --request-timeout=5s >/dev/null 2>&1 || { log "the cluster is not running (hack/cluster.sh up)"; exit 1; }
  if running && kubectl_ get node "$NODE_NAME" >/dev/null 2>&1; then
    log "node $NODE_NAME: already running"
    "$HACK_DIR/images.sh" import # what changed since it started (nothing to do when nothing did)
    return
  fi
  local start=$SECONDS
  "$HACK_DIR/host-packages.sh"
  down_processes
  network_up
  issue_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  issue_cert kube-proxy "/CN=system:kube-proxy"
  issue_cert kubelet-serving "/O=system:nodes/CN=system:node:$NODE_NAME" "IP:$NODE_IP,DNS:$NODE_NAME"
  write_kubeconfig kubelet
  write_kubeconfig kube-proxy
  write_containerd_config
  write_kubelet_config
  start containerd env PATH="$CONTAINERD_BIN:$PATH" "$CONTAINERD_BIN/containerd" --config "$NODE_DIR/containerd.toml"
  wait_for "containerd (logs: $LOG_DIR)" 30 node_ctr version
  clear_leftovers
  "$HACK_DIR/images.sh" import
  start kubelet "$CONTROLPLANE_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$NODE_DIR/kubelet.kubeconfig" \
    --node-ip "$NODE_IP" --hostname-override "$NODE_NAME" --root-dir "$KUBELET_ROOT" --cert-dir "$CERT_DIR" \
    --node-labels "$NODE_LABEL" --v 2
  # nodePortAddresses: node ports only on the node's own address, never on the machine's interfaces.
  start kube-proxy "$CONTROLPLANE_BIN/kube-proxy" --kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" \
    --hostname-override "$NODE_NAME" --proxy-mode iptables --cluster-cidr "$NODE_POD_CIDR" \
    --nodeport-addresses "$NODE_IP/32" --conntrack-max-per-core 0 --metrics-bind-address 127.0.0.1:10249 \
    --healthz-bind-address 127.0.0.1:10256 --v 2
  wait_for "node $NODE_NAME registered (logs: $LOG_DIR)" 60 kubectl_ get node "$NODE_NAME"
  kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=120s >&2
  wait_for "kube-proxy (logs: $LOG_DIR)" 60 curl -sf http://127.0.0.1:10256/healthz
  log "node $NODE_NAME: ready at $NODE_IP in $((SECONDS - start)) s (logs: $LOG_DIR)"
}

down_processes() {
  stop kube-proxy
  "$CONTROLPLANE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true # its iptables chains
  stop kubelet
  clear_leftovers
  stop containerd
  # After a crash (the machine's processes ended under it), shims and the mounts of containerd's state outlive
  # containerd: its state is per run, so it all goes; images stay in its root.
  pkill -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCKET" 2>/dev/null || true
  unmount_under "$NODE_DIR/run"
  rm -rf "$NODE_DIR/run"
}

down() {
  down_processes
  network_down
  if kubectl_ get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
    kubectl_ delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi
  log "node $NODE_NAME: down"
}

show() {
  echo "node $NODE_NAME at $NODE_IP, label $NODE_LABEL, taint $NODE_TAINT:NoSchedule, pods in $NODE_POD_CIDR"
  echo "logs: $LOG_DIR"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) running ;;
  logs) echo "$LOG_DIR" ;;
  show) show ;;
  *) echo "usage: $0 up|down|status|logs|show" >&2; exit 2 ;;
esac
