#!/usr/bin/env bash
# Builds one of the pinned command-line tools (kustomize, helm) from the Go module proxy into
# the given folder (default bin/), once, and prints nothing when it is already there.
#
#   hack/tools.sh kustomize [dest]
#   hack/tools.sh helm [dest]
#
# The versions are pinned by hack/tools/go.mod (`tool` directives), a module of its own so
# that the tools' dependencies never enter the operator's go.mod. Built binaries are kept in a
# per-user cache keyed by that go.sum, so other clones on the same machine reuse them, and
# copied into dest whenever dest holds something else (a tool bumped in go.mod is rebuilt).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
name="${1:?usage: hack/tools.sh kustomize|helm [dest]}"
dest="${2:-$root/bin}"

case "$name" in
kustomize) pkg=sigs.k8s.io/kustomize/kustomize/v5 mod=sigs.k8s.io/kustomize/kustomize/v5 ;;
helm) pkg=helm.sh/helm/v4/cmd/helm mod=helm.sh/helm/v4 ;;
*)
	echo "hack/tools.sh: unknown tool $name (known: kustomize, helm)" >&2
	exit 2
	;;
esac

cd "$root/hack/tools"
key=$(cat go.mod go.sum | sha256sum | cut -c1-16)
cache="${METAL_TOOLS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metal-operator/tools}/$key"
mkdir -p "$dest" "$cache"

if [ ! -x "$cache/$name" ]; then
	version=$(go list -m -f '{{.Version}}' "$mod")
	echo ">> building $name $version from the Go module proxy (one time, a few minutes)" >&2
	ldflags="-s -w"
	if [ "$name" = helm ]; then
		# What `helm version` prints; helm's own release build sets it the same way.
		ldflags="$ldflags -X helm.sh/helm/v4/internal/version.version=$version"
	fi
	start=$SECONDS
	CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$cache/$name.tmp" "$pkg"
	mv "$cache/$name.tmp" "$cache/$name"
	echo ">> built $name in $((SECONDS - start))s" >&2
fi
if ! cmp -s "$cache/$name" "$dest/$name"; then
	cp "$cache/$name" "$dest/$name.tmp"
	mv "$dest/$name.tmp" "$dest/$name"
fi
