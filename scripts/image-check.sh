#!/usr/bin/env bash
# Prove the Dockerfile without a Docker engine or a registry (run by .ci/run, as root):
#   1. a Debian bookworm base with python3.11 from debootstrap (tarball cached between runs),
#   2. `buildah bud` of our Dockerfile on it, with the local torch wheel and the host's CA bundle
#      bind-mounted for pip (build args only this check sets),
#   3. `podman run` of the image three ways - Docker's defaults (user app), as root (snippets drop
#      to the sandbox uid), and hardened like deploy/kubernetes.yaml - each time waiting for the
#      image's own HEALTHCHECK, printing /api/health and checking a snippet's snapshot (and
#      that the page draws an autograd graph with Graphviz),
#   4. removal of the containers and images. Every step is timed; a failure names its step.
# Knobs: TP_IMAGE_CACHE (base tarball dir), TP_DEBIAN_MIRROR, TP_TORCH_WHEELS (dir with the wheel).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE_DIR="${TP_IMAGE_CACHE:-/var/cache/tensor-playground}"
WHEELS="${TP_TORCH_WHEELS:-/opt/wheels}"
HOST_CA=/etc/ssl/certs/ca-certificates.crt
BASE_PACKAGES=python3,python3-venv     # bookworm's python3 is 3.11, like python:3.11-slim
RUN_ID="check-$$"
IMAGE="localhost/tensor-playground:$RUN_ID"
BASE_IMAGE="localhost/tensor-playground-base:$RUN_ID"
SANDBOX_UID=64123                      # the Dockerfile's sandbox user
HEALTH_WAIT_S=120
PY=python3
HELPER=scripts/image_check.py
# shellcheck source=scripts/retry-transient.sh
source scripts/retry-transient.sh
LOG_DIR="$(mktemp -d /tmp/image-check.XXXXXX)"

timings=()
current_step="setup"
containers=()

# podman 4.3 reports every missing systemd timer for a HEALTHCHECK as an error, though it goes
# on; keep its other complaints visible.
quiet_podman() { podman "$@" 2> >(grep -v 'unable to get systemd connection' >&2); }

say() { printf '\n== image check: %s\n' "$*"; }

step() {  # step NAME CMD...: run, time, and remember it for the summary
  current_step="$1"; shift
  say "$current_step"
  local t0; t0=$(date +%s%N)
  "$@"
  timings+=("$(printf '%-40s %s' "$current_step" "$(since "$t0")")")
}

since() { local ms=$(( ($(date +%s%N) - $1) / 1000000 )); printf '%d.%d s' $((ms / 1000)) $((ms % 1000 / 100)); }

summary() {
  printf '\nimage check timings:\n'
  local line; for line in "${timings[@]}"; do printf '  %s\n' "$line"; done
}

cleanup() {
  local rc=$?
  if [ $rc -ne 0 ]; then
    printf '\n!! IMAGE CHECK FAILED in step "%s" (exit %s); logs in %s\n' "$current_step" "$rc" "$LOG_DIR" >&2
    local c; for c in "${containers[@]}"; do
      podman container exists "$c" || continue
      echo "--- last log lines of container $c:" >&2
      podman logs --tail 40 "$c" >&2 2>&1 || true
    done
  fi
  local t0; t0=$(date +%s%N)
  for c in "${containers[@]}"; do podman rm -f -t 5 "$c" >/dev/null 2>&1 || true; done
  podman rmi -f "$IMAGE" "$BASE_IMAGE" >/dev/null 2>&1 || true
  timings+=("$(printf '%-40s %s' "cleanup (containers, images)" "$(since "$t0")")")
  summary
  [ $rc -eq 0 ] && rm -rf "$LOG_DIR"
  exit $rc
}
trap cleanup EXIT

install_tools() {
  [ "$(id -u)" = 0 ] || { echo "image check needs root (debootstrap, podman storage)" >&2; exit 1; }
  local pkgs=(debootstrap buildah podman runc) missing=() p
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o Acquire::Retries=3 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  ls "$WHEELS"/torch-2.13.0+cpu-*.whl >/dev/null \
    || { echo "no torch-2.13.0+cpu wheel in $WHEELS (set TP_TORCH_WHEELS)" >&2; exit 1; }
  [ -r "$HOST_CA" ] || { echo "no CA bundle at $HOST_CA" >&2; exit 1; }
}

debian_mirror() {  # the mirror this machine's apt uses, so debootstrap goes where apt can
  [ -n "${TP_DEBIAN_MIRROR:-}" ] && { echo "$TP_DEBIAN_MIRROR"; return; }
  local uri
  uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -E '^(deb |URIs:)' | grep -oE 'https?://[^ ]+' | grep -E '/debian/?$' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

base_tarball() {  # cached by recipe: a new package list or suite means a new tarball
  local key; key=$(echo "bookworm minbase $BASE_PACKAGES" | sha256sum | cut -c1-12)
  BASE_TAR="$CACHE_DIR/bookworm-minbase-python3-$key.tar"
  if [ -s "$BASE_TAR" ]; then
    echo "cached: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
    return
  fi
  local mirror root; mirror=$(debian_mirror); root=$(mktemp -d /var/tmp/tp-rootfs.XXXXXX)
  echo "debootstrap bookworm from $mirror into $root"
  if ! debootstrap --variant=minbase --include="$BASE_PACKAGES" bookworm "$root" "$mirror" \
       >"$LOG_DIR/debootstrap.log" 2>&1; then
    tail -n 30 "$LOG_DIR/debootstrap.log" >&2; rm -rf "$root"; return 1
  fi
  # The image build runs apt-get update itself; downloaded .debs and lists are dead weight.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  mkdir -p "$CACHE_DIR"
  tar --numeric-owner -C "$root" -cf "$BASE_TAR.tmp" . && mv "$BASE_TAR.tmp" "$BASE_TAR"
  rm -rf "$root"
  echo "cached for next time: $BASE_TAR ($(du -h "$BASE_TAR" | cut -f1))"
}

import_base() {
  podman import --change 'CMD ["python3"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
  podman run --rm --runtime runc --network=host --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    "$BASE_IMAGE" python3 --version
}

build_image() {
  # PIP_EXTRA_INDEX_URL= : the PyTorch index is unreachable here; the local wheel replaces it.
  if ! retry_transient 3 "$LOG_DIR/build.log" \
       buildah bud --isolation chroot --format docker --pull=never \
       --build-arg BASE="$BASE_IMAGE" --build-arg PIP_EXTRA_INDEX_URL= \
       --build-arg PIP_FIND_LINKS=/wheels --build-arg PIP_CERT=/host-ca/ca-certificates.crt \
       -v "$WHEELS:/wheels:ro" -v "$(dirname "$HOST_CA"):/host-ca:ro" \
       -t "$IMAGE" .; then
    tail -n 40 "$LOG_DIR/build.log" >&2; return 1
  fi
  grep -E '^(\[[0-9]/[0-9]\] )?STEP|^Successfully installed' "$LOG_DIR/build.log" | cut -c1-150
  echo "image size: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
}

start_container() {  # start_container NAME PODMAN-RUN-ARGS...: start it, wait for HEALTHCHECK
  local name="$1-$RUN_ID"; shift
  PORT=$($PY "$HELPER" port)
  containers+=("$name")
  # Host network: the bridge network uses a private range that clashes here. runc: crun cannot
  # set the rlimits on this kernel. No systemd here to schedule the image's HEALTHCHECK, so it is
  # run by hand below.
  quiet_podman run -d --name "$name" --runtime runc --network=host \
    --ulimit nofile=4096:4096 --ulimit nproc=4096:4096 \
    -e TP_HOST=127.0.0.1 -e TP_PORT="$PORT" "$@" "$IMAGE" >/dev/null
  local t0 waited; t0=$(date +%s)
  until podman healthcheck run "$name" >/dev/null 2>&1; do
    waited=$(( $(date +%s) - t0 ))
    [ "$(podman inspect --format '{{.State.Running}}' "$name")" = true ] \
      || { echo "container $name exited" >&2; return 1; }
    [ "$waited" -lt "$HEALTH_WAIT_S" ] \
      || { echo "HEALTHCHECK still failing after ${HEALTH_WAIT_S}s" >&2; return 1; }
    sleep 0.5
  done
  echo "  HEALTHCHECK healthy after $(( $(date +%s) - t0 )) s (port $PORT)"
  $PY "$HELPER" health "$PORT"
}

stop_container() {  # SIGTERM must end the server through its lifespan shutdown (pool closed)
  local name="$1-$RUN_ID"
  quiet_podman stop -t 10 "$name" >/dev/null
  # To a file, not `| grep -q`: with pipefail, grep quitting early fails the pipe (SIGPIPE).
  podman logs "$name" >"$LOG_DIR/$name.log" 2>&1
  grep "Application shutdown complete" "$LOG_DIR/$name.log" >/dev/null \
    || { echo "server did not shut down cleanly on SIGTERM (log: $LOG_DIR/$name.log)" >&2; return 1; }
  quiet_podman rm "$name" >/dev/null
}

check_default() {  # `docker run` with Docker's default user, capabilities and seccomp profile
  start_container default
  $PY "$HELPER" snippet "$PORT"
  $PY "$HELPER" page "$PORT"
  stop_container default
}

check_root() {  # as root the server drops snippets to the sandbox uid
  start_container root --user root -e TP_REQUIRE_UID_DROP=true
  $PY "$HELPER" snippet "$PORT"
  $PY "$HELPER" uid "$PORT" "$SANDBOX_UID"
  stop_container root
}

check_hardened() {  # deploy/kubernetes.yaml's securityContext: read-only root, no capabilities
  start_container hardened --user 1000:1000 --read-only --read-only-tmpfs=false --tmpfs /tmp \
    --cap-drop=all \
    --security-opt=no-new-privileges
  $PY "$HELPER" snippet "$PORT"
  $PY "$HELPER" page "$PORT"
  stop_container hardened
}

step "tools (apt: debootstrap buildah podman)" install_tools
step "base tarball (debootstrap or cache)" base_tarball
step "podman import base" import_base
step "buildah bud Dockerfile" build_image
step "run: Docker defaults (user app)" check_default
step "run: --user root (sandbox uid drop)" check_root
step "run: hardened like kubernetes.yaml" check_hardened
current_step="cleanup"
say "passed"
