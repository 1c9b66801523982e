# The manager image: the operator's controllers and its boot server in one static binary.
#
#   docker build -t metal-operator:latest .
#
# Build stage: the Go version matches go.mod; only the main module is needed (hack/envtest
# and hack/tools are modules of their own and stay out of the build context).
FROM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
WORKDIR /workspace

# Dependencies first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download

COPY api/ api/
COPY cmd/ cmd/
COPY internal/ internal/

# A static binary (no cgo) for the distroless base; TARGETOS/TARGETARCH come from buildx for
# multi-platform builds and default to the builder's own platform.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags="-s -w" -o /out/metal-operator ./cmd/metal-operator

# Run stage: no shell, no package manager; runs as the unprivileged user 65532.
FROM gcr.io/distroless/static:nonroot
LABEL org.opencontainers.image.title="metal-operator" \
      org.opencontainers.image.description="Kubernetes operator for bare-metal servers (metal.ironcore.dev/v1alpha1)"
WORKDIR /
COPY --from=builder /out/metal-operator /metal-operator
USER 65532:65532
# 8080 metrics, 8081 health probes, 8082 boot server.
EXPOSE 8080 8081 8082
ENTRYPOINT ["/metal-operator"]
