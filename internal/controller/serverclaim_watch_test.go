package controller

import (
	"fmt"
	"testing"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
)

// TestServerStateChangeFinishesItsClaimFirst: in the controller's own queue, a claim whose
// server changed state (turned Reserved) is reconciled before claims that are yet to start,
// so that a burst binds claims as it goes; a server change that is not a state change does
// not jump the queue.
func TestServerStateChangeFinishesItsClaimFirst(t *testing.T) {
	g := NewWithT(t)
	q := priorityqueue.New[reconcile.Request]("claims-test")
	defer q.ShutDown()
	r := &ServerClaimReconciler{Client: env.Client, Pool: binding.NewPool()}
	request := func(name string) reconcile.Request {
		return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: "ns", Name: name}}
	}
	for i := range 3 {
		q.Add(request(fmt.Sprintf("new-%d", i)))
	}
	server := func(claim string, state metalv1alpha1.ServerState, led metalv1alpha1.IndicatorLED) *metalv1alpha1.Server {
		return &metalv1alpha1.Server{
			ObjectMeta: metav1.ObjectMeta{Name: "s-" + claim, ResourceVersion: "1"},
			Spec: metalv1alpha1.ServerSpec{ServerClaimRef: &metalv1alpha1.ImmutableObjectReference{
				Namespace: "ns", Name: claim, UID: "uid-" + claim}},
			Status: metalv1alpha1.ServerStatus{State: state, IndicatorLED: led},
		}
	}
	h := r.serverEventHandler()
	// Another change of a bound server: its claim queues behind the others.
	h.Update(t.Context(), event.UpdateEvent{
		ObjectOld: server("led", metalv1alpha1.ServerStateReserved, ""),
		ObjectNew: server("led", metalv1alpha1.ServerStateReserved, metalv1alpha1.BlinkingIndicatorLED)}, q)
	h.Update(t.Context(), event.UpdateEvent{
		ObjectOld: server("held", metalv1alpha1.ServerStateAvailable, ""),
		ObjectNew: server("held", metalv1alpha1.ServerStateReserved, "")}, q)

	var order []string
	for range 5 {
		req, _ := q.Get()
		order = append(order, req.Name)
		q.Done(req)
	}
	g.Expect(order).To(Equal([]string{"held", "new-0", "new-1", "new-2", "led"}))
}
