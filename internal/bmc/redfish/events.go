package redfish

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/metalfleet/metal-operator/internal/bmc"
)

var _ bmc.EventSubscriber = (*Client)(nil)

const pathEventService = "/redfish/v1/EventService"

// eventService is the part of the Redfish EventService the client reads.
type eventService struct {
	ServiceEnabled *bool `json:"ServiceEnabled"`
	Subscriptions  link  `json:"Subscriptions"`
}

// eventDestination is a Redfish EventDestination (a subscription).
type eventDestination struct {
	ODataID         string `json:"@odata.id"`
	Destination     string `json:"Destination"`
	Context         string `json:"Context"`
	EventFormatType string `json:"EventFormatType"`
}

// subscriptionRequest is the body of a new subscription. DeliveryRetryPolicy is left to the
// BMC: some refuse it (HPE), and TerminateAfterRetries would delete the subscription while
// the receiver is down, behind the operator's back.
type subscriptionRequest struct {
	Destination     string `json:"Destination"`
	Context         string `json:"Context"`
	EventFormatType string `json:"EventFormatType"`
	Protocol        string `json:"Protocol"`
}

// subscriptionsPath reads the EventService and returns its Subscriptions collection. A BMC
// without one, or with the service disabled, yields ErrNotSupported.
func (c *Client) subscriptionsPath(ctx context.Context) (string, error) {
	var svc eventService
	if _, err := c.getJSON(ctx, pathEventService, &svc); err != nil {
		if errors.Is(err, bmc.ErrNotFound) || errors.Is(err, bmc.ErrNotSupported) {
			return "", fmt.Errorf("redfish: %w: the BMC has no EventService: %w", bmc.ErrNotSupported, err)
		}
		return "", err
	}
	if svc.ServiceEnabled != nil && !*svc.ServiceEnabled {
		return "", fmt.Errorf("redfish: GET %s: %w: the EventService is disabled", pathEventService, bmc.ErrNotSupported)
	}
	if svc.Subscriptions.ODataID != "" {
		return pathOf(svc.Subscriptions.ODataID), nil
	}
	return pathEventService + "/Subscriptions", nil
}

// Subscribe POSTs a subscription to the EventService. The URI is the answer's Location (else
// its @odata.id). A refusal as a duplicate (ResourceAlreadyExists, or Dell's
// PropertyValueModified) yields the subscription with the same destination and context, if
// there is one. Errors never quote the destination: it carries the receiver's token.
func (c *Client) Subscribe(ctx context.Context, destination, subContext string, format bmc.EventFormat) (string, error) {
	uri, err := c.subscribe(ctx, destination, subContext, format)
	return uri, redactDestination(err, destination)
}

func (c *Client) subscribe(ctx context.Context, destination, subContext string, format bmc.EventFormat) (string, error) {
	if destination == "" {
		return "", errors.New("redfish: subscribe: empty destination")
	}
	col, err := c.subscriptionsPath(ctx)
	if err != nil {
		return "", err
	}
	req := subscriptionRequest{Destination: destination, Context: subContext, EventFormatType: string(format), Protocol: "Redfish"}
	resp, err := c.do(ctx, http.MethodPost, col, req, nil)
	if err != nil {
		if resp != nil && duplicateSubscription(resp.body) {
			if uri, found, lerr := c.findSubscription(ctx, destination, subContext); lerr == nil && found {
				return uri, nil
			}
		}
		return "", err
	}
	uri := resp.header.Get("Location")
	if uri == "" {
		var created eventDestination
		if json.Unmarshal(resp.body, &created) == nil {
			uri = created.ODataID
		}
	}
	if uri == "" {
		return "", fmt.Errorf("redfish: POST %s: the BMC created a subscription without naming it", col)
	}
	if _, _, err := c.resolve(uri); err != nil {
		return "", err
	}
	return pathOf(uri), nil
}

// duplicateSubscription reports whether an error body refuses a subscription as one that
// exists already.
func duplicateSubscription(body []byte) bool {
	var rerr redfishError
	if json.Unmarshal(body, &rerr) != nil {
		return false
	}
	for _, info := range rerr.Error.ExtendedInfo {
		if strings.HasSuffix(info.MessageID, "ResourceAlreadyExists") || strings.HasSuffix(info.MessageID, "PropertyValueModified") {
			return true
		}
	}
	return false
}

// findSubscription looks for the subscription with the destination and context.
func (c *Client) findSubscription(ctx context.Context, destination, subContext string) (string, bool, error) {
	subs, err := c.Subscriptions(ctx)
	if err != nil {
		return "", false, err
	}
	for _, s := range subs {
		if s.Destination == destination && s.Context == subContext {
			return s.URI, true, nil
		}
	}
	return "", false, nil
}

// Unsubscribe DELETEs a subscription; 404 means it is gone already.
func (c *Client) Unsubscribe(ctx context.Context, uri string) error {
	if uri == "" {
		return nil
	}
	if _, err := c.do(ctx, http.MethodDelete, uri, nil, nil); err != nil && !errors.Is(err, bmc.ErrNotFound) {
		return err
	}
	return nil
}

// Subscriptions lists the EventService's subscriptions (bounded like any collection).
func (c *Client) Subscriptions(ctx context.Context) ([]bmc.Subscription, error) {
	col, err := c.subscriptionsPath(ctx)
	if err != nil {
		return nil, err
	}
	uris, err := c.listMembers(ctx, col)
	if err != nil {
		return nil, err
	}
	items, found, err := getAll[eventDestination](ctx, c, uris)
	if err != nil {
		return nil, err
	}
	out := make([]bmc.Subscription, 0, len(items))
	for i, s := range items {
		if found[i] {
			out = append(out, bmc.Subscription{URI: pathOf(uris[i]), Destination: s.Destination, Context: s.Context,
				Format: bmc.EventFormat(s.EventFormatType)})
		}
	}
	return out, nil
}

// redactDestination hides the destination (and the token in its last path segment) in an
// error's message, in case the BMC quoted it back.
func redactDestination(err error, destination string) error {
	if err == nil {
		return nil
	}
	secrets := []string{destination}
	if i := strings.LastIndexByte(destination, '/'); i >= 0 && len(destination)-i > 8 {
		secrets = append(secrets, destination[i+1:])
	}
	return redactSecrets(err, err.Error(), secrets)
}
