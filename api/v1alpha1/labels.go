package v1alpha1

// Rack label conventions, shared with the reference: where a machine stands. Set them on a
// BMC and they are copied to its Servers like every other BMC label; set them on a Server
// created by hand directly. Claims select on them, and placement reads them.
const (
	// LocationLabel is a site-defined location at whatever granularity fits (site, campus,
	// data centre, floor, or a combination), e.g. "FRA-B1-F2".
	LocationLabel = "metadata.metal.ironcore.dev/location"
	// RackLabel is an opaque rack identifier, unique within a location, e.g. "1-12".
	RackLabel = "metadata.metal.ironcore.dev/rack"
	// ShelfLabel is the machine's position in its rack: the number of its bottom rack unit,
	// counted from 1 at the bottom, as a decimal integer, e.g. "24".
	ShelfLabel = "metadata.metal.ironcore.dev/shelf"
	// HeightLabel is the machine's height in rack units, as a decimal integer, e.g. "2".
	HeightLabel = "metadata.metal.ironcore.dev/height"
)
