#!/usr/bin/env bash
# Validates the deployment files without a Docker engine or a cluster:
#   compose   docker-compose.yml through a real Compose implementation
#             (`docker compose config`, else `docker-compose config`; installs
#             Debian's docker-compose 1.29 with apt-get when neither exists),
#             plus: worker scalable (no container_name, no host ports),
#             generator only under the `tools` profile, N workers wired up
#             (the coordinator's -Dcluster.min-workers follows
#             SLIPSTREAM_WORKERS, default 1; the worker listens on
#             taskmanager.data.port 6121, exposes it, and its entrypoint, run
#             here with /bin/sh, appends -Dtaskmanager.host=<container IP>)
#   k8s       deploy/k8s/*.yaml with kubeconform -strict against the
#             Kubernetes JSON schemas shipped in the PyPI package
#             kubernetes-validate (no GitHub access needed), a self-test
#             that a manifest with an unknown field is rejected, and the
#             worker wiring: StatefulSet replicas == the ConfigMap's
#             cluster.min-workers, pod IP advertised through the downward API
#             (-Dtaskmanager.host=$(POD_IP)), data port 6121 as containerPort
#   runtime   every shared library build/bin/slipstream{-coordinator,-worker,-gen,}
#             link is provided by the Dockerfile's runtime package list (direct
#             NEEDED libraries listed explicitly, the rest through apt
#             dependencies), and each listed package exists in apt
#   keys      every -Dkey in the compose file and the manifests, and every key
#             of the ConfigMap's application.properties, is a key the binaries know
# Prints one OK/FAIL line per check; exits 1 if any failed. Idempotent: tools
# and schemas are cached in $SLIPSTREAM_CACHE.
#
# Usage: scripts/validate-deploy.sh
#
# Environment:
#   KUBECONFORM_VERSION=v0.7.0          go install version
#   K8S_SCHEMA_PACKAGE_VERSION=1.37.0   PyPI kubernetes-validate version
#   K8S_VERSION=1.32.0                  Kubernetes version validated against
set -euo pipefail
SLIPSTREAM_TAG="slipstream validate-deploy"
# shellcheck source=scripts/lib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/lib.sh"

KUBECONFORM_VERSION="${KUBECONFORM_VERSION:-v0.7.0}"
K8S_SCHEMA_PACKAGE_VERSION="${K8S_SCHEMA_PACKAGE_VERSION:-1.37.0}"
K8S_VERSION="${K8S_VERSION:-1.32.0}"

ROOT="$SLIPSTREAM_ROOT"
COMPOSE_FILE="$ROOT/docker-compose.yml"
DOCKERFILE="$ROOT/Dockerfile"
K8S_DIR="$ROOT/deploy/k8s"
BIN_DIR="$SLIPSTREAM_BUILD_DIR/bin"
BINARIES=(slipstream-coordinator slipstream-worker slipstream-gen slipstream)
# PyYAML: Debian's python3-yaml, a dependency of docker-compose.
SYS_PY=/usr/bin/python3
export PATH="$PATH:/usr/local/go/bin"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
START="$(now_s)"
FAILED=()

ok() { printf 'OK   %-10s %s\n' "$1" "$2"; }
fail() {
  printf 'FAIL %-10s %s\n' "$1" "$2"
  FAILED+=("$1")
}

apt_install() {
  as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 \
    install --no-install-recommends "$@" </dev/null >"$WORK/apt.log" 2>&1 || {
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q update </dev/null >>"$WORK/apt.log" 2>&1
    as_root env DEBIAN_FRONTEND=noninteractive apt-get -y -q -o DPkg::Lock::Timeout=300 \
      install --no-install-recommends "$@" </dev/null >>"$WORK/apt.log" 2>&1
  }
}

#------------------------------------------------------------------------------
# compose
#------------------------------------------------------------------------------
check_compose() {
  local -a compose=()
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  else
    if ! command -v docker-compose >/dev/null 2>&1; then
      log "no compose plugin and no docker-compose: installing Debian's docker-compose"
      apt_install docker-compose || {
        fail compose "could not install docker-compose (see apt output above)"
        cat "$WORK/apt.log" >&2
        return
      }
    fi
    compose=(docker-compose)
  fi
  local version
  version="$("${compose[@]}" version 2>/dev/null | sed -n 1p)"
  log "compose implementation: ${compose[*]} ($version)"

  # Resolve with every profile active so the generator is checked too; once
  # with SLIPSTREAM_WORKERS unset (the default) and once set to 3.
  if ! env -u SLIPSTREAM_WORKERS "${compose[@]}" -f "$COMPOSE_FILE" --profile tools config \
    >"$WORK/compose.yml" 2>"$WORK/compose.err"; then
    fail compose "${compose[*]} config rejected docker-compose.yml:"
    sed 's/^/    /' "$WORK/compose.err"
    return
  fi
  if ! SLIPSTREAM_WORKERS=3 "${compose[@]}" -f "$COMPOSE_FILE" --profile tools config \
    >"$WORK/compose3.yml" 2>"$WORK/compose.err"; then
    fail compose "${compose[*]} config rejected docker-compose.yml with SLIPSTREAM_WORKERS=3:"
    sed 's/^/    /' "$WORK/compose.err"
    return
  fi
  if "$SYS_PY" - "$WORK/compose.yml" "$WORK/compose3.yml" <<'PY'; then
import re, subprocess, sys, yaml
cfg = yaml.safe_load(open(sys.argv[1]))
cfg3 = yaml.safe_load(open(sys.argv[2]))
services = cfg["services"]
errors = []

def args(service):
    a = service.get("command") or []
    return a.split() if isinstance(a, str) else [str(x) for x in a]

def min_workers(c):
    vals = [a.split("=", 1)[1] for a in args(c["services"].get("coordinator", {}))
            if a.startswith("-Dcluster.min-workers=")]
    return vals[-1] if vals else None

# N workers: the coordinator waits for SLIPSTREAM_WORKERS (default 1) workers.
if min_workers(cfg) != "1":
    errors.append(f"coordinator: -Dcluster.min-workers is {min_workers(cfg)!r} without SLIPSTREAM_WORKERS, expected '1'")
if min_workers(cfg3) != "3":
    errors.append(f"coordinator: -Dcluster.min-workers is {min_workers(cfg3)!r} with SLIPSTREAM_WORKERS=3, expected '3'")
# The worker listens on the fixed data port, exposes it to the network, and
# its entrypoint advertises the container's address as taskmanager.host.
w = services.get("worker", {})
if "-Dtaskmanager.data.port=6121" not in args(w):
    errors.append("worker: command lacks -Dtaskmanager.data.port=6121")
if "6121" not in [str(p).split("/")[0] for p in w.get("expose", [])]:
    errors.append("worker: port 6121 not in expose")
entry = w.get("entrypoint") or []
if isinstance(entry, str) or len(entry) < 3 or entry[:2] != ["sh", "-c"]:
    errors.append(f"worker: entrypoint is not [sh, -c, script, ...]: {entry!r}")
else:
    # Run the entrypoint as the container would (the config output may keep
    # Compose's $$ escapes), with `echo` standing in for the command.
    script = entry[2].replace("$$", "$")
    run = subprocess.run(["/bin/sh", "-c", script, *entry[3:], "echo", *args(w)],
                         capture_output=True, text=True)
    out = run.stdout.split()
    host = [a.split("=", 1)[1] for a in out if a.startswith("-Dtaskmanager.host=")]
    if run.returncode != 0 or out[:len(args(w))] != args(w) or not host or not host[-1]:
        errors.append(f"worker: entrypoint does not run the command with -Dtaskmanager.host=<address> "
                      f"(rc {run.returncode}, stdout {run.stdout.strip()!r}, stderr {run.stderr.strip()!r})")
    else:
        print(f"    worker entrypoint here: ... -Dtaskmanager.host={host[-1]}")
for name in ("kafka", "kafka-ui", "redis", "coordinator", "worker", "generator"):
    if name not in services:
        errors.append(f"service {name} missing")
w = services.get("worker", {})
if "container_name" in w:
    errors.append("worker has container_name (breaks --scale)")
if w.get("ports"):
    errors.append("worker publishes host ports (breaks --scale)")
if services.get("generator", {}).get("profiles") != ["tools"]:
    errors.append("generator profiles != [tools]")
for name in ("coordinator", "worker"):
    vols = [str(v.get("source", v)) if isinstance(v, dict) else str(v) for v in services.get(name, {}).get("volumes", [])]
    if not any(v.startswith("checkpoints") for v in vols):
        errors.append(f"{name} does not mount the checkpoints volume")
print("    resolved services:")
for name, s in services.items():
    img = s.get("image", "-")
    build = " (build .)" if "build" in s else ""
    cmd = s.get("command") or []
    if isinstance(cmd, list):
        cmd = " ".join(cmd)
    if s.get("entrypoint"):
        cmd = f"[entrypoint {' '.join(s['entrypoint'])!r}] {cmd}"
    ports = ",".join(f"{p['published']}->{p['target']}" if isinstance(p, dict) else str(p) for p in s.get("ports", [])) or "-"
    hc = "healthcheck" if "healthcheck" in s else "-"
    deps = ",".join(s.get("depends_on", {}) or []) or "-"
    prof = ",".join(s.get("profiles", [])) or "-"
    print(f"    {name:12} image={img}{build} ports={ports} {hc} depends_on={deps} profiles={prof}")
    if cmd:
        print(f"    {'':12} command: {cmd}")
print(f"    volumes: {', '.join(cfg.get('volumes', {}) or [])}")
for e in errors:
    print(f"    problem: {e}")
sys.exit(1 if errors else 0)
PY
    ok compose "docker-compose.yml accepted by $version; worker scalable; cluster.min-workers follows SLIPSTREAM_WORKERS; worker advertises taskmanager.host, data port 6121; generator under profile tools"
  else
    fail compose "docker-compose.yml resolves but breaks a rule above"
  fi
}

#------------------------------------------------------------------------------
# k8s
#------------------------------------------------------------------------------
# Installs kubeconform into $SLIPSTREAM_CACHE/bin (once).
ensure_kubeconform() {
  KUBECONFORM="$SLIPSTREAM_CACHE/bin/kubeconform"
  # A go-installed kubeconform reports no version: a stamp file records it.
  if [[ -x "$KUBECONFORM" && "$(cat "$KUBECONFORM.version" 2>/dev/null || true)" == "$KUBECONFORM_VERSION" ]]; then
    return 0
  fi
  command -v go >/dev/null 2>&1 || { echo "go not found (expected /usr/local/go/bin/go)"; return 1; }
  log "installing kubeconform $KUBECONFORM_VERSION with go install"
  mkdir -p "$SLIPSTREAM_CACHE/bin"
  GOBIN="$SLIPSTREAM_CACHE/bin" GOFLAGS=-mod=mod \
    go install "github.com/yannh/kubeconform/cmd/kubeconform@$KUBECONFORM_VERSION" >"$WORK/go.log" 2>&1 || {
    cat "$WORK/go.log"
    return 1
  }
  printf '%s\n' "$KUBECONFORM_VERSION" >"$KUBECONFORM.version"
}

# Unpacks the strict Kubernetes JSON schemas of K8S_VERSION from the PyPI
# package kubernetes-validate into $SLIPSTREAM_CACHE/k8s-schemas in the layout
# kubeconform expects, with the shared definitions referenced by file:// URL.
ensure_schemas() {
  SCHEMA_ROOT="$SLIPSTREAM_CACHE/k8s-schemas/kubernetes-validate-$K8S_SCHEMA_PACKAGE_VERSION"
  local dir="$SCHEMA_ROOT/v$K8S_VERSION-standalone-strict"
  [[ -f "$dir/.complete" ]] && return 0
  local wheel_dir="$SLIPSTREAM_CACHE/downloads"
  local wheel="$wheel_dir/kubernetes_validate-$K8S_SCHEMA_PACKAGE_VERSION-py3-none-any.whl"
  if [[ ! -f "$wheel" ]]; then
    log "downloading kubernetes-validate $K8S_SCHEMA_PACKAGE_VERSION (Kubernetes JSON schemas) from PyPI"
    mkdir -p "$wheel_dir"
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$wheel_dir" \
      "kubernetes-validate==$K8S_SCHEMA_PACKAGE_VERSION" || return 1
  fi
  log "unpacking the v$K8S_VERSION strict schemas"
  rm -rf "$dir"
  mkdir -p "$dir"
  python3 - "$wheel" "v$K8S_VERSION-local-strict" "$dir" <<'PY' || return 1
import json, os, sys, zipfile
wheel, version_dir, out = sys.argv[1:]
prefix = f"kubernetes_validate/kubernetes-json-schema/{version_dir}/"
defs_url = "file://" + os.path.join(os.path.abspath(out), "_definitions.json")
with zipfile.ZipFile(wheel) as z:
    names = [n for n in z.namelist() if n.startswith(prefix) and n.endswith(".json")]
    if not names:
        sys.exit(f"{version_dir} not in {wheel}")
    for n in names:
        base = n[len(prefix):]
        text = z.read(n).decode()
        if base == "_definitions.json":
            d = json.loads(text)
            d.pop("$id", None)  # resolve its internal #/$defs refs against the file
            text = json.dumps(d)
        else:
            text = text.replace('"/api/_definitions.json#', f'"{defs_url}#')
        with open(os.path.join(out, base), "w") as f:
            f.write(text)
print(f"    {len(names)} schemas")
PY
  touch "$dir/.complete"
}

check_k8s() {
  if ! ensure_kubeconform; then
    fail k8s "kubeconform $KUBECONFORM_VERSION could not be installed"
    return
  fi
  if ! ensure_schemas; then
    fail k8s "no offline Kubernetes schemas (PyPI kubernetes-validate $K8S_SCHEMA_PACKAGE_VERSION)"
    return
  fi
  local location="$SCHEMA_ROOT/{{.NormalizedKubernetesVersion}}-standalone{{.StrictSuffix}}/{{.ResourceKind}}{{.KindSuffix}}.json"
  local -a kc=("$KUBECONFORM" -strict -summary -kubernetes-version "$K8S_VERSION" -schema-location "$location")
  local out rc=0
  out="$("${kc[@]}" "$K8S_DIR" 2>&1)" || rc=$?
  printf '%s\n' "$out" | sed 's/^/    /'
  if [[ $rc -ne 0 ]] || ! grep -qE 'Invalid: 0, Errors: 0, Skipped: 0' <<<"$out"; then
    fail k8s "kubeconform -strict found problems in deploy/k8s (Kubernetes $K8S_VERSION schemas)"
    return
  fi
  # Self-test: the schemas really apply (an unknown field must be rejected).
  cat >"$WORK/bad.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: bad}
spec:
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: x
          imagePullPolicy: IfNotPresent
          livenessProbe: {tcpSocket: {port: 6123}, bogusField: 1}
EOF
  if "${kc[@]}" "$WORK/bad.yaml" >"$WORK/bad.out" 2>&1 || ! grep -q 'Invalid: 1' "$WORK/bad.out"; then
    sed 's/^/    /' "$WORK/bad.out"
    fail k8s "self-test: kubeconform did not reject an unknown field; the schemas are not applied"
    return
  fi
  # N workers: replicas == cluster.min-workers, pod IP advertised, data port.
  if ! "$SYS_PY" - "$K8S_DIR" <<'PY'; then
import glob, os, re, sys, yaml
docs = []
for f in sorted(glob.glob(os.path.join(sys.argv[1], "*.yaml"))):
    docs += [d for d in yaml.safe_load_all(open(f)) if d]
def find(kind, name):
    return next((d for d in docs if d.get("kind") == kind and d["metadata"]["name"] == name), None)
errors = []
cm = find("ConfigMap", "slipstream-config")
sts = find("StatefulSet", "slipstream-worker")
coord = find("Deployment", "slipstream-coordinator")
if not (cm and sts and coord):
    sys.exit("    problem: ConfigMap slipstream-config, StatefulSet slipstream-worker or Deployment slipstream-coordinator missing")
props = {}
for line in cm["data"]["application.properties"].splitlines():
    m = re.match(r"\s*([a-z][a-z0-9.-]*)\s*[=:]\s*(.*?)\s*$", line)
    if m:
        props[m.group(1)] = m.group(2)
min_workers = props.get("cluster.min-workers", "1")
for a in coord["spec"]["template"]["spec"]["containers"][0].get("args", []):
    if a.startswith("-Dcluster.min-workers="):
        min_workers = a.split("=", 1)[1]  # a coordinator override would win
replicas = sts["spec"].get("replicas", 1)
if str(replicas) != min_workers:
    errors.append(f"StatefulSet replicas {replicas} != cluster.min-workers {min_workers} of the coordinator")
c = sts["spec"]["template"]["spec"]["containers"][0]
env = {e["name"]: e for e in c.get("env", [])}
if env.get("POD_IP", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") != "status.podIP":
    errors.append("worker: env POD_IP is not the downward API's status.podIP")
if "-Dtaskmanager.host=$(POD_IP)" not in c.get("args", []):
    errors.append("worker: args lack -Dtaskmanager.host=$(POD_IP)")
if "-Dtaskmanager.data.port=6121" not in c.get("args", []):
    errors.append("worker: args lack -Dtaskmanager.data.port=6121")
if 6121 not in [p.get("containerPort") for p in c.get("ports", [])]:
    errors.append("worker: containerPort 6121 missing")
for e in errors:
    print(f"    problem: {e}")
if not errors:
    print(f"    workers: replicas {replicas} == cluster.min-workers {min_workers}; POD_IP advertised; data port 6121")
sys.exit(1 if errors else 0)
PY
    fail k8s "deploy/k8s: the worker wiring breaks a rule above"
    return
  fi
  ok k8s "kubeconform $KUBECONFORM_VERSION -strict: deploy/k8s valid against Kubernetes v$K8S_VERSION schemas (kubernetes-validate $K8S_SCHEMA_PACKAGE_VERSION); unknown-field self-test rejected; replicas == cluster.min-workers, pod IP advertised"
}

#------------------------------------------------------------------------------
# runtime
#------------------------------------------------------------------------------
# Package names of the runtime stage's apt-get install.
dockerfile_runtime_packages() {
  awk '/^FROM debian:bookworm-slim/ {on=1} on' "$DOCKERFILE" |
    sed -e 's/#.*$//' | tr '\n' ' ' | sed -e 's/\\ / /g' |
    grep -oE 'apt-get install[^&]*' | sed -n 1p | tr ' ' '\n' |
    grep -E '^[a-z0-9][a-z0-9.+-]+$' | grep -vxE 'apt-get|install' || true
}

# dpkg package owning a library path that ldd printed (merged /usr aware).
owner_of() {
  local path="$1" real cand pkg
  real="$(readlink -f "$path")"
  for cand in "$path" "/usr$path" "${path#/usr}" "$real"; do
    pkg="$(dpkg -S "$cand" 2>/dev/null | sed -n 1p | cut -d: -f1)" || true
    if [[ -n "$pkg" ]]; then
      printf '%s\n' "$pkg"
      return 0
    fi
  done
  return 1
}

check_runtime() {
  local b
  for b in "${BINARIES[@]}"; do
    if [[ ! -x "$BIN_DIR/$b" ]]; then
      fail runtime "$BIN_DIR/$b missing: run scripts/build.sh first"
      return
    fi
  done
  mapfile -t listed < <(dockerfile_runtime_packages)
  if [[ ${#listed[@]} -eq 0 ]]; then
    fail runtime "no apt-get install package list found in the Dockerfile's bookworm-slim stage"
    return
  fi
  local -A in_list=() closure=() direct=() all=()
  local p policy errors=0
  for p in "${listed[@]}"; do in_list["$p"]=1; done

  # Every listed package must exist in bookworm's apt.
  for p in "${listed[@]}"; do
    policy="$(apt-cache policy "$p" 2>/dev/null || true)"
    if ! grep -qE 'Candidate: [0-9]' <<<"$policy"; then
      echo "    $p: no such package (apt-cache policy)"
      errors=$((errors + 1))
    fi
  done
  # What apt installs for the list: the packages and their dependencies.
  while read -r p; do
    p="${p%%:*}"
    [[ "$p" =~ ^[a-z0-9] ]] && closure["$p"]=1
  done < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${listed[@]}" 2>/dev/null | grep -v '^ ' || true)

  local lib path pkg needed
  local -A owner=()
  for b in "${BINARIES[@]}"; do
    needed=" $(readelf -d "$BIN_DIR/$b" | sed -n 's/.*Shared library: \[\(.*\)\].*/\1/p' | tr '\n' ' ') "
    while read -r lib path; do
      [[ -n "$path" ]] || continue
      if [[ "$path" == "not" ]]; then
        echo "    $b: $lib not found on this machine"
        errors=$((errors + 1))
        continue
      fi
      # dpkg -S is slow: ask once per library path.
      if [[ -z "${owner[$path]:-}" ]]; then
        owner["$path"]="$(owner_of "$path" || true)"
      fi
      pkg="${owner[$path]}"
      if [[ -z "$pkg" ]]; then
        echo "    $b: no package owns $path"
        errors=$((errors + 1))
        continue
      fi
      all["$pkg"]=1
      [[ "$needed" == *" $lib "* ]] && direct["$pkg"]=1
    done < <(ldd "$BIN_DIR/$b" | awk '$2 == "=>" {print $1, $3}')
  done

  for pkg in "${!direct[@]}"; do
    # libc6 is Essential in every Debian image.
    if [[ -z "${in_list[$pkg]:-}" && "$pkg" != libc6 ]]; then
      echo "    directly linked library package $pkg is not in the Dockerfile's runtime list"
      errors=$((errors + 1))
    fi
  done
  for pkg in "${!all[@]}"; do
    if [[ -z "${in_list[$pkg]:-}" && -z "${closure[$pkg]:-}" ]]; then
      echo "    library package $pkg is neither listed nor pulled in by the listed packages"
      errors=$((errors + 1))
    fi
  done
  echo "    runtime list (${#listed[@]}): ${listed[*]}"
  echo "    linked packages (${#all[@]}, ${#direct[@]} direct): $(printf '%s\n' "${!all[@]}" | sort | tr '\n' ' ')"
  if [[ $errors -eq 0 ]]; then
    ok runtime "every library the ${#BINARIES[@]} binaries link comes from the Dockerfile's runtime packages"
  else
    fail runtime "$errors problem(s) with the Dockerfile's runtime package list"
  fi
}

#------------------------------------------------------------------------------
# keys
#------------------------------------------------------------------------------
check_keys() {
  if [[ ! -x "$BIN_DIR/slipstream-worker" || ! -x "$BIN_DIR/slipstream-coordinator" ]]; then
    fail keys "binaries missing: run scripts/build.sh first"
    return
  fi
  local known used k bad=0
  known="$({ "$BIN_DIR/slipstream-worker" --help; "$BIN_DIR/slipstream-coordinator" --help; } 2>&1 |
    sed -n 's/^  \([a-z][a-z0-9.-]*\)$/\1/p' | sort -u)"
  used="$({
    cat "$COMPOSE_FILE" "$K8S_DIR"/*.yaml | grep -vE '^[[:space:]]*#' |
      grep -oE -- '-D[a-z][a-z0-9.-]*=' | sed -e 's/^-D//' -e 's/=$//'
    sed -n 's/^    \([a-z][a-z0-9.-]*\)=.*/\1/p' "$K8S_DIR/configmap.yaml"
  } | sort -u)"
  for k in $used; do
    if ! grep -qxF "$k" <<<"$known"; then
      echo "    unknown configuration key: $k"
      bad=$((bad + 1))
    fi
  done
  if [[ $bad -eq 0 ]]; then
    ok keys "$(wc -w <<<"$used") configuration keys used by compose/k8s are known to the binaries"
  else
    fail keys "$bad unknown configuration key(s)"
  fi
}

check_compose
check_k8s
check_runtime
check_keys

log "finished in $(elapsed_since "$START")"
if [[ ${#FAILED[@]} -gt 0 ]]; then
  log "FAILED: ${FAILED[*]}"
  exit 1
fi
log "all checks passed"
