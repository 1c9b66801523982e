package lldp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mdlayher/packet"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// MaxFixtureFrames bounds the frames FromFiles reads from one directory.
const MaxFixtureFrames = 64

// Listen opens a raw socket for LLDP frames on interface ifname and reads frames until the
// first one that decodes, the timeout or the end of ctx, whichever comes first. Frames that do
// not decode are skipped. Hearing nothing before the timeout is not an error: the result is
// empty. Opening the socket needs CAP_NET_RAW.
func Listen(ctx context.Context, ifname string, timeout time.Duration) ([]report.Neighbor, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, err
	}
	conn, err := packet.Listen(ifi, packet.Raw, EtherType, nil)
	if err != nil {
		return nil, fmt.Errorf("opening a raw socket on %s: %w", ifname, err)
	}
	defer func() { _ = conn.Close() }()
	// Most NICs drop group addresses nobody joined; lo and some drivers refuse the join, and
	// then frames may still arrive, so a failed join is not fatal.
	_ = conn.JoinGroup(MulticastAddr)

	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetReadDeadline(deadline); err != nil {
		return nil, err
	}
	// A cancelled ctx ends the read at once rather than at the deadline.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()

	buf := make([]byte, MaxFrameBytes)
	for {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, ctx.Err()
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading LLDP frames on %s: %w", ifname, err)
		}
		if nb, err := Decode(buf[:n]); err == nil {
			return []report.Neighbor{nb}, nil
		}
	}
}

// FromFiles decodes the raw Ethernet frames in dir/*.bin (at most MaxFixtureFrames files of
// at most MaxFrameBytes each, in name order): the neighbours of a fixture machine's NIC. It
// returns the distinct neighbours, at most report.MaxNeighbors, and an error for each file
// that could not be read or decoded. A missing dir holds no neighbours.
func FromFiles(dir string) ([]report.Neighbor, []error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasSuffix(e.Name(), ".bin") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	if len(names) > MaxFixtureFrames {
		names = names[:MaxFixtureFrames]
	}
	var (
		out  []report.Neighbor
		errs []error
	)
	for _, name := range names {
		frame, err := readBounded(filepath.Join(dir, name), MaxFrameBytes)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nb, err := Decode(frame)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = AppendNeighbor(out, nb)
	}
	return out, errs
}

// AppendNeighbor adds nb to ns unless ns already holds it or holds report.MaxNeighbors.
func AppendNeighbor(ns []report.Neighbor, nb report.Neighbor) []report.Neighbor {
	if len(ns) >= report.MaxNeighbors {
		return ns
	}
	for _, have := range ns {
		if have == nb {
			return ns
		}
	}
	return append(ns, nb)
}

func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s: over %d bytes", filepath.Base(path), limit)
	}
	return b, nil
}
