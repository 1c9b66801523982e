package lldp

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// Subtypes Encode writes for IDs that are neither a MAC nor an IP address.
const (
	chassisLocal = 7
	portName     = 5
)

const (
	minFrameBytes = 60
	maxTLVValue   = 511
	encodeTTL     = 120
)

// Encode builds the Ethernet frame a switch port would send to describe itself as n, from
// source address src: a chassis or port ID that parses as a MAC or an IP address gets that
// subtype, any other ID is sent as a locally assigned chassis ID or an interface name. It is
// how fixtures and tests produce frames for Decode; Decode(Encode(n)) is n for any n whose
// strings are printable, within their TLV bounds and, for MACs, in lower case.
func Encode(n report.Neighbor, src net.HardwareAddr) ([]byte, error) {
	if len(src) != 6 {
		return nil, fmt.Errorf("source address %q is not a 6-byte MAC", src)
	}
	f := make([]byte, 0, minFrameBytes)
	f = append(f, MulticastAddr...)
	f = append(f, src...)
	f = binary.BigEndian.AppendUint16(f, EtherType)

	var err error
	if f, err = appendTLV(f, tlvChassisID, encodeID(n.ChassisID, chassisMAC, chassisNetwork, chassisLocal)); err != nil {
		return nil, err
	}
	if f, err = appendTLV(f, tlvPortID, encodeID(n.PortID, portMAC, portNetwork, portName)); err != nil {
		return nil, err
	}
	if f, err = appendTLV(f, tlvTTL, binary.BigEndian.AppendUint16(nil, encodeTTL)); err != nil {
		return nil, err
	}
	for _, o := range []struct {
		typ int
		val string
	}{
		{tlvPortDescription, n.PortDescription},
		{tlvSystemName, n.SystemName},
		{tlvSystemDescription, n.SystemDescription},
	} {
		if o.val == "" {
			continue
		}
		if f, err = appendTLV(f, o.typ, []byte(o.val)); err != nil {
			return nil, err
		}
	}
	f = append(f, 0, 0) // End of LLDPDU
	for len(f) < minFrameBytes {
		f = append(f, 0)
	}
	return f, nil
}

func encodeID(id string, macSubtype, networkSubtype, otherSubtype byte) []byte {
	if mac, err := net.ParseMAC(id); err == nil && len(mac) == 6 {
		return append([]byte{macSubtype}, mac...)
	}
	if ip, err := netip.ParseAddr(id); err == nil && ip.Zone() == "" {
		family := byte(1)
		if ip.Is6() {
			family = 2
		}
		return append([]byte{networkSubtype, family}, ip.AsSlice()...)
	}
	return append([]byte{otherSubtype}, id...)
}

func appendTLV(f []byte, typ int, v []byte) ([]byte, error) {
	if len(v) > maxTLVValue {
		return nil, fmt.Errorf("TLV type %d: %d bytes, at most %d fit", typ, len(v), maxTLVValue)
	}
	if (typ == tlvChassisID || typ == tlvPortID) && (len(v) < minIDLength || len(v) > maxIDLength) {
		return nil, fmt.Errorf("TLV type %d: an ID of %d bytes, 1 to %d fit", typ, len(v)-1, maxIDLength-1)
	}
	return append(binary.BigEndian.AppendUint16(f, uint16(typ)<<9|uint16(len(v))), v...), nil
}
