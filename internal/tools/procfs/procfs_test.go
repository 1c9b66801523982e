package procfs

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	. "github.com/onsi/gomega"
)

// TestReadStat: what /proc says about this process matches what the runtime knows.
func TestReadStat(t *testing.T) {
	g := NewWithT(t)
	st, err := ReadStat(os.Getpid())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(st.PPID).To(Equal(os.Getppid()))
	exe, err := os.Executable()
	g.Expect(err).NotTo(HaveOccurred())
	name := filepath.Base(exe)
	g.Expect(name).To(HavePrefix(st.Comm), "comm is the executable's name, cut to 15 bytes")
	g.Expect(st.StartTime).To(MatchRegexp(`^[0-9]+$`))
	g.Expect(st.CPUSeconds).To(BeNumerically(">=", 0))

	got, err := Executable(os.Getpid())
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(exe))
	g.Expect(slices.Contains(Processes(), os.Getpid())).To(BeTrue())
	g.Expect(Alive(os.Getpid())).To(BeTrue())

	_, err = ReadStat(-1)
	g.Expect(err).To(HaveOccurred())
	g.Expect(Alive(-1)).To(BeFalse())
}
