package ignition_test

import (
	"bytes"
	"testing"

	ignconfig "github.com/coreos/ignition/v2/config"
	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
)

const butaneHeader = "variant: fcos\nversion: 1.3.0\n"

// TestButaneIsStrict: keys given twice and keys that are no Butane keys are refused, and a
// config is accepted or refused the same way every time.
func TestButaneIsStrict(t *testing.T) {
	for _, tc := range []struct {
		name, config, wantErr string
	}{
		{"YAML key twice", butaneHeader + "storage:\n  files: []\n  files: []\n", "twice"},
		{"YAML key twice in a list item", butaneHeader + "storage:\n  files:\n    - path: /a\n      mode: 420\n      mode: 0644\n", "twice"},
		{"JSON key twice", `{"variant":"fcos","version":"1.3.0","storage":{"files":[{"path":"/a","path":"/b"}]}}`, "storage.files[0].path twice"},
		{"Ignition JSON key twice", `{"ignition":{"version":"3.2.0","version":"3.3.0"}}`, "ignition.version twice"},
		{"trailing underscore", butaneHeader + "storage:\n  files_:\n    - path: /a\n", "unknown key storage.files_"},
		{"double underscore", butaneHeader + "passwd:\n  users:\n    - name: core\n      ssh__authorized_keys: [x]\n", "unknown key"},
		{"camelCase key", butaneHeader + "passwd:\n  users:\n    - name: core\n      sshAuthorizedKeys: [x]\n", "unknown key"},
		{"inline and source_", butaneHeader + "storage:\n  files:\n    - path: /a\n      contents:\n        inline: a\n        source_: data:,b\n", "unknown key"},
		{"inline and source", butaneHeader + "storage:\n  files:\n    - path: /a\n      contents:\n        source: data:,b\n        inline: a\n", "inline and source are exclusive"},
		{"sugar", butaneHeader + "boot_device:\n  mirror:\n    devices: [/dev/sda]\n", "not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			// Map order differs between runs: every run must refuse alike.
			for range 20 {
				_, err := ignition.Render(map[string][]byte{"ignition": []byte(tc.config)})
				g.Expect(err).To(MatchError(ContainSubstring(tc.wantErr)))
				var ierr *ignition.Error
				g.Expect(err).To(BeAssignableToTypeOf(ierr))
				g.Expect(err.(*ignition.Error).Reason).To(Equal(metalv1alpha1.ReasonInvalidIgnition))
			}
		})
	}
}

// FuzzRender: whatever a tenant stores, rendering does not panic, gives the same answer
// every time, and what it accepts is a valid Ignition config. Seeds: testdata/fuzz/FuzzRender.
func FuzzRender(f *testing.F) {
	f.Fuzz(func(t *testing.T, config []byte, format string) {
		data := map[string][]byte{"ignition": config, "format": []byte(format)}
		out, err := ignition.Render(data)
		again, err2 := ignition.Render(data)
		if (err == nil) != (err2 == nil) || !bytes.Equal(out, again) || (err != nil && err.Error() != err2.Error()) {
			t.Fatalf("not deterministic: %q/%v then %q/%v", out, err, again, err2)
		}
		if err != nil {
			if _, ok := err.(*ignition.Error); !ok {
				t.Fatalf("error %T is no *ignition.Error", err)
			}
			return
		}
		if _, _, err := ignconfig.Parse(out); err != nil {
			t.Fatalf("accepted a config that Ignition refuses: %v", err)
		}
	})
}
