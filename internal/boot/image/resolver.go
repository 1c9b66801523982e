// Package image resolves the OS image of a ServerBootConfiguration, an OCI reference, to the
// kernel, initrd and root filesystem layers a network boot loads, pinned by digest, and opens
// those layers for the boot server to stream.
//
// The layer convention is documented in docs/boot.md: a layer is recognised by its media type
// or, failing that, by its org.opencontainers.image.title annotation.
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	bootmetrics "github.com/metalfleet/metal-operator/internal/boot/metrics"
	"github.com/metalfleet/metal-operator/internal/cachelag"
)

// Layer media types of this operator's convention.
const (
	MediaTypeKernel    = "application/vnd.metal.ironcore.kernel"
	MediaTypeInitramfs = "application/vnd.metal.ironcore.initramfs"
	MediaTypeRootFS    = "application/vnd.metal.ironcore.rootfs"
)

// Layer media types of the IronCore OS image specification (ironcore-dev/os-images), also
// accepted.
const (
	IronCoreMediaTypeKernel    = "application/vnd.ironcore.image.kernel"
	IronCoreMediaTypeInitramfs = "application/vnd.ironcore.image.initramfs"
	IronCoreMediaTypeSquashFS  = "application/vnd.ironcore.image.squashfs"
	// IronCoreMediaTypeArtifacts is the manifest media type of an IronCore artifact manifest.
	IronCoreMediaTypeArtifacts = "application/vnd.ironcore.image.artifacts.v1+json"
)

// TitleAnnotation is the layer annotation used when no media type of the convention matches.
const TitleAnnotation = "org.opencontainers.image.title"

// role is what a layer is for.
type role int

const (
	roleNone role = iota
	roleKernel
	roleInitrd
	roleRootFS
)

func (r role) String() string {
	switch r {
	case roleKernel:
		return "kernel"
	case roleInitrd:
		return "initrd"
	case roleRootFS:
		return "rootfs"
	}
	return "none"
}

var mediaTypeRoles = map[string]role{
	MediaTypeKernel:            roleKernel,
	IronCoreMediaTypeKernel:    roleKernel,
	MediaTypeInitramfs:         roleInitrd,
	IronCoreMediaTypeInitramfs: roleInitrd,
	MediaTypeRootFS:            roleRootFS,
	IronCoreMediaTypeSquashFS:  roleRootFS,
}

var titleRoles = map[string]role{
	"vmlinuz":   roleKernel,
	"initramfs": roleInitrd,
	"initrd":    roleInitrd,
	"rootfs":    roleRootFS,
}

// Options configure a Resolver.
type Options struct {
	// DefaultRegistry is the registry host ("registry.example:5000") of references that name
	// none, like "my-osimage:latest". Empty means Docker Hub.
	DefaultRegistry string
	// InsecureRegistries are registry hosts reached over plain HTTP. Loopback and RFC 1918
	// addresses and "localhost" always are.
	InsecureRegistries []string
	// AllowedRegistries are the host patterns (path.Match syntax against host or host:port,
	// e.g. "registry.example", "*.example.com", "10.0.0.5:*") of the registries images may
	// come from; empty allows any. The default registry is always allowed. A registry at a
	// loopback, link-local or cloud metadata address is refused unless it is the default
	// registry or matches a pattern here (see guard.go).
	AllowedRegistries []string
	// Platform selects the manifest of an image index; the default is linux/amd64.
	Platform *v1.Platform
	// Keychain provides registry credentials; nil means authn.DefaultKeychain (the Docker
	// config file, if any, else anonymous).
	Keychain authn.Keychain
	// Transport is the HTTP transport; nil means remote.DefaultTransport with a dialer
	// that refuses loopback, link-local and cloud metadata addresses of registries that are
	// not listed. A transport given here is used as it is.
	Transport http.RoundTripper
	// Timeout bounds one resolution; the default is 30s.
	Timeout time.Duration
	// CacheTTL is how long a resolution is reused for the same reference: a fleet booting
	// one image asks the registry once per reference and TTL, not once per server, and a
	// moved tag is seen after at most this long. The default is 1m; negative turns the
	// cache off.
	CacheTTL time.Duration
}

// resolutionCacheSize bounds the references whose resolutions are kept.
const resolutionCacheSize = 1024

// Resolver resolves OS images and opens their layers. It is safe for concurrent use.
type Resolver struct {
	defaultRegistry string
	insecure        []string
	allow           allowList
	platform        v1.Platform
	keychain        authn.Keychain
	transport       http.RoundTripper
	timeout         time.Duration
	// cache keeps successful resolutions by reference; inflight makes concurrent
	// resolutions of one reference one registry round trip.
	cache    *cachelag.Store[string, *metalv1alpha1.ResolvedImage]
	inflight singleflight.Group
}

// NewResolver returns a Resolver.
func NewResolver(o Options) (*Resolver, error) {
	r := &Resolver{
		defaultRegistry: o.DefaultRegistry,
		insecure:        o.InsecureRegistries,
		platform:        v1.Platform{OS: "linux", Architecture: "amd64"},
		keychain:        o.Keychain,
		transport:       o.Transport,
		timeout:         o.Timeout,
	}
	var err error
	if r.allow, err = newAllowList(o.DefaultRegistry, o.AllowedRegistries); err != nil {
		return nil, err
	}
	if o.Platform != nil {
		r.platform = *o.Platform
	}
	if r.keychain == nil {
		r.keychain = authn.DefaultKeychain
	}
	if r.transport == nil {
		r.transport = r.allow.transport()
	}
	if r.timeout <= 0 {
		r.timeout = 30 * time.Second
	}
	switch {
	case o.CacheTTL == 0:
		r.cache = cachelag.NewStore[string, *metalv1alpha1.ResolvedImage](cachelag.Options{Retention: time.Minute, Limit: resolutionCacheSize})
	case o.CacheTTL > 0:
		r.cache = cachelag.NewStore[string, *metalv1alpha1.ResolvedImage](cachelag.Options{Retention: o.CacheTTL, Limit: resolutionCacheSize})
	}
	return r, nil
}

// Error is a failed resolution; Reason is one of the ServerBootConfiguration condition
// reasons ReasonImageNotFound, ReasonRegistryUnreachable, ReasonRegistryNotAllowed or
// ReasonInvalidImage. Err is the whole story, for the manager's log; Public is what a
// tenant may read (see Message).
type Error struct {
	Reason string
	Err    error
	// Public says what failed without quoting the registry: never a response body.
	Public string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Reason is the condition reason of a resolution error: the Reason of an *Error, else
// ReasonRegistryUnreachable.
func Reason(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return metalv1alpha1.ReasonRegistryUnreachable
}

// Message is what a tenant may read about a resolution error, in a condition or an event:
// the reason and, when the registry answered, its status code; never what the registry sent.
// The full error belongs in the manager's log.
func Message(err error) string {
	if e, ok := errors.AsType[*Error](err); ok && e.Public != "" {
		return e.Public
	}
	return "the registry could not be reached"
}

// invalid is an InvalidImage error of this package's own making: its message is public.
func invalid(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Reason: metalv1alpha1.ReasonInvalidImage, Err: err, Public: err.Error()}
}

// unparsable is an InvalidImage error for content the registry sent that does not parse:
// the parser's message, which may quote that content, stays out of the public one.
func unparsable(what string, err error) error {
	return &Error{Reason: metalv1alpha1.ReasonInvalidImage, Err: fmt.Errorf("%s cannot be parsed: %w", what, err),
		Public: what + " cannot be parsed"}
}

// ParseReference parses an image reference, resolving one without a registry host against
// the default registry.
func (r *Resolver) ParseReference(image string) (name.Reference, error) {
	var opts []name.Option
	if r.defaultRegistry != "" {
		opts = append(opts, name.WithDefaultRegistry(r.defaultRegistry))
	}
	ref, err := name.ParseReference(image, opts...)
	if err != nil {
		return nil, invalid("invalid image reference: %w", err)
	}
	if err := r.allow.check(ref.Context().RegistryStr()); err != nil {
		return nil, err
	}
	if slices.Contains(r.insecure, ref.Context().RegistryStr()) {
		ref, err = name.ParseReference(image, append(opts, name.Insecure)...)
		if err != nil {
			return nil, invalid("invalid image reference: %w", err)
		}
	}
	return ref, nil
}

func (r *Resolver) remoteOptions(ctx context.Context) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuthFromKeychain(r.keychain),
		remote.WithTransport(r.transport),
		remote.WithPlatform(r.platform),
		remote.WithUserAgent("metal-operator-boot"),
		// The controller retries with its own backoff; keep one resolution short.
		remote.WithRetryBackoff(remote.Backoff{Duration: 100 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 2}),
	}
}

// Resolve resolves image to its boot artifacts, pinned by digest. Errors are *Error.
//
// A resolution is reused for the same reference for Options.CacheTTL, and concurrent
// resolutions of one reference share one round trip; failures are not kept.
func (r *Resolver) Resolve(ctx context.Context, image string) (*metalv1alpha1.ResolvedImage, error) {
	key := r.cacheKey(image)
	if hit := r.cached(key); hit != nil {
		return hit, nil
	}
	v, err, _ := r.inflight.Do(key, func() (any, error) {
		resolved, err := r.resolve(context.WithoutCancel(ctx), image)
		if err == nil && r.cache != nil {
			r.cache.Set(key, resolved)
		}
		return resolved, err
	})
	if err != nil {
		err = classify(err)
		bootmetrics.ImageResolutionErrors.WithLabelValues(Reason(err)).Inc()
		return nil, err
	}
	return v.(*metalv1alpha1.ResolvedImage).DeepCopy(), nil
}

// Cached returns the resolution of image kept from an earlier Resolve, or nil: it never
// asks the registry.
func (r *Resolver) Cached(image string) *metalv1alpha1.ResolvedImage {
	return r.cached(r.cacheKey(image))
}

// cached returns a copy of the resolution kept under key (cacheKey), or nil.
func (r *Resolver) cached(key string) *metalv1alpha1.ResolvedImage {
	if r.cache == nil {
		return nil
	}
	if hit, _, ok := r.cache.Get(key); ok {
		return hit.DeepCopy()
	}
	return nil
}

// cacheKey names a reference in the resolution cache: the registry spelled out, so that
// "os:1" and "<default registry>/os:1" are one reference.
func (r *Resolver) cacheKey(image string) string {
	if ref, err := r.ParseReference(image); err == nil {
		return ref.Context().Name() + "@" + ref.Identifier()
	}
	return image
}

func (r *Resolver) resolve(ctx context.Context, image string) (*metalv1alpha1.ResolvedImage, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	ref, err := r.ParseReference(image)
	if err != nil {
		return nil, err
	}
	opts := r.remoteOptions(ctx)
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, err
	}
	raw, mediaType := desc.Manifest, desc.MediaType
	manifestDigest := desc.Digest
	if isIndex(raw, mediaType) {
		child, err := r.selectManifest(raw)
		if err != nil {
			return nil, err
		}
		desc, err = remote.Get(ref.Context().Digest(child.Digest.String()), opts...)
		if err != nil {
			return nil, err
		}
		raw, mediaType = desc.Manifest, desc.MediaType
		if isIndex(raw, mediaType) {
			return nil, invalid("image %s: nested image indexes are not supported", ref)
		}
		manifestDigest = desc.Digest
	}
	manifest, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, unparsable(fmt.Sprintf("the manifest of image %s", ref), err)
	}
	artifacts, err := classifyLayers(manifest.Layers)
	if err != nil {
		return nil, invalid("image %s: %w", ref, err)
	}
	if artifacts[roleKernel] == nil {
		return nil, invalid("image %s has no kernel layer (media type %s or title vmlinuz)", ref, MediaTypeKernel)
	}
	if artifacts[roleInitrd] == nil {
		return nil, invalid("image %s has no initrd layer (media type %s or title initramfs)", ref, MediaTypeInitramfs)
	}
	return &metalv1alpha1.ResolvedImage{
		Reference: ref.Name(),
		Digest:    manifestDigest.String(),
		Kernel:    artifacts[roleKernel],
		Initrd:    artifacts[roleInitrd],
		RootFS:    artifacts[roleRootFS],
	}, nil
}

// isIndex tells an image index (or Docker manifest list) from an image manifest, by media
// type, or by content when the registry's media type is not one of the standard ones.
func isIndex(raw []byte, mt types.MediaType) bool {
	if mt.IsIndex() {
		return true
	}
	if mt.IsImage() {
		return false
	}
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return false
	}
	return types.MediaType(probe.MediaType).IsIndex() || (probe.Manifests != nil && probe.Layers == nil)
}

// selectManifest picks the manifest of an index for the resolver's platform; among several,
// one annotated variant=metal (IronCore's metal boot variant) wins, else the first.
func (r *Resolver) selectManifest(raw []byte) (*v1.Descriptor, error) {
	index, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return nil, unparsable("the image index", err)
	}
	var match *v1.Descriptor
	for i := range index.Manifests {
		d := &index.Manifests[i]
		if d.Platform != nil && !d.Platform.Satisfies(r.platform) {
			continue
		}
		if d.Platform == nil && len(index.Manifests) > 1 {
			continue
		}
		if match == nil || (d.Annotations["variant"] == "metal" && match.Annotations["variant"] != "metal") {
			match = d
		}
	}
	if match == nil {
		return nil, invalid("image index has no manifest for platform %s", r.platform.String())
	}
	return match, nil
}

func classifyLayers(layers []v1.Descriptor) (map[role]*metalv1alpha1.BootArtifact, error) {
	out := map[role]*metalv1alpha1.BootArtifact{}
	byTitle := map[role]*metalv1alpha1.BootArtifact{}
	for _, l := range layers {
		a := &metalv1alpha1.BootArtifact{Digest: l.Digest.String(), MediaType: string(l.MediaType), Size: l.Size}
		if ro := mediaTypeRoles[string(l.MediaType)]; ro != roleNone {
			if out[ro] != nil {
				return nil, fmt.Errorf("more than one %s layer", ro)
			}
			out[ro] = a
			continue
		}
		if ro := titleRoles[l.Annotations[TitleAnnotation]]; ro != roleNone {
			if byTitle[ro] != nil {
				return nil, fmt.Errorf("more than one %s layer", ro)
			}
			byTitle[ro] = a
		}
	}
	for ro, a := range byTitle {
		if out[ro] == nil {
			out[ro] = a
		}
	}
	return out, nil
}

// classify turns a registry or network error into an *Error with its condition reason and a
// public message that gives the registry's status code, never its response body.
func classify(err error) error {
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	const denied = "access denied (the image does not exist or needs credentials)"
	terr, ok := errors.AsType[*transport.Error](err)
	if !ok {
		// Connection errors, timeouts and anything else: the registry could not be asked.
		return &Error{Reason: metalv1alpha1.ReasonRegistryUnreachable, Err: err, Public: "the registry could not be reached"}
	}
	answered := func(reason, what string) error {
		return &Error{Reason: reason, Err: err, Public: fmt.Sprintf("%s: the registry answered HTTP %d", what, terr.StatusCode)}
	}
	for _, d := range terr.Errors {
		switch d.Code {
		case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
			return answered(metalv1alpha1.ReasonImageNotFound, "the image does not exist")
		case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
			// Registries answer an anonymous pull of a missing repository this way too.
			return answered(metalv1alpha1.ReasonImageNotFound, denied)
		case transport.NameInvalidErrorCode, transport.TagInvalidErrorCode, transport.ManifestInvalidErrorCode:
			return answered(metalv1alpha1.ReasonInvalidImage, "the registry refused the reference or manifest")
		}
	}
	switch terr.StatusCode {
	case http.StatusNotFound:
		return answered(metalv1alpha1.ReasonImageNotFound, "the image does not exist")
	case http.StatusUnauthorized, http.StatusForbidden:
		return answered(metalv1alpha1.ReasonImageNotFound, denied)
	}
	return answered(metalv1alpha1.ReasonRegistryUnreachable, "the registry failed")
}

// OpenBlob opens the layer digest of the repository of reference (a ResolvedImage's
// Reference) for reading. The reader verifies the digest: reading a blob whose content does
// not match fails at its end.
func (r *Resolver) OpenBlob(ctx context.Context, reference, digest string) (io.ReadCloser, error) {
	ref, err := r.ParseReference(reference)
	if err != nil {
		return nil, err
	}
	if _, err := v1.NewHash(digest); err != nil {
		return nil, invalid("invalid digest %q: %w", digest, err)
	}
	layer, err := remote.Layer(ref.Context().Digest(digest), r.remoteOptions(ctx)...)
	if err != nil {
		return nil, classify(err)
	}
	rc, err := layer.Compressed()
	if err != nil {
		return nil, classify(err)
	}
	return rc, nil
}
