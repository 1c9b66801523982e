package controller

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/gomega"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/bmc"
	"github.com/metalfleet/metal-operator/internal/bmc/access"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/bmc/redfish"
)

// The BMCUser controller acts on every BMCUser of the cluster: these tests do not call
// t.Parallel (see bmc_controller_test.go); cases inside one test share its manager.

func setupBMCUserController(mgr manager.Manager) error {
	return (&BMCUserReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Scheme:    mgr.GetScheme(),
		Recorder:  mgr.GetEventRecorder("bmcuser-controller"),
		Connector: &access.RedfishConnector{Reader: mgr.GetClient(), Timeout: 2 * time.Second},
		Options:   BMCUserOptions{ResyncInterval: 300 * time.Millisecond, MaxConcurrentReconciles: 4},
	}).SetupWithManager(mgr)
}

// userBMC starts an emulator and creates a BMC object for it, with a BMCSecret holding the
// emulator's credentials. No BMC controller runs: the BMC's status stays empty.
func userBMC(t *testing.T, mutate ...func(*metalv1alpha1.BMC)) (*emulator.Emulator, *metalv1alpha1.BMC) {
	t.Helper()
	em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
	secret := newBMCSecret(t, testBMCUser, testBMCPassword)
	obj := bmcFor(t, em.URL(), secret.Name, mutate...)
	create(t, obj)
	return em, obj
}

// newBMCUser creates a BMCUser for an account on the BMC. When the test ends it is deleted
// (while the controller runs, which removes the account), then the BMCSecrets it generated:
// envtest has no garbage collector.
func newBMCUser(t *testing.T, bmcName, userName, role string, mutate ...func(*metalv1alpha1.BMCUser)) *metalv1alpha1.BMCUser {
	t.Helper()
	u := &metalv1alpha1.BMCUser{
		ObjectMeta: metav1.ObjectMeta{GenerateName: "bmcuser-"},
		Spec: metalv1alpha1.BMCUserSpec{
			UserName: userName,
			RoleID:   role,
			BMCRef:   &metalv1alpha1.LocalObjectReference{Name: bmcName},
		},
	}
	for _, m := range mutate {
		m(u)
	}
	t.Cleanup(func() {
		if u.Name == "" {
			return
		}
		for _, s := range generatedSecrets(NewWithT(t), u) {
			deleteAndWait(t, &s)
		}
	})
	create(t, u)
	return u
}

// generatedSecrets lists the BMCSecrets the BMCUser generated.
func generatedSecrets(g Gomega, u *metalv1alpha1.BMCUser) []metalv1alpha1.BMCSecret {
	var list metalv1alpha1.BMCSecretList
	g.Expect(env.Client.List(context.Background(), &list, client.MatchingLabels{metalv1alpha1.BMCUserUIDLabel: string(u.UID)})).To(Succeed())
	var out []metalv1alpha1.BMCSecret
	for _, s := range list.Items {
		if metav1.IsControlledBy(&s, u) {
			out = append(out, s)
		}
	}
	return out
}

// synced waits until the BMCUser is Ready with spec.bmcSecretRef in use (and accept, if
// given, holds for it), and returns that secret's name and password.
func synced(t *testing.T, u *metalv1alpha1.BMCUser, accept ...func(g Gomega, u *metalv1alpha1.BMCUser)) (string, string) {
	t.Helper()
	var name, password string
	NewWithT(t).Eventually(func(g Gomega) {
		get(g, u)
		c := meta.FindStatusCondition(u.Status.Conditions, metalv1alpha1.BMCUserReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Status).To(Equal(metav1.ConditionTrue), "%s: %s", c.Reason, c.Message)
		g.Expect(u.Spec.BMCSecretRef).NotTo(BeNil())
		g.Expect(u.Status.EffectiveBMCSecretRef).To(Equal(u.Spec.BMCSecretRef))
		for _, a := range accept {
			a(g, u)
		}
		secret := &metalv1alpha1.BMCSecret{ObjectMeta: metav1.ObjectMeta{Name: u.Spec.BMCSecretRef.Name}}
		get(g, secret)
		var ok bool
		_, password, ok = secret.Credentials()
		g.Expect(ok).To(BeTrue())
		name = secret.Name
	}).Should(Succeed(), "BMCUser %s never synced", u.Name)
	return name, password
}

// expectUserReason waits until the BMCUser is Ready=False with the reason and returns the
// condition.
func expectUserReason(t *testing.T, u *metalv1alpha1.BMCUser, reason string) metav1.Condition {
	t.Helper()
	var c metav1.Condition
	NewWithT(t).Eventually(func(g Gomega) {
		get(g, u)
		found := meta.FindStatusCondition(u.Status.Conditions, metalv1alpha1.BMCUserReady)
		g.Expect(found).NotTo(BeNil())
		g.Expect(found.Status).To(Equal(metav1.ConditionFalse))
		g.Expect(found.Reason).To(Equal(reason), found.Message)
		c = *found
	}).Should(Succeed())
	return c
}

// userEvents returns the events about a BMCUser.
func userEvents(g Gomega, u *metalv1alpha1.BMCUser) []eventsv1.Event {
	return clusterObjectEvents(g, "BMCUser", u.Name)
}

// expectUserEvent waits for an event with the reason about the BMCUser.
func expectUserEvent(t *testing.T, u *metalv1alpha1.BMCUser, reason string) {
	t.Helper()
	NewWithT(t).Eventually(func(g Gomega) []string {
		var reasons []string
		for _, e := range userEvents(g, u) {
			reasons = append(reasons, e.Reason)
		}
		return reasons
	}).Should(ContainElement(reason))
}

// expectPasswordsHidden checks that no event or condition about the BMCUser shows one of the
// passwords.
func expectPasswordsHidden(g Gomega, u *metalv1alpha1.BMCUser, passwords ...string) {
	get(g, u)
	var shown []string
	for _, e := range userEvents(g, u) {
		shown = append(shown, e.Note)
	}
	for _, c := range u.Status.Conditions {
		shown = append(shown, c.Message)
	}
	g.Expect(shown).NotTo(BeEmpty())
	for _, pw := range passwords {
		g.Expect(pw).NotTo(BeEmpty())
		for _, s := range shown {
			g.Expect(s).NotTo(ContainSubstring(pw))
		}
	}
}

// setAnnotation sets (or, with value "", removes) the operation annotation of a BMCUser.
func setUserOperation(g Gomega, u *metalv1alpha1.BMCUser, value string) {
	patchObject(g, u, func(o *metalv1alpha1.BMCUser) {
		if value == "" {
			delete(o.Annotations, metalv1alpha1.OperationAnnotation)
			return
		}
		if o.Annotations == nil {
			o.Annotations = map[string]string{}
		}
		o.Annotations[metalv1alpha1.OperationAnnotation] = value
	})
}

// Create, role change, a password changed behind the operator's back, and deletion, on a
// BMC that creates accounts with POST and on one with fixed slots that refuses POST and
// DELETE (405): there the account is made in a free slot and emptied and disabled on
// deletion.
func TestBMCUserLifecycle(t *testing.T) {
	startManager(t, setupBMCUserController)
	for _, fixedSlots := range []bool{false, true} {
		t.Run(map[bool]string{false: "POST", true: "fixed slots"}[fixedSlots], func(t *testing.T) {
			g := NewWithT(t)
			em, obj := userBMC(t)
			em.SetFixedAccountSlots(fixedSlots)
			u := newBMCUser(t, obj.Name, "metal", "ReadOnly")

			// Created, with a generated password that fits the BMC's rules.
			secretName, password := synced(t, u)
			g.Expect(password).To(HaveLen(emulator.DefaultMaxPasswordLength))
			g.Expect(em.Authenticates("metal", password)).To(BeTrue())
			account, found := em.Account("metal")
			g.Expect(found).To(BeTrue())
			g.Expect(account.RoleID).To(Equal("ReadOnly"))
			g.Expect(u.Status.ID).To(Equal(account.ID))
			g.Expect(u.Status.LastRotation).NotTo(BeNil())
			secrets := generatedSecrets(g, u)
			g.Expect(secrets).To(HaveLen(1))
			g.Expect(secrets[0].Name).To(Equal(secretName))
			g.Expect(secrets[0].Immutable).To(HaveValue(BeTrue()))
			g.Expect(secrets[0].Data).To(HaveKeyWithValue(metalv1alpha1.BMCSecretUsernameKey, []byte("metal")))
			expectUserEvent(t, u, "AccountCreated")

			// Role change: the account follows, with the same secret.
			writes := em.AccountWrites()
			patchObject(g, u, func(o *metalv1alpha1.BMCUser) { o.Spec.RoleID = "Operator" })
			g.Eventually(func() string { a, _ := em.Account("metal"); return a.RoleID }).Should(Equal("Operator"))
			name, _ := synced(t, u)
			g.Expect(name).To(Equal(secretName))
			g.Expect(em.Authenticates("metal", password)).To(BeTrue())
			g.Expect(em.AccountWrites()).To(Equal(writes+1), "one PATCH")
			expectUserEvent(t, u, "AccountUpdated")

			// Someone changes the password on the BMC: it is set back from the secret.
			g.Expect(em.SetAccountPassword("metal", "Ch4nged-by-hand")).To(BeTrue())
			g.Eventually(func() bool { return em.Authenticates("metal", password) }).Should(BeTrue())
			expectUserEvent(t, u, "PasswordRestored")
			g.Expect(generatedSecrets(g, u)).To(HaveLen(1))

			expectPasswordsHidden(g, u, password)

			// Deletion removes the account (fixed slots: the slot is emptied and disabled).
			deleteAndWait(t, u)
			_, found = em.Account("metal")
			g.Expect(found).To(BeFalse())
			g.Expect(em.Authenticates("metal", password)).To(BeFalse())
		})
	}
}

// Rotation by rotationPeriod and by the rotate-credentials annotation: a new generated secret
// each time, in use once it logs in, the old password no longer working; of the generated
// secrets the last two remain.
func TestBMCUserRotation(t *testing.T) {
	startManager(t, setupBMCUserController)
	em, obj := userBMC(t)

	t.Run("by period", func(t *testing.T) {
		g := NewWithT(t)
		u := newBMCUser(t, obj.Name, "periodic", "Operator", func(u *metalv1alpha1.BMCUser) {
			u.Spec.RotationPeriod = &metav1.Duration{Duration: time.Second}
		})
		first, firstPassword := synced(t, u)
		seen := map[string]bool{first: true}
		passwords := []string{firstPassword}
		for len(seen) < 4 {
			name, password := synced(t, u, func(g Gomega, u *metalv1alpha1.BMCUser) {
				g.Expect(seen).NotTo(HaveKey(u.Spec.BMCSecretRef.Name))
			})
			seen[name] = true
			passwords = append(passwords, password)
		}
		// Stop rotating, then look at what is left.
		patchObject(g, u, func(o *metalv1alpha1.BMCUser) { o.Spec.RotationPeriod = nil })
		current, password := synced(t, u)
		g.Expect(em.Authenticates("periodic", password)).To(BeTrue())
		g.Expect(em.Authenticates("periodic", firstPassword)).To(BeFalse())
		g.Eventually(func(g Gomega) {
			secrets := generatedSecrets(g, u)
			g.Expect(secrets).To(HaveLen(2))
			g.Expect([]string{secrets[0].Name, secrets[1].Name}).To(ContainElement(current))
		}).Should(Succeed())
		expectUserEvent(t, u, "SecretGenerated")
		expectUserEvent(t, u, "CredentialsInUse")
		expectPasswordsHidden(g, u, passwords...)
	})

	t.Run("by annotation", func(t *testing.T) {
		g := NewWithT(t)
		u := newBMCUser(t, obj.Name, "on-demand", "ReadOnly")
		first, firstPassword := synced(t, u)
		firstRotation := u.Status.LastRotation
		setUserOperation(g, u, metalv1alpha1.OperationAnnotationRotateCredentials)
		second, password := synced(t, u, func(g Gomega, u *metalv1alpha1.BMCUser) {
			g.Expect(u.Spec.BMCSecretRef.Name).NotTo(Equal(first))
			g.Expect(u.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation), "the annotation is removed")
		})
		g.Expect(second).NotTo(Equal(first))
		g.Expect(u.Status.LastRotation.Time).NotTo(BeTemporally("<", firstRotation.Time))
		g.Expect(em.Authenticates("on-demand", password)).To(BeTrue())
		g.Expect(em.Authenticates("on-demand", firstPassword)).To(BeFalse())
		// Without a period, nothing rotates on its own.
		g.Consistently(func(g Gomega) string { get(g, u); return u.Spec.BMCSecretRef.Name }).Should(Equal(second))
		expectPasswordsHidden(g, u, firstPassword, password)
	})
}

// A secret the user gives is used as it is; a change to another one takes effect only once
// the BMC accepts it and it logs in: a password the BMC refuses leaves the secret in use as
// it was, with a reason.
func TestBMCUserGivenSecret(t *testing.T) {
	startManager(t, setupBMCUserController)
	g := NewWithT(t)
	em, obj := userBMC(t)
	const first, second = "Given-Passw0rd!", "0ther-Given-pw?"
	s1 := newBMCSecret(t, "given", first)
	u := newBMCUser(t, obj.Name, "given", "ReadOnly", func(u *metalv1alpha1.BMCUser) {
		u.Spec.BMCSecretRef = &metalv1alpha1.LocalObjectReference{Name: s1.Name}
	})
	name, _ := synced(t, u)
	g.Expect(name).To(Equal(s1.Name))
	g.Expect(em.Authenticates("given", first)).To(BeTrue())
	g.Expect(generatedSecrets(g, u)).To(BeEmpty())

	weak := newBMCSecret(t, "given", "short")
	patchObject(g, u, func(o *metalv1alpha1.BMCUser) { o.Spec.BMCSecretRef.Name = weak.Name })
	c := expectUserReason(t, u, metalv1alpha1.ReasonAccountRejected)
	g.Expect(c.Message).To(ContainSubstring("bad request (400)"))
	g.Expect(u.Status.EffectiveBMCSecretRef.Name).To(Equal(s1.Name))
	g.Expect(em.Authenticates("given", first)).To(BeTrue())

	s2 := newBMCSecret(t, "given", second)
	patchObject(g, u, func(o *metalv1alpha1.BMCUser) { o.Spec.BMCSecretRef.Name = s2.Name })
	name, _ = synced(t, u)
	g.Expect(name).To(Equal(s2.Name))
	g.Expect(em.Authenticates("given", second)).To(BeTrue())
	expectPasswordsHidden(g, u, first, second, "short")
}

// Deletion does not hang on an account that is already gone, nor on a BMC object that is.
func TestBMCUserDeletionReleases(t *testing.T) {
	startManager(t, setupBMCUserController)

	t.Run("account already gone", func(t *testing.T) {
		g := NewWithT(t)
		em, obj := userBMC(t)
		u := newBMCUser(t, obj.Name, "vanishing", "ReadOnly")
		synced(t, u)
		// Keep the controller away while the account disappears and the BMCUser is deleted: once
		// the BMC sees no more requests, no reconcile is under way.
		setUserOperation(g, u, metalv1alpha1.OperationAnnotationIgnore)
		g.Eventually(func(g Gomega) {
			n := em.RequestCount()
			g.Consistently(em.RequestCount).WithTimeout(500 * time.Millisecond).Should(Equal(n))
		}).Should(Succeed())
		g.Expect(env.Client.Delete(context.Background(), u)).To(Succeed())
		g.Expect(em.DeleteAccount("vanishing")).To(BeTrue())
		writes := em.AccountWrites()
		setUserOperation(g, u, "")
		g.Eventually(func() bool {
			return apierrors.IsNotFound(env.Client.Get(context.Background(), client.ObjectKeyFromObject(u), u))
		}).
			Should(BeTrue(), "the finalizer is released")
		g.Expect(em.AccountWrites()).To(Equal(writes))
	})

	t.Run("BMC gone", func(t *testing.T) {
		_, obj := userBMC(t)
		u := newBMCUser(t, obj.Name, "orphan", "ReadOnly")
		synced(t, u)
		deleteAndWait(t, obj)
		expectUserReason(t, u, metalv1alpha1.ReasonBMCNotFound)
		deleteAndWait(t, u)
	})
}

// Every way an account cannot be put in place is Ready=False with a reason and a message
// that says what to fix, and a Warning event.
func TestBMCUserConditions(t *testing.T) {
	startManager(t, setupBMCUserController)
	tests := []struct {
		name   string
		setup  func(t *testing.T) *metalv1alpha1.BMCUser
		reason string
		// message is a substring of the condition message.
		message string
		// fix, when set, cures the failure; the account is then expected in place.
		fix func(t *testing.T)
	}{
		{
			name: "wrong admin secret", reason: metalv1alpha1.ReasonBMCUnauthorized, message: "unauthorized (401)",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
				wrong := newSecretNamed(t, "bmcuser-test-wrong-admin", testBMCUser, "not-the-password")
				obj := bmcFor(t, em.URL(), wrong.Name)
				create(t, obj)
				return newBMCUser(t, obj.Name, "metal", "ReadOnly")
			},
			fix: func(t *testing.T) {
				wrong := &metalv1alpha1.BMCSecret{ObjectMeta: metav1.ObjectMeta{Name: "bmcuser-test-wrong-admin"}}
				patchObject(NewWithT(t), wrong, func(s *metalv1alpha1.BMCSecret) {
					s.Data[metalv1alpha1.BMCSecretPasswordKey] = []byte(testBMCPassword)
				})
			},
		},
		{
			name: "admin secret missing", reason: metalv1alpha1.ReasonSecretNotFound, message: "BMCSecret bmcuser-test-admin does not exist",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				em := newEmulator(t, emulator.Options{Username: testBMCUser, Password: testBMCPassword})
				obj := bmcFor(t, em.URL(), "bmcuser-test-admin")
				create(t, obj)
				// The secret fix creates goes only after the BMCUser, which needs it to go.
				t.Cleanup(func() {
					deleteAndWait(t, &metalv1alpha1.BMCSecret{ObjectMeta: metav1.ObjectMeta{Name: "bmcuser-test-admin"}})
				})
				return newBMCUser(t, obj.Name, "metal", "ReadOnly")
			},
			fix: func(t *testing.T) {
				NewWithT(t).Expect(env.Client.Create(context.Background(), &metalv1alpha1.BMCSecret{
					ObjectMeta: metav1.ObjectMeta{Name: "bmcuser-test-admin"},
					Data: map[string][]byte{
						metalv1alpha1.BMCSecretUsernameKey: []byte(testBMCUser),
						metalv1alpha1.BMCSecretPasswordKey: []byte(testBMCPassword),
					},
				})).To(Succeed())
			},
		},
		{
			name: "no such BMC", reason: metalv1alpha1.ReasonBMCNotFound, message: "BMC no-such-bmc does not exist",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				return newBMCUser(t, "no-such-bmc", "metal", "ReadOnly")
			},
		},
		{
			name: "no bmcRef", reason: metalv1alpha1.ReasonNoBMC, message: "spec.bmcRef is not set",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				return newBMCUser(t, "", "metal", "ReadOnly", func(u *metalv1alpha1.BMCUser) { u.Spec.BMCRef = nil })
			},
		},
		{
			name: "unknown role", reason: metalv1alpha1.ReasonRoleNotFound, message: `has no role "Root"`,
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				_, obj := userBMC(t)
				return newBMCUser(t, obj.Name, "metal", "Root")
			},
		},
		{
			name: "the BMC's own admin account", reason: metalv1alpha1.ReasonBMCAdminAccount, message: "left alone",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				_, obj := userBMC(t)
				return newBMCUser(t, obj.Name, testBMCUser, "ReadOnly")
			},
		},
		{
			name: "password rules admit no password", reason: metalv1alpha1.ReasonInvalidPasswordPolicy, message: "MaxPasswordLength is 3",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				em, obj := userBMC(t)
				em.SetPasswordPolicy(1, 3)
				return newBMCUser(t, obj.Name, "metal", "ReadOnly")
			},
		},
		{
			name: "given secret missing", reason: metalv1alpha1.ReasonSecretNotFound, message: "BMCSecret missing-secret (spec.bmcSecretRef) does not exist",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				_, obj := userBMC(t)
				return newBMCUser(t, obj.Name, "metal", "ReadOnly", func(u *metalv1alpha1.BMCUser) {
					u.Spec.BMCSecretRef = &metalv1alpha1.LocalObjectReference{Name: "missing-secret"}
				})
			},
		},
		{
			name: "given secret for another user", reason: metalv1alpha1.ReasonSecretInvalid, message: `must hold username "metal"`,
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				_, obj := userBMC(t)
				other := newBMCSecret(t, "someone-else", "Some-Passw0rd!")
				return newBMCUser(t, obj.Name, "metal", "ReadOnly", func(u *metalv1alpha1.BMCUser) {
					u.Spec.BMCSecretRef = &metalv1alpha1.LocalObjectReference{Name: other.Name}
				})
			},
		},
		{
			name: "no free account slot", reason: metalv1alpha1.ReasonNoFreeAccountSlot, message: "no free account slot",
			setup: func(t *testing.T) *metalv1alpha1.BMCUser {
				em, obj := userBMC(t)
				em.SetFixedAccountSlots(true)
				fillAccountSlots(t, em)
				return newBMCUser(t, obj.Name, "metal", "ReadOnly")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g := NewWithT(t)
			u := tt.setup(t)
			c := expectUserReason(t, u, tt.reason)
			g.Expect(c.Message).To(ContainSubstring(tt.message))
			expectUserEvent(t, u, tt.reason)
			g.Expect(u.Status.EffectiveBMCSecretRef).To(BeNil())
			if tt.fix != nil {
				tt.fix(t)
				synced(t, u)
			}
		})
	}
}

// fillAccountSlots takes every free account slot of the emulator for other users.
func fillAccountSlots(t *testing.T, em *emulator.Emulator) {
	t.Helper()
	g := NewWithT(t)
	c, err := redfish.New(redfish.Config{Endpoint: em.URL(), Username: testBMCUser, Password: testBMCPassword})
	g.Expect(err).NotTo(HaveOccurred())
	for i := 2; i <= emulator.AccountSlots; i++ {
		_, err := c.SetAccount(t.Context(), bmc.AccountSettings{UserName: fmt.Sprintf("other-%d", i), Password: "Other-Passw0rd!", RoleID: "ReadOnly"})
		g.Expect(err).NotTo(HaveOccurred())
	}
}

// Nothing the controller logs, at any verbosity, nor any error it returns (which
// controller-runtime logs), nor any event shows a password. The reconciler is driven by hand
// here, with a logger that keeps every line, through creation, a rotation, a password changed
// on the BMC, a wrong admin password and deletion.
func TestBMCUserLogsNoPassword(t *testing.T) {
	g := NewWithT(t)
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	logger := funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		logs.WriteString(prefix + " " + args + "\n")
	}, funcr.Options{Verbosity: 10})
	ctx := logr.NewContext(t.Context(), logger)
	recorder := events.NewFakeRecorder(1000)
	r := &BMCUserReconciler{
		Client: env.Client, APIReader: env.Client, Scheme: env.Scheme, Recorder: recorder,
		Connector: &access.RedfishConnector{Reader: env.Client, Timeout: 2 * time.Second},
		Options:   BMCUserOptions{ResyncInterval: time.Minute, MaxConcurrentReconciles: 1},
	}
	r.init()
	em, obj := userBMC(t)
	u := newBMCUser(t, obj.Name, "logged", "ReadOnly")
	var errs []string
	reconcileUntil := func(done func(g Gomega)) {
		t.Helper()
		g.Eventually(func(g Gomega) {
			if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(u)}); err != nil {
				errs = append(errs, err.Error())
			}
			done(g)
		}).Should(Succeed())
	}
	passwordOf := func(g Gomega) string {
		secret := &metalv1alpha1.BMCSecret{ObjectMeta: metav1.ObjectMeta{Name: u.Spec.BMCSecretRef.Name}}
		get(g, secret)
		_, pw, _ := secret.Credentials()
		return pw
	}
	passwords := []string{testBMCPassword}
	inUse := func(g Gomega) {
		get(g, u)
		g.Expect(u.Status.EffectiveBMCSecretRef).NotTo(BeNil())
		g.Expect(u.Status.EffectiveBMCSecretRef).To(Equal(u.Spec.BMCSecretRef))
	}

	reconcileUntil(inUse)
	first := u.Status.EffectiveBMCSecretRef.Name
	passwords = append(passwords, passwordOf(g))

	setUserOperation(g, u, metalv1alpha1.OperationAnnotationRotateCredentials)
	reconcileUntil(func(g Gomega) {
		inUse(g)
		g.Expect(u.Status.EffectiveBMCSecretRef.Name).NotTo(Equal(first))
	})
	password := passwordOf(g)
	passwords = append(passwords, password)

	g.Expect(em.SetAccountPassword("logged", "Ch4nged-by-hand")).To(BeTrue())
	reconcileUntil(func(g Gomega) { g.Expect(em.Authenticates("logged", password)).To(BeTrue()) })

	em.SetCredentials(testBMCUser, "Changed-admin-pw")
	reconcileUntil(func(g Gomega) {
		get(g, u)
		c := meta.FindStatusCondition(u.Status.Conditions, metalv1alpha1.BMCUserReady)
		g.Expect(c).NotTo(BeNil())
		g.Expect(c.Reason).To(Equal(metalv1alpha1.ReasonBMCUnauthorized))
	})
	em.SetCredentials(testBMCUser, testBMCPassword)

	g.Expect(env.Client.Delete(ctx, u)).To(Succeed())
	reconcileUntil(func(g Gomega) {
		g.Expect(apierrors.IsNotFound(env.Client.Get(ctx, client.ObjectKeyFromObject(u), &metalv1alpha1.BMCUser{}))).To(BeTrue())
	})
	_, found := em.Account("logged")
	g.Expect(found).To(BeFalse())

	shown := append([]string{logs.String()}, errs...)
	for len(recorder.Events) > 0 {
		shown = append(shown, <-recorder.Events)
	}
	g.Expect(logs.String()).To(ContainSubstring("Credentials in use"), "the logger was used")
	for _, s := range shown {
		for _, pw := range passwords {
			g.Expect(s).NotTo(ContainSubstring(pw))
		}
	}
}
