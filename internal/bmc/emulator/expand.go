package emulator

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Expand is how the emulator treats the $expand query (DMTF DSP0266) on the resources below
// /redfish/v1/Systems.
type Expand string

const (
	// ExpandLevels advertises "." (the hyperlinks outside Links) with $levels up to
	// MaxExpandLevels in the service root, and expands as asked.
	ExpandLevels Expand = ""
	// ExpandNone advertises nothing and ignores the query: members come back as links, as
	// from a BMC that knows no $expand.
	ExpandNone Expand = "none"
	// ExpandRefused advertises the query and answers it with 501 Not Implemented, as from a
	// BMC whose advertisement is wrong.
	ExpandRefused Expand = "refused"
)

// MaxExpandLevels is the deepest $levels the emulator expands.
const MaxExpandLevels = 3

// serveExpanded answers a GET with $expand below /redfish/v1/Systems: the resource with the
// hyperlinks outside its Links property replaced by the resources they name, $levels deep
// (1 without the option). "*" and "~" are not advertised: 501; a malformed query: 400.
func (e *Emulator) serveExpanded(w http.ResponseWriter, r *http.Request, segs []string) {
	if e.opts.Expand == ExpandRefused {
		writeError(w, http.StatusNotImplemented, "QueryNotSupported", "Querying is not supported by the implementation.")
		return
	}
	levels, status := parseExpand(r.URL.Query().Get("$expand"))
	if status != http.StatusOK {
		writeError(w, status, "QueryParameterValueFormatError", "The value of the $expand query parameter is not supported.")
		return
	}
	body := e.systemsResource(segs)
	if body == nil {
		notFound(w, r)
		return
	}
	e.expandLinks(body, levels)
	writeJSON(w, http.StatusOK, body)
}

// parseExpand reads "." or ".($levels=n)"; it returns the levels and 200, or the status that
// refuses the query.
func parseExpand(q string) (int, int) {
	if q == "." {
		return 1, http.StatusOK
	}
	if q == "*" || q == "~" || strings.HasPrefix(q, "*(") || strings.HasPrefix(q, "~(") {
		return 0, http.StatusNotImplemented
	}
	n, ok := strings.CutPrefix(q, ".($levels=")
	if !ok || !strings.HasSuffix(n, ")") {
		return 0, http.StatusBadRequest
	}
	levels, err := strconv.Atoi(strings.TrimSuffix(n, ")"))
	if err != nil || levels < 1 || levels > MaxExpandLevels {
		return 0, http.StatusBadRequest
	}
	return levels, http.StatusOK
}

// systemsResource renders the resource at /redfish/v1/Systems/<segs...>, or nil if there is
// none.
func (e *Emulator) systemsResource(segs []string) obj {
	if len(segs) == 0 {
		e.mu.RLock()
		members := make([]obj, 0, len(e.order))
		for _, s := range e.order {
			members = append(members, ref(s.uri))
		}
		e.mu.RUnlock()
		return collectionOf("#ComputerSystemCollection.ComputerSystemCollection", systemsPath, "Computer System Collection", members)
	}
	s := e.lookupID(segs[0])
	if s == nil {
		return nil
	}
	sub := segs[1:]
	switch {
	case len(sub) == 0:
		s.mu.Lock()
		defer s.mu.Unlock()
		s.advance(time.Now())
		return e.systemJSON(s)
	case sub[0] == "Storage":
		return e.storageResource(s, s.uri+"/Storage", sub[1:])
	}
	return e.systemSubresource(s, sub)
}

// expandLinks replaces, levels deep, every hyperlink of body outside a Links property by the
// resource it names below /redfish/v1/Systems (others stay links).
func (e *Emulator) expandLinks(body obj, levels int) {
	if levels < 1 {
		return
	}
	for k, v := range body {
		if k == "Links" {
			continue
		}
		body[k] = e.expandValue(v, levels)
	}
}

func (e *Emulator) expandValue(v any, levels int) any {
	switch v := v.(type) {
	case obj:
		if target := linkTarget(v); target != nil {
			res := e.systemsResource(target)
			if res == nil {
				return v
			}
			e.expandLinks(res, levels-1)
			return res
		}
		e.expandLinks(v, levels)
	case []obj:
		for i := range v {
			v[i] = e.expandValue(v[i], levels).(obj)
		}
	case []any:
		for i := range v {
			v[i] = e.expandValue(v[i], levels)
		}
	}
	return v
}

// linkTarget returns the path segments below /redfish/v1/Systems of a hyperlink (an object
// with @odata.id alone), or nil.
func linkTarget(o obj) []string {
	if len(o) != 1 {
		return nil
	}
	id, ok := o["@odata.id"].(string)
	if !ok {
		return nil
	}
	rest, ok := strings.CutPrefix(id, systemsPath+"/")
	if !ok || rest == "" {
		return nil
	}
	return strings.Split(rest, "/")
}
