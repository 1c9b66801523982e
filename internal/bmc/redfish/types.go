package redfish

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// The structs below hold the subset of the DMTF Redfish schemas the client reads. Unknown
// properties are ignored; JSON null leaves the zero value.

// link is a reference to another resource.
type link struct {
	ODataID string `json:"@odata.id"`
}

// ServiceRoot is the Redfish service root (/redfish/v1).
type ServiceRoot struct {
	ID             string `json:"Id"`
	Name           string `json:"Name"`
	RedfishVersion string `json:"RedfishVersion"`
	UUID           string `json:"UUID"`
	Vendor         string `json:"Vendor"`
	Product        string `json:"Product"`
	Systems        link   `json:"Systems"`
	Managers       link   `json:"Managers"`
	SessionService link   `json:"SessionService"`
	Links          struct {
		Sessions link `json:"Sessions"`
	} `json:"Links"`
	ProtocolFeaturesSupported struct {
		ExpandQuery *expandQuery `json:"ExpandQuery"`
	} `json:"ProtocolFeaturesSupported"`
}

type status struct {
	State  string `json:"State"`
	Health string `json:"Health"`
}

type computerSystem struct {
	ODataID       string `json:"@odata.id"`
	ODataEtag     string `json:"@odata.etag"`
	ID            string `json:"Id"`
	UUID          string `json:"UUID"`
	Manufacturer  string `json:"Manufacturer"`
	Model         string `json:"Model"`
	SKU           string `json:"SKU"`
	SerialNumber  string `json:"SerialNumber"`
	BiosVersion   string `json:"BiosVersion"`
	PowerState    string `json:"PowerState"`
	IndicatorLED  string `json:"IndicatorLED"`
	MemorySummary struct {
		TotalSystemMemoryGiB number `json:"TotalSystemMemoryGiB"`
	} `json:"MemorySummary"`
	Boot struct {
		BootSourceOverrideEnabled string   `json:"BootSourceOverrideEnabled"`
		BootSourceOverrideTarget  string   `json:"BootSourceOverrideTarget"`
		BootSourceOverrideMode    string   `json:"BootSourceOverrideMode"`
		AllowableModes            []string `json:"BootSourceOverrideMode@Redfish.AllowableValues"`
		AllowableTargets          []string `json:"BootSourceOverrideTarget@Redfish.AllowableValues"`
		BootOrder                 []string `json:"BootOrder"`
	} `json:"Boot"`
	Actions struct {
		Reset struct {
			Target          string   `json:"target"`
			AllowableValues []string `json:"ResetType@Redfish.AllowableValues"`
		} `json:"#ComputerSystem.Reset"`
	} `json:"Actions"`
	Processors         link `json:"Processors"`
	Memory             link `json:"Memory"`
	EthernetInterfaces link `json:"EthernetInterfaces"`
	Storage            link `json:"Storage"`
}

// bootOrderPatch is the PATCH body that replaces a system's boot order.
type bootOrderPatch struct {
	Boot bootOrderBody `json:"Boot"`
}

type bootOrderBody struct {
	BootOrder []string `json:"BootOrder"`
}

type manager struct {
	ID                 string `json:"Id"`
	UUID               string `json:"UUID"`
	ManagerType        string `json:"ManagerType"`
	Manufacturer       string `json:"Manufacturer"`
	Model              string `json:"Model"`
	SKU                string `json:"SKU"`
	SerialNumber       string `json:"SerialNumber"`
	FirmwareVersion    string `json:"FirmwareVersion"`
	PowerState         string `json:"PowerState"`
	EthernetInterfaces link   `json:"EthernetInterfaces"`
}

type processor struct {
	ID                    string `json:"Id"`
	ProcessorType         string `json:"ProcessorType"`
	ProcessorArchitecture string `json:"ProcessorArchitecture"`
	InstructionSet        string `json:"InstructionSet"`
	Manufacturer          string `json:"Manufacturer"`
	Model                 string `json:"Model"`
	MaxSpeedMHz           number `json:"MaxSpeedMHz"`
	TotalCores            number `json:"TotalCores"`
	TotalThreads          number `json:"TotalThreads"`
	Status                status `json:"Status"`
}

type memory struct {
	ID               string `json:"Id"`
	Manufacturer     string `json:"Manufacturer"`
	PartNumber       string `json:"PartNumber"`
	MemoryDeviceType string `json:"MemoryDeviceType"`
	CapacityMiB      number `json:"CapacityMiB"`
	Status           status `json:"Status"`
}

type ethernetInterface struct {
	ID                  string `json:"Id"`
	Name                string `json:"Name"`
	MACAddress          string `json:"MACAddress"`
	PermanentMACAddress string `json:"PermanentMACAddress"`
	LinkStatus          string `json:"LinkStatus"`
	IPv4Addresses       []struct {
		Address string `json:"Address"`
	} `json:"IPv4Addresses"`
	Status status `json:"Status"`
}

// storage is a storage subsystem; an expanded read may carry its drives and its volume
// collection in place.
type storage struct {
	ID      string                           `json:"Id"`
	Name    string                           `json:"Name"`
	Status  status                           `json:"Status"`
	Drives  []member[drive]                  `json:"Drives"`
	Volumes member[memberCollection[volume]] `json:"Volumes"`
}

type drive struct {
	Name          string `json:"Name"`
	MediaType     string `json:"MediaType"`
	Protocol      string `json:"Protocol"`
	Manufacturer  string `json:"Manufacturer"`
	Model         string `json:"Model"`
	CapacityBytes number `json:"CapacityBytes"`
	Status        status `json:"Status"`
}

type volume struct {
	Name          string `json:"Name"`
	RAIDType      string `json:"RAIDType"`
	VolumeUsage   string `json:"VolumeUsage"`
	CapacityBytes number `json:"CapacityBytes"`
	Status        status `json:"Status"`
}

type session struct {
	ODataID string `json:"@odata.id"`
	ID      string `json:"Id"`
}

// redfishError is the body of a Redfish error response.
type redfishError struct {
	Error struct {
		Code         string `json:"code"`
		Message      string `json:"message"`
		ExtendedInfo []struct {
			MessageID string `json:"MessageId"`
			Message   string `json:"Message"`
		} `json:"@Message.ExtendedInfo"`
	} `json:"error"`
}

// number decodes a JSON number that may be null, integral or fractional. BMCs disagree on
// whether counts and capacities are integers.
type number float64

func (n *number) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		*n = 0
		return nil
	}
	var f float64
	if err := json.Unmarshal(b, &f); err == nil {
		*n = number(f)
		return nil
	}
	// Some BMCs send numbers as strings; anything unparsable reads as 0 rather than failing
	// the whole resource.
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			*n = number(f)
			return nil
		}
	}
	*n = 0
	return nil
}

func (n number) int64() int64 {
	f := math.Round(float64(n))
	switch {
	case f >= math.MaxInt64:
		return math.MaxInt64
	case f <= math.MinInt64:
		return math.MinInt64
	}
	return int64(f)
}

func (n number) int32() int32 {
	v := n.int64()
	switch {
	case v > math.MaxInt32:
		return math.MaxInt32
	case v < math.MinInt32:
		return math.MinInt32
	}
	return int32(v)
}
