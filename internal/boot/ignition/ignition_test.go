package ignition_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	ignconfig "github.com/coreos/ignition/v2/config"
	. "github.com/onsi/gomega"

	metalv1alpha1 "github.com/metalfleet/metal-operator/api/v1alpha1"
	"github.com/metalfleet/metal-operator/internal/boot/ignition"
)

// secretMarker appears in every test config, so that error messages can be checked for it.
const secretMarker = "s3cr3t-do-not-leak"

const butaneFCOS = `variant: fcos
version: 1.3.0
passwd:
  users:
    - name: core
      ssh_authorized_keys:
        - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI` + secretMarker + `
      password_hash: "$6$` + secretMarker + `"
storage:
  files:
    - path: /etc/hostname
      mode: 0644
      overwrite: true
      contents:
        inline: |
          ` + secretMarker + `
  disks:
    - device: /dev/sda
      wipe_table: true
      partitions:
        - label: root
          size_mib: 0
          start_mib: 0
systemd:
  units:
    - name: hello.service
      enabled: true
      contents: |
        [Unit]
        Description=hello
        [Service]
        ExecStart=/bin/echo ` + secretMarker + `
        [Install]
        WantedBy=multi-user.target
`

const ignitionJSON = `{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"/etc/motd","contents":{"source":"data:,` + secretMarker + `"}}]}}`

func TestRenderIgnitionJSON(t *testing.T) {
	g := NewWithT(t)
	for _, format := range []string{"", "ignition", "json", "fcos"} {
		data := map[string][]byte{ignition.KeyIgnition: []byte(ignitionJSON)}
		if format != "" {
			data[ignition.KeyFormat] = []byte(format)
		}
		out, err := ignition.Render(data)
		g.Expect(err).NotTo(HaveOccurred(), "format %q", format)
		g.Expect(string(out)).To(Equal(ignitionJSON), "Ignition JSON is served unchanged")
	}
}

func TestRenderButane(t *testing.T) {
	g := NewWithT(t)
	out, err := ignition.Render(map[string][]byte{ignition.KeyFormat: []byte("fcos"), ignition.KeyIgnition: []byte(butaneFCOS)})
	g.Expect(err).NotTo(HaveOccurred())

	cfg, rpt, err := ignconfig.Parse(out)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rpt.Entries).To(BeEmpty(), "no warnings: every key was translated")

	var raw struct {
		Ignition struct{ Version string } `json:"ignition"`
	}
	g.Expect(json.Unmarshal(out, &raw)).To(Succeed())
	g.Expect(raw.Ignition.Version).To(Equal("3.2.0"), "fcos 1.3.0 is Ignition 3.2.0")

	g.Expect(cfg.Passwd.Users).To(HaveLen(1))
	g.Expect(cfg.Passwd.Users[0].SSHAuthorizedKeys).To(HaveLen(1))
	g.Expect(*cfg.Passwd.Users[0].PasswordHash).To(ContainSubstring(secretMarker))
	g.Expect(cfg.Storage.Files).To(HaveLen(1))
	f := cfg.Storage.Files[0]
	g.Expect(*f.Mode).To(Equal(0o644))
	g.Expect(*f.Overwrite).To(BeTrue())
	src := *f.Contents.Source
	g.Expect(src).To(HavePrefix("data:;base64,"))
	decoded, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:;base64,"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(decoded)).To(Equal(secretMarker + "\n"))
	g.Expect(*cfg.Storage.Disks[0].WipeTable).To(BeTrue())
	g.Expect(*cfg.Storage.Disks[0].Partitions[0].SizeMiB).To(Equal(0))
	g.Expect(cfg.Systemd.Units[0].Name).To(Equal("hello.service"))

	// Flatcar is accepted too, without a format key.
	out, err = ignition.Render(map[string][]byte{ignition.KeyIgnition: []byte("variant: flatcar\nversion: 1.0.0\n")})
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(out)).To(ContainSubstring(`"version":"3.3.0"`))
}

func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		data    map[string][]byte
		reason  string
		message string
	}{
		{"no ignition key", map[string][]byte{"user-data": []byte(ignitionJSON)}, metalv1alpha1.ReasonIgnitionKeyMissing, `no key "ignition"`},
		{"empty", map[string][]byte{"ignition": []byte("  \n")}, metalv1alpha1.ReasonInvalidIgnition, "empty"},
		{"malformed JSON", map[string][]byte{"ignition": []byte(`{"ignition": {"version": "3.2.0"}, "` + secretMarker)}, metalv1alpha1.ReasonInvalidIgnition, "not valid JSON"},
		{"not a config at all", map[string][]byte{"ignition": []byte(secretMarker)}, metalv1alpha1.ReasonInvalidIgnition, "neither Ignition JSON nor Butane"},
		{"Ignition without version", map[string][]byte{"ignition": []byte(`{"storage":{"files":[{"path":"` + secretMarker + `"}]}}`)}, metalv1alpha1.ReasonInvalidIgnition, "not valid"},
		{"Ignition with a relative path", map[string][]byte{"ignition": []byte(`{"ignition":{"version":"3.2.0"},"storage":{"files":[{"path":"` + secretMarker + `"}]}}`)}, metalv1alpha1.ReasonInvalidIgnition, "storage.files[0].path"},
		{"unknown format", map[string][]byte{"format": []byte("cloud-init"), "ignition": []byte(ignitionJSON)}, metalv1alpha1.ReasonInvalidIgnition, "unknown format"},
		{"Butane without version", map[string][]byte{"ignition": []byte("variant: fcos\npasswd: {}\n")}, metalv1alpha1.ReasonInvalidIgnition, "variant and version"},
		{"Butane unknown variant", map[string][]byte{"ignition": []byte("variant: rhcos\nversion: 1.0.0\n")}, metalv1alpha1.ReasonInvalidIgnition, "unsupported Butane variant"},
		{"Butane unknown version", map[string][]byte{"ignition": []byte("variant: fcos\nversion: 9.9.9\n")}, metalv1alpha1.ReasonInvalidIgnition, "unsupported Butane version"},
		{"Butane sugar: local file", map[string][]byte{"ignition": []byte("variant: fcos\nversion: 1.3.0\nstorage:\n  files:\n    - path: /etc/x\n      contents:\n        local: " + secretMarker + "\n")}, metalv1alpha1.ReasonInvalidIgnition, "storage.files[0].contents.local"},
		{"Butane sugar: trees", map[string][]byte{"ignition": []byte("variant: fcos\nversion: 1.3.0\nstorage:\n  trees:\n    - local: " + secretMarker + "\n")}, metalv1alpha1.ReasonInvalidIgnition, "storage.trees"},
		{"Butane invalid value", map[string][]byte{"ignition": []byte("variant: fcos\nversion: 1.3.0\nstorage:\n  files:\n    - path: " + secretMarker + "\n")}, metalv1alpha1.ReasonInvalidIgnition, "storage.files[0].path"},
		{"Butane malformed YAML", map[string][]byte{"ignition": []byte("variant: fcos\nversion: 1.3.0\n  bad: [" + secretMarker + "\n")}, metalv1alpha1.ReasonInvalidIgnition, "YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			_, err := ignition.Render(tc.data)
			g.Expect(err).To(HaveOccurred())
			var ierr *ignition.Error
			g.Expect(errors.As(err, &ierr)).To(BeTrue())
			g.Expect(ierr.Reason).To(Equal(tc.reason))
			g.Expect(ierr.Message).To(ContainSubstring(tc.message))
			g.Expect(ierr.Message).NotTo(ContainSubstring(secretMarker), "errors never quote the config")
		})
	}
}
