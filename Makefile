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
verify: generate manifests verify-chart kustomize-build helm-template ## Regenerate and fail if generated files differ from what is committed; render the cluster manifests.
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

FUZZTIME ?= 30s

.PHONY: fuzz
fuzz: ## Run every Go fuzz target (func FuzzXxx) for FUZZTIME (30s) each; plain go test runs their seed corpora only.
	@set -e; for f in $$(git grep -l '^func Fuzz' -- '*_test.go'); do \
		pkg=./$$(dirname $$f); \
		for t in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$f); do \
			echo "== $$pkg $$t"; \
			$(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

.PHONY: run
run: envtest ## Run the operator on an embedded control plane with an emulated fleet (see README).
	@CGO_ENABLED=0 $(GO) build -o $(BIN)/metal-agent ./cmd/metal-agent
	@$(GO) build -o $(BIN)/metal-devenv ./cmd/devenv
	@# Built, not go run: go run exits 1 on Ctrl-C whatever the program does, and make reports it.
	@$(BIN)/metal-devenv --agent-binary $(BIN)/metal-agent $(ARGS)

.PHONY: bench
bench: envtest ## Fleet benchmark: bind bursts of claims and report time, requests and CPU.
	$(GO) build -o $(BIN)/metal-operator ./cmd/metal-operator
	$(GO) run ./cmd/claimbench --operator $(BIN)/metal-operator $(ARGS)

.PHONY: build
build: ## Build the binaries into bin/ (metal-agent static, for the boot image).
	$(GO) build -o $(BIN)/ ./cmd/...
	CGO_ENABLED=0 $(GO) build -o $(BIN)/metal-agent ./cmd/metal-agent

##@ Deployment

KUSTOMIZE := $(BIN)/kustomize
HELM := $(BIN)/helm
CHART := charts/metal-operator
MANIFESTS := $(BIN)/manifests

.PHONY: kustomize
kustomize: ## Build kustomize (pinned in hack/tools/go.mod) into bin/ (once).
	@hack/tools.sh kustomize $(BIN)

.PHONY: helm
helm: ## Build helm (pinned in hack/tools/go.mod) into bin/ (once).
	@hack/tools.sh helm $(BIN)

.PHONY: kustomize-build
kustomize-build: kustomize ## Render config/default (and config/prometheus, the samples) into bin/manifests/.
	@mkdir -p $(MANIFESTS)
	$(KUSTOMIZE) build config/default > $(MANIFESTS)/metal-operator.yaml
	$(KUSTOMIZE) build config/prometheus > $(MANIFESTS)/prometheus.yaml
	$(KUSTOMIZE) build config/samples > $(MANIFESTS)/samples.yaml
	$(KUSTOMIZE) build config/samples/enrollment > $(MANIFESTS)/samples-enrollment.yaml

.PHONY: helm-template
helm-template: helm ## Lint the Helm chart and render it (defaults, and every option on) into bin/manifests/.
	@mkdir -p $(MANIFESTS)
	$(HELM) lint --strict $(CHART)
	$(HELM) template metal-operator $(CHART) --namespace metal-operator-system > $(MANIFESTS)/helm.yaml
	$(HELM) template metal-operator $(CHART) --namespace metal-operator-system \
		--set replicaCount=2 --set metrics.serviceMonitor.enabled=true --set metrics.prometheusRule.enabled=true --set metrics.grafanaDashboard.enabled=true \
		--set bootServer.service.type=LoadBalancer --set flags.server-resync-interval=5m \
		--set events.enabled=true --set events.url=http://metal-events.example:10001 > $(MANIFESTS)/helm-all.yaml

.PHONY: sync-chart
sync-chart: ## Copy the generated CRDs, the manager role and the alerts from config/ into the Helm chart.
	@hack/sync-chart.sh

.PHONY: sync-chart-crds
sync-chart-crds: sync-chart ## Same as sync-chart.

.PHONY: verify-chart
verify-chart: ## Fail if the Helm chart's copies of config/ files are out of date.
	@hack/sync-chart.sh --check

IMG ?= metal-operator:latest

.PHONY: docker-build
docker-build: ## Build the manager image (needs a Docker engine; none runs on the dev machines here).
	docker build -t $(IMG) .

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*?##/ { printf "  %-14s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)
