// Package lldp decodes and encodes the LLDP frames (IEEE 802.1AB) the in-band agent hears on
// its links, and listens for them on a raw socket. A frame comes from whatever is plugged into
// the port, so the decoder treats it as hostile: every length is checked against the buffer,
// a truncated or malformed frame is an error (never a panic), and every string is made
// printable and cut to report.MaxString.
package lldp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/message"
)

// EtherType is the Ethernet type of LLDP frames.
const EtherType = 0x88cc

// MaxFrameBytes bounds the frames the listener reads (a jumbo frame).
const MaxFrameBytes = 9216

// MulticastAddr is the nearest-bridge group address LLDP frames are sent to.
var MulticastAddr = net.HardwareAddr{0x01, 0x80, 0xc2, 0x00, 0x00, 0x0e}

// Errors of Decode; test with errors.Is.
var (
	ErrNotLLDP   = errors.New("not an LLDP frame")
	ErrTruncated = errors.New("truncated LLDP frame")
	ErrMalformed = errors.New("malformed LLDP frame")
)

// TLV types (802.1AB-2016 table 8-1).
const (
	tlvEnd               = 0
	tlvChassisID         = 1
	tlvPortID            = 2
	tlvTTL               = 3
	tlvPortDescription   = 4
	tlvSystemName        = 5
	tlvSystemDescription = 6
)

// Chassis ID and port ID subtypes that are not plain strings.
const (
	chassisMAC     = 4
	chassisNetwork = 5
	portMAC        = 3
	portNetwork    = 4
)

const (
	etherHeader = 14
	vlanTPID    = 0x8100
	// A chassis or port ID TLV holds a subtype byte and 1 to 255 bytes of ID.
	minIDLength = 2
	maxIDLength = 256
)

// Decode reads the neighbour an Ethernet frame with ethertype 0x88cc (optionally behind one
// 802.1Q tag) describes. The chassis ID, port ID and TTL TLVs must come first and in this
// order; the TLVs after them are read up to the End TLV or the end of the frame. A chassis or
// port ID that renders empty is malformed. On an error the neighbour is empty.
func Decode(frame []byte) (report.Neighbor, error) {
	n, err := decode(frame)
	if err != nil {
		return report.Neighbor{}, err
	}
	return n, nil
}

func decode(frame []byte) (report.Neighbor, error) {
	var n report.Neighbor
	if len(frame) < etherHeader {
		return n, fmt.Errorf("%w: %d bytes, no Ethernet header", ErrTruncated, len(frame))
	}
	typ := binary.BigEndian.Uint16(frame[12:14])
	body := frame[etherHeader:]
	if typ == vlanTPID {
		if len(body) < 4 {
			return n, fmt.Errorf("%w: VLAN tag cut short", ErrTruncated)
		}
		typ = binary.BigEndian.Uint16(body[2:4])
		body = body[4:]
	}
	if typ != EtherType {
		return n, fmt.Errorf("%w: ethertype %#04x", ErrNotLLDP, typ)
	}

	for i := 0; ; i++ {
		if len(body) == 0 {
			if i < 3 {
				return n, fmt.Errorf("%w: %d of the 3 mandatory TLVs", ErrTruncated, i)
			}
			return n, nil
		}
		if len(body) < 2 {
			return n, fmt.Errorf("%w: TLV header cut short", ErrTruncated)
		}
		hdr := binary.BigEndian.Uint16(body[:2])
		t, l := int(hdr>>9), int(hdr&0x1ff)
		if len(body)-2 < l {
			return n, fmt.Errorf("%w: TLV type %d says %d bytes, %d left", ErrTruncated, t, l, len(body)-2)
		}
		v := body[2 : 2+l]
		body = body[2+l:]

		if want := mandatory(i); want >= 0 && t != want {
			return n, fmt.Errorf("%w: TLV %d has type %d, want %d", ErrMalformed, i+1, t, want)
		}
		switch t {
		case tlvEnd:
			if l != 0 {
				return n, fmt.Errorf("%w: End TLV of length %d", ErrMalformed, l)
			}
			return n, nil
		case tlvChassisID, tlvPortID:
			if i > 1 {
				return n, fmt.Errorf("%w: a second TLV of type %d", ErrMalformed, t)
			}
			if l < minIDLength || l > maxIDLength {
				return n, fmt.Errorf("%w: ID TLV of length %d", ErrMalformed, l)
			}
			id := &n.ChassisID
			if t == tlvPortID {
				id = &n.PortID
			}
			if *id = renderID(t, v[0], v[1:]); *id == "" {
				return n, fmt.Errorf("%w: ID TLV of type %d is blank", ErrMalformed, t)
			}
		case tlvTTL:
			if i > 2 {
				return n, fmt.Errorf("%w: a second TTL TLV", ErrMalformed)
			}
			if l != 2 {
				return n, fmt.Errorf("%w: TTL TLV of length %d", ErrMalformed, l)
			}
		case tlvPortDescription:
			n.PortDescription = Printable(v)
		case tlvSystemName:
			n.SystemName = Printable(v)
		case tlvSystemDescription:
			n.SystemDescription = Printable(v)
		}
		// Capabilities, management address, organisational and unknown TLVs are skipped.
	}
}

// mandatory returns the type the i-th TLV must have, or -1 when any type may follow.
func mandatory(i int) int {
	switch i {
	case 0:
		return tlvChassisID
	case 1:
		return tlvPortID
	case 2:
		return tlvTTL
	}
	return -1
}

// renderID renders a chassis or port ID: a MAC address as aa:bb:cc:dd:ee:ff, a network
// address (IANA family 1 or 2) as an IP, anything else as a printable string.
func renderID(tlvType int, subtype byte, id []byte) string {
	macSubtype, networkSubtype := byte(chassisMAC), byte(chassisNetwork)
	if tlvType == tlvPortID {
		macSubtype, networkSubtype = portMAC, portNetwork
	}
	switch subtype {
	case macSubtype:
		if len(id) == 6 {
			return net.HardwareAddr(id).String()
		}
	case networkSubtype:
		if len(id) > 1 {
			if ip, ok := netip.AddrFromSlice(id[1:]); ok && (id[0] == 1 && ip.Is4() || id[0] == 2 && ip.Is6()) {
				return ip.String()
			}
		}
	}
	return Printable(id)
}

// Printable renders peer bytes as text: surrounding white space and NULs dropped, printable
// UTF-8 kept, every other byte (and the backslash) written as \xNN, the result cut to
// report.MaxString bytes on a rune boundary.
func Printable(b []byte) string {
	b = bytes.Trim(b, " \t\r\n\x00")
	var s strings.Builder
	for len(b) > 0 && s.Len() <= report.MaxString {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size <= 1 || !unicode.IsPrint(r) || r == '\\' {
			fmt.Fprintf(&s, `\x%02x`, b[0])
			b = b[1:]
			continue
		}
		s.WriteRune(r)
		b = b[size:]
	}
	if s.Len() > report.MaxString {
		return message.Truncate(s.String(), report.MaxString-3)
	}
	return s.String()
}
