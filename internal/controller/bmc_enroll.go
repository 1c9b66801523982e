package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/binding"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/cachelag"
	"github.com/metalfleet/metal-operator/internal/index"
)

// BMCServerName is the name of the Server the BMC controller creates for the system with the
// given index: "<bmc>-system-<index>", as in the reference.
//
// The index rule. A new system's index is its position, counted from 0, among the systems the
// BMC reports, sorted by URI with numeric Ids in numeric order (/Systems/2 before
// /Systems/10); if that name is taken – by the Server of a system that has disappeared, or
// by any other Server – the next free index is used. So a BMC enrolled at once gets
// <bmc>-system-0, -1, ... in the order of its system Ids, exactly the reference's names.
// A Server keeps its name for good: later reconciles find a system's Server by its UUID,
// never by name, so systems that disappear or appear never rename another system's Server,
// and a system that appears after another disappeared takes a fresh name instead of the
// name of the missing system's Server (which is kept).
func BMCServerName(bmcName string, n int) string {
	return fmt.Sprintf("%s-system-%d", bmcName, n)
}

// enrollment is what one round of enrollment found.
type enrollment struct {
	// enrolled counts the systems that have a Server of this BMC (created, adopted or found).
	enrolled int
	// elsewhere lists systems whose Server belongs to another owner or BMC.
	elsewhere []string
	// noUUID counts systems reported without a UUID (they cannot be enrolled).
	noUUID int
	// shared counts systems reported with a UUID another system of the BMC has too (they
	// are not enrolled: a Server is found by its system's UUID).
	shared int
	// waiting is set while a Server created a moment ago is not in the cache yet.
	waiting bool
	// created names the Servers created in this round.
	created []string
}

func (e enrollment) readyMessage(systems int) string {
	msg := fmt.Sprintf("%d of %d systems enrolled as Servers", e.enrolled, systems)
	if len(e.elsewhere) > 0 {
		msg += fmt.Sprintf("; %d held by another owner: %s", len(e.elsewhere), shortList(e.elsewhere))
	}
	if e.noUUID > 0 {
		msg += fmt.Sprintf("; %d reported without a UUID", e.noUUID)
	}
	if e.shared > 0 {
		msg += fmt.Sprintf("; %d reported with a UUID another system shares", e.shared)
	}
	return msg
}

// enroll gives every system the BMC reports a Server, keeps spec.bmcRef, spec.systemURI and
// the labels of the BMC's Servers in sync, and sets condition SystemsMissing from the servers
// reached through the BMC whose system it no longer reports. servers are the servers with
// spec.bmcRef naming the BMC (from the cache).
func (r *BMCReconciler) enroll(ctx context.Context, sc *bmcScope, systems []bmc.System, servers []*metalv1alpha1.Server) (enrollment, error) {
	obj := sc.obj
	var out enrollment
	sorted := slices.Clone(systems)
	slices.SortFunc(sorted, bmc.CompareSystems)

	taken := map[string]bool{}
	byName := map[string]*metalv1alpha1.Server{}
	for _, s := range servers {
		taken[s.Name] = true
		byName[s.Name] = s
	}
	shared := sharedUUIDs(sorted)
	present := map[string]bool{}
	for i, sys := range sorted {
		uuid := strings.ToLower(sys.UUID)
		if uuid == "" {
			out.noUUID++
			continue
		}
		present[uuid] = true
		if len(shared[uuid]) > 0 {
			// Which of the systems a Server of this UUID is would flip between reconciles.
			out.shared++
			continue
		}
		own, adoptable, other, err := r.serversForSystem(ctx, obj, uuid, byName)
		if err != nil {
			return out, err
		}
		switch {
		case own != nil:
			r.pending.observed(obj.UID, uuid)
			if err := r.patchServer(ctx, own, func(s *metalv1alpha1.Server) { syncServer(s, obj, sys) }); err != nil {
				return out, err
			}
			out.enrolled++
		case adoptable != nil:
			r.pending.observed(obj.UID, uuid)
			if err := r.adopt(ctx, sc, adoptable, sys); err != nil {
				return out, err
			}
			out.enrolled++
		case other != nil:
			out.elsewhere = append(out.elsewhere, fmt.Sprintf("%s (server %s)", uuid, other.Name))
		case r.pending.has(obj.UID, uuid):
			out.waiting = true
			out.enrolled++
		default:
			name, err := r.createServer(ctx, sys, obj, i, taken)
			if err != nil {
				return out, err
			}
			if name != "" {
				out.enrolled++
				out.created = append(out.created, name)
			} else {
				out.waiting = true
			}
		}
	}

	var missing []string
	for _, s := range servers {
		if !present[strings.ToLower(s.Spec.SystemUUID)] {
			missing = append(missing, fmt.Sprintf("%s (%s)", s.Name, s.Spec.SystemUUID))
		}
	}
	r.setSystemsMissing(sc, missing)
	r.setDuplicateUUIDs(sc, shared)
	if len(out.created) > 0 {
		// One event per round, not per Server: enrolling a fleet costs as many events as
		// BMCs. Each Server names its system in spec.systemURI.
		sc.eventf(nil, corev1.EventTypeNormal, "ServerCreated", "Enroll",
			"Created %d Server(s) for systems of the BMC: %s", len(out.created), shortList(out.created))
	}
	return out, nil
}

// sharedUUIDs maps each UUID (lower case) that more than one of the systems reports to the
// URIs of those systems, in the systems' order.
func sharedUUIDs(systems []bmc.System) map[string][]string {
	uris := map[string][]string{}
	for _, sys := range systems {
		if uuid := strings.ToLower(sys.UUID); uuid != "" {
			uris[uuid] = append(uris[uuid], sys.URI)
		}
	}
	for uuid, u := range uris {
		if len(u) < 2 {
			delete(uris, uuid)
		}
	}
	return uris
}

// setDuplicateUUIDs sets condition DuplicateSystemUUIDs from the UUIDs systems share, with
// an event when that list changes. The message is the same for the same systems, so that a
// BMC that keeps reporting them writes nothing.
func (r *BMCReconciler) setDuplicateUUIDs(sc *bmcScope, shared map[string][]string) {
	obj := sc.obj
	prev := bmcCondition(obj, metalv1alpha1.BMCDuplicateSystemUUIDs)
	if len(shared) == 0 {
		r.setCondition(obj, metalv1alpha1.BMCDuplicateSystemUUIDs, metav1.ConditionFalse, metalv1alpha1.ReasonSystemUUIDsUnique,
			"Every system of the BMC has a UUID of its own")
		return
	}
	var list []string
	for _, uuid := range slices.Sorted(maps.Keys(shared)) {
		list = append(list, fmt.Sprintf("%s (%s)", uuid, strings.Join(shared[uuid], ", ")))
	}
	msg := fmt.Sprintf("The BMC reports %d UUID(s) for more than one system; those systems are not enrolled: %s",
		len(shared), shortList(list))
	r.setCondition(obj, metalv1alpha1.BMCDuplicateSystemUUIDs, metav1.ConditionTrue, metalv1alpha1.ReasonDuplicateSystemUUIDs, msg)
	if prev.Status != metav1.ConditionTrue || prev.Message != msg {
		sc.eventf(nil, corev1.EventTypeWarning, metalv1alpha1.ReasonDuplicateSystemUUIDs, "Enroll", "%s", msg)
	}
}

// serversForSystem classifies the servers with the system's UUID (index index.ServerSystemUUID):
// the one this BMC controls; else one it may adopt (no controller, not being deleted, and
// its BMC unset or this one, see mayAdopt); else any other. A server in known (written earlier
// in this reconcile) is taken from there rather than from the cache.
func (r *BMCReconciler) serversForSystem(ctx context.Context, obj *metalv1alpha1.BMC, uuid string, known map[string]*metalv1alpha1.Server) (own, adoptable, other *metalv1alpha1.Server, err error) {
	var list metalv1alpha1.ServerList
	if err := r.List(ctx, &list, client.MatchingFields{index.ServerSystemUUID: uuid}); err != nil {
		return nil, nil, nil, fmt.Errorf("listing servers of system %s: %w", uuid, err)
	}
	slices.SortFunc(list.Items, func(a, b metalv1alpha1.Server) int { return strings.Compare(a.Name, b.Name) })
	for i := range list.Items {
		s := &list.Items[i]
		if k, ok := known[s.Name]; ok && k.UID == s.UID {
			s = k
		}
		ref := metav1.GetControllerOf(s)
		switch {
		case ref != nil && ref.UID == obj.UID:
			if own == nil {
				own = s
			}
		case ref == nil && s.DeletionTimestamp.IsZero() && mayAdopt(s, obj):
			if adoptable == nil {
				adoptable = s
			}
		default:
			if other == nil {
				other = s
			}
		}
	}
	return own, adoptable, other, nil
}

// mayAdopt reports whether the BMC may adopt the server: its BMC is not set elsewhere
// (neither inline spec.bmc nor a spec.bmcRef naming another BMC), or the server's
// AdoptByBMCAnnotation names this BMC. A BMC reporting a system's UUID proves nothing about
// who owns the server: UUIDs can be guessed or cloned.
func mayAdopt(s *metalv1alpha1.Server, obj *metalv1alpha1.BMC) bool {
	if s.Annotations[metalv1alpha1.AdoptByBMCAnnotation] == obj.Name {
		return true
	}
	return s.Spec.BMC == nil && (s.Spec.BMCRef == nil || s.Spec.BMCRef.Name == obj.Name)
}

// syncServer sets what a server of the BMC carries from it: spec.bmcRef, spec.systemURI and
// the BMC's labels.
func syncServer(s *metalv1alpha1.Server, obj *metalv1alpha1.BMC, sys bmc.System) {
	if s.Spec.BMCRef == nil {
		s.Spec.BMCRef = &metalv1alpha1.LocalObjectReference{Name: obj.Name}
	}
	if sys.URI != "" {
		s.Spec.SystemURI = sys.URI
	}
	binding.CopyLabels(s, obj.Labels)
}

// adopt makes the BMC the controller of an existing server of one of its systems.
func (r *BMCReconciler) adopt(ctx context.Context, sc *bmcScope, s *metalv1alpha1.Server, sys bmc.System) error {
	obj := sc.obj
	var refErr error
	err := r.patchServer(ctx, s, func(o *metalv1alpha1.Server) {
		refErr = controllerutil.SetControllerReference(obj, o, r.Scheme)
		// Adoption (allowed by the annotation) moves a server reached elsewhere to this BMC.
		o.Spec.BMC = nil
		o.Spec.BMCRef = &metalv1alpha1.LocalObjectReference{Name: obj.Name}
		syncServer(o, obj, sys)
	})
	if refErr != nil {
		return fmt.Errorf("adopting server %s: %w", s.Name, refErr)
	}
	if err != nil {
		return err
	}
	ctrl.LoggerFrom(ctx).Info("Adopted server", "Server", s.Name, "systemUUID", s.Spec.SystemUUID)
	sc.eventf(s, corev1.EventTypeNormal, "ServerAdopted", "Enroll",
		"Adopted Server %s for system %s (%s)", s.Name, sys.URI, s.Spec.SystemUUID)
	return nil
}

// createServer creates the Server of a system that has none and returns its name. It
// returns "" when the name it chose turned out to be taken (the cache was behind): the next
// reconcile chooses again.
func (r *BMCReconciler) createServer(ctx context.Context, sys bmc.System, obj *metalv1alpha1.BMC, position int, taken map[string]bool) (string, error) {
	name, err := r.freeName(ctx, obj.Name, position, taken)
	if err != nil {
		return "", err
	}
	uuid := strings.ToLower(sys.UUID)
	s := &metalv1alpha1.Server{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: metalv1alpha1.ServerSpec{
			SystemUUID: uuid,
			SystemURI:  sys.URI,
			BMCRef:     &metalv1alpha1.LocalObjectReference{Name: obj.Name},
		},
	}
	binding.CopyLabels(s, obj.Labels)
	if err := controllerutil.SetControllerReference(obj, s, r.Scheme); err != nil {
		return "", fmt.Errorf("creating server %s: %w", name, err)
	}
	taken[name] = true
	// Recorded before the create, so that its watch event finds it (notCreatedHere).
	r.pending.add(obj.UID, uuid, name)
	if err := r.Create(ctx, s); err != nil {
		r.pending.observed(obj.UID, uuid)
		if apierrors.IsAlreadyExists(err) {
			return "", nil
		}
		return "", fmt.Errorf("creating server %s: %w", name, err)
	}
	ctrl.LoggerFrom(ctx).Info("Created server", "Server", name, "systemURI", sys.URI, "systemUUID", uuid)
	return name, nil
}

// freeName returns BMCServerName(bmc, i) for the first i from position whose name is neither
// taken by a server of the BMC nor by any other server in the cache.
func (r *BMCReconciler) freeName(ctx context.Context, bmcName string, position int, taken map[string]bool) (string, error) {
	for i := position; ; i++ {
		name := BMCServerName(bmcName, i)
		if taken[name] || r.pending.nameTaken(name) {
			continue
		}
		err := r.Get(ctx, client.ObjectKey{Name: name}, &metalv1alpha1.Server{})
		switch {
		case apierrors.IsNotFound(err):
			return name, nil
		case err != nil:
			return "", fmt.Errorf("reading server %s: %w", name, err)
		}
		taken[name] = true
	}
}

// setSystemsMissing sets condition SystemsMissing from the servers whose system the BMC no
// longer reports, with an event when that list changes.
func (r *BMCReconciler) setSystemsMissing(sc *bmcScope, missing []string) {
	obj := sc.obj
	prev := bmcCondition(obj, metalv1alpha1.BMCSystemsMissing)
	if len(missing) == 0 {
		r.setCondition(obj, metalv1alpha1.BMCSystemsMissing, metav1.ConditionFalse, metalv1alpha1.ReasonAllSystemsPresent,
			"The BMC reports the system of every server reached through it")
		if prev.Status == metav1.ConditionTrue {
			sc.eventf(nil, corev1.EventTypeNormal, "SystemsPresent", "Enroll",
				"The BMC reports the system of every server reached through it again")
		}
		return
	}
	msg := fmt.Sprintf("The BMC no longer reports the systems of %d server(s); they are kept: %s",
		len(missing), shortList(missing))
	r.setCondition(obj, metalv1alpha1.BMCSystemsMissing, metav1.ConditionTrue, metalv1alpha1.ReasonSystemsMissing, msg)
	if prev.Status != metav1.ConditionTrue || prev.Message != msg {
		sc.eventf(nil, corev1.EventTypeWarning, "SystemsMissing", "Enroll", "%s", msg)
	}
}

// pendingServers remembers the Servers the controller created until the cache shows them, in
// the manner of the ReplicaSet controller's expectations: a reconcile that reads a cache
// predating the creation must not create a second Server for the same system. Entries live
// in memory (a new manager starts from a fresh List); those not observed within
// pendingServerRetention (the server was deleted before the cache saw it) are dropped.
type pendingServers struct {
	created *cachelag.Store[pendingKey, string]
}

// pendingKey is one system of one BMC: the BMC's UID and the system's UUID (lower case).
type pendingKey struct {
	bmc  types.UID
	uuid string
}

const pendingServerRetention = time.Minute

func newPendingServers() *pendingServers {
	return &pendingServers{created: cachelag.NewStore[pendingKey, string](cachelag.Options{Retention: pendingServerRetention})}
}

// add records that the server name was created for the system.
func (p *pendingServers) add(bmcUID types.UID, uuid, name string) {
	p.created.Set(pendingKey{bmcUID, uuid}, name)
}

// has reports whether a server for the system was created a moment ago.
func (p *pendingServers) has(bmcUID types.UID, uuid string) bool {
	_, _, ok := p.created.Get(pendingKey{bmcUID, uuid})
	return ok
}

// nameTaken reports whether a server of that name was created a moment ago.
func (p *pendingServers) nameTaken(name string) bool {
	return p.created.Any(func(_ pendingKey, created string) bool { return created == name })
}

// observed drops the entry of a system whose server the cache shows.
func (p *pendingServers) observed(bmcUID types.UID, uuid string) {
	p.created.Delete(pendingKey{bmcUID, uuid})
}

// forget drops every entry of a BMC.
func (p *pendingServers) forget(bmcUID types.UID) {
	p.created.DeleteFunc(func(k pendingKey, _ string) bool { return k.bmc == bmcUID })
}
