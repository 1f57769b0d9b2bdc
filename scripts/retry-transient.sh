# Sourced by image-check.sh. buildah re-executes itself for every RUN step (twice) from a copy of
# its binary in a sealed memfd; now and then the kernel refuses the seal with EBUSY (a page of the
# fresh copy is still referenced elsewhere, e.g. by reclaim or compaction), and the step fails
# before running anything. Only that error is retried: any other failure, or this one on every
# attempt, still fails the check.
TRANSIENT_REEXEC_ERROR='sealing memfd copy: Device or resource busy'

# retry_transient ATTEMPTS LOG CMD...: run CMD with stdout and stderr to LOG; again (LOG rewritten)
# while it fails with the transient re-exec error, up to ATTEMPTS runs. Returns CMD's last status.
retry_transient() {
  local attempts="$1" log="$2" n=1 rc; shift 2
  while :; do
    rc=0; "$@" >"$log" 2>&1 || rc=$?
    [ "$rc" -ne 0 ] && [ "$n" -lt "$attempts" ] && grep -qF "$TRANSIENT_REEXEC_ERROR" "$log" || return "$rc"
    echo "attempt $n of $attempts failed on the transient re-exec seal error (EBUSY); running again" >&2
    n=$((n + 1))
  done
}
