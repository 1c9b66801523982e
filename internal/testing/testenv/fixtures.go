package testenv

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

// Create creates obj and, when the test ends, deletes it and waits until it is gone. Register
// the test's manager before creating objects, so that its controllers still run (and
// honour finalizers) while these cleanups do.
func (e *Env) Create(t testing.TB, obj client.Object) {
	t.Helper()
	if err := e.Client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating %T %s: %v", obj, obj.GetName(), err)
	}
	t.Cleanup(func() { e.DeleteAndWait(t, obj) })
}

// DeleteAndWait deletes obj and waits until the API server no longer has it.
func (e *Env) DeleteAndWait(t testing.TB, obj client.Object) {
	t.Helper()
	ctx := context.Background()
	if err := e.Client.Delete(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("deleting %s: %v", obj.GetName(), err)
		return
	}
	NewWithT(t).Eventually(func() bool {
		err := e.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj.DeepCopyObject().(client.Object))
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 20*time.Millisecond).Should(BeTrue(), "%T %s was not deleted", obj, obj.GetName())
}

// IdleServer creates a server that the server controller leaves alone (operation=ignore),
// with the status of a free server written directly: for tests of the claim controller alone.
func (e *Env) IdleServer(t testing.TB, lbls map[string]string, mutate ...func(*metalv1alpha1.Server)) *metalv1alpha1.Server {
	t.Helper()
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "idle-",
			Labels:       lbls,
			Annotations:  map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationIgnore},
		},
		Spec: metalv1alpha1.ServerSpec{SystemUUID: "00000000-0000-0000-0000-000000000000"},
	}
	for _, m := range mutate {
		m(s)
	}
	e.Create(t, s)
	e.SetServerStatus(NewWithT(t), s, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	return s
}

// SetServerStatus writes a server's state and power as the server controller would.
func (e *Env) SetServerStatus(g Gomega, s *metalv1alpha1.Server, state metalv1alpha1.ServerState, power metalv1alpha1.ServerPowerState) {
	g.Eventually(func() error {
		cur := &metalv1alpha1.Server{}
		if err := e.Client.Get(context.Background(), client.ObjectKeyFromObject(s), cur); err != nil {
			return err
		}
		base := cur.DeepCopy()
		cur.Status.State = state
		cur.Status.PowerState = power
		return e.Client.Status().Patch(context.Background(), cur, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}))
	}, 10*time.Second, 20*time.Millisecond).Should(Succeed())
}

// ClientFrom is an HTTP client whose connections come from the source address ip, e.g. a
// second loopback address (127.0.0.2) playing another machine on the boot network.
func ClientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}
