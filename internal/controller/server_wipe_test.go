package controller

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/agent/fixture"
	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/bmc/emulator"
	"github.com/metalfleet/metal-operator/internal/boot/image/imagetest"
	"github.com/metalfleet/metal-operator/internal/testing/machine"
)

// wipeWith plays the agent of a wipe boot of s: boots, checks the kernel parameters, and
// posts report; it returns the status code.
func (w *agentWorld) wipeWith(g Gomega, s *metalv1alpha1.Server, policy metalv1alpha1.WipePolicy, failing string) int {
	sbc := w.agentConfiguration(g, s)
	g.Expect(sbc.Annotations).To(HaveKeyWithValue(metalv1alpha1.AgentModeAnnotation, metalv1alpha1.AgentModeWipe))
	provide(g, w.ns, s.Name)
	params := w.bootAgent(g, s)
	g.Expect(params).To(HaveKeyWithValue(report.CmdlineMode, metalv1alpha1.AgentModeWipe))
	g.Expect(params).To(HaveKeyWithValue(report.CmdlineWipePolicy, string(policy)))
	code, _ := httpFrom(g, "127.0.0.1", http.MethodPost, w.bootURL+report.WipePath, params[report.CmdlineCredential],
		wipeReport(s.Spec.SystemUUID, policy, failing))
	return code
}

func waitServerState(g Gomega, s *metalv1alpha1.Server, state metalv1alpha1.ServerState) *metalv1alpha1.Server {
	var cur *metalv1alpha1.Server
	g.Eventually(func(g Gomega) {
		cur = getServer(g, s)
		g.Expect(cur.Status.State).To(Equal(state))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	return cur
}

// TestRecycledServerIsWipedBeforeItIsAvailable: a server with wipe policy Quick whose claim
// is deleted is off, Wiping (no claim binds it), boots the agent in wipe mode, and is
// Available with the record once every disk reported success.
func TestRecycledServerIsWipedBeforeItIsAvailable(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, nil)
	s, c := w.boundAndOn(0)
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.WipePolicy = metalv1alpha1.WipePolicyQuick })
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())

	cur := waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
	g.Expect(cur.Spec.ServerClaimRef).To(BeNil())
	g.Expect(cur.Status.LastWipe).NotTo(BeNil())
	g.Expect(cur.Status.LastWipe.ClaimUID).To(Equal(string(c.UID)))
	g.Expect(cur.Status.LastWipe.Claim).To(Equal(c.Namespace + "/" + c.Name))
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultRunning))
	next := newClaim(t, w.ns, byRef(s.Name))

	g.Expect(w.wipeWith(g, s, metalv1alpha1.WipePolicyQuick, "")).To(Equal(http.StatusCreated))
	g.Expect(getClaim(g, next).Status.Phase).NotTo(Equal(metalv1alpha1.PhaseBound), "no claim binds a server being wiped")

	g.Eventually(func(g Gomega) {
		cur = getServer(g, s)
		g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	rec := cur.Status.LastWipe
	g.Expect(rec.Method).To(Equal(wipeMethodAgent))
	g.Expect(rec.Policy).To(Equal(metalv1alpha1.WipePolicyQuick))
	g.Expect(rec.ReportDigest).To(HavePrefix("sha256:"))
	g.Expect(rec.FinishedAt).NotTo(BeNil())
	g.Expect(rec.Disks).To(HaveLen(2))
	g.Expect(rec.Disks[0]).To(Equal(metalv1alpha1.DiskWipeRecord{Path: "/dev/sda", Serial: "Sa", Method: "signatures+ends",
		Result: metalv1alpha1.WipeResultSucceeded, SampledBlocks: 8, Verified: true}))
	c2 := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerWiped)
	g.Expect(c2.Status).To(Equal(metav1.ConditionTrue))
	g.Expect(c2.Reason).To(Equal(metalv1alpha1.ReasonWipeSucceeded))
	expectEvent(t, s, corev1.EventTypeNormal, "Wiped")
	expectAgentBootGone(t, w.ns, s)

	// Now the waiting claim binds it.
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, next).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestFailedWipeKeepsTheServerOutOfThePool: a disk that fails its wipe leaves the server in
// Error with the disk named, no claim takes it, and it stays there until the operator
// retries (a new wipe) or skips the wipe (recorded).
func TestFailedWipeKeepsTheServerOutOfThePool(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) { o.DefaultWipePolicy = metalv1alpha1.WipePolicySecure })
	w.em.SetDrives(w.em.Systems()[0].UUID, []emulator.DriveSpec{}) // no Redfish secure erase: the agent wipes
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Expect(w.wipeWith(g, s, metalv1alpha1.WipePolicySecure, "/dev/nvme0n1")).To(Equal(http.StatusCreated))

	cur := waitServerState(g, s, metalv1alpha1.ServerStateError)
	cond := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerWiped)
	g.Expect(cond.Reason).To(Equal(metalv1alpha1.ReasonWipeFailed))
	g.Expect(cond.Message).To(ContainSubstring(`"/dev/nvme0n1"`))
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultFailed))
	g.Expect(cur.Status.LastWipe.Disks[1].Error).To(Equal("short write at offset 4096"))
	expectEvent(t, s, corev1.EventTypeWarning, metalv1alpha1.ReasonWipeFailed)

	next := newClaim(t, w.ns, byRef(s.Name))
	g.Consistently(func(g Gomega) {
		g.Expect(getServer(g, s).Status.State).To(Equal(metalv1alpha1.ServerStateError))
		g.Expect(getClaim(g, next).Status.Phase).NotTo(Equal(metalv1alpha1.PhaseBound))
	}).WithTimeout(time.Second).Should(Succeed())

	// Retry: a new wipe runs.
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Annotations = map[string]string{metalv1alpha1.OperationAnnotation: metalv1alpha1.OperationAnnotationRetry}
	})
	cur = waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultRunning))
	g.Expect(cur.Annotations).NotTo(HaveKey(metalv1alpha1.OperationAnnotation))
	g.Expect(w.wipeWith(g, s, metalv1alpha1.WipePolicySecure, "/dev/sda")).To(Equal(http.StatusCreated))
	waitServerState(g, s, metalv1alpha1.ServerStateError)

	// Skip: recorded, and the server is Available (and bound by the waiting claim).
	patchServer(g, s, func(o *metalv1alpha1.Server) {
		o.Annotations = map[string]string{metalv1alpha1.SkipWipeAnnotation: "disk replaced by ticket OPS-1234"}
	})
	g.Eventually(func(g Gomega) {
		cur = getServer(g, s)
		g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSkipped))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	g.Expect(cur.Status.LastWipe.Message).To(ContainSubstring("disk replaced by ticket OPS-1234"))
	g.Expect(cur.Annotations).NotTo(HaveKey(metalv1alpha1.SkipWipeAnnotation))
	expectEvent(t, s, corev1.EventTypeWarning, metalv1alpha1.ReasonWipeSkipped)
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, next).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestRetainedServerIsWipedWhenReleased: with Retain the server keeps the claim reference
// and its data until the operator clears the reference; then it is wiped.
func TestRetainedServerIsWipedWhenReleased(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) { o.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick })
	s, c := w.boundAndOn(0)
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ReclaimPolicy = metalv1alpha1.ReclaimPolicyRetain })
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	cur := waitServerState(g, s, metalv1alpha1.ServerStateReleased)
	g.Expect(cur.Status.LastWipe).To(BeNil())

	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.ServerClaimRef = nil })
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Expect(w.wipeWith(g, s, metalv1alpha1.WipePolicyQuick, "")).To(Equal(http.StatusCreated))
	cur = waitServerState(g, s, metalv1alpha1.ServerStateAvailable)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
	g.Expect(cur.Status.LastWipe.ClaimUID).To(Equal(string(c.UID)))
}

// TestWipeWithoutAMethodFailsClosed: with no agent image and a BMC without SecureErase, a
// wipe that is owed keeps the server out of the pool with NoWipeMethod.
func TestWipeWithoutAMethodFailsClosed(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) {
		o.AgentImage = ""
		o.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick
	})
	w.em.SetDrives(w.em.Systems()[0].UUID, []emulator.DriveSpec{})
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	cur := waitServerState(g, s, metalv1alpha1.ServerStateError)
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerWiped).Reason).To(Equal(metalv1alpha1.ReasonNoWipeMethod))
	g.Expect(cur.Status.PowerState).To(Equal(metalv1alpha1.ServerOffPowerState))
}

// TestWipeWithTheRealAgent: claim -> delete -> Wiping -> the real agent, booted by the
// machine simulator through the real boot server, wipes the fixture's file-backed disks ->
// the record lists every disk, verified -> Available. The disks' first MiB, written with data
// before, reads back zero.
func TestWipeWithTheRealAgent(t *testing.T) {
	g := NewWithT(t)
	reg := imagetest.NewRegistry(t)
	reg.Push(t, "metal/agent:1", imagetest.BootLayers()...)
	reg.Push(t, "my-osimage:latest", imagetest.BootLayers()...)
	w := newAgentWorldWith(t, 1, reg, func(o *ServerOptions) { o.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick })
	s, c := w.boundAndOn(0)

	root := t.TempDir()
	m := fixture.Sample(s.Spec.SystemUUID, "02:00:00:00:00:01", 0)
	g.Expect(fixture.Write(root, m)).To(Succeed())
	for _, d := range m.Disks {
		f, err := os.OpenFile(filepath.Join(root, "dev", d.Name), os.O_WRONLY, 0)
		g.Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteAt(bytes.Repeat([]byte("tenant data "), 4096), 0)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f.Close()).To(Succeed())
	}

	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Eventually(func() error {
		return machine.Boot(t.Context(), machine.Options{BootURL: w.bootURL, SystemUUID: s.Spec.SystemUUID, SourceIP: "127.0.0.1", Root: root})
	}).WithTimeout(30 * time.Second).Should(Succeed())

	cur := waitServerState(g, s, metalv1alpha1.ServerStateAvailable)
	rec := cur.Status.LastWipe
	g.Expect(rec.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
	g.Expect(rec.ClaimUID).To(Equal(string(c.UID)))
	g.Expect(rec.Disks).To(HaveLen(len(m.Disks)))
	for i, d := range m.Disks {
		g.Expect(rec.Disks[i].Path).To(Equal("/dev/" + d.Name))
		g.Expect(rec.Disks[i].Serial).To(Equal(d.Serial))
		g.Expect(rec.Disks[i].Verified).To(BeTrue())
		g.Expect(rec.Disks[i].SampledBlocks).To(BeNumerically(">", 0))
		head := make([]byte, 1<<20)
		f, err := os.Open(filepath.Join(root, "dev", d.Name))
		g.Expect(err).NotTo(HaveOccurred())
		_, err = io.ReadFull(f, head)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(f.Close()).To(Succeed())
		g.Expect(bytes.Count(head, []byte{0})).To(Equal(len(head)), "disk %s's first MiB is zero", d.Name)
	}
	expectAgentBootGone(t, w.ns, s)
}

// TestWipeResumesAcrossARestart: the manager stops while the agent is wiping (its boot
// configuration Ready, its credential issued, the machine on); another manager honours the
// boot, accepts the report and finishes the wipe.
func TestWipeResumesAcrossARestart(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) { o.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick })
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	w.agentConfiguration(g, s)
	provide(g, w.ns, s.Name)
	params := w.bootAgent(g, s)

	w.restart()

	code, _ := httpFrom(g, "127.0.0.1", http.MethodPost, w.bootURL+report.WipePath, params[report.CmdlineCredential],
		wipeReport(s.Spec.SystemUUID, metalv1alpha1.WipePolicyQuick, ""))
	g.Expect(code).To(Equal(http.StatusCreated))
	cur := waitServerState(g, s, metalv1alpha1.ServerStateAvailable)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
	g.Expect(cur.Status.LastWipe.ClaimUID).To(Equal(string(c.UID)))
	expectAgentBootGone(t, w.ns, s)
}

// TestRaceWinnersWipeReportIsNotTrusted: a machine that wins the wipe boot's credential before
// the server (it knows the UUID) posts a report of every disk wiped. The server's own request
// moments later is recorded as misuse, and the wipe fails closed: Error, not Available.
func TestRaceWinnersWipeReportIsNotTrusted(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, func(o *ServerOptions) {
		o.DefaultWipePolicy = metalv1alpha1.WipePolicyQuick
		o.AgentReportGrace = 3 * time.Second
	})
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	w.agentConfiguration(g, s)
	provide(g, w.ns, s.Name)
	params := w.bootAgent(g, s) // the attacker, first
	code, _ := httpFrom(g, "127.0.0.1", http.MethodPost, w.bootURL+report.WipePath, params[report.CmdlineCredential],
		wipeReport(s.Spec.SystemUUID, metalv1alpha1.WipePolicyQuick, ""))
	g.Expect(code).To(Equal(http.StatusCreated))
	code, script := httpFrom(g, "127.0.0.2", http.MethodGet, w.bootURL+"/ipxe/"+s.Spec.SystemUUID, "", nil) // the server
	g.Expect(code).To(Equal(http.StatusOK))
	g.Expect(script).NotTo(ContainSubstring("metal.boot_credential"))

	cur := waitServerState(g, s, metalv1alpha1.ServerStateError)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultFailed))
	g.Expect(meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerWiped).Message).To(ContainSubstring("misused"))
}

// TestServerOwingAWipeIsNotFree: a server that booted for a claim and whose policy became
// non-Disabled only after its release owes a wipe: no claim binds it, it is wiped first.
func TestServerOwingAWipeIsNotFree(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 1, nil)
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	cur := waitServerState(g, s, metalv1alpha1.ServerStateAvailable)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultNotRequired), "released under policy Disabled")

	// Pretend an older operator released it (no record), then the policy is raised.
	g.Eventually(func() error {
		cur := getServer(g, s)
		before := cur.DeepCopy()
		cur.Status.LastWipe = nil
		return env.Client.Status().Patch(t.Context(), cur, client.MergeFrom(before))
	}).Should(Succeed())
	patchServer(g, s, func(o *metalv1alpha1.Server) { o.Spec.WipePolicy = metalv1alpha1.WipePolicyQuick })
	next := newClaim(t, w.ns, byRef(s.Name))
	waitServerState(g, s, metalv1alpha1.ServerStateWiping)
	g.Expect(getClaim(g, next).Status.Phase).NotTo(Equal(metalv1alpha1.PhaseBound))
	g.Expect(w.wipeWith(g, s, metalv1alpha1.WipePolicyQuick, "")).To(Equal(http.StatusCreated))
	g.Eventually(func(g Gomega) {
		g.Expect(getClaim(g, next).Status.Phase).To(Equal(metalv1alpha1.PhaseBound))
	}).WithTimeout(20 * time.Second).Should(Succeed())
}

// TestRedfishSecureEraseWipe: without an agent image the BMC's Drive.SecureErase wipes every
// drive (task monitors polled, one erase per drive); a drive whose erase fails holds the
// server in Error with the drive named.
func TestRedfishSecureEraseWipe(t *testing.T) {
	g := NewWithT(t)
	w := newAgentWorld(t, 2, func(o *ServerOptions) {
		o.AgentImage = ""
		o.DefaultWipePolicy = metalv1alpha1.WipePolicySecure
	})
	s, c := w.boundAndOn(0)
	g.Expect(env.Client.Delete(t.Context(), c)).To(Succeed())
	g.Eventually(func(g Gomega) {
		cur := getServer(g, s)
		g.Expect(cur.Status.LastWipe).NotTo(BeNil())
		g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
		g.Expect(cur.Status.State).To(Equal(metalv1alpha1.ServerStateAvailable))
	}).WithTimeout(20 * time.Second).Should(Succeed())
	rec := getServer(g, s).Status.LastWipe
	g.Expect(rec.Method).To(Equal(wipeMethodRedfish))
	g.Expect(rec.Disks).To(HaveLen(2))
	for i, d := range rec.Disks {
		g.Expect(d.Result).To(Equal(metalv1alpha1.WipeResultSucceeded))
		g.Expect(d.Verified).To(BeTrue())
		g.Expect(d.Task).To(BeEmpty())
		g.Expect(w.em.EraseCount(s.Spec.SystemUUID, strconv.Itoa(i))).To(Equal(1))
	}

	uuid := w.em.Systems()[1].UUID
	w.em.FailErase(uuid, "1")
	s2, c2 := w.boundAndOn(1)
	g.Expect(env.Client.Delete(t.Context(), c2)).To(Succeed())
	cur := waitServerState(g, s2, metalv1alpha1.ServerStateError)
	g.Expect(cur.Status.LastWipe.Result).To(Equal(metalv1alpha1.WipeResultFailed))
	cond := meta.FindStatusCondition(cur.Status.Conditions, metalv1alpha1.ServerWiped)
	g.Expect(cond.Reason).To(Equal(metalv1alpha1.ReasonWipeFailed))
	g.Expect(cond.Message).To(ContainSubstring("Exception"))
	g.Expect(cond.Message).NotTo(ContainSubstring("media error"), "the BMC's text is not quoted")
}
