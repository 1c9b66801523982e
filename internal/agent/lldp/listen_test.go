package lldp

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mdlayher/packet"
	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// TestListenLoopback sends LLDP frames on lo and expects Listen to hear the neighbour they
// describe. It needs CAP_NET_RAW; without it the test is skipped.
func TestListenLoopback(t *testing.T) {
	g := NewWithT(t)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no loopback interface: %v", err)
	}
	sender, err := packet.Listen(lo, packet.Raw, EtherType, nil)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("cannot open AF_PACKET sockets (needs CAP_NET_RAW): %v", err)
	}
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = sender.Close() }()

	want := report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Ethernet7", SystemName: "leaf-lo"}
	frame, err := Encode(want, srcMAC)
	g.Expect(err).NotTo(HaveOccurred())
	garbage := append(append([]byte{}, frame[:etherHeader]...), 0xff, 0xff)

	type result struct {
		ns  []report.Neighbor
		err error
	}
	done := make(chan result, 1)
	go func() {
		ns, err := Listen(t.Context(), "lo", 10*time.Second)
		done <- result{ns, err}
	}()
	// The listener's socket opens at some point after the goroutine starts: send until it has
	// heard a frame, a malformed one first each time (it must be skipped).
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	to := &packet.Addr{HardwareAddr: MulticastAddr}
	for {
		select {
		case r := <-done:
			g.Expect(r.err).NotTo(HaveOccurred())
			g.Expect(r.ns).To(Equal([]report.Neighbor{want}))
			return
		case <-tick.C:
			_, err := sender.WriteTo(garbage, to)
			g.Expect(err).NotTo(HaveOccurred())
			_, err = sender.WriteTo(frame, to)
			g.Expect(err).NotTo(HaveOccurred())
		}
	}
}

// TestListenTimeout: a link where nothing speaks LLDP yields no neighbour and no error once
// the timeout has passed, and a cancelled context ends the listen early.
func TestListenTimeout(t *testing.T) {
	g := NewWithT(t)
	ns, err := Listen(t.Context(), "lo", 50*time.Millisecond)
	if errors.Is(err, os.ErrPermission) {
		t.Skipf("cannot open AF_PACKET sockets (needs CAP_NET_RAW): %v", err)
	}
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ns).To(BeEmpty())

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = Listen(ctx, "lo", time.Minute)
	g.Expect(err).To(MatchError(context.Canceled))

	_, err = Listen(t.Context(), "no-such-nic0", time.Second)
	g.Expect(err).To(HaveOccurred())
}

func TestFromFiles(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	a := report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Ethernet1"}
	b := report.Neighbor{ChassisID: "aa:bb:cc:00:11:23", PortID: "Ethernet2", SystemName: "leaf2"}
	for name, n := range map[string]report.Neighbor{"1.bin": a, "2.bin": b, "3.bin": a} {
		frame, err := Encode(n, srcMAC)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(os.WriteFile(filepath.Join(dir, name), frame, 0o600)).To(Succeed())
	}
	g.Expect(os.WriteFile(filepath.Join(dir, "4.bin"), []byte{1, 2, 3}, 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "5.bin"), make([]byte, MaxFrameBytes+1), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("ignored"), 0o600)).To(Succeed())

	ns, errs := FromFiles(dir)
	g.Expect(ns).To(Equal([]report.Neighbor{a, b}))
	g.Expect(errs).To(HaveLen(2))
	g.Expect(errs[0]).To(MatchError(ErrTruncated))

	ns, errs = FromFiles(filepath.Join(dir, "missing"))
	g.Expect(ns).To(BeEmpty())
	g.Expect(errs).To(BeEmpty())
}

func TestAppendNeighborCaps(t *testing.T) {
	g := NewWithT(t)
	var ns []report.Neighbor
	for i := range report.MaxNeighbors + 5 {
		ns = AppendNeighbor(ns, report.Neighbor{ChassisID: "c", PortID: string(rune('a' + i))})
		ns = AppendNeighbor(ns, report.Neighbor{ChassisID: "c", PortID: string(rune('a' + i))})
	}
	g.Expect(ns).To(HaveLen(report.MaxNeighbors))
}
