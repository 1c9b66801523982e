#!/usr/bin/env bash
# Fails when the generated files (deepcopy, CRDs, RBAC) differ from what git has, i.e. when
# someone edited a generated file by hand or forgot to run `make generate manifests`.
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(api config/crd config/rbac)
if ! git diff --quiet --exit-code -- "${paths[@]}"; then
	echo "generated files are out of date; run 'make generate manifests' and commit:" >&2
	git --no-pager diff --stat -- "${paths[@]}" >&2
	exit 1
fi
untracked=$(git ls-files --others --exclude-standard -- "${paths[@]}")
if [ -n "$untracked" ]; then
	echo "generated files are not committed:" >&2
	echo "$untracked" >&2
	exit 1
fi
