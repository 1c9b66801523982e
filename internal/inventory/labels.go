package inventory

import (
	"fmt"
	"math/bits"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/metalfleet/metal-operator/internal/agent/report"
)

// A Rule puts one fact of a discovery report on a Server as a label, so that claims can
// select by what discovery found (--label-from-inventory KEY=FACT, see Facts).
type Rule struct {
	Key  string
	Fact string
}

// Facts a rule can name, with what the label's value is.
var Facts = map[string]string{
	"gpus":         "the number of PCI display and 3D controllers",
	"cpus":         "the number of processor packages",
	"cpu-threads":  "the number of hardware threads",
	"memory-class": "total memory rounded up to a power of two GiB, e.g. 512Gi",
	"disks":        "the number of disks the OS sees",
	"nvme-disks":   "the number of NVMe disks",
	"switch":       "the LLDP system name of the first neighbour seen (NICs by name)",
	"vendor":       "the system vendor",
	"product":      "the system product name",
}

// ParseRule parses KEY=FACT. KEY must be a valid label key, FACT one of Facts.
func ParseRule(s string) (Rule, error) {
	key, fact, ok := strings.Cut(s, "=")
	if !ok {
		return Rule{}, fmt.Errorf("inventory label rule %q: want KEY=FACT", s)
	}
	if errs := validation.IsQualifiedName(key); len(errs) > 0 {
		return Rule{}, fmt.Errorf("inventory label rule %q: %s", s, strings.Join(errs, "; "))
	}
	if _, ok := Facts[fact]; !ok {
		known := make([]string, 0, len(Facts))
		for f := range Facts {
			known = append(known, f)
		}
		slices.Sort(known)
		return Rule{}, fmt.Errorf("inventory label rule %q: unknown fact %q (known: %s)", s, fact, strings.Join(known, ", "))
	}
	return Rule{Key: key, Fact: fact}, nil
}

// Labels returns the labels the rules derive from a report. A fact the report does not have
// (no neighbour seen, no vendor) yields no label; values are cut and cleaned to be valid
// label values.
func Labels(rules []Rule, d *report.Discovery) map[string]string {
	out := map[string]string{}
	for _, r := range rules {
		if v := LabelValue(fact(r.Fact, d)); v != "" {
			out[r.Key] = v
		}
	}
	return out
}

func fact(name string, d *report.Discovery) string {
	switch name {
	case "gpus":
		n := 0
		for _, p := range d.PCIDevices {
			c := strings.ToLower(p.Class)
			if strings.Contains(c, "display") || strings.Contains(c, "3d controller") || strings.Contains(c, "vga") {
				n++
			}
		}
		return strconv.Itoa(n)
	case "cpus":
		return strconv.Itoa(len(d.CPUs))
	case "cpu-threads":
		var n int32
		for _, c := range d.CPUs {
			n += c.Threads
		}
		return strconv.Itoa(int(n))
	case "memory-class":
		if d.MemoryBytes <= 0 {
			return ""
		}
		gib := uint64((d.MemoryBytes + (1<<30 - 1)) >> 30)
		if gib&(gib-1) != 0 {
			gib = 1 << bits.Len64(gib)
		}
		return strconv.FormatUint(gib, 10) + "Gi"
	case "disks":
		return strconv.Itoa(len(d.BlockDevices))
	case "nvme-disks":
		n := 0
		for _, b := range d.BlockDevices {
			if strings.EqualFold(b.Transport, "nvme") {
				n++
			}
		}
		return strconv.Itoa(n)
	case "switch":
		nics := slices.Clone(d.NICs)
		slices.SortFunc(nics, func(a, b report.NIC) int { return strings.Compare(a.Name, b.Name) })
		for _, n := range nics {
			for _, nb := range n.Neighbors {
				if nb.SystemName != "" {
					return nb.SystemName
				}
			}
		}
	case "vendor":
		return d.Vendor
	case "product":
		return d.Product
	}
	return ""
}

var notLabelValue = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// LabelValue makes s a valid label value: other characters become "-", at most 63
// characters, starting and ending alphanumeric; "" when nothing is left.
func LabelValue(s string) string {
	v := notLabelValue.ReplaceAllString(s, "-")
	if len(v) > validation.LabelValueMaxLength {
		v = v[:validation.LabelValueMaxLength]
	}
	return strings.Trim(v, "-_.")
}
