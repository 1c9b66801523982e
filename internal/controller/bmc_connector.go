package controller

import (
	"context"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
)

// BMCObjectConnector builds a client for the BMC a BMC object describes. ConnectBMC does no
// I/O against the BMC itself; errors about the object's configuration (no address, missing
// secret, unsupported protocol) are *BMCAccessError. Unlike BMCConnector.Connect for a
// server, it does not look at the object's status.state: it is how the BMC controller reaches
// a BMC that is still Pending or in Error.
type BMCObjectConnector interface {
	ConnectBMC(ctx context.Context, obj *metalv1alpha1.BMC) (bmc.BMC, error)
}

var _ BMCObjectConnector = (*RedfishConnector)(nil)

// ConnectBMC returns a Redfish client for the BMC object: address spec.hostname, else
// spec.access.ip; port and scheme from spec.protocol (the scheme defaults as for servers:
// https, http for RedfishLocal); credentials from the BMCSecret spec.bmcSecretRef.
func (c *RedfishConnector) ConnectBMC(ctx context.Context, obj *metalv1alpha1.BMC) (bmc.BMC, error) {
	address := bmcAddress(obj)
	if address == "" {
		return nil, accessError(metalv1alpha1.ReasonNoAddress, "BMC %s has neither spec.hostname nor spec.access.ip", obj.Name)
	}
	return c.connectEndpoint(ctx, bmcEndpoint{
		address:  address,
		protocol: obj.Spec.Protocol,
		secret:   obj.Spec.BMCSecretRef.Name,
	})
}
