# metal-operator: build, generate, test.
SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

GO ?= go
BIN := $(CURDIR)/bin
ENVTEST_ASSETS := $(BIN)/k8s
export KUBEBUILDER_ASSETS := $(ENVTEST_ASSETS)

CONTROLLER_GEN := $(GO) tool controller-gen

.PHONY: all
all: build

##@ Development

.PHONY: generate
generate: ## Generate deepcopy code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...

.PHONY: manifests
manifests: ## Generate CRDs and RBAC.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./internal/... output:rbac:artifacts:config=config/rbac

.PHONY: fmt
fmt: ## gofmt check (fails on unformatted files).
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null; git ls-files -o --exclude-standard '*.go' 2>/dev/null)); \
	if [ -n "$$out" ]; then echo "unformatted files:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: verify
verify: generate manifests ## Regenerate and fail if generated files differ from what is committed.
	@hack/verify-generated.sh

.PHONY: envtest
envtest: ## Build kube-apiserver and etcd for tests into bin/k8s (once).
	@hack/envtest.sh $(ENVTEST_ASSETS)

.PHONY: test
test: generate manifests fmt vet verify envtest ## Generators, vet, verify, then all tests.
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: test-only
test-only: envtest ## Run the tests without the generators.
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: build
build: ## Build the binaries into bin/.
	$(GO) build -o $(BIN)/ ./cmd/...

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
