#!/usr/bin/env bash
# The base images docker-compose.yml and the Dockerfile name: the real ones from Docker Hub
# when it answers, otherwise stand-ins built from Debian bookworm (standins/, one folder per
# image) under the same names, so the compose file runs unmodified.
#
# Cached: a real image already here is used as it is; Debian's root filesystem
# (debian-bookworm:local) is made once; a stand-in is rebuilt only when its recipe changed
# (label compose-check.recipe: a hash of its build context and base image).
#
#   base-images.sh [FILE]   FILE, when given, gets the name of each image stood in for, a line each
set -euo pipefail
STANDINS_FILE=${1:+$(realpath "$1")}
cd "$(dirname "$0")"

DEBIAN_BASE=debian-bookworm:local
STANDIN_LABEL=compose-check.standin
RECIPE_LABEL=compose-check.recipe
# In order: the mailpit stand-in is built on the python one.
IMAGES=("python:3.12-slim python" "postgres:16 postgres" "axllent/mailpit:v1.21 mailpit")

label() { docker image inspect -f "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null || true; }
exists() { docker image inspect "$1" >/dev/null 2>&1; }

# The Debian mirror this host's apt uses (it may be a proxy or a local mirror).
debian_mirror() {
  local uri
  uri=$(grep -shE '^[[:space:]]*(deb|URIs:)[[:space:]]' /etc/apt/sources.list \
          /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources |
        grep -oE 'https?://[^[:space:]]+/debian/?([[:space:]]|$)' | head -n1 | tr -d '[:space:]')
  echo "${uri:-http://deb.debian.org/debian}"
}

debian_base() {
  if exists "$DEBIAN_BASE"; then
    [ -n "${debian_said:-}" ] || echo "base-images: $DEBIAN_BASE is here (cached)"
    debian_said=1
    return
  fi
  local root mirror started=$SECONDS
  root=$(mktemp -d /tmp/compose-check-rootfs.XXXXXX)
  mirror=$(debian_mirror)
  echo "base-images: debootstrap bookworm from $mirror"
  if ! debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -rf "$root" "$root.log"
    echo "base-images: debootstrap failed" >&2
    return 1
  fi
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | docker import - "$DEBIAN_BASE" >/dev/null
  rm -rf "$root" "$root.log"
  echo "base-images: imported $DEBIAN_BASE ($((SECONDS - started)) s)"
}

# context FOLDER DIR: the stand-in's build context; the python one also carries this host's
# extra CA certificates and pip index.
context() {
  cp -r "standins/$1/." "$2/"
  if [ "$1" = python ]; then
    mkdir -p "$2/ca"
    cp /usr/local/share/ca-certificates/*.crt "$2/ca/" 2>/dev/null || true
    touch "$2/ca/.keep"
    python3 pipconf.py >"$2/pip.conf"
  fi
}

# recipe DIR BASE: what the stand-in is made of: its context and the image it starts from.
recipe() {
  { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
    docker image inspect -f '{{.Id}}' "$2"; } | sha256sum | cut -c1-16
}

# Proxies from the environment reach apt and pip in the builds (not kept in the images).
proxy_args=()
for var in http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
  if [ -n "${!var:-}" ]; then proxy_args+=(--build-arg "$var=${!var}"); fi
done

standin() {
  local image=$1 folder=$2 ctx base hash started
  ctx=$(mktemp -d /tmp/compose-check-ctx.XXXXXX)
  context "$folder" "$ctx"
  base=$(sed -n 's/^FROM[[:space:]]\+//p' "$ctx/Dockerfile" | head -n1)
  if [ "$base" = "$DEBIAN_BASE" ]; then debian_base; fi
  hash=$(recipe "$ctx" "$base")
  if [ "$(label "$image" "$RECIPE_LABEL")" = "$hash" ]; then
    echo "base-images: $image: stand-in, cached (recipe $hash)"
  else
    echo "base-images: $image: building the stand-in (recipe $hash)"
    started=$SECONDS
    if ! docker build -q "${proxy_args[@]}" --label "$RECIPE_LABEL=$hash" -t "$image" "$ctx" \
         >"$ctx.log" 2>&1; then
      tail -n 40 "$ctx.log" >&2
      rm -rf "$ctx" "$ctx.log"
      echo "base-images: building the $image stand-in failed" >&2
      return 1
    fi
    rm -f "$ctx.log"
    echo "base-images: $image: stand-in built ($((SECONDS - started)) s)"
  fi
  rm -rf "$ctx"
}

# One failed pull is enough: Docker Hub is out of reach, and the others would only wait too.
hub=yes
for entry in "${IMAGES[@]}"; do
  read -r image folder <<<"$entry"
  if exists "$image" && [ -z "$(label "$image" "$STANDIN_LABEL")" ]; then
    echo "base-images: $image: real image (cached)"
  elif [ "$hub" = yes ] && timeout 180 docker pull -q "$image" >/dev/null 2>&1; then
    echo "base-images: $image: real image (pulled from Docker Hub)"
  else
    if [ "$hub" = yes ]; then echo "base-images: Docker Hub cannot be reached: stand-ins"; fi
    hub=no
    standin "$image" "$folder"
    if [ -n "$STANDINS_FILE" ]; then echo "$image" >>"$STANDINS_FILE"; fi
  fi
done
