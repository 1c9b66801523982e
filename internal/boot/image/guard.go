package image

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// allowList decides which registries images may come from. A registry is listed when it is
// the default registry or matches a pattern; with no patterns every registry is allowed, but
// one at an internal address (loopback, link-local, cloud metadata) only when listed: a
// tenant must not make the manager fetch from its own node or the cloud's metadata service.
type allowList struct {
	defaultRegistry string
	patterns        []string
}

// metadataAddresses are cloud metadata services outside the link-local range (which is
// refused as a whole): Alibaba Cloud, Azure's wire server and AWS's IPv6 endpoint.
var metadataAddresses = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"),
	netip.MustParseAddr("168.63.129.16"),
	netip.MustParseAddr("fd00:ec2::254"),
}

func newAllowList(defaultRegistry string, patterns []string) (allowList, error) {
	a := allowList{defaultRegistry: name.DefaultRegistry}
	if defaultRegistry != "" {
		reg, err := name.NewRegistry(defaultRegistry)
		if err != nil {
			return a, fmt.Errorf("invalid default registry %q: %w", defaultRegistry, err)
		}
		a.defaultRegistry = reg.RegistryStr()
	}
	for _, p := range patterns {
		p = strings.ToLower(strings.TrimSpace(p))
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return a, fmt.Errorf("invalid allowed registry pattern %q", p)
		}
		a.patterns = append(a.patterns, p)
	}
	return a, nil
}

// listed reports whether the registry host (host or host:port) is the default registry or
// matches a pattern.
func (a allowList) listed(host string) bool {
	host = strings.ToLower(host)
	if host == a.defaultRegistry {
		return true
	}
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	for _, p := range a.patterns {
		if ok, _ := path.Match(p, host); ok {
			return true
		}
		if ok, _ := path.Match(p, bare); ok {
			return true
		}
	}
	return false
}

// check refuses a registry that is not allowed, or whose host is a literal internal address
// it does not list. Hosts by name are checked again when dialled (transport).
func (a allowList) check(host string) error {
	if a.listed(host) {
		return nil
	}
	if len(a.patterns) > 0 {
		return notAllowed(host, "it is not among the allowed registries")
	}
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	if ip, err := netip.ParseAddr(strings.Trim(bare, "[]")); err == nil && internal(ip) {
		return notAllowed(host, "its address is a loopback, link-local or metadata address")
	}
	if strings.EqualFold(bare, "localhost") {
		return notAllowed(host, "it is the manager's own host")
	}
	return nil
}

func notAllowed(host, why string) error {
	err := fmt.Errorf("registry %s is not allowed: %s", host, why)
	return &Error{Reason: metalv1alpha1.ReasonRegistryNotAllowed, Err: err, Public: err.Error()}
}

// internal reports whether ip is loopback, link-local, unspecified or a cloud metadata
// address.
func internal(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, m := range metadataAddresses {
		if ip == m {
			return true
		}
	}
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsUnspecified()
}

// errInternalAddress is returned by the guarded dialer.
var errInternalAddress = errors.New("the registry resolves to a loopback, link-local or metadata address")

// transport is remote.DefaultTransport with a dialer that refuses internal addresses of
// hosts that are not listed, after name resolution (so that a registry name, or a redirect,
// pointing at the metadata service is refused too) and dialling the address it checked.
func (a allowList) transport() http.RoundTripper {
	t := remote.DefaultTransport.(*http.Transport).Clone()
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	t.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if a.listed(addr) || a.listed(host) {
			return dialer.DialContext(ctx, network, addr)
		}
		ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var errs []error
		for _, ip := range ips {
			if internal(ip) {
				return nil, &Error{Reason: metalv1alpha1.ReasonRegistryNotAllowed, Err: fmt.Errorf("%s: %w", host, errInternalAddress),
					Public: fmt.Sprintf("registry %s is not allowed: %s", host, errInternalAddress)}
			}
		}
		for _, ip := range ips {
			conn, err := dialer.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
			if err == nil {
				return conn, nil
			}
			errs = append(errs, err)
		}
		return nil, errors.Join(errs...)
	}
	return t
}
