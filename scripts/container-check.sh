#!/usr/bin/env bash
# The container files, checked: with a container engine (podman or docker with a running
# daemon, and a compose command), builds the image, starts compose.yaml's stack and runs the
# seeds' curl flow against it (log in, call, refresh, log out, refused); without one, lints
# the files: Dockerfile, compose.yaml and deploy/kubernetes/ parse and hold what the docs
# promise, and every TOLLGATE_* variable they set is a setting (`tollgate check --strict`
# with those variables and stand-in secret files).
#
#   scripts/container-check.sh            the stack if an engine runs here, else the lint
#   scripts/container-check.sh --lint     the lint only
# BENCH_BINARY: the binary for the lint (default target/debug/tollgate, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

lint_only=false
[ "${1:-}" = "--lint" ] && lint_only=true

engine=""
compose=()
if ! $lint_only; then
  if command -v podman >/dev/null && podman info >/dev/null 2>&1; then
    engine=podman
    if command -v podman-compose >/dev/null; then compose=(podman-compose); else compose=(podman compose); fi
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
    engine=docker
    if docker compose version >/dev/null 2>&1; then compose=(docker compose)
    elif command -v docker-compose >/dev/null; then compose=(docker-compose); fi
  fi
  if [ -n "$engine" ] && [ ${#compose[@]} -gt 0 ] && ! "${compose[@]}" version >/dev/null 2>&1; then
    compose=()
  fi
fi

lint() {
  local binary="${BENCH_BINARY:-target/debug/tollgate}"
  [ -x "$binary" ] || cargo build -q -p tollgate
  binary=$(realpath "$binary")
  python3 - "$binary" <<'PY'
import os, re, subprocess, sys, tempfile
try:
    import yaml
except ImportError:
    sys.exit("container-check: python3-yaml is needed to lint the YAML files")

binary = sys.argv[1]
problems = []
def need(ok, what):
    if not ok:
        problems.append(what)

# Dockerfile: two stages, a non-root runtime, the binary's own health check, exec forms.
dockerfile = open("Dockerfile").read()
lines = [l.strip() for l in re.sub(r"\\\n", " ", dockerfile).splitlines()
         if l.strip() and not l.strip().startswith("#")]
froms = [l for l in lines if l.upper().startswith("FROM ")]
need(len(froms) >= 2 and " AS builder" in froms[0], "Dockerfile: a builder stage, then the runtime")
users = [l.split()[1] for l in lines if l.upper().startswith("USER ")]
need(users and users[-1].split(":")[0] not in ("0", "root"), "Dockerfile: the runtime user is not root")
health = [l for l in lines if l.upper().startswith("HEALTHCHECK ")]
need(health and '"healthcheck"' in health[-1], "Dockerfile: HEALTHCHECK runs `tollgate healthcheck`")
for word in ("ENTRYPOINT", "CMD"):
    found = [l for l in lines if l.upper().startswith(word + " ")]
    need(found and found[-1].split(None, 1)[1].startswith("["), f"Dockerfile: {word} in exec form (signals reach tollgate)")
docker_env = {}
for l in lines:
    if l.upper().startswith("ENV "):
        for name, value in re.findall(r"(\w+)=(\S+)", l):
            docker_env[name] = value

# compose.yaml: the three services, Tollgate built here, waiting for healthy dependencies.
stack = yaml.safe_load(open("compose.yaml"))
services = stack.get("services", {})
need({"tollgate", "postgres", "redis"} <= set(services), "compose.yaml: tollgate, postgres and redis")
tollgate = services.get("tollgate", {})
need(tollgate.get("build") == ".", "compose.yaml: tollgate is built from this folder")
depends = tollgate.get("depends_on", {})
need(all(depends.get(s, {}).get("condition") == "service_healthy" for s in ("postgres", "redis")),
     "compose.yaml: tollgate waits for healthy postgres and redis")
compose_env = tollgate.get("environment", {})

# deploy/kubernetes: a Deployment probed on /healthz and /readyz with secrets as files, a
# Service and a PodDisruptionBudget.
kinds, k8s_env = {}, {}
folder = "deploy/kubernetes"
for name in sorted(os.listdir(folder)):
    if name.endswith((".yaml", ".yml")):
        for doc in yaml.safe_load_all(open(os.path.join(folder, name))):
            if doc:
                kinds.setdefault(doc.get("kind"), []).append(doc)
need({"Deployment", "Service", "PodDisruptionBudget"} <= set(kinds), "kubernetes: Deployment, Service, PodDisruptionBudget")
for deployment in kinds.get("Deployment", []):
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    need(container.get("livenessProbe", {}).get("httpGet", {}).get("path") == "/healthz", "kubernetes: liveness on /healthz")
    need(container.get("readinessProbe", {}).get("httpGet", {}).get("path") == "/readyz", "kubernetes: readiness on /readyz")
    mounts = {m["name"]: m for m in container.get("volumeMounts", [])}
    secret_volumes = [v["name"] for v in pod.get("volumes", []) if "secret" in v]
    need(secret_volumes and all(mounts.get(v, {}).get("readOnly") for v in secret_volumes), "kubernetes: secrets mounted read-only as files")
    need(pod.get("securityContext", {}).get("runAsNonRoot") is True, "kubernetes: runAsNonRoot")
    k8s_env = {e["name"]: e.get("value", "") for e in container.get("env", [])}
    leaked = [e["name"] for e in container.get("env", []) if "valueFrom" in e]
    need(not leaked, f"kubernetes: secrets as files, not variables ({leaked})")
pdb = kinds.get("PodDisruptionBudget", [{}])[0]
need(pdb.get("spec", {}).get("selector", {}).get("matchLabels") ==
     kinds.get("Deployment", [{}])[0].get("spec", {}).get("selector", {}).get("matchLabels"),
     "kubernetes: the PodDisruptionBudget selects the Deployment's pods")

# Every variable these files set is a setting: `check --strict`, with stand-in secret files.
stand_ins = {
    "SIGNING_KEY_FILE": "0123456789abcdef" * 8,
    "KEYS_ENCRYPTION_KEY_FILE": "0123456789abcdef" * 4,
    "DATABASE_URL_FILE": "postgres://tollgate:pw@postgres:5432/tollgate",
    "REDIS_URL_FILE": "redis://redis:6379/0",
    "METRICS_TOKEN_FILE": "metrics-token",
}
with tempfile.TemporaryDirectory() as work:
    for source, env in (("Dockerfile", {}), ("compose.yaml", compose_env), ("kubernetes", k8s_env)):
        merged = dict(docker_env)
        merged.update({k: str(v) for k, v in env.items()})
        run_env = {k: v for k, v in os.environ.items() if not k.upper().startswith("TOLLGATE_") and k != "DATABASE_URL"}
        for name, value in merged.items():
            key = name[len("TOLLGATE_"):] if name.upper().startswith("TOLLGATE_") else name
            if key.upper() in stand_ins:
                path = os.path.join(work, key.lower())
                with open(path, "w") as f:
                    f.write(stand_ins[key.upper()] + "\n")
                value = path
            run_env[name] = value
        checked = subprocess.run([binary, "check", "--strict"], env=run_env, cwd=work,
                                 capture_output=True, text=True)
        need(checked.returncode == 0, f"{source}: `tollgate check --strict` refused its settings:\n{checked.stderr}")

# The HEALTHCHECK's command line parses, and fails (1, not 2) when nothing answers.
probe = subprocess.run([binary, "healthcheck", "--timeout", "4s", "--address", "127.0.0.1:1"],
                       capture_output=True, text=True, env={"PATH": os.environ.get("PATH", "")})
need(probe.returncode == 1 and "healthz failed" in probe.stderr, f"healthcheck exits 1 with nothing to ask: {probe.returncode} {probe.stderr}")

if problems:
    sys.exit("container-check: " + "\n  ".join(["lint failed:"] + problems))
print("container-check: Dockerfile, compose.yaml and deploy/kubernetes/ linted (no container engine used)")
PY
}

if [ -z "$engine" ] || [ ${#compose[@]} -eq 0 ]; then
  $lint_only || echo "container-check: no running container engine with compose here; linting the files instead"
  lint
  exit 0
fi

echo "container-check: building and starting the stack with ${compose[*]}"
project="tollgate-check-$$"
cleanup() { "${compose[@]}" -p "$project" down -v >/dev/null 2>&1 || true; }
trap cleanup EXIT
"${compose[@]}" -p "$project" up -d --build
base=http://127.0.0.1:8000
for _ in $(seq 1 120); do
  curl -sf "$base/readyz" >/dev/null && break
  sleep 1
done
curl -sf "$base/readyz" >/dev/null || { "${compose[@]}" -p "$project" logs tollgate; exit 1; }

"${compose[@]}" -p "$project" exec -T -e TOLLGATE_SUPERUSER_PASSWORD=user1-password tollgate \
  tollgate createsuperuser --username user1 --email user1@example.com --no-input
field() { python3 -c "import json,sys; print(json.load(sys.stdin)[sys.argv[1]])" "$1"; }
pair=$(curl -sf -X POST "$base/api/token/" -d username=user1 -d password=user1-password)
access=$(printf '%s' "$pair" | field access)
refresh=$(printf '%s' "$pair" | field refresh)
curl -sf "$base/api/index/" -H "Authorization: Bearer $access" | grep -q '"username":"user1"'
curl -sf -X POST "$base/api/token/refresh/" -d "refresh=$refresh" | field access >/dev/null
curl -sf -X POST "$base/api/token/blacklist/" -d "refresh=$refresh" >/dev/null
refused=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/api/token/refresh/" -d "refresh=$refresh")
[ "$refused" = 401 ] || { echo "container-check: a blacklisted refresh token was answered $refused" >&2; exit 1; }
# Health as the image's HEALTHCHECK asks it.
"${compose[@]}" -p "$project" exec -T tollgate tollgate healthcheck
echo "container-check: the image built, the stack started and the seeds' curl flow passed ($engine)"
