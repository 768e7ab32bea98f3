#!/usr/bin/env bash
# ./dev compose-check: bring docker-compose.yml up for real, check it end to end (check.py)
# and take it all down again. Runs as root: it installs Docker when missing and starts its
# own dockerd, which it stops afterwards, undoing what that dockerd changed on the host: the
# bridges, iptables chains and rules it added, the FORWARD policy and ip_forward. A dockerd
# that already answers is used and left alone, and so is everything else.
#
# Docker is Debian's: docker.io (20.10) and docker-compose 1.29 (Compose v1). Bookworm has no
# Compose v2 plugin, and PyPI only has v1, so the check runs the stack with v1, which reads
# the same file (`${VAR:-default}`, depends_on conditions; pull_policy it ignores).
set -euo pipefail
cd "$(dirname "$0")/../.."
HERE=deploy/compose-check

# Debian's docker first: a newer CLI in /usr/local/bin may not talk to Debian's dockerd.
export PATH="/usr/bin:/usr/sbin:/bin:/sbin:$PATH"
export DEBIAN_FRONTEND=noninteractive
PROJECT="compose-check-$(date +%Y%m%d%H%M%S)-$$"
HEALTHY_WITHIN=${COMPOSE_CHECK_HEALTHY_WITHIN:-240}
WAIT_ALL_SERVICES=(postgres mailpit gateway-1 gateway-2)

phase=start
phase_started=$SECONDS
timings=()
own_dockerd=
dockerd_pid=
dockerd_log=
# The host as it was before our dockerd started, to put back after.
ip_forward_before=
forward_policy_before=
bridges_before=
rules_before=
standins_file=
stack_up=
up_log=

begin() {
  phase=$1
  phase_started=$SECONDS
  echo "== compose-check: $phase"
}
done_phase() { timings+=("$(printf '%-12s %4ds' "$phase" $((SECONDS - phase_started)))"); }

compose() { docker-compose -p "$PROJECT" "$@"; }

install_docker() {
  if command -v dockerd >/dev/null && [ -x /usr/bin/docker ] && [ -x /usr/bin/docker-compose ] &&
     command -v debootstrap >/dev/null; then
    echo "$(docker --version), docker-compose $(docker-compose version --short)"
    return
  fi
  [ "$(id -u)" = 0 ] || { echo "compose-check: installing Docker needs root" >&2; return 1; }
  apt-get update -qq
  apt-get install -y -qq docker.io docker-compose debootstrap >/dev/null
}

start_dockerd() {
  if docker info >/dev/null 2>&1; then
    echo "a dockerd is already running: using it, and leaving it running"
    return
  fi
  if ! iptables -S FORWARD >/dev/null; then
    echo "compose-check: iptables cannot be read, so what dockerd adds could not be undone" >&2
    return 1
  fi
  ip_forward_before=$(sysctl -n net.ipv4.ip_forward)
  forward_policy_before=$(forward_policy)
  bridges_before=$(docker_bridges)
  rules_before=$(docker_rules)
  dockerd_log=$(mktemp /tmp/compose-check-dockerd.XXXXXX.log)
  own_dockerd=1
  dockerd --pidfile /run/compose-check-dockerd.pid >"$dockerd_log" 2>&1 &
  dockerd_pid=$!
  for _ in $(seq 120); do
    if docker info >/dev/null 2>&1; then
      echo "dockerd $dockerd_pid started (log: $dockerd_log)"
      return
    fi
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then break; fi
    sleep 0.5
  done
  tail -n 30 "$dockerd_log" >&2
  echo "compose-check: dockerd did not answer" >&2
  return 1
}

# What Docker puts on a host, one line each as `ip` and `iptables -S` print it: its bridges
# (docker0, br-<network id>); in the filter and nat tables its chains (DOCKER*), their rules
# and the rules elsewhere that jump to them or name its bridges (its MASQUERADE rules).
docker_bridges() {
  ip -o link show type bridge | awk -F': ' '{print $2}' | grep -E '^(docker0|br-[0-9a-f]{12})$' ||
    true
}
docker_rules() {
  local table
  for table in filter nat; do
    iptables -t "$table" -S | grep -E -- '^-[NA] DOCKER|-j DOCKER|docker0|br-[0-9a-f]{12}' |
      sed "s/^/$table /" || true
  done
}
forward_policy() { iptables -S FORWARD | awk '$1 == "-P" {print $3}'; }

# lines_only_in A B: the lines of A that B lacks, in A's order (a line B has twice takes two).
lines_only_in() {
  awk 'NR == FNR { if ($0 != "") held[$0]++; next } $0 != "" && !(held[$0]-- > 0)' \
    <(printf '%s\n' "$2") <(printf '%s\n' "$1")
}

# Only the difference our own dockerd made: the rules, chains and bridges it added go, what
# it removed of those there before (Docker flushes its chains as it starts) comes back, and
# the FORWARD policy (Docker sets DROP) and ip_forward are as they were.
stop_dockerd() {
  if [ -z "$own_dockerd" ]; then
    echo "the dockerd that was running before is left running"
    return
  fi
  if kill -0 "$dockerd_pid" 2>/dev/null; then
    kill -TERM "$dockerd_pid"
    for _ in $(seq 60); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$dockerd_pid" 2>/dev/null; then
      echo "dockerd $dockerd_pid did not stop in 30 s: killed" >&2
      kill -KILL "$dockerd_pid" 2>/dev/null || true
    fi
  fi
  wait "$dockerd_pid" 2>/dev/null || true
  local rules_now added removed table rule bridge
  rules_now=$(docker_rules)
  added=$(lines_only_in "$rules_now" "$rules_before")
  removed=$(lines_only_in "$rules_before" "$rules_now")
  # `TABLE -A CHAIN ...` as printed: deleted (and put back) with the same words.
  while read -r table rule; do
    case $rule in -A*) eval "iptables -t $table -D ${rule#-A }" 2>/dev/null || true ;; esac
  done <<<"$added"
  while read -r table rule; do
    case $rule in -N*) iptables -t "$table" -X "${rule#-N }" 2>/dev/null || true ;; esac
  done <<<"$added"
  while read -r table rule; do
    case $rule in -N*) iptables -t "$table" -N "${rule#-N }" 2>/dev/null || true ;; esac
  done <<<"$removed"
  while read -r table rule; do
    case $rule in -A*) eval "iptables -t $table $rule" 2>/dev/null || true ;; esac
  done <<<"$removed"
  for bridge in $(lines_only_in "$(docker_bridges)" "$bridges_before"); do
    ip link del "$bridge" 2>/dev/null || true
  done
  if [ -n "$forward_policy_before" ]; then iptables -P FORWARD "$forward_policy_before"; fi
  sysctl -q -w net.ipv4.ip_forward="$ip_forward_before"
  rm -f "$dockerd_log"
  echo "dockerd stopped; iptables: $(grep -c . <<<"$added") line(s) it added removed," \
    "$(grep -c . <<<"$removed") it removed put back; the bridges it added removed;" \
    "FORWARD policy ${forward_policy_before:-unknown} and ip_forward=$ip_forward_before as before"
}

wait_healthy() {
  local deadline=$((SECONDS + HEALTHY_WITHIN)) service id state waiting
  while :; do
    waiting=()
    for service in "${WAIT_ALL_SERVICES[@]}"; do
      id=$(compose ps -q "$service")
      state=$([ -n "$id" ] && docker inspect -f '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$id" || echo missing)
      case $state in
        running/healthy) ;;
        exited/* | dead/* | */unhealthy) echo "compose-check: $service is $state" >&2; return 1 ;;
        *) waiting+=("$service:$state") ;;
      esac
    done
    [ ${#waiting[@]} -eq 0 ] && { echo "all services healthy"; return; }
    if [ $SECONDS -ge $deadline ]; then
      echo "compose-check: not healthy within ${HEALTHY_WITHIN}s: ${waiting[*]}" >&2
      return 1
    fi
    sleep 2
  done
}

finish() {
  local status=$? failed_phase=$phase
  trap - EXIT INT TERM
  set +e
  [ "$status" = 0 ] || done_phase
  if [ -n "$stack_up" ]; then
    if [ "$status" != 0 ]; then
      [ "$failed_phase" = up ] && tail -n 40 "$up_log" >&2
      echo "== compose-check: the stack's last log lines" >&2
      compose ps >&2
      compose logs --no-color --tail=40 >&2
    fi
    rm -f "$up_log"
    begin down
    compose down -v --remove-orphans
    done_phase
  fi
  begin stop-docker
  stop_dockerd
  done_phase
  echo "== compose-check: timings"
  printf '   %s\n' "${timings[@]}"
  echo "   total      $(printf '%4ds' "$SECONDS")"
  # Said in the verdict, so that a reader of the log knows what the stack ran on.
  local with=
  if [ -n "$standins_file" ] && [ -s "$standins_file" ]; then
    with=", with stand-in base images for: $(paste -sd, "$standins_file" | sed 's/,/, /g')"
    with+=" (Docker Hub could not be reached; built from Debian under those names)"
  fi
  [ -z "$standins_file" ] || rm -f "$standins_file"
  if [ "$status" = 0 ]; then
    echo "compose-check: passed$with"
  else
    echo "compose-check: FAILED in phase '$failed_phase' (exit $status)$with" >&2
  fi
  exit "$status"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

begin install; install_docker; done_phase
begin dockerd; start_dockerd; done_phase
standins_file=$(mktemp /tmp/compose-check-standins.XXXXXX)
begin images; "$HERE/base-images.sh" "$standins_file"; done_phase

begin up
stack_up=1
# Proxies from the environment reach pip in the gateway's image build.
build_args=()
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!var:-}" ]; then build_args+=(--build-arg "$var=${!var}"); fi
done
# The image build's steps go to a file, shown when `up` fails.
up_log=$(mktemp /tmp/compose-check-up.XXXXXX.log)
if [ ${#build_args[@]} -gt 0 ]; then compose build "${build_args[@]}" >>"$up_log" 2>&1; fi
compose up -d --build >>"$up_log" 2>&1
grep -E '^(Successfully tagged|Creating|Starting)' "$up_log" || true
done_phase

begin healthy; wait_healthy; done_phase
begin check; python3 "$HERE/check.py" --project "$PROJECT"; done_phase
