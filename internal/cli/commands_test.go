package cli

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
)

func TestFleetGroupsServersByStateLabelAndPool(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	group := map[string]string{"test": uniqueName(t, "fleet")}
	rack := func(r string) map[string]string {
		return map[string]string{"test": group["test"], metalv1alpha1.RackLabel: r, "hardwareType": "gpu"}
	}
	server(t, uniqueName(t, "free"), rack("r1"), metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	server(t, uniqueName(t, "claimed"), rack("r1"), metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState,
		func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "someone"}
		})
	server(t, uniqueName(t, "cordoned"), rack("r2"), metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState,
		func(s *metalv1alpha1.Server) { s.Spec.Unclaimable = true })

	out := c.ok("fleet", "-l", "test="+group["test"])
	g.Expect(out).To(ContainSubstring("3 servers: 1 free, 1 claimed, 1 out of pool"))
	g.Expect(out).To(MatchRegexp(`(?m)^Available\s+2$`))
	g.Expect(out).To(MatchRegexp(`(?m)^Reserved\s+1$`))
	g.Expect(out).To(MatchRegexp(`(?m)^RACK\s+SERVERS\s+FREE\s+CLAIMED\s+OUT-OF-POOL$`))
	g.Expect(out).To(MatchRegexp(`(?m)^r1\s+2\s+1\s+1\s+0$`))
	g.Expect(out).To(MatchRegexp(`(?m)^r2\s+1\s+0\s+0\s+1$`))

	wide := c.ok("fleet", "-l", "test="+group["test"], "--by", "hardwareType", "-o", "wide")
	g.Expect(wide).To(MatchRegexp(`(?m)^HARDWARETYPE\s+SERVERS`))
	g.Expect(wide).To(MatchRegexp(`(?m)^` + uniqueName(t, "claimed") + `\s+Reserved\s+On\s+claimed\s+` + ns + `/someone\s+gpu`))
	g.Expect(wide).To(MatchRegexp(`(?m)^` + uniqueName(t, "cordoned") + `\s+Available\s+Off\s+out-of-pool\s+-\s+gpu\s+Server \S+ is cordoned`))

	var report fleetReport
	g.Expect(json.Unmarshal([]byte(c.ok("fleet", "-l", "test="+group["test"], "-o", "json")), &report)).To(Succeed())
	g.Expect(report.Total).To(Equal(3))
	g.Expect(report.ByPool).To(Equal(map[string]int{poolFree: 1, poolClaimed: 1, poolOutOfPool: 1}))
	g.Expect(report.Groups).To(Equal([]fleetGroup{
		{Value: "r1", Total: 2, Free: 1, Claimed: 1},
		{Value: "r2", Total: 1, OutOfPool: 1},
	}))
	g.Expect(c.ok("fleet", "-l", "test="+group["test"], "-o", "yaml")).To(ContainSubstring("groupLabel: " + metalv1alpha1.RackLabel))

	_, _, err := c.run("", "fleet", "-o", "xml")
	g.Expect(err).To(MatchError(ContainSubstring(`unknown output format "xml"`)))
}

func TestCommandsUseTheKubeconfigContext(t *testing.T) {
	g := NewWithT(t)
	c := newCLI(t, env.Namespace(t))
	// Without --context the current context, which points nowhere, is used.
	cmd := NewCommand(Streams{})
	cmd.SetArgs([]string{"--kubeconfig", c.kubeconfig, "fleet"})
	cmd.SetOut(&discard{})
	cmd.SetErr(&discard{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := cmd.ExecuteContext(ctx)
	g.Expect(err).To(MatchError(ContainSubstring("127.0.0.1:1")))
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

func TestCordonAndUncordon(t *testing.T) {
	g := NewWithT(t)
	c := newCLI(t, env.Namespace(t))
	s := server(t, uniqueName(t, "s"), nil, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)

	g.Expect(c.ok("cordon", s.Name, "--dry-run")).To(Equal("server/" + s.Name + " cordoned (server dry run)\n"))
	g.Expect(get(t, s).Spec.Unclaimable).To(BeFalse())
	g.Expect(c.ok("cordon", s.Name)).To(Equal("server/" + s.Name + " cordoned\n"))
	g.Expect(get(t, s).Spec.Unclaimable).To(BeTrue())
	g.Expect(c.ok("cordon", s.Name)).To(Equal("server/" + s.Name + " already cordoned\n"))
	g.Expect(c.ok("uncordon", s.Name)).To(Equal("server/" + s.Name + " uncordoned\n"))
	g.Expect(get(t, s).Spec.Unclaimable).To(BeFalse())

	_, _, err := c.run("", "cordon", s.Name, "no-such-server")
	g.Expect(err).To(MatchError(ContainSubstring(`reading Server no-such-server`)))
	g.Expect(get(t, s).Spec.Unclaimable).To(BeTrue(), "the servers that exist are cordoned all the same")
}

func TestParkAndUnpark(t *testing.T) {
	g := NewWithT(t)
	c := newCLI(t, env.Namespace(t))
	s := server(t, uniqueName(t, "s"), nil, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	busy := server(t, uniqueName(t, "busy"), nil, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState,
		func(s *metalv1alpha1.Server) {
			s.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationHardRestartServer}
		})

	g.Expect(c.ok("unpark", s.Name)).To(Equal("server/" + s.Name + " not parked\n"))
	g.Expect(c.ok("park", s.Name)).To(Equal("server/" + s.Name + " park requested\n"))
	g.Expect(get(t, s).Annotations).To(HaveKeyWithValue(metalv1alpha1.OperationAnnotation, metalv1alpha1.OperationAnnotationPark))
	g.Expect(c.ok("park", s.Name)).To(Equal("server/" + s.Name + " park already requested\n"))

	// The server controller parks it: the request is gone, the marker is there.
	cur := get(t, s)
	cur.Annotations = map[string]string{metalv1alpha1.ParkedAnnotation: "true"}
	g.Expect(env.Client.Update(t.Context(), cur)).To(Succeed())
	g.Expect(c.ok("park", s.Name)).To(Equal("server/" + s.Name + " already parked\n"))
	g.Expect(c.ok("unpark", s.Name)).To(Equal("server/" + s.Name + " unpark requested\n"))
	g.Expect(get(t, s).Annotations).To(HaveKeyWithValue(metalv1alpha1.OperationAnnotation, metalv1alpha1.OperationAnnotationUnpark))

	_, _, err := c.run("", "park", busy.Name)
	g.Expect(err).To(MatchError(ContainSubstring(`operation "hard-restart-server" pending`)))
	g.Expect(get(t, busy).Annotations).To(HaveKeyWithValue(metalv1alpha1.OperationAnnotation, metalv1alpha1.OperationAnnotationHardRestartServer))
}

func TestReleaseAsksBeforeClearingAReleasedServer(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	gone := &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "gone", UID: "0d9a4c32-5f0e-4a51-a1a8-8b3c0c1d9a11"}
	released := server(t, uniqueName(t, "released"), nil, metalv1alpha1.ServerStateReleased, metalv1alpha1.ServerOffPowerState,
		func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = gone })
	reserved := server(t, uniqueName(t, "reserved"), nil, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState,
		func(s *metalv1alpha1.Server) { s.Spec.ServerClaimRef = gone })

	out, _, err := c.run("n\n", "release", released.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(ContainSubstring("was retained for claim " + ns + "/gone, which is gone"))
	g.Expect(out).To(ContainSubstring("[y/N]"))
	g.Expect(out).To(HaveSuffix("Not released.\n"))
	g.Expect(get(t, released).Spec.ServerClaimRef).NotTo(BeNil())

	out, _, err = c.run("", "release", released.Name) // no answer at all is a no
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(HaveSuffix("Not released.\n"))

	out, _, err = c.run("y\n", "release", released.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(out).To(HaveSuffix("server/" + released.Name + " released\n"))
	g.Expect(get(t, released).Spec.ServerClaimRef).To(BeNil())

	_, _, err = c.run("", "release", reserved.Name, "--yes")
	g.Expect(err).To(MatchError(ContainSubstring("is Reserved, not Released")))
	g.Expect(get(t, reserved).Spec.ServerClaimRef).NotTo(BeNil())
}

func TestReleaseRefusesAServerWhoseClaimExists(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	claim := &metalv1alpha1.ServerClaim{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "live"},
		Spec:       metalv1alpha1.ServerClaimSpec{Power: metalv1alpha1.PowerOff, Image: "img"},
	}
	env.Create(t, claim)
	s := server(t, uniqueName(t, "s"), nil, metalv1alpha1.ServerStateReleased, metalv1alpha1.ServerOffPowerState,
		func(s *metalv1alpha1.Server) {
			s.Spec.ServerClaimRef = &metalv1alpha1.ImmutableObjectReference{Namespace: ns, Name: "live", UID: string(claim.UID)}
		})
	_, _, err := c.run("", "release", s.Name, "--yes")
	g.Expect(err).To(MatchError(ContainSubstring("still belongs to claim " + ns + "/live")))
	g.Expect(get(t, s).Spec.ServerClaimRef).NotTo(BeNil())
}

func TestBootsShowsBootConfigurationAndEvents(t *testing.T) {
	g := NewWithT(t)
	ns := env.Namespace(t)
	c := newCLI(t, ns)
	s := server(t, uniqueName(t, "s"), nil, metalv1alpha1.ServerStateReserved, metalv1alpha1.ServerOnPowerState,
		func(s *metalv1alpha1.Server) { s.Status.NetworkBootClaimUID = "5b0f2d36-3f0c-4c4e-9f7b-7e1f6f3a2b10" })
	sbc := &metalv1alpha1.ServerBootConfiguration{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "boot"},
		Spec:       metalv1alpha1.ServerBootConfigurationSpec{ServerRef: metalv1alpha1.LocalObjectReference{Name: s.Name}, Image: "my-osimage:latest"},
	}
	env.Create(t, sbc)
	opened := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	sbc.Status = metalv1alpha1.ServerBootConfigurationStatus{
		State: metalv1alpha1.ServerBootConfigurationStateReady,
		Image: &metalv1alpha1.ResolvedImage{Reference: "registry.example/my-osimage:latest", Digest: "sha256:" + sixtyFour("a")},
		BootCredential: &metalv1alpha1.BootCredentialStatus{WindowOpenedAt: opened, IssuedAt: &opened,
			PinnedIP: "192.0.2.7", IgnitionFetches: 1, BootDone: true},
	}
	g.Expect(env.Client.Status().Update(t.Context(), sbc)).To(Succeed())
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "default", GenerateName: "boot-"},
		InvolvedObject: corev1.ObjectReference{Kind: "Server", Name: s.Name, APIVersion: metalv1alpha1.GroupVersion.String()},
		Reason:         "NetworkBoot", Message: "First boot of claim x/y: one-time network boot", Type: corev1.EventTypeNormal,
		LastTimestamp: opened, Count: 1,
	}
	env.Create(t, ev)

	out := c.ok("boots", s.Name)
	g.Expect(out).To(ContainSubstring("Server " + s.Name + " is Reserved, powered On"))
	g.Expect(out).To(ContainSubstring("Last network boot: for claim uid 5b0f2d36"))
	g.Expect(out).To(ContainSubstring("Boot configuration " + ns + "/boot: Ready"))
	g.Expect(out).To(ContainSubstring("registry.example/my-osimage:latest@sha256:aaaa"))
	g.Expect(out).To(ContainSubstring("credential issued 2026-01-02T03:04:05Z to 192.0.2.7, ignition fetched 1 time(s), boot done: true"))
	g.Expect(out).To(ContainSubstring("Last wipe: none recorded"))
	g.Expect(out).To(MatchRegexp(`2026-01-02T03:04:05Z\s+Normal\s+NetworkBoot\s+First boot of claim x/y`))

	var h bootHistory
	g.Expect(json.Unmarshal([]byte(c.ok("boots", s.Name, "-o", "json")), &h)).To(Succeed())
	g.Expect(h.BootConfigurations).To(HaveLen(1))
	g.Expect(h.Events).To(HaveLen(1))
	g.Expect(h.LastWipe).To(BeNil())
}

func sixtyFour(c string) string {
	s := ""
	for range 64 {
		s += c
	}
	return s
}

func TestCompletion(t *testing.T) {
	g := NewWithT(t)
	c := newCLI(t, env.Namespace(t))
	for _, shell := range []string{"bash", "zsh", "fish"} {
		g.Expect(c.ok("completion", shell)).To(ContainSubstring("kubectl-metal"), shell)
	}
	s := server(t, uniqueName(t, "complete-me"), nil, metalv1alpha1.ServerStateAvailable, metalv1alpha1.ServerOffPowerState)
	g.Expect(c.ok("__complete", "cordon", uniqueName(t, "complete"))).To(ContainSubstring(s.Name))
}
