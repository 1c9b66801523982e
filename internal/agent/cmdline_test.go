package agent

import (
	"os"
	"path/filepath"
	"testing"

	. "github.com/onsi/gomega"
)

func TestCmdlineParams(t *testing.T) {
	cases := []struct {
		name, cmdline        string
		wantServer, wantCred string
		wantMode, wantPolicy string
	}{
		{
			name:       "boot server kernel line",
			cmdline:    "initrd=initrd console=ttyS0 metal.boot_server=http://10.0.0.1:8082 metal.boot_credential=abc.def metal.agent_mode=wipe metal.wipe_policy=Secure\n",
			wantServer: "http://10.0.0.1:8082", wantCred: "abc.def", wantMode: ModeWipe, wantPolicy: "Secure",
		},
		{name: "no agent parameters", cmdline: "ro quiet root=/dev/sda1"},
		{name: "quoted value, repeated key: the last counts", cmdline: `metal.boot_server="http://a" metal.boot_server=http://b`, wantServer: "http://b"},
		{name: "value with =", cmdline: "metal.boot_credential=a=b==", wantCred: "a=b=="},
		{name: "empty", cmdline: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			root := t.TempDir()
			g.Expect(os.MkdirAll(filepath.Join(root, "proc"), 0o755)).To(Succeed())
			g.Expect(os.WriteFile(filepath.Join(root, "proc", "cmdline"), []byte(tc.cmdline), 0o644)).To(Succeed())
			server, cred, err := CmdlineParams(root)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(server).To(Equal(tc.wantServer))
			g.Expect(cred).To(Equal(tc.wantCred))
			params, err := Cmdline(root)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(params[CmdlineMode]).To(Equal(tc.wantMode))
			g.Expect(params[CmdlineWipePolicy]).To(Equal(tc.wantPolicy))
		})
	}
	_, _, err := CmdlineParams(t.TempDir())
	NewWithT(t).Expect(err).To(HaveOccurred())
}
