package v1alpha1

// ServerClaimSet condition types.
const (
	// ServerClaimSetBound is True while every replica holds a Reserved server; its reason says
	// why not otherwise.
	ServerClaimSetBound = "Bound"
	// ServerClaimSetReady is True while every replica's claim is Ready.
	ServerClaimSetReady = "Ready"
)

// ServerClaimSet condition reasons.
const (
	// ReasonBound: every replica holds its server.
	ReasonBound = "Bound"
	// ReasonInsufficientCapacity: the free servers that fit the template cannot hold the
	// replicas under the topology; the message says how many fit where. Nothing is held.
	ReasonInsufficientCapacity = "InsufficientCapacity"
	// ReasonBinding: a placement was decided and the member claims are taking their servers;
	// none of them is powered or booted until all hold theirs.
	ReasonBinding = "Binding"
	// ReasonPlacementConflict: a server of the placement was taken by someone else before the
	// member claim took it; the set let go of every server of that placement and decides again.
	ReasonPlacementConflict = "PlacementConflict"
	// ReasonTopologyRelaxed: whenUnsatisfiable is BestEffort and the replicas were placed
	// beyond some maxPerDomain, as evenly as the free servers allowed.
	ReasonTopologyRelaxed = "TopologyRelaxed"
	// ReasonInvalidTemplate: the template's selector cannot be parsed.
	ReasonInvalidTemplate = "InvalidTemplate"
	// ReasonReady: every replica's claim is Ready.
	ReasonReady = "Ready"
	// ReasonMembersNotReady: some replicas are not bound or their claims not Ready yet.
	ReasonMembersNotReady = "MembersNotReady"
)

// ServerQuota condition types and reasons.
const (
	// ServerQuotaExceeded is True while some limit counts more servers than its max: the max
	// was lowered below what is bound (lowering a quota never unbinds anything).
	ServerQuotaExceeded = "Exceeded"
	// ReasonUsedAboveMax: some limit's used count is above its max.
	ReasonUsedAboveMax = "UsedAboveMax"
	// ReasonWithinLimits: every limit's used count is within its max.
	ReasonWithinLimits = "WithinLimits"
)
