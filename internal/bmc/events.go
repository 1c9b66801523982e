package bmc

import "context"

// EventFormat is the kind of payload a Redfish event subscription delivers.
type EventFormat string

// Event formats (Redfish EventFormatType).
const (
	EventFormatEvent        EventFormat = "Event"
	EventFormatMetricReport EventFormat = "MetricReport"
)

// Subscription is one Redfish event subscription of a BMC.
type Subscription struct {
	// URI is the Redfish path of the subscription.
	URI string
	// Destination is where the BMC posts its events. It may carry a secret (the operator's
	// receiver token): never log it.
	Destination string
	Context     string
	Format      EventFormat
}

// EventSubscriber manages the BMC's Redfish event subscriptions.
type EventSubscriber interface {
	// Subscribe creates a subscription that posts payloads of format to destination with
	// the given context and returns its URI. A BMC that refuses it as a duplicate
	// (ResourceAlreadyExists) yields the existing subscription with the same destination and
	// context. A BMC without an enabled EventService yields ErrNotSupported.
	Subscribe(ctx context.Context, destination, context string, format EventFormat) (string, error)
	// Unsubscribe deletes a subscription; one that is already gone is no error.
	Unsubscribe(ctx context.Context, uri string) error
	// Subscriptions lists the BMC's subscriptions.
	Subscriptions(ctx context.Context) ([]Subscription, error)
}
