// Package wipe is the agent's wipe engine: it erases the disks of the machine the agent runs
// on by a policy (report.PolicyQuick or report.PolicySecure), reads sampled blocks back to
// verify that they are zero, and returns the record (report.Wipe) the agent posts to the
// boot server. docs/wipe.md says what each policy does and does not guarantee.
//
// The engine works on block devices and on regular files alike: a fixture tree (Options.Root
// other than "/") stands for a machine whose disks are files. A disk that fails is recorded as
// failed and the run goes on with the others; only a run that cannot find its disks fails.
package wipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/metalfleet/metal-operator/internal/agent/report"
	"github.com/metalfleet/metal-operator/internal/message"
)

// Defaults of Options.
const (
	DefaultParallel      = 4
	DefaultProgressEvery = 8 * gib
)

// Options say what Run wipes and how.
type Options struct {
	// Root is where the machine's /sys and /dev are: "/" (the default) on a real machine, a
	// fixture tree in tests and the embedded environment.
	Root string
	// Policy is report.PolicyQuick or report.PolicySecure.
	Policy string
	// Devices, when not empty, are the disks to wipe instead of every disk found under
	// <Root>/sys/block: names ("sda", meaning <Root>/dev/sda) or absolute paths (taken as
	// written; how a loop device or a file is wiped).
	Devices []string
	// Parallel caps how many disks are wiped at once; 0 means DefaultParallel.
	Parallel int
	// Samples is how many random 4 KiB blocks the verification of a Secure wipe reads beyond
	// the first and last MiB; 0 means DefaultSamples.
	Samples int
	// ProgressEvery is how many bytes an overwrite writes between two progress lines; 0 means
	// DefaultProgressEvery.
	ProgressEvery int64
	// Log receives a line per disk and the progress of overwrites; the zero value discards.
	Log logr.Logger

	// afterWipe, set by tests only, runs on the device between its wipe and its verification.
	afterWipe func(f *os.File) error
}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Samples <= 0 {
		o.Samples = DefaultSamples
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	return o
}

// Run wipes the machine's disks by o.Policy, concurrently (at most o.Parallel at a time), and
// returns the record. It returns an error only when it cannot wipe at all: an unknown policy,
// no system UUID, disks that cannot be listed. A disk that cannot be opened, written or
// verified is in the record as failed, with the reason; so is every disk not wiped when ctx
// ends.
func Run(ctx context.Context, o Options) (*report.Wipe, error) {
	o = o.withDefaults()
	if o.Policy != report.PolicyQuick && o.Policy != report.PolicySecure {
		return nil, fmt.Errorf("policy %q: must be %s or %s", o.Policy, report.PolicyQuick, report.PolicySecure)
	}
	uuid, err := systemUUID(o.Root)
	if err != nil {
		return nil, err
	}
	ds, err := disks(o.Root, o.Devices)
	if err != nil {
		return nil, err
	}
	w := &report.Wipe{
		SystemUUID: uuid,
		Policy:     o.Policy,
		StartedAt:  time.Now().UTC(),
		Disks:      make([]report.DiskWipe, len(ds)),
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(o.Parallel, len(ds)) {
		wg.Go(func() {
			for i := range next {
				w.Disks[i] = wipeDisk(ctx, o, ds[i])
			}
		})
	}
	for i := range ds {
		next <- i
	}
	close(next)
	wg.Wait()
	w.FinishedAt = time.Now().UTC()
	return w, nil
}

// wipeDisk wipes and verifies one disk and returns its record.
func wipeDisk(ctx context.Context, o Options, d disk) report.DiskWipe {
	log := o.Log.WithValues("disk", d.path)
	rec := report.DiskWipe{Path: d.path, Model: d.model, Serial: d.serial, Result: report.ResultFailed}
	fail := func(err error) report.DiskWipe {
		rec.Error = message.Truncate(err.Error(), report.MaxString-len("..."))
		log.Info("Disk wipe failed", "method", rec.Method, "error", rec.Error)
		return rec
	}
	if ctx.Err() != nil {
		return fail(errors.New("cancelled before the wipe started"))
	}
	dev, err := openDevice(d.open)
	if err != nil {
		return fail(err)
	}
	defer func() { _ = dev.f.Close() }()
	rec.SizeBytes = dev.size
	log.Info("Wiping disk", "policy", o.Policy, "sizeBytes", dev.size, "transport", d.transport)

	var blocks []int64
	switch o.Policy {
	case report.PolicyQuick:
		rec.Method, err = quick(ctx, dev)
		blocks = blocksOf(quickRegions(dev.size))
	default:
		rec.Method, err = secure(ctx, dev, d.transport, o.ProgressEvery, log)
		blocks = secureSamples(dev.size, o.Samples)
	}
	if err == nil {
		err = dev.flush()
	}
	if err == nil && o.afterWipe != nil {
		err = o.afterWipe(dev.f)
	}
	if err != nil {
		return fail(err)
	}
	v, mismatch, err := verify(dev, blocks)
	rec.Verification = v
	if err != nil {
		return fail(err)
	}
	if mismatch != "" {
		return fail(errors.New(mismatch))
	}
	rec.Result = report.ResultSucceeded
	log.Info("Disk wiped", "method", rec.Method, "sampledBlocks", v.SampledBlocks)
	return rec
}

// quick zeroes the signatures and both ends of the device (quickRegions) after discarding all
// of it where the device supports discard. It returns the method as done so far.
func quick(ctx context.Context, dev *device) (string, error) {
	discarded, err := dev.discard()
	method := "signatures+ends"
	if discarded || err != nil {
		method += "+discard"
	}
	if err != nil {
		return method, fmt.Errorf("discard: %w", err)
	}
	for _, r := range quickRegions(dev.size) {
		if err := dev.zero(ctx, r.off, r.end, nil); err != nil {
			return method, err
		}
	}
	return method, nil
}

// firmwareErase names the firmware erase a disk of a transport would get, were it built: the
// engine does not issue NVMe admin or ATA passthrough commands yet, so such a disk is
// overwritten like any other and its method says so.
var firmwareErase = map[string]string{
	"nvme": "nvme crypto erase",
	"ata":  "ata secure erase",
}

// secure overwrites every byte of the device with zeros, after discarding all of it where the
// device supports discard, and logs its progress every progressEvery bytes. It returns the
// method as done so far.
func secure(ctx context.Context, dev *device, transport string, progressEvery int64, log logr.Logger) (string, error) {
	discarded, err := dev.discard()
	method := "overwrite"
	if discarded || err != nil {
		method = "discard+" + method
	}
	if fw, ok := firmwareErase[transport]; ok {
		method += " (" + fw + " not implemented)"
	}
	if err != nil {
		return method, fmt.Errorf("discard: %w", err)
	}
	start, mark := time.Now(), progressEvery
	progress := func(done int64) {
		if done >= mark {
			for mark <= done {
				mark += progressEvery
			}
			mibps := float64(done) / float64(mib) / max(time.Since(start).Seconds(), 1e-3)
			log.Info("Overwriting disk", "doneBytes", done, "sizeBytes", dev.size, "mibPerSecond", int64(mibps))
		}
	}
	return method, dev.zero(ctx, 0, dev.size, progress)
}
