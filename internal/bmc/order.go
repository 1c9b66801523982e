package bmc

import (
	"cmp"
	"path"
	"strconv"
	"strings"
)

// CompareSystems orders systems by URI: by parent path, then by the last segment, numeric
// segments in numeric order and before the others, then by UUID: a total order on (URI,
// UUID), so that the BMC controller names new Servers alike whatever order a BMC lists them in.
func CompareSystems(a, b System) int {
	da, ba := path.Split(strings.TrimRight(a.URI, "/"))
	db, bb := path.Split(strings.TrimRight(b.URI, "/"))
	if c := strings.Compare(da, db); c != 0 {
		return c
	}
	na, errA := strconv.ParseUint(ba, 10, 64)
	nb, errB := strconv.ParseUint(bb, 10, 64)
	switch {
	case errA == nil && errB == nil:
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	case errA == nil:
		return -1
	case errB == nil:
		return 1
	}
	return cmp.Or(strings.Compare(ba, bb), strings.Compare(a.URI, b.URI), strings.Compare(a.UUID, b.UUID))
}
