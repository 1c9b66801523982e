package redfish

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
)

// FuzzResolveReference: whatever reference a BMC puts in a link, the client only ever
// addresses the BMC it was built for, with no credentials in the URL, and a path that
// starts with a slash. The seed corpus is in testdata/fuzz/FuzzResolveReference.
func FuzzResolveReference(f *testing.F) {
	c, err := New(Config{Endpoint: "https://bmc.example:8443"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		target, path, err := c.resolve(ref)
		if err != nil {
			return
		}
		u, err := url.Parse(target)
		if err != nil {
			t.Fatalf("resolve(%q) gave an unparsable URL %q: %v", ref, target, err)
		}
		if u.Scheme != "https" || u.Host != "bmc.example:8443" || u.User != nil {
			t.Fatalf("resolve(%q) left the BMC: %q", ref, target)
		}
		if !strings.HasPrefix(path, "/") || u.Path != path {
			t.Fatalf("resolve(%q) gave path %q for URL %q", ref, path, target)
		}
	})
}

// FuzzMemberDecode: whatever a BMC sends as a collection member or an expanded hyperlink,
// decoding it does not panic, and a member that is only a link carries no resource. The seed
// corpus is in testdata/fuzz/FuzzMemberDecode.
func FuzzMemberDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		var m member[storage]
		if err := json.Unmarshal(data, &m); err != nil {
			return
		}
		if !m.expanded && (m.val.Name != "" || len(m.val.Drives) > 0 || m.val.Volumes.id != "") {
			t.Fatalf("a bare link %q decoded into a resource: %+v", data, m.val)
		}
	})
}
