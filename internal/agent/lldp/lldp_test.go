package lldp

import (
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	. "github.com/onsi/gomega"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

var srcMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}

// tlv builds one TLV by hand, so that the decoder is tested against bytes it did not write.
func tlv(typ, length int, v ...byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(typ<<9|length)), v...)
}

func ether(typ uint16, tlvs ...[]byte) []byte {
	f := append(append(append([]byte{}, MulticastAddr...), srcMAC...), byte(typ>>8), byte(typ))
	for _, t := range tlvs {
		f = append(f, t...)
	}
	return f
}

var (
	chassisMACTLV = tlv(1, 7, 4, 0xaa, 0xbb, 0xcc, 0x00, 0x11, 0x22)
	portNameTLV   = tlv(2, 7, 5, 'E', 't', 'h', '1', '/', '7')
	ttlTLV        = tlv(3, 2, 0, 120)
	endTLV        = tlv(0, 0)
)

func TestDecode(t *testing.T) {
	cases := []struct {
		name    string
		frame   []byte
		want    report.Neighbor
		wantErr error
	}{
		{
			name:  "mandatory TLVs and End",
			frame: ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV, endTLV),
			want:  report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7"},
		},
		{
			name: "optional TLVs, unknown ones skipped, padding after End ignored",
			frame: append(ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV,
				tlv(4, 6, 'u', 'p', 'l', 'i', 'n', 'k'),
				tlv(5, 5, 'l', 'e', 'a', 'f', '1'),
				tlv(7, 4, 0, 0x14, 0, 0x14), // capabilities
				tlv(127, 4, 0x00, 0x80, 0xc2, 1),
				tlv(6, 4, 'N', 'O', 'S', '\n'),
				endTLV), 0, 0, 0, 0),
			want: report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7",
				PortDescription: "uplink", SystemName: "leaf1", SystemDescription: "NOS"},
		},
		{
			name:  "no End TLV: the frame ends after the mandatory TLVs",
			frame: ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV),
			want:  report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7"},
		},
		{
			name: "behind an 802.1Q tag",
			frame: append(append(append([]byte{}, MulticastAddr...), srcMAC...),
				append([]byte{0x81, 0x00, 0x00, 0x0a, 0x88, 0xcc}, append(append(chassisMACTLV, portNameTLV...), ttlTLV...)...)...),
			want: report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7"},
		},
		{
			name:  "network address IDs: IPv4 chassis, IPv6 port",
			frame: ether(EtherType, tlv(1, 6, 5, 1, 10, 0, 0, 1), tlv(2, 18, append([]byte{4, 2, 0x20, 0x01, 0x0d, 0xb8}, make([]byte, 13)...)[:18]...), ttlTLV),
			want:  report.Neighbor{ChassisID: "10.0.0.1", PortID: "2001:db8::"},
		},
		{
			name:  "MAC subtype with the wrong length and unknown family: rendered as escaped text",
			frame: ether(EtherType, tlv(1, 3, 4, 'a', 0x01), tlv(2, 4, 4, 5, 'x', 0xff), ttlTLV),
			want:  report.Neighbor{ChassisID: `a\x01`, PortID: `\x05x\xff`},
		},
		{name: "empty", frame: nil, wantErr: ErrTruncated},
		{name: "Ethernet header only", frame: ether(EtherType), wantErr: ErrTruncated},
		{name: "other ethertype", frame: ether(0x0800, chassisMACTLV), wantErr: ErrNotLLDP},
		{name: "VLAN tag cut short", frame: ether(0x8100, []byte{0x00}), wantErr: ErrTruncated},
		{name: "half a TLV header", frame: ether(EtherType, chassisMACTLV, []byte{0x04}), wantErr: ErrTruncated},
		{name: "TLV longer than the frame", frame: ether(EtherType, tlv(1, 40, 4, 1, 2, 3)), wantErr: ErrTruncated},
		{name: "TTL missing", frame: ether(EtherType, chassisMACTLV, portNameTLV), wantErr: ErrTruncated},
		{name: "End before the mandatory TLVs", frame: ether(EtherType, chassisMACTLV, endTLV), wantErr: ErrMalformed},
		{name: "port ID first", frame: ether(EtherType, portNameTLV, chassisMACTLV, ttlTLV), wantErr: ErrMalformed},
		{name: "TTL before port ID", frame: ether(EtherType, chassisMACTLV, ttlTLV, portNameTLV), wantErr: ErrMalformed},
		{name: "a second chassis ID", frame: ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV, chassisMACTLV), wantErr: ErrMalformed},
		{name: "a second TTL", frame: ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV, ttlTLV), wantErr: ErrMalformed},
		{name: "TTL of 3 bytes", frame: ether(EtherType, chassisMACTLV, portNameTLV, tlv(3, 3, 0, 0, 120)), wantErr: ErrMalformed},
		{name: "chassis ID without ID bytes", frame: ether(EtherType, tlv(1, 1, 4), portNameTLV, ttlTLV), wantErr: ErrMalformed},
		{name: "End with a length", frame: ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV, tlv(0, 1, 0)), wantErr: ErrMalformed},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			got, err := Decode(tc.frame)
			if tc.wantErr != nil {
				g.Expect(err).To(MatchError(tc.wantErr))
				return
			}
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(got).To(Equal(tc.want))
		})
	}
}

// Every cut of a valid frame before the end of its TTL TLV is an error, never a panic; a cut
// after it decodes.
func TestDecodeTruncated(t *testing.T) {
	g := NewWithT(t)
	frame, err := Encode(report.Neighbor{ChassisID: "aa:bb:cc:00:11:22", PortID: "Eth1/7",
		SystemName: "leaf1", PortDescription: "uplink"}, srcMAC)
	g.Expect(err).NotTo(HaveOccurred())
	mandatoryEnd := etherHeader + len(chassisMACTLV) + len(portNameTLV) + len(ttlTLV)
	for cut := range len(frame) {
		_, err := Decode(frame[:cut])
		if cut < mandatoryEnd {
			g.Expect(err).To(HaveOccurred(), "cut at %d", cut)
			g.Expect(errors.Is(err, ErrTruncated) || errors.Is(err, ErrMalformed)).To(BeTrue(), "cut at %d: %v", cut, err)
		}
	}
}

func TestDecodeBoundsStrings(t *testing.T) {
	g := NewWithT(t)
	long := strings.Repeat("é\x00", 160) // 480 bytes, escaped to 960
	frame := ether(EtherType, chassisMACTLV, portNameTLV, ttlTLV, tlv(6, len(long), []byte(long)...), endTLV)
	got, err := Decode(frame)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(len(got.SystemDescription)).To(BeNumerically("<=", report.MaxString))
	g.Expect(got.SystemDescription).To(HavePrefix(`é\x00é\x00`))
	g.Expect(utf8.ValidString(got.SystemDescription)).To(BeTrue())
}

func TestPrintable(t *testing.T) {
	cases := []struct {
		in   string
		want string
	}{
		{"leaf-1", "leaf-1"},
		{"  padded \n", "padded"},
		{"grüße", "grüße"},
		{"a\x00b", `a\x00b`},
		{"bad\xffutf8", `bad\xffutf8`},
		{`back\slash`, `back\x5cslash`},
		{"\x1b[31mred", `\x1b[31mred`},
	}
	for _, tc := range cases {
		g := NewWithT(t)
		g.Expect(Printable([]byte(tc.in))).To(Equal(tc.want), "%q", tc.in)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	cases := []report.Neighbor{
		{ChassisID: "aa:bb:cc:00:11:22", PortID: "Ethernet12"},
		{ChassisID: "10.1.2.3", PortID: "00:11:22:33:44:55", SystemName: "spine-2",
			SystemDescription: "SONiC Software Version: 202411", PortDescription: "to rack 4"},
		{ChassisID: "2001:db8::7", PortID: "192.0.2.9"},
		{ChassisID: "leaf-7.dc1", PortID: "swp31s2", SystemName: strings.Repeat("n", report.MaxString)},
	}
	for _, n := range cases {
		g := NewWithT(t)
		frame, err := Encode(n, srcMAC)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(len(frame)).To(BeNumerically(">=", minFrameBytes))
		got, err := Decode(frame)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(got).To(Equal(n))
	}
}

func TestEncodeRejects(t *testing.T) {
	cases := []struct {
		name string
		n    report.Neighbor
		src  net.HardwareAddr
	}{
		{"empty chassis ID", report.Neighbor{PortID: "p"}, srcMAC},
		{"empty port ID", report.Neighbor{ChassisID: "c"}, srcMAC},
		{"chassis ID over 255 bytes", report.Neighbor{ChassisID: strings.Repeat("c", 256), PortID: "p"}, srcMAC},
		{"system description over 511 bytes", report.Neighbor{ChassisID: "c", PortID: "p", SystemDescription: strings.Repeat("d", 512)}, srcMAC},
		{"short source address", report.Neighbor{ChassisID: "c", PortID: "p"}, net.HardwareAddr{1, 2}},
	}
	for _, tc := range cases {
		g := NewWithT(t)
		_, err := Encode(tc.n, tc.src)
		g.Expect(err).To(HaveOccurred(), tc.name)
	}
}
