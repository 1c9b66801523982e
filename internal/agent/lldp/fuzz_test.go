package lldp

import (
	"testing"
	"unicode/utf8"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// FuzzDecode feeds arbitrary bytes to Decode: it must return (never panic), and what it
// returns must be within the report's bounds and valid UTF-8. Plain go test runs the seeds in
// testdata/fuzz/FuzzDecode; make fuzz explores.
func FuzzDecode(f *testing.F) {
	for _, n := range []report.Neighbor{
		{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7", SystemName: "leaf1"},
		{ChassisID: "10.0.0.1", PortID: "2001:db8::1", PortDescription: "uplink", SystemDescription: "NOS 1.0"},
	} {
		frame, err := Encode(n, srcMAC)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(frame)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		n, err := Decode(frame)
		if err != nil {
			if n != (report.Neighbor{}) {
				t.Fatalf("error %v with a neighbour: %+v", err, n)
			}
			return
		}
		for _, s := range []string{n.ChassisID, n.PortID, n.SystemName, n.SystemDescription, n.PortDescription} {
			if len(s) > report.MaxString {
				t.Fatalf("a string of %d bytes", len(s))
			}
			if !utf8.ValidString(s) {
				t.Fatalf("invalid UTF-8 %q", s)
			}
		}
		if n.ChassisID == "" || n.PortID == "" {
			t.Fatalf("decoded without a chassis or port ID: %+v", n)
		}
	})
}
