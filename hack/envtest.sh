#!/usr/bin/env bash
# Builds the control-plane binaries the tests and the embedded environment run against
# (kube-apiserver and etcd) from the Go module proxy into the given folder, once.
# setup-envtest's download index is not reachable everywhere, so we build them from source;
# the versions are pinned by hack/envtest/go.mod. Built binaries are kept in a per-user cache
# keyed by that go.sum, so other clones of the repository on the same machine reuse them.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/bin/k8s}"
cd "$root/hack/envtest"
key=$(sha256sum go.sum | cut -c1-16)
cache="${METAL_ENVTEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metal-operator/envtest}/$key"
mkdir -p "$dest" "$cache"

build() { # name package
	local name=$1 pkg=$2
	if [ -x "$dest/$name" ]; then
		return
	fi
	if [ ! -x "$cache/$name" ]; then
		echo ">> building $name from the Go module proxy (one time; kube-apiserver takes about 6 minutes on 2 cores)" >&2
		local start=$SECONDS
		go build -o "$cache/$name.tmp" "$pkg"
		mv "$cache/$name.tmp" "$cache/$name"
		echo ">> built $name in $((SECONDS - start))s" >&2
	fi
	cp "$cache/$name" "$dest/$name.tmp"
	mv "$dest/$name.tmp" "$dest/$name"
}

build etcd go.etcd.io/etcd/server/v3
build kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
